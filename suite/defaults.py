"""The default value of every command option, in one place.

The configs that check and hold the values (`train.settings.TrainConfig` and its parts,
`attacks.settings.AttackConfig`, `cka.settings.CKAConfig`) take their field defaults from here,
and so does the CLI's --help. No torch here, so --help and shell completion stay fast.
"""

from __future__ import annotations

# ----------------------------------------------------------------------------- training
DATASET = "digits"
ARCH = "resnet20"
KIND = "snn"  # "snn" (LIF neurons) or "ann" (its ReLU twin)
TIMESTEPS = 4  # SNN time steps; event data gets this many frame bins
WIDTH = 1.0  # channel width multiplier
RESIDUAL = True
SURROGATE = "atan"
TAU = 2.0  # LIF membrane time constant: leak 1 - 1/tau
THRESHOLD = 1.0  # LIF firing threshold
EPOCHS = 10
BATCH_SIZE = 64  # global: split evenly over the processes of a torchrun
LR = 0.1
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
SEED = 0
WORKERS = 0
AMP = True  # mixed precision, on CUDA only

# ----------------------------------------------------------------------------- attacks
# Without --method, the attack for the crafting model's kind: (method, gradient mode). The
# strongest single white-box attack measured on the demo's twins at a cost a first run on a CPU
# accepts (benchmarks/README.md, "The default attack"); not a number to quote alone.
ATTACK_DEFAULT = {"snn": ("sa-pgd", "assg"), "ann": ("apgd-ce", "bptt")}
EPS = "8/255"
ALPHA = "2/255"  # PGD step size
STEPS = 10  # PGD steps
ITERATIONS = 100  # AutoAttack standard: APGD-CE, APGD-T and FAB-T iterations
QUERIES = 5000  # AutoAttack standard: Square's query budget
THREAT = "frames"  # L-inf on the model's input; "events": event streams (suite.attacks.event_threat)
EVENT_BUDGETS = (0, 10, 50, 200)  # --threat events: events added plus removed per sample
EVENT_ATTACK_DEFAULT = "event-sparse"  # --threat events without --method: the greedy attack
GRAD = "bptt"  # the gradient mode of a named method (the default attack brings its own)
HART_GAMMA = 1.0  # --grad hart's retention: the reference's default width (hzc1208/HART_Attack, models/layers.py)
ASSG_SHARPNESS = 0.425  # --grad assg's A: the reference's default (craree/..., attack.py ASSG_SAPGD)
BUDGET = "standard"  # the ensemble's preset (quick: minutes on a CPU for the demo's models)
ATTACK_SAMPLES = 256  # the first N samples of the split
ATTACK_BATCH_SIZE = 64
SPLIT = "test"

# ----------------------------------------------------------------------------- CKA
# A seeded subset of 512 samples in minibatches of 128 (HSIC is averaged over minibatches;
# each costs n x n Grams per layer).
CKA_SAMPLES = 512
CKA_BATCH_SIZE = 128
CKA_TIME = "mean"  # SNN features over time: the firing rate
