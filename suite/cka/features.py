"""Feature capture for CKA: forward hooks on named modules, time reduction for SNN layers.

Layers are named as in `model.named_modules()` ("layer2.1.conv1"). The default set is every
leaf module that has parameters (convolutions, linears, batch norms); a list of names or
shell-style patterns ("layer*.conv2"), or a callable `(name, module) -> bool`, picks others.

SNN convention: a suite SNN has `model.kind == "snn"` and `model.timesteps = T`; inside it
every module runs on the merged batch, so its output is [T*B, ...] in T-major order and
`out.view(T, B, *rest)` recovers [T, B, ...]. A module that is called once per time step
instead (T calls with [B, ...]) is stacked back to the same [T*B, ...]. A model from elsewhere
says how each module holds time (`time_layout`: [T, B, ...] and [B, T, ...] are merged the same
way; a module that runs once on [B, ...] has no time axis). Time reductions:

    time="mean"    firing rate over T            -> [B, D]
    time="concat"  time steps side by side       -> [B, T*D]
    time="each"    every time step its own entry -> T x [B, D], named "layer@t0", "layer@t1", ...

An ANN (`model.kind == "ann"`) or any module without `timesteps` gives [B, ...] flattened
to [B, D]; `time` does not apply to it.
"""

from __future__ import annotations

import difflib
import fnmatch
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence, Union

import torch
from torch import Tensor, nn

from suite.errors import SuiteError

TIME_MODES = ("mean", "concat", "each")
LayerSpec = Union[None, str, Sequence[str], Callable[[str, nn.Module], bool]]

_SHOW_NAMES = 12  # how many valid names an "unknown layer" message lists


def timesteps(model: nn.Module) -> int | None:
    """T for a suite SNN (`kind == "snn"` with `timesteps`), None for an ANN or generic module."""
    kind = getattr(model, "kind", None)
    T = getattr(model, "timesteps", None)
    if kind == "ann" or (kind is None and T is None):
        return None
    if not isinstance(T, int) or T < 1:
        raise SuiteError(f"SNN model has timesteps={T!r}; expected a positive integer")
    return T


def default_layers(model: nn.Module) -> list[str]:
    """The model's own `representation_layers()` when it has them (suite twins: block
    outputs); otherwise every leaf module with parameters (conv, linear, BN), in order."""
    if callable(getattr(model, "representation_layers", None)):
        return list(model.representation_layers())
    return [
        name for name, m in model.named_modules()
        if name and not any(True for _ in m.children()) and any(True for _ in m.parameters(recurse=False))
    ]


def _describe(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOW_NAMES])
    more = len(names) - _SHOW_NAMES
    return shown + (f", ... ({more} more)" if more > 0 else "")


def resolve_layers(model: nn.Module, layers: LayerSpec = None) -> list[str]:
    """Turn a layer spec into module names, checking each against `model.named_modules()`.

    None -> `default_layers`; a callable filters (name, module); a string is a comma-separated
    list; names may be shell patterns, and "@SET" names one of the model's `layer_sets()`
    (suite twins: @default, @blocks, @conv-lif, @all). Unknown names raise SuiteError listing valid ones.
    """
    valid = [name for name, _ in model.named_modules() if name]
    if layers is None:
        names = default_layers(model)
    elif callable(layers):
        names = [name for name, m in model.named_modules() if name and layers(name, m)]
    else:
        specs = [s.strip() for s in layers.split(",")] if isinstance(layers, str) else list(layers)
        names = []
        sets = model.layer_sets() if callable(getattr(model, "layer_sets", None)) else {}
        for spec in specs:
            if spec.startswith("@"):
                if spec[1:] not in sets:
                    raise SuiteError(f"unknown layer set {spec!r} of {type(model).__name__}; choose one of: "
                                     f"{', '.join('@' + k for k in sets) or 'none (it names no sets)'}")
                matches = list(sets[spec[1:]])
            elif spec in valid:
                matches = [spec]
            elif any(c in spec for c in "*?["):
                matches = fnmatch.filter(valid, spec)
            else:
                matches = []
            if not matches:
                close = difflib.get_close_matches(spec, valid, n=3)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise SuiteError(
                    f"unknown layer {spec!r} in {type(model).__name__}{hint}; "
                    f"valid layers: {_describe(valid)}"
                )
            names += [m for m in matches if m not in names]
    if not names:
        raise SuiteError(f"no layers selected in {type(model).__name__}; valid layers: {_describe(valid)}")
    return names


def layer_names(names: Sequence[str], T: int | None, time: str = "mean") -> list[str]:
    """Names of the CKA entries: `names`, or with time="each" on an SNN "name@t0", "name@t1", ..."""
    if time == "each" and T is not None:
        return [f"{name}@t{t}" for name in names for t in range(T)]
    return list(names)


