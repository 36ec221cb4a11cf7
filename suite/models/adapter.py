"""A network built elsewhere (spikingjelly, snntorch, plain PyTorch) behind the interface the twins
give, so attacks, CKA and reports never ask which framework made it (docs/design.md, "The model
interface"):

    kind         "snn" or "ann"
    timesteps    T for an SNN, None for an ANN
    cfg          num_classes, in_channels, input_size, and `to_dict()` for stores and results
    forward      suite inputs in [0, 1], static [B, C, H, W] or event frames [B, T, C, H, W], to
                 logits [T, B, classes] (SNN) or [B, classes] (ANN)
    layer_sets   named layer sets for `--layers @NAME`; `representation_layers`, `blocks`
    time_layouts how each module's output holds time, for CKA's hooks
    neuron_views its spiking neurons (suite.models.foreign), for the attacker's gradient modes

`ExternalModel` wraps the network without renaming it: its children are the network's children,
so a layer is named as in the network's own `named_modules()` ("layer1.0.sn1") and its
`state_dict()` has the network's keys. The network's own `forward` runs, between:
- the input: normalised as the model expects (inside, so attacks still see [0, 1]), laid out as
  it takes time: "TB" [T, B, ...] (spikingjelly multi-step), "BT" [B, T, ...], or "B" (the model
  takes [B, C, H, W] and loops over T itself, the snntorch tutorials' way; an ANN);
- the output: "TB", "BT" or "B" (already over time: it becomes [1, B, classes], whose mean
  over time is itself), the logits being item `output_index` of a tuple;
- its neurons' state, reset before and after every forward pass (this model's only);
- its neurons in training mode whenever a gradient is wanted, whatever the model's mode
  (suite.models.foreign), so that an attacker in eval mode (BatchNorm and Dropout frozen) still
  differentiates through them; without gradients they follow the model's mode.

At construction one forward pass on a blank batch (the probe) checks the output (a floating
tensor of the declared layout, batch, T and classes) and records how each module's output holds
time (`time_layouts`): "merged" [T*B, ...] (T-major), "TB", "BT", "steps" (T calls of [B, ...]) or
"once" ([B, ...] once: no time axis).
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import nn

from suite.errors import SuiteError
from suite.models.foreign import NeuronView, check_neurons, find_neurons
from suite.models.twin import Block, MeanLogits, mean_logits

LAYOUTS = ("TB", "BT", "B")
BLOCK_CLASSES = ("BasicBlock", "Bottleneck")  # torchvision's and spikingjelly's residual blocks


@dataclass(frozen=True)
class ExternalConfig:
    """How a foreign network meets the suite's inputs and outputs, and what it is (for stores,
    results and reports). Checked when built."""

    num_classes: int
    in_channels: int
    input_size: int
    kind: str | None = None  # None: "snn" where the network has spiking neurons, else "ann"
    timesteps: int | None = None  # T of an SNN
    input: str = "TB"
    output: str = "TB"
    output_index: int = 0
    mean: tuple[float, ...] = ()  # normalisation applied inside (empty: none)
    std: tuple[float, ...] = ()
    neurons: tuple[str, ...] = ()  # class names of a user's own spiking neurons
    blocks: tuple[str, ...] = ()  # module names or patterns of the blocks (default: BLOCK_CLASSES)
    source: dict[str, Any] = field(default_factory=dict, compare=False)  # factory, args, weights...

    def __post_init__(self) -> None:
        for name in ("input", "output"):
            if getattr(self, name) not in LAYOUTS:
                raise SuiteError(f"{name} = {getattr(self, name)!r}: choose one of {', '.join(LAYOUTS)} "
                                 f"(TB: [T, B, ...], BT: [B, T, ...], B: no time axis)")
        if self.kind not in (None, "snn", "ann"):
            raise SuiteError(f"kind = {self.kind!r}: choose snn or ann")
        if self.timesteps is not None and (not isinstance(self.timesteps, int) or self.timesteps < 1):
            raise SuiteError(f"timesteps = {self.timesteps!r}: a whole number >= 1")
        if len(self.mean) != len(self.std) or any(s <= 0 for s in self.std):
            raise SuiteError("normalisation needs as many std values as mean values, each > 0")
        for key in ("mean", "std", "neurons", "blocks"):
            object.__setattr__(self, key, tuple(getattr(self, key)))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        source = d.pop("source")
        return {**source, **{k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}}


class ExternalModel(nn.Module):
    """The interface of a suite model around a foreign network (module docstring)."""

    def __init__(self, net: nn.Module, cfg: ExternalConfig):
        super().__init__()
        for name, child in net.named_children():
            self.add_module(name, child)
        for name, p in net.named_parameters(recurse=False):
            self.register_parameter(name, p)
        for name, b in net.named_buffers(recurse=False):
            self.register_buffer(name, b)
        self.__dict__["net"] = net  # not a child: the network's children are this model's
        views = find_neurons(net, cfg.neurons)
        check_neurons(views)
        kind = cfg.kind or ("snn" if views else "ann")
        if kind == "snn" and not views:
            raise SuiteError(f"kind = snn, but the network has no spiking neuron the suite recognises "
                             f"(spikingjelly's nodes, snntorch's neurons; name your own class in `neurons`)")
        if kind == "snn" and cfg.timesteps is None:
            raise SuiteError("an SNN needs its number of time steps (timesteps)")
        if kind == "ann" and cfg.input != "B":
            raise SuiteError(f"an ANN takes [B, C, H, W] (input = \"B\"), not {cfg.input}")
        self.cfg, self.kind = replace(cfg, kind=kind), kind
        self.timesteps = cfg.timesteps if kind == "snn" else None
        self.__dict__["views"] = views
        if cfg.mean:
            self.register_buffer("_mean", torch.tensor(cfg.mean).view(1, -1, 1, 1), persistent=False)
            self.register_buffer("_std", torch.tensor(cfg.std).view(1, -1, 1, 1), persistent=False)
        self.time_layouts: dict[str, str] = {}
        self.eval()
        self._probe()

    # ------------------------------------------------------------------ the interface
    def neuron_views(self) -> list[NeuronView]:
        """The spiking neurons, as found in this model (a copy's views name the copy's modules)."""
        return find_neurons(self, self.cfg.neurons)

    def replace_module(self, name: str, module: nn.Module) -> None:
        """Put `module` where module `name` is, in the network that runs (an attacker's copy)."""
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(self.get_submodule(parent), child, module)
        else:  # a child of the network: this model's child too
            setattr(self.net, child, module)
            setattr(self, child, module)

    def surrogate_words(self) -> str:
        """The neurons' own surrogates, as far as they can be read (suite.models.foreign)."""
        return ", ".join(dict.fromkeys(v.surrogate_words() for v in self.neuron_views())) or "-"

    def train(self, mode: bool = True) -> "ExternalModel":
        super().train(mode)
        self.net.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-3] != self.cfg.in_channels:
            raise SuiteError(f"input has {x.shape[-3]} channels; the model expects {self.cfg.in_channels}")
        batch = x.shape[0]
        x = self._encode(x)
        views = find_neurons(self, self.cfg.neurons)
        # where a gradient is wanted the neurons run in training mode whatever the model's mode
        # (spikingjelly 0.0.0.0.14 fires graph-free in eval); elsewhere they follow the model,
        # whose eval path gives the same spikes faster
        for v in views:
            v.module.train(self.training or torch.is_grad_enabled())
        self.reset_state(views)
        try:
            out = self.net(x)
        finally:
            self.reset_state(views)
        return self._logits(out, batch)

    def reset_state(self, views: list[NeuronView] | None = None) -> None:
        """Clear every neuron's state (this model's only), and restart the per-step bookkeeping of
        an attacker's stand-ins (modules with `begin_forward`)."""
        for v in views if views is not None else find_neurons(self, self.cfg.neurons):
            v.reset()
        for m in self.modules():
            if m is not self and callable(getattr(m, "begin_forward", None)):
                m.begin_forward()

    def representation_layers(self) -> list[str]:
        return self.layer_sets()["default"]

    def blocks(self) -> list[Block]:
        """The residual blocks (BLOCK_CLASSES, or the config's `blocks`), each with its
        parametrised leaves and neurons in module order, ending with the block itself."""
        names = [n for n, _ in self.named_modules() if n]
        if self.cfg.blocks:
            chosen = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in self.cfg.blocks)]
        else:
            chosen = [n for n, m in self.named_modules() if n and type(m).__name__ in BLOCK_CLASSES]
        neurons = {v.name for v in self.neuron_views()}
        out = []
        for b in chosen:
            inside = [n for n in names if n.startswith(b + ".") and (n in neurons or _param_leaf(self.get_submodule(n)))]
            out.append(Block(b, (*inside, b)))
        return out

    def layer_sets(self) -> dict[str, list[str]]:
        """default (the blocks' outputs, else the neurons', else every parametrised leaf; then the
        classifier), blocks, neurons (every spiking neuron's output), params (every leaf with
        parameters) and all (every named module)."""
        params = [n for n, m in self.named_modules() if n and _param_leaf(m)]
        neurons = [v.name for v in self.neuron_views()]
        blocks = [b.name for b in self.blocks()]
        head = params[-1:] if params else []
        base = blocks or neurons or params
        default = base + [h for h in head if h not in base]
        return {"default": default, "blocks": blocks, "neurons": neurons, "params": params,
                "all": [n for n, _ in self.named_modules() if n]}

    # ------------------------------------------------------------------ inputs and outputs
    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """Suite input -> what the network takes (module docstring)."""
        event = x.dim() == 5
        if x.dim() not in (4, 5):
            raise SuiteError(f"expected input [B, C, H, W] or [B, T, C, H, W], got {list(x.shape)}")
        if self.kind == "ann" and event:
            x = x.mean(dim=1)  # an ANN sees the frames averaged over time, as the twins do
            event = False
        if event and x.shape[1] != self.timesteps:
            raise SuiteError(f"input has {x.shape[1]} time bins but the model runs T={self.timesteps}")
        if hasattr(self, "_mean"):
            x = (x - self._mean.unsqueeze(1) if event else x - self._mean) / (self._std.unsqueeze(1) if event else self._std)
        layout = self.cfg.input
        if layout == "B":
            if event:
                raise SuiteError("a model that takes [B, C, H, W] (input = \"B\") cannot read event frames; "
                                 "declare input = \"TB\" or \"BT\"")
            return x
        if not event:
            x = x.unsqueeze(1).expand(x.shape[0], self.timesteps, *x.shape[1:])  # [B, T, ...]: direct encoding
        return x.transpose(0, 1).contiguous() if layout == "TB" else x.contiguous()

    def _logits(self, out, batch: int) -> torch.Tensor:
        """The network's output -> [T, B, classes] (SNN) or [B, classes] (ANN); SuiteError when it
        is not logits of this model's batch, T and classes."""
        if isinstance(out, (tuple, list)):
            if not 0 <= self.cfg.output_index < len(out):
                raise SuiteError(f"the model's output is a {type(out).__name__} of {len(out)} items; "
                                 f"output_index = {self.cfg.output_index} is not one of them")
            out = out[self.cfg.output_index]
        elif self.cfg.output_index != 0:
            raise SuiteError(f"output_index = {self.cfg.output_index}, but the model's output is one "
                             f"{type(out).__name__}, not a tuple")
        if not isinstance(out, torch.Tensor) or not out.is_floating_point():
            what = type(out).__name__ if not isinstance(out, torch.Tensor) else f"a {out.dtype} tensor"
            raise SuiteError(f"the model's output is {what}, not logits (a floating tensor)")
        layout = self.cfg.output if self.kind == "snn" else "B"
        want = {"TB": (self.timesteps, batch), "BT": (batch, self.timesteps), "B": (batch,)}[layout]
        steps = {"TB": 0, "BT": 1}.get(layout)
        if steps is not None and out.dim() == 3 and out.shape[steps] != self.timesteps and \
                out.shape[1 - steps] == batch and out.shape[-1] == self.cfg.num_classes:
            raise SuiteError(f"the model's output runs {out.shape[steps]} time steps, but timesteps = "
                             f"{self.timesteps} (output = {layout!r}: [{'T, B' if steps == 0 else 'B, T'}, classes])")
        if out.dim() != len(want) + 1 or tuple(out.shape[:-1]) != want or out.shape[-1] != self.cfg.num_classes:
            names = {"TB": "[T, B, classes]", "BT": "[B, T, classes]", "B": "[B, classes]"}[layout]
            raise SuiteError(f"the model's output has shape {list(out.shape)}, not logits {names} = "
                             f"{[*want, self.cfg.num_classes]} (output = {layout!r}, T = {self.timesteps}, "
                             f"{self.cfg.num_classes} classes)")
        if self.kind == "ann":
            return out
        if layout == "BT":
            return out.transpose(0, 1)
        return out.unsqueeze(0) if layout == "B" else out

    # ------------------------------------------------------------------ the probe
    @torch.no_grad()
    def _probe(self) -> None:
        """One forward pass on a blank batch: checks the output and records `time_layouts`."""
        T = self.timesteps
        b = 2 if T != 2 else 3  # a batch of another size than T tells [T, B] from [B, T]
        calls: dict[str, list[tuple[int, ...]]] = {}
        hooks = []
        for name, m in self.named_modules():
            if name:
                hooks.append(m.register_forward_hook(
                    lambda mod, i, o, name=name: calls.setdefault(name, []).append(_shape(o))))
        x = torch.zeros(b, self.cfg.in_channels, self.cfg.input_size, self.cfg.input_size,
                        device=next(self.parameters(), torch.zeros(())).device)
        try:
            self(x)
        except SuiteError:
            raise
        except Exception as exc:  # the network's own failure on an input of the declared shape
            raise SuiteError(f"the model fails on an input of shape {list(x.shape)} laid out as "
                             f"{self.cfg.input!r}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
        finally:
            for h in hooks:
                h.remove()
        self.time_layouts = {name: _layout(shapes, b, T, self.cfg.input) for name, shapes in calls.items()}


def _param_leaf(m: nn.Module) -> bool:
    return not any(True for _ in m.children()) and any(True for _ in m.parameters(recurse=False))


def _shape(out) -> tuple[int, ...]:
    if isinstance(out, (tuple, list)):
        out = next((o for o in out if isinstance(o, torch.Tensor)), None)
    return tuple(out.shape) if isinstance(out, torch.Tensor) else ()


def _layout(shapes: list[tuple[int, ...]], b: int, T: int | None, model_input: str) -> str:
    """How one module's outputs in the probe hold time (module docstring); "?" when unclear."""
    if T is None:
        return "once" if len(shapes) == 1 else "?"
    if len(shapes) == T and all(s[:1] == (b,) for s in shapes) and T > 1:
        return "steps"
    if len(shapes) != 1 or not shapes[0]:
        return "?"
    s = shapes[0]
    if s[0] == T * b and T > 1:
        return "merged"
    if s[:2] == (T, b):
        return "TB"
    if s[:2] == (b, T) and model_input == "BT":
        return "BT"
    return "once" if s[0] == b else "?"


def adapt(net: nn.Module, *, num_classes: int, in_channels: int, input_size: int, timesteps: int | None = None,
          kind: str | None = None, input: str | None = None, output: str | None = None, output_index: int = 0,
          mean: tuple[float, ...] = (), std: tuple[float, ...] = (), neurons: tuple[str, ...] = (),
          blocks: tuple[str, ...] = ()) -> ExternalModel:
    """A network in hand as a suite model (module docstring): `suite.attacks.run_attacks`,
    `suite.cka.compare_models` and the rest take it. Layouts default to "TB" for an SNN (a
    `timesteps` given) and "B" for an ANN."""
    snn = timesteps is not None
    cfg = ExternalConfig(num_classes=num_classes, in_channels=in_channels, input_size=input_size, kind=kind,
                         timesteps=timesteps, input=input or ("TB" if snn else "B"),
                         output=output or ("TB" if snn else "B"), output_index=output_index, mean=tuple(mean),
                         std=tuple(std), neurons=tuple(neurons), blocks=tuple(blocks),
                         source={"framework": framework_words(net, neurons), "class": type(net).__name__})
    return ExternalModel(net, cfg)


def framework_words(net: nn.Module, neurons: tuple[str, ...] = ()) -> str:
    """Which framework's neurons a network holds: "spikingjelly", "snntorch", "user", or "pytorch"."""
    found = sorted({v.framework for v in find_neurons(net, tuple(neurons))})
    return "+".join(found) if found else "pytorch"


__all__ = ["ExternalConfig", "ExternalModel", "MeanLogits", "adapt", "mean_logits"]
