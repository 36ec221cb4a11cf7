"""The work an experiment does, each piece done once: checkpoints found or trained, and
result-writing steps skipped when a previous run already wrote them from the same inputs.

Checkpoints: a model is reused from the models folder when a checkpoint there has the same
data spec, model config and training config (a `TrainConfig`'s; options added to the training
config since it was written count at their defaults) and finished all its
epochs; one with the same plan that stopped early is resumed from its last epoch;
otherwise the model is trained (named by its settings, with a short hash of the plan added
when another run already has that name).

Steps: a step (a CKA run, an attack) is keyed by its parameters and the SHA-256 of its input
files; `.steps.json` in the output folder records each finished step's key and files. A
rerun whose key matches and whose files still exist skips the step, so an interrupted
experiment resumes where it stopped, and a retrained checkpoint invalidates what used it.
"""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from suite.checkpoint import load_checkpoint
from suite.errors import SuiteError
from suite.files import atomic_path, ensure_out_dir
from suite.train import Optimisation, TrainConfig, train_one
from suite.train.jobs import SUFFIX
from suite.where import Where

LEDGER = ".steps.json"
# A finished checkpoint written before a training option existed ran with that option's
# default (options are added with defaults that keep the old behaviour), so for reuse its
# stored training config is read with today's defaults filled in.
_TRAIN_DEFAULTS = Optimisation().to_dict()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Workspace:
    """Where an experiment reads and writes (`where.out` its output folder, `models` the shared
    checkpoints), and what it has done so far."""

    where: Where
    models: Path
    log: Callable[[str], None] = lambda line: None
    trained: list[Path] = field(default_factory=list)  # checkpoints trained (or resumed) by this run
    files: dict[str, list[Path]] = field(default_factory=lambda: {"results": [], "figures": [], "checkpoints": []})
    seconds: dict[str, float] = field(default_factory=dict)  # where the time went: training, cka, attack, ...
    _plans: dict[tuple, tuple] = field(default_factory=dict)  # (path, mtime, size) -> plan (or None)
    _hashes: dict[tuple, str] = field(default_factory=dict)

    def __post_init__(self):
        ensure_out_dir(self.where.out)
        self.models = Path(self.models)

    @property
    def out(self) -> Path:
        return self.where.out

    def add(self, group: str, *paths: Path) -> None:
        for p in paths:
            if p not in self.files[group]:
                self.files[group].append(p)

    # ------------------------------------------------------------------------- checkpoints
    def _plan_of(self, path: Path):
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
        if key not in self._plans:
            try:
                ckpt = load_checkpoint(path)
                self._plans[key] = (ckpt.data_spec, ckpt.model_config, ckpt.train_config, ckpt.epoch)
            except SuiteError:
                self._plans[key] = None  # not a checkpoint of this suite: never a match
        return self._plans[key]

    def checkpoint(self, config: TrainConfig) -> Path:
        """A finished checkpoint of `config`: reused, resumed or trained (module docstring)."""
        cfg = config.optim
        want = (config.data, config.model_config, cfg.to_dict())
        finished = partial = None
        for path in sorted(self.models.glob(f"*{SUFFIX}")) if self.models.is_dir() else []:
            plan = self._plan_of(path)
            if plan is None or plan[:2] != want[:2]:
                continue
            if plan[3] >= cfg.epochs and {**_TRAIN_DEFAULTS, **plan[2]} == want[2]:
                finished = finished or path
            elif plan[3] < cfg.epochs and plan[2] == want[2]:  # resuming checks the config as stored
                partial = partial or path
        if finished is not None:
            self.log(f"reuse  {finished}")
            self.add("checkpoints", finished)
            return finished
        if partial is not None:
            self.log(f"resume {partial} (epoch {self._plan_of(partial)[3]} of {cfg.epochs})")
            name, resume = partial.stem, True
        else:
            name, resume = config.run_name(), False
            if (self.models / f"{name}{SUFFIX}").exists():  # taken by another run of that name
                digest = hashlib.sha256(json.dumps([want[0].to_dict(), want[1].to_dict(), want[2]],
                                                   sort_keys=True).encode()).hexdigest()[:8]
                name = f"{name}-{digest}"
            self.log(f"train  {self.models / (name + SUFFIX)}")
        with self.timed("training"):
            result = train_one(config, self.where.into(self.models), name=name, resume=resume)
        self.trained.append(result.checkpoint)
        self.add("checkpoints", result.checkpoint)
        return result.checkpoint

    @contextmanager
    def timed(self, what: str):
        """Add the block's wall time to `seconds[what]`."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[what] = self.seconds.get(what, 0.0) + time.perf_counter() - t0

    def untrained(self, config: TrainConfig) -> Path:
        """A checkpoint of `config`'s model as initialised by its seed, never trained (the noise
        floor's twin); kept in OUT/init, apart from the models folder, so no training run takes
        it for an interrupted one."""
        import torch

        from suite.checkpoint import save_checkpoint
        from suite.models import build_model

        path = self.out / "init" / f"{config.run_name()}-init{SUFFIX}"
        if not path.is_file():
            torch.manual_seed(config.optim.seed)
            model = build_model(config.model_config)
            save_checkpoint(path, config.model_config, config.data, config.optim.to_dict(), 0, [],
                            {"model": model.state_dict()})
        return path

    # ------------------------------------------------------------------------- steps
    def fingerprint(self, path: Path) -> str:
        st = Path(path).stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
        if key not in self._hashes:
            self._hashes[key] = _sha256(Path(path))
        return self._hashes[key]

    def _ledger(self) -> dict[str, Any]:
        path = self.out / LEDGER
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return {}  # a damaged ledger only costs recomputation
        return data if isinstance(data, dict) else {}

    def step(self, step_id: str, inputs: list[Path], params: dict[str, Any],
             run: Callable[[], list[Path]]) -> list[Path]:
        """The files of step `step_id`: from a previous run with the same key, else `run()`."""
        key = hashlib.sha256(json.dumps({"params": params, "inputs": [self.fingerprint(p) for p in inputs]},
                                        sort_keys=True, default=str).encode()).hexdigest()
        entry = self._ledger().get(step_id)
        if isinstance(entry, dict) and entry.get("key") == key:
            files = [self.out / f for f in entry.get("files", [])]
            if files and all(f.is_file() for f in files):
                self.log(f"reuse  {step_id}")
                return files
        self.log(f"run    {step_id}")
        with self.timed(step_id.split("-")[0]):  # cka kinds (models, layers, time, ...), attack, clean
            files = [Path(f) for f in run()]
        ledger = self._ledger()
        ledger[step_id] = {"key": key, "files": [f.resolve().relative_to(self.out.resolve()).as_posix()
                                                 for f in files]}
        with atomic_path(self.out / LEDGER) as tmp:
            tmp.write_text(json.dumps(ledger, indent=1, sort_keys=True), encoding="utf-8")
        return files
