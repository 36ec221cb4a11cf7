"""Running attacks over a dataset: config, torchattacks calls, predictions, an `AttackStore`.

Samples are the first N of the split (as RobustBench does), so runs with different N nest.
Every (method, eps) attacks the same clean batches; eps 0 is the clean pass (no attack call,
adversarial = clean). Determinism: before each torchattacks call the torch RNG is seeded
from (seed, method, eps, first index of the batch) inside `torch.random.fork_rng`, so the
same seed and batch size give the same examples (PGD's random start included) whatever else
ran before, and the caller's RNG state is left untouched.

torchattacks as used here: untargeted, inputs and outputs in [0, 1] (the twins normalise
inside, so `set_normalization_used` is not needed), model in eval mode during the attack
(its default `set_model_training_mode(False)`), device taken from the attacker's parameters.
FGSM: x + eps * sign(grad), clamped to [0, 1]. PGD: optional uniform start in the eps ball,
then `steps` times x + alpha * sign(grad), projected to the eps ball and [0, 1].
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
import torchattacks
from torch import Tensor, nn
from torch.utils.data import Dataset

from suite.attacks.gradients import attack_model, check_grad_mode, describe_gradient
from suite.results.attacks import AttackEntry, AttackStore, format_eps
from suite.config import parse_fraction, parse_fraction_list
from suite.errors import SuiteError
from suite.models import mean_logits
from suite.progress import progress_bar

# name -> factory(model, eps, config) of a torchattacks attack
METHODS: dict[str, Callable[[nn.Module, float, "AttackConfig"], torchattacks.Attack]] = {
    "fgsm": lambda model, eps, cfg: torchattacks.FGSM(model, eps=eps),
    "pgd": lambda model, eps, cfg: torchattacks.PGD(model, eps=eps, alpha=cfg.alpha, steps=cfg.steps,
                                                    random_start=cfg.random_start),
}


def parse_eps(text: str) -> tuple[float, ...]:
    """--eps "0,2/255,8/255" -> sorted unique floats in [0, 1]."""
    return tuple(sorted(set(parse_fraction_list(text, "eps"))))


def parse_alpha(text: str) -> float:
    """--alpha "2/255" -> float in (0, 1]."""
    alpha = parse_fraction(text, "alpha")
    if alpha <= 0:
        raise SuiteError(f"alpha {text!r} must be positive")
    return alpha


@dataclass(frozen=True)
class AttackConfig:
    """One attack run: methods x eps values on the first `samples` samples of `split`.

    Validated on construction (SuiteError). `methods`, `eps` and `alpha` also accept CLI
    text ("fgsm,pgd", "0,8/255", "2/255"); eps values are stored sorted and unique.
    """

    methods: tuple[str, ...] = ("pgd",)
    eps: tuple[float, ...] = (8 / 255,)
    alpha: float = 2 / 255  # PGD step size
    steps: int = 10  # PGD steps
    random_start: bool = True  # PGD starts at a uniform random point in the eps ball
    grad: str = "bptt"  # bptt | bptr | transfer (see suite.attacks.gradients)
    attack_surrogate: str | None = None  # bptt: the attacker's surrogate (None: the training one)
    samples: int | None = None  # first N samples of the split; None: all
    batch_size: int = 64
    seed: int = 0
    split: str = "test"

    def __post_init__(self):
        # normalise (frozen dataclass): CLI text parsed, methods unique in order, eps sorted unique
        methods = self.methods.split(",") if isinstance(self.methods, str) else self.methods
        eps = parse_eps(self.eps) if isinstance(self.eps, str) else self.eps
        object.__setattr__(self, "methods", tuple(dict.fromkeys(str(m).strip().lower() for m in methods)))
        object.__setattr__(self, "eps", tuple(sorted(set(float(e) for e in eps))))
        if isinstance(self.alpha, str):
            object.__setattr__(self, "alpha", parse_alpha(self.alpha))
        for m in self.methods:
            if m not in METHODS:
                raise SuiteError(f"unknown attack method {m!r}; choose one of: {', '.join(METHODS)}")
        if not self.methods or not self.eps:
            raise SuiteError("an attack needs at least one method and one eps")
        for e in self.eps:
            if not 0.0 <= e <= 1.0:
                raise SuiteError(f"eps {e:g} is outside [0, 1] (units of the [0, 1] input range)")
        if self.steps < 1:
            raise SuiteError(f"steps must be >= 1, got {self.steps}")
        if not 0.0 < self.alpha <= 1.0:
            raise SuiteError(f"alpha must be in (0, 1], got {self.alpha:g}")
        if "pgd" in self.methods and self.steps == 1:
            over = [e for e in self.eps if 0 < e < self.alpha]
            if over:
                raise SuiteError(
                    f"PGD with 1 step and alpha {format_eps(self.alpha)} > eps {format_eps(over[0])}: the "
                    f"step would be clipped back to eps; use alpha <= eps, more steps, or fgsm")
        if self.batch_size < 1:
            raise SuiteError(f"batch size must be >= 1, got {self.batch_size}")
        if self.samples is not None and self.samples < 1:
            raise SuiteError(f"samples must be >= 1, got {self.samples}")
        if self.split not in ("train", "test"):
            raise SuiteError(f"unknown split {self.split!r}; choose train or test")
        check_grad_mode(self.grad, self.attack_surrogate)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["methods"], d["eps"] = list(self.methods), list(self.eps)
        return d


def batch_seed(seed: int, method: str, eps: float, start: int) -> int:
    """The RNG seed of one torchattacks call: a stable hash of what identifies it."""
    return zlib.crc32(f"{seed}:{method}:{eps!r}:{start}".encode())


def craft(attacker: nn.Module, method: str, x: Tensor, y: Tensor, eps: float,
          config: AttackConfig, seed: int) -> Tensor:
    """Adversarial inputs for one batch (eps 0: a copy of x, no attack call)."""
    if eps == 0:
        return x.detach().clone()
    attack = METHODS[method](attacker, eps, config)
    devices = [x.device.index if x.device.index is not None else torch.cuda.current_device()] \
        if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return attack(x, y)


def _batch(dataset: Dataset, indices: range) -> tuple[Tensor, Tensor]:
    """Stack samples into x [B, ...] and labels [B]. (A DataLoader would draw from the global
    RNG for its worker seed even unshuffled; this keeps the caller's RNG untouched.)"""
    items = [dataset[i] for i in indices]
    x = torch.stack([torch.as_tensor(item[0], dtype=torch.float32) for item in items])
    return x, torch.tensor([int(item[1]) for item in items], dtype=torch.int64)


@torch.no_grad()
def predict(model: nn.Module, x: Tensor) -> Tensor:
    """Class predictions [B] from the time-averaged logits."""
    return mean_logits(model(x), model).argmax(dim=1)


def run_attacks(model: nn.Module, dataset: Dataset, config: AttackConfig,
                device: str | torch.device = "cpu", source: nn.Module | None = None,
                meta: dict[str, Any] | None = None, keep_clean: bool = True,
                progress: bool = False) -> AttackStore:
    """Attack the first `config.samples` samples of `dataset` with every method and eps.

    `model` is the evaluated target (moved to `device`, run in eval mode, restored after);
    `source` the crafting model for grad="transfer". `meta` (checkpoint path, data spec,
    split, ...) is added to the store's config. Returns the store, not yet written.
    """
    device = torch.device(device)
    n = len(dataset) if config.samples is None else config.samples
    if n > len(dataset):
        raise SuiteError(f"asked for {n} samples but the {config.split} split has {len(dataset)}")
    if n == 0:
        raise SuiteError(f"the {config.split} split is empty: nothing to attack")
    attacker = attack_model(model, config.grad, config.attack_surrogate, source).to(device)
    starts = range(0, n, config.batch_size)
    runs = [(m, e) for m in config.methods for e in config.eps]
    labels, clean_pred, cleans = [], [], []
    adv = {r: [] for r in runs}
    pred = {r: [] for r in runs}
    linf = {r: [] for r in runs}

    was_training = model.training
    model.to(device).eval()
    try:
        with progress_bar(progress) as bar:
            task = bar.add_task("attack", total=len(starts) * len(runs), info="")
            for start in starts:
                x, y = _batch(dataset, range(start, min(start + config.batch_size, n)))
                x, y = x.to(device), y.to(device)
                labels.append(y.cpu())
                clean_pred.append(predict(model, x).cpu())
                if keep_clean:
                    cleans.append(x.cpu())
                for method, eps in runs:
                    bar.update(task, info=f"{method} eps={format_eps(eps)}")
                    a = craft(attacker, method, x, y, eps, config, batch_seed(config.seed, method, eps, start))
                    adv[method, eps].append(a.cpu())
                    pred[method, eps].append(predict(model, a).cpu())
                    linf[method, eps].append((a - x).abs().flatten(1).amax(dim=1).cpu())
                    bar.advance(task)
    finally:
        model.train(was_training)

    labels_t = torch.cat(labels)
    entries = []
    for method, eps in runs:
        p = torch.cat(pred[method, eps])
        entries.append(AttackEntry(method=method, eps=eps, adv=torch.cat(adv[method, eps]), pred=p,
                                   linf=torch.cat(linf[method, eps]),
                                   robust_acc=float((p == labels_t).double().mean())))
    store_config = {
        "attack": config.to_dict(),
        "model": model.cfg.to_dict() if hasattr(model, "cfg") else None,
        "source_model": source.cfg.to_dict() if source is not None and hasattr(source, "cfg") else None,
        "gradient": describe_gradient(model, config.grad, config.attack_surrogate, source),
        "split": config.split, "n_samples": n, "device": str(device),
        **(meta or {}),
    }
    return AttackStore(indices=torch.arange(n, dtype=torch.int64), labels=labels_t,
                       clean_pred=torch.cat(clean_pred), entries=entries, config=store_config,
                       clean=torch.cat(cleans) if keep_clean else None)


def attack_checkpoint(checkpoint: str, config: AttackConfig, data_root: str = ".",
                      device: str | torch.device = "cpu", source_checkpoint: str | None = None,
                      keep_clean: bool = True, progress: bool = True, dataset: str | None = None) -> AttackStore:
    """Load a checkpoint (and a transfer source), its dataset split (or `dataset`, shaped to
    fit the model), and run the attacks."""
    from suite.checkpoint import load_model
    from suite.data import load_dataset, resolve_spec

    model, ckpt = load_model(checkpoint, device)
    source = load_model(source_checkpoint, device)[0] if source_checkpoint else None
    spec = ckpt.data_spec_for(dataset)
    data = load_dataset(spec, data_root, config.split)
    meta = {"checkpoint": str(checkpoint), "source_checkpoint": str(source_checkpoint) if source_checkpoint else None,
            "data": resolve_spec(spec).to_dict(), "data_root": str(data_root)}
    return run_attacks(model, data, config, device=device, source=source, meta=meta,
                       keep_clean=keep_clean, progress=progress)
