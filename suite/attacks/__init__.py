"""Adversarial attacks on SNN/ANN twins: gradient modes, runs over a dataset, stores, sanity checks."""

from suite.attacks.checks import Check, all_passed, large_eps_check, store_checks
from suite.attacks.gradients import GRAD_MODES, RateLIF, attack_model, describe_gradient, input_gradient
from suite.attacks.run import (METHODS, AttackConfig, attack_checkpoint, craft, parse_alpha, parse_eps,
                               predict, run_attacks)
from suite.attacks.store import (AttackEntry, AttackStore, check_model, format_eps, read_store,
                                 rebuild_clean, verify_bounds, write_store)

__all__ = [
    "GRAD_MODES", "METHODS", "AttackConfig", "AttackEntry", "AttackStore", "Check", "RateLIF",
    "all_passed", "attack_checkpoint", "attack_model", "check_model", "craft", "describe_gradient",
    "format_eps", "input_gradient", "large_eps_check", "parse_alpha", "parse_eps", "predict",
    "read_store", "rebuild_clean", "run_attacks", "store_checks", "verify_bounds", "write_store",
]
