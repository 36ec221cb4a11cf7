"""The settings of one training run, `TrainConfig`: the data (`DataSpec`), the model
(`ModelSpec`) and the optimisation (`Optimisation`), each checked once when built.

What `suite train`, the demo and `suite experiment` build, and what `train_one` takes. The
optimisation part is what a checkpoint stores as its training config (`asdict`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from suite import defaults as D
from suite.data import DataSpec, get_dataset_info
from suite.data.registry import MAX_SEED
from suite.errors import SuiteError
from suite.models import ModelConfig, ModelSpec
from suite.values import check_bool, check_real, check_whole

MAX_EPOCHS = 100_000
MAX_BATCH = 1 << 20
MAX_WORKERS = 256


@dataclass(frozen=True)
class Optimisation:
    """SGD with momentum and a cosine schedule; stored in checkpoints. Checked when built."""

    epochs: int = D.EPOCHS
    batch_size: int = D.BATCH_SIZE  # global: split evenly over the processes of a torchrun
    lr: float = D.LR
    momentum: float = D.MOMENTUM
    weight_decay: float = D.WEIGHT_DECAY
    seed: int = D.SEED
    tet: bool = False  # Temporal Efficient Training loss (Deng et al. 2022) for SNNs
    amp: bool = D.AMP  # mixed precision, on CUDA only: bfloat16 where supported, else float16
    workers: int = D.WORKERS
    sync_bn: bool = False  # under torchrun: BatchNorm statistics over the global batch (CUDA only)
    deterministic: bool = False  # deterministic kernels (exact resume on CUDA; slower there)

    def __post_init__(self) -> None:
        check_whole(self.epochs, "--epochs", 1, MAX_EPOCHS)
        check_whole(self.batch_size, "--batch-size", 1, MAX_BATCH)
        check_real(self.lr, "--lr", 0.0, 10.0, lo_open=True)
        check_real(self.momentum, "momentum", 0.0, 1.0)
        check_real(self.weight_decay, "weight decay", 0.0, 1.0)
        check_whole(self.seed, "--seed", 0, MAX_SEED)
        check_whole(self.workers, "--workers", 0, MAX_WORKERS)
        for name in ("tet", "amp", "sync_bn", "deterministic"):
            check_bool(getattr(self, name), name)

    def to_dict(self) -> dict:
        return asdict(self)


def train_data(dataset: str, model: ModelSpec, *, size: int | None = None, seed: int = D.SEED) -> DataSpec:
    """The data `model` trains on: `dataset` at `size` (None: its own) split by `seed`; event
    data binned into the model's T frames."""
    event = get_dataset_info(dataset).kind == "event"
    return DataSpec(dataset, size=size, timesteps=model.timesteps if event else None, seed=seed)


def fit_model(model: ModelSpec, data: DataSpec) -> ModelConfig:
    """`model` fitted to dataset `data`: its classes, input channels (2 polarities for event
    frames) and side, and the dataset's normalisation."""
    info = get_dataset_info(data.name)
    mean, std = info.normalisation
    channels = 2 if info.kind == "event" else data.channels
    return ModelConfig(spec=model, num_classes=info.num_classes, in_channels=channels, input_size=data.size,
                       mean=mean, std=std)


@dataclass(frozen=True)
class TrainConfig:
    """One training run: the data, the model and the optimisation, checked when built (each
    part checks its own options; this checks that they fit together). `model_config` is the
    model fitted to the data, what the checkpoint stores."""

    data: DataSpec = field(default_factory=lambda: DataSpec(D.DATASET))
    model: ModelSpec = field(default_factory=ModelSpec)
    optim: Optimisation = field(default_factory=Optimisation)
    model_config: ModelConfig = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name, kind in (("data", DataSpec), ("model", ModelSpec), ("optim", Optimisation)):
            if not isinstance(getattr(self, name), kind):
                raise SuiteError(f"TrainConfig.{name} must be a {kind.__name__}")
        if self.data.timesteps is not None and self.data.timesteps != self.model.timesteps:
            raise SuiteError(f"{self.data.name} frames have T={self.data.timesteps} bins; the model must use the "
                             f"same T, not {self.model.timesteps}")
        object.__setattr__(self, "model_config", fit_model(self.model, self.data))

    def run_name(self) -> str:
        """Checkpoint name from the settings, e.g. digits-resnet20-snn-T4-w0.5-s0."""
        m = self.model
        parts = [self.data.name, m.arch, m.kind] + ([f"T{m.timesteps}"] if m.kind == "snn" else [])
        parts += [f"w{m.width:g}"] + ([] if m.residual else ["nores"]) + [f"s{self.optim.seed}"]
        return "-".join(parts)

    def variant(self, *, dataset: str | None = None, epochs: int | None = None, seed: int | None = None,
                **model) -> "TrainConfig":
        """The same run with other model choices (`kind="ann"`, `timesteps=8`, ...), on another
        dataset at the same input size, for other epochs or with another seed (data split,
        initialisation and order); the data is fitted again (event data follows T)."""
        spec = replace(self.model, **model)
        seed = self.optim.seed if seed is None else seed
        data = train_data(dataset or self.data.name, spec, size=self.data.size, seed=seed)
        optim = replace(self.optim, epochs=self.optim.epochs if epochs is None else epochs, seed=seed)
        return TrainConfig(data=data, model=spec, optim=optim)
