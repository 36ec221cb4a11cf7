"""What a model is: the user's choices (`ModelSpec`) and those choices fitted to a dataset's
inputs and classes (`ModelConfig`, everything needed to rebuild the model; stored in checkpoints).

`ModelSpec` is the one place that checks the model options (--arch, --kind, --width,
--timesteps, --tau, --threshold, --surrogate, residual): a built spec is valid, and what
is built from it (the twin, its LIF layers) trusts it. `ModelConfig` adds what the data
decides (classes, input channels and side, the normalisation) and checks those.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from suite import defaults as D
from suite.errors import SuiteError
from suite.models.neurons import SURROGATES
from suite.models.archs import CONFIGS, DEPTHS
from suite.values import MAX_TIMESTEPS, check_bool, check_choice, check_real, check_whole

KINDS = ("snn", "ann")
ARCH_NAMES = (*(f"resnet{d}" for d in sorted(DEPTHS)), *(f"vgg{d}" for d in sorted(CONFIGS)))
# Domains of the numeric choices. Width: the narrowest stage (16 channels at width 1) keeps at
# least one channel, and 64x is far past any network here; T and tau: beyond these the runs
# are absurd (T: values.MAX_TIMESTEPS; tau >= 1 keeps the leak 1 - 1/tau in [0, 1)).
WIDTH_RANGE = (1 / 16, 64.0)
TAU_RANGE = (1.0, 1e6)
MAX_THRESHOLD = 1e3
MAX_CLASSES = 100_000
MAX_INPUT_SIZE = 4096


@dataclass(frozen=True)
class ModelSpec:
    """The model a user asks for; checked when built (SuiteError names the option)."""

    arch: str = D.ARCH
    kind: str = D.KIND  # "snn" or "ann"
    width: float = D.WIDTH
    residual: bool = D.RESIDUAL
    timesteps: int = D.TIMESTEPS
    tau: float = D.TAU
    threshold: float = D.THRESHOLD
    surrogate: str = D.SURROGATE

    def __post_init__(self) -> None:
        check_choice(self.arch, "architecture", ARCH_NAMES)
        check_choice(self.kind, "model kind", KINDS)
        check_real(self.width, "--width", *WIDTH_RANGE)
        check_bool(self.residual, "residual")
        check_whole(self.timesteps, "--timesteps", 1, MAX_TIMESTEPS)
        check_real(self.tau, "--tau", *TAU_RANGE)
        check_real(self.threshold, "--threshold", 0.0, MAX_THRESHOLD, lo_open=True)
        check_choice(self.surrogate, "surrogate", SURROGATES)


@dataclass(frozen=True)
class ModelConfig:
    """A `ModelSpec` fitted to a dataset: classes, input channels and side, and the per-channel
    normalisation the model applies inside (so attacks see raw [0, 1] inputs)."""

    spec: ModelSpec = field(default_factory=ModelSpec)
    num_classes: int = 10
    in_channels: int = 3
    input_size: int = 32
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)

    def __post_init__(self) -> None:
        if not isinstance(self.spec, ModelSpec):
            raise SuiteError(f"model config needs a ModelSpec, got {type(self.spec).__name__}")
        check_whole(self.num_classes, "number of classes", 2, MAX_CLASSES)
        check_whole(self.in_channels, "input channels", 1, 1024)
        check_whole(self.input_size, "input size", 1, MAX_INPUT_SIZE)
        object.__setattr__(self, "mean", tuple(self.mean))
        object.__setattr__(self, "std", tuple(self.std))
        for name, values, lo in (("mean", self.mean, -1e6), ("std", self.std, 0.0)):
            if len(values) not in (1, self.in_channels):
                raise SuiteError(f"normalisation has {len(values)} {name} values for {self.in_channels} "
                                 f"input channels")
            for v in values:
                check_real(v, f"normalisation {name}", lo, 1e6, lo_open=name == "std")

    def to_dict(self) -> dict:
        """The flat form stored in checkpoints and results: the spec's fields beside the data's."""
        d = {**asdict(self.spec), **{f.name: getattr(self, f.name) for f in fields(self) if f.name != "spec"}}
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """The inverse of `to_dict`; unknown fields are refused, missing ones take defaults."""
        spec_fields = {f.name for f in fields(ModelSpec)}
        own = {f.name for f in fields(cls)} - {"spec"}
        unknown = set(d) - spec_fields - own
        if unknown:
            raise SuiteError(f"model config has unknown fields {sorted(unknown)}")
        rest = {k: v for k, v in d.items() if k in own}
        for key in ("mean", "std"):
            if key in rest:
                rest[key] = tuple(float(v) for v in rest[key])
        return cls(spec=ModelSpec(**{k: v for k, v in d.items() if k in spec_fields}), **rest)
