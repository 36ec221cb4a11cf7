"""`suite attack` as a library call: run the attacks on a checkpoint, check them, write the store."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from suite import distributed
from suite.attacks.checks import Check, large_eps_check, store_checks
from suite.attacks.config import AttackConfig
from suite.attacks.gradients import check_grad_mode
from suite.attacks.run import attack_checkpoint
from suite.results.attacks import AttackStore, write_store
from suite.checkpoint import load_model
from suite.config import select_device
from suite.files import ensure_out_dir


@dataclass
class AttackRun:
    """A finished attack run: the store (already written to `path`) and its sanity checks."""

    store: AttackStore
    path: Path
    checks: list[Check]


def default_store_name(model: Path, config: AttackConfig) -> str:
    """<checkpoint>-<methods>-<grad>[-<attack surrogate>], e.g. digits-resnet20-snn-T4-w0.5-s0-pgd-bptt."""
    parts = [Path(model).stem, "-".join(config.methods), config.grad]
    if config.attack_surrogate:
        parts.append(config.attack_surrogate)
    return "-".join(parts)


def run_attack(*, model: Path, config: AttackConfig, source: Path | None = None, dataset: str | None = None,
               check: bool = False, device: str = "auto", data_root: Path = Path("datasets"),
               out: Path = Path("attacks"), name: str | None = None, show_progress: bool = True) -> AttackRun:
    """Attack `model` as `config` says, run the sanity checks, write the store atomically.

    Checks that always run: bounds, robust accuracy not rising with eps, PGD at least as
    strong as FGSM (when both ran). `check=True` adds PGD at eps 64/255 (>= 20 steps), which
    must leave under 10% correct, else gradient masking is reported in plain words.
    Under torchrun the processes share the batches (suite.attacks.run); rank 0 writes the store.
    """
    check_grad_mode(config.grad, config.attack_surrogate, has_source=source is not None)
    ensure_out_dir(out)
    dev = select_device(device)
    with distributed.session(dev):
        store = attack_checkpoint(str(model), config, data_root=str(data_root), device=dev,
                                  source_checkpoint=str(source) if source else None, progress=show_progress,
                                  dataset=dataset)
        checks = store_checks(store)
        if check:
            target = load_model(model, dev)[0]
            src = load_model(source, dev)[0] if source else None
            checks.append(large_eps_check(target, store, device=dev, source=src))
        store.config["checks"] = [asdict(c) for c in checks]
        path = Path(out) / f"{name or default_store_name(model, config)}.h5"
        distributed.broadcast_from_main(lambda: write_store(path, store))
    return AttackRun(store, path, checks)
