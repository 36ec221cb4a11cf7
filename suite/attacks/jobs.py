"""`suite attack` as a library call: run the attacks on a checkpoint, check them, write the store."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from suite import distributed
from suite.attacks.checks import Check, large_eps_check, masking_checks, masking_verdict, store_checks
from suite.attacks.gradients import check_source, is_snn
from suite.attacks.methods import METHODS
from suite.attacks.resume import Partial, PartialRun
from suite.attacks.run import attack_loaded
from suite.attacks.settings import AttackConfig
from suite.checkpoint import load_model
from suite.device import select_device
from suite.files import check_target, ensure_out_dir
from suite.results.attacks import AttackStore, write_store
from suite.values import check_file_name
from suite.where import Where


@dataclass
class AttackRun:
    """A finished attack run: the store (already written to `path`) and its sanity checks."""

    store: AttackStore
    path: Path
    checks: list[Check]


def default_store_name(model: Path, config: AttackConfig) -> str:
    """<checkpoint>-<methods>[-<grad>[-<attack surrogates>]], e.g. digits-resnet20-snn-T4-w0.5-s0-pgd-bptt.
    The gradient parts only where some method uses them: not for Square (gradient-free) or the
    ensemble (its members bring their own gradients, except under transfer)."""
    info = [METHODS[m] for m in config.methods]
    takes_grad = any(not i.gradient_free and (not i.own_gradients or config.grad == "transfer") for i in info)
    takes_surrogates = any(i.takes_surrogates for i in info)
    return "-".join([Path(model).stem, *config.methods, *([config.grad] if takes_grad else []),
                     *(config.attack_surrogates if takes_surrogates else ())])


def run_attack(model: Path, config: AttackConfig, where: Where, *, source: Path | None = None,
               dataset: str | None = None, check: bool = False, name: str | None = None,
               resume: bool = False) -> AttackRun:
    """Attack `model` as `config` says (no methods: the default attack for its kind,
    `AttackConfig.for_model`), run the sanity checks and the masking verdict, write the store
    atomically to WHERE.out/NAME.h5.

    Checks that always run: bounds, robust accuracy not rising with eps, PGD at least as
    strong as FGSM, and the masking checks the store allows (suite.attacks.checks).
    `check=True` adds PGD at eps 64/255 (>= 20 steps), which must leave under 10% correct.
    Finished batches are saved in OUT/NAME.partial/ until the store is written; `resume=True`
    continues an interrupted run from them (suite.attacks.resume). Under torchrun the
    processes share the batches (suite.attacks.run); rank 0 writes the store.
    """
    check_file_name(name)
    check_source(config.grad, source is not None)
    dev = select_device(where.device)
    target, ckpt = load_model(model, dev)
    src = load_model(source, dev)[0] if source else None
    config = config.for_model(is_snn(src if config.grad == "transfer" else target))  # the default attack
    ensure_out_dir(where.out)
    path = where.out / f"{name or default_store_name(model, config)}.h5"
    for file in (path, path.with_suffix(".png")):  # the store and its figure, refused before the work
        check_target(file)
    partial = Partial(path.with_suffix(".partial"), resume)
    with distributed.session(dev):
        store = attack_loaded(target, ckpt, config, replace(where, device=str(dev)), source=src,
                              source_checkpoint=source, dataset=dataset, partial=partial)
        checks = store_checks(store)
        if check:
            checks.append(large_eps_check(target, store, device=dev, source=src))
        transfer = config.grad == "transfer"
        verdict = masking_verdict(checks, transfer, store.threat)
        store.config["verdict"] = {"masking_suspected": None if verdict.passed is None else not verdict.passed,
                                   "message": verdict.message,
                                   "evidence": [c.name for c in masking_checks(checks, transfer) if not c.passed]}
        checks.append(verdict)
        store.config["checks"] = [{"name": c.name, **asdict(c)} for c in checks]

        def write() -> None:
            write_store(path, store)
            PartialRun.remove_folder(partial.folder)

        distributed.broadcast_from_main(write)
    return AttackRun(store, path, checks)