def _first_tensor(out) -> Tensor:
    """A module's output, or the first tensor of a tuple/list output."""
    if isinstance(out, Tensor):
        return out
    if isinstance(out, (tuple, list)):
        for item in out:
            if isinstance(item, Tensor):
                return item
    raise SuiteError(f"module output of type {type(out).__name__} holds no tensor")


@contextmanager
def capture(model: nn.Module, names: Sequence[str]) -> Iterator[dict[str, list[Tensor]]]:
    """Record the outputs of the named modules while the block runs; hooks always come off.

    Yields a dict name -> list of outputs (one per call of that module, detached).
    """
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules or not n]
    if missing:
        resolve_layers(model, missing)  # raises the "unknown layer" error
    outputs: dict[str, list[Tensor]] = {name: [] for name in names}
    handles = []

    def hook(name):
        return lambda module, inputs, out: outputs[name].append(_first_tensor(out).detach())

    try:
        for name in names:
            handles.append(modules[name].register_forward_hook(hook(name)))
        yield outputs
    finally:
        for h in handles:
            h.remove()


def time_layout(model: nn.Module, name: str) -> str | None:
    """How module `name`'s output holds time, where the model says (a model from elsewhere:
    suite.models.adapter records it): "merged", "TB", "BT", "steps", "once" or "?"; None for a
    suite twin (merged, or T calls of [B, ...], told apart by the row count)."""
    layouts = getattr(model, "time_layouts", None)
    return layouts.get(name) if isinstance(layouts, dict) else None


def layer_time(model: nn.Module, names: Sequence[str], time: str) -> int | None:
    """T for the named layers of `model` (None: no time axis), refusing a layer whose output
    holds no time the suite can read: "once" (it runs once on [B, ...], e.g. after the model has
    averaged over time) with a --time other than mean, or "?" (an unknown layout)."""
    T = timesteps(model)
    if T is None:
        return None
    for name in names:
        layout = time_layout(model, name)
        if layout == "?":
            raise SuiteError(f"layer {name}'s output holds time in no layout the suite reads ([T*B, ...], "
                             f"[T, B, ...], [B, T, ...], or one call per time step); choose another layer")
        if layout == "once" and time != "mean":
            raise SuiteError(f"layer {name} runs once on [B, ...], with no time axis; --time {time} needs a "
                             f"layer inside the model's time steps (or use --time mean)")
    return T


def merged(y: Tensor, layout: str | None) -> Tensor:
    """One output in the twins' layout: [T, B, ...] and [B, T, ...] become [T*B, ...] (T-major)."""
    if layout == "TB":
        return y.flatten(0, 1)
    if layout == "BT":
        return y.transpose(0, 1).flatten(0, 1)
    return y


def check_time_mode(time: str) -> None:
    """The one check of a time reduction name (`--time`)."""
    if time not in TIME_MODES:
        raise SuiteError(f"unknown --time {time!r}; choose one of {', '.join(TIME_MODES)}")


def reduce_time(name: str, calls: list[Tensor], T: int | None, time: str = "mean") -> list[Tensor]:
    """One module's recorded outputs -> its CKA entries, each [B, D] (T entries for "each")."""
    check_time_mode(time)
    if not calls:
        raise SuiteError(f"layer {name} did not run in the forward pass")
    if len(calls) == 1:
        out = calls[0]
    elif T is not None and len(calls) == T:
        out = torch.cat(calls, dim=0)  # T calls of [B, ...] -> [T*B, ...], T-major
    else:
        raise SuiteError(
            f"layer {name} ran {len(calls)} times in one forward pass (a shared module?); "
            "its output is ambiguous, pick a module that runs once"
        )
    if T is None:
        return [out.flatten(1)]  # [B, D]
    if out.shape[0] % T:
        raise SuiteError(f"layer {name}: output of {out.shape[0]} rows is not T*B with T={T}")
    x = out.reshape(T, out.shape[0] // T, -1)  # [T, B, D]
    if time == "mean":
        return [x.mean(dim=0)]  # [B, D]
    if time == "concat":
        return [x.permute(1, 0, 2).reshape(x.shape[1], -1)]  # [B, T*D]
    return list(x.unbind(dim=0))  # T x [B, D]


@torch.no_grad()
def extract_entries(model: nn.Module, x, names: Sequence[str], time: str = "mean") -> dict[str, list[Tensor]]:
    """Run `model(x)` once: name -> its CKA entries, each [B, D] (T of them for time="each")."""
    T = layer_time(model, names, time)
    with capture(model, names) as outputs:
        model(x)
    return {name: reduce_time(name, [merged(y, time_layout(model, name)) for y in outputs[name]],
                              None if time_layout(model, name) == "once" else T, time) for name in names}


def extract_features(model: nn.Module, x, names: Sequence[str], time: str = "mean") -> list[Tensor]:
    """Run `model(x)` once and return the CKA entries of the named layers, each [B, D].

    With time="each" on an SNN the list has len(names) * T entries, ordered as `layer_names`.
    """
    entries = extract_entries(model, x, names, time)
    return [e for name in names for e in entries[name]]
