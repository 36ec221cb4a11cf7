"""Experiments: the paper's analyses as recipes, one command each (`suite experiment NAME`).

    recipe    the TOML recipes (shipped in recipes/, or a user's file): load, check, override
    steps     checkpoints reused, resumed or trained; steps skipped when already done
    measures  the numbers a finding quotes, read from the result files just written
    findings  measured numbers + the paper's claim + a verdict by the recipe's rule
    runner    each recipe's steps, figures and findings; writes experiment-<name>.json
"""

from suite.experiments.recipe import Recipe, load_recipe, recipe_names, recipe_text
from suite.experiments.runner import ExperimentRun, run_experiment

__all__ = ["ExperimentRun", "Recipe", "load_recipe", "recipe_names", "recipe_text", "run_experiment"]
