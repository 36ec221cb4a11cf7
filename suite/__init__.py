"""suite: neuromorphic data, SNN/ANN twins, adversarial attacks and CKA analysis."""

__version__ = "0.1.0"
