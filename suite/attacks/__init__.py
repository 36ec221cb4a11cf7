"""Adversarial attacks on SNN/ANN twins: gradient modes (bptt, bptr, rga, hart, pdsg, assg,
transfer), methods (FGSM, PGD, APGD, FAB-T, Square, SA-PGD, AutoAttack, the SNN ensemble), runs
over a dataset with a worst case per sample, sanity checks and the masking verdict. The stores
they write are a results format: suite.results.attacks."""

from suite.attacks.checks import Check, all_passed, large_eps_check, masking_verdict, store_checks
from suite.attacks.gradients import GRAD_MODES, RateLIF, attack_model, describe_gradient, input_gradient
from suite.attacks.methods import METHODS, Budget, craft
from suite.attacks.run import attack_checkpoint, predict, run_attacks
from suite.attacks.settings import AttackConfig

__all__ = [
    "GRAD_MODES", "METHODS", "AttackConfig", "Budget", "Check", "RateLIF", "all_passed", "attack_checkpoint",
    "attack_model", "craft", "describe_gradient", "input_gradient", "large_eps_check", "masking_verdict",
    "predict", "run_attacks", "store_checks",
]
