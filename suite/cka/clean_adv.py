"""Clean-vs-adversarial CKA: how far an attack moves each layer's representation.

For each eps of an attack store, the model sees the clean inputs and, paired sample by
sample, the adversarial ones; CKA compares every layer on clean inputs with every layer on
adversarial inputs. The diagonal (same layer, clean vs adversarial) is the headline: 1 means
the attack left the layer's representation geometry intact, lower means it moved it. At
eps 0 the adversarial inputs are the clean ones, so the diagonal is exactly 1.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from suite.results.attacks import AttackStore, format_eps
from suite.cka.compare import Options, compare_models, relabel
from suite.cka.features import LayerSpec
from suite.data.loaders import shard_loader
from suite.results.cka import CKAResult
from suite.errors import SuiteError


def choose_method(store: AttackStore, method: str | None = None) -> str:
    """The store's attack to compare: `method`, which it must hold, or its only one."""
    methods = store.methods
    if method is None:
        if len(methods) > 1:
            raise SuiteError(f"the store holds several methods ({', '.join(methods)}); choose one")
        return methods[0]
    if method not in methods:
        raise SuiteError(f"the store has no {method} attack; it holds: {', '.join(methods)}")
    return method


def clean_vs_adv(model: nn.Module, store: AttackStore, method: str | None = None, clean: Tensor | None = None,
                 layers: LayerSpec = None, time: str = "mean", batch_size: int = 64,
                 stream: Options = Options()) -> dict[float, CKAResult]:
    """eps -> CKA [L, L] between `model`'s layers on clean and on adversarial inputs.

    `method` picks one of the store's methods (needed when it holds several). `clean`
    replaces the stored clean inputs (e.g. `rebuild_clean(store, root)` for a store
    written without them). SNN and ANN alike; `time` as in `compare_models`.
    """
    method = choose_method(store, method)
    clean = clean if clean is not None else store.clean
    if clean is None:
        raise SuiteError("the store keeps no clean inputs; rebuild them with rebuild_clean(store, root)")
    if clean.shape[0] != store.n_samples:
        raise SuiteError(f"{clean.shape[0]} clean inputs for a store of {store.n_samples} samples")

    def loader(x: Tensor) -> DataLoader:  # under torchrun: this process's batches
        return shard_loader(DataLoader(TensorDataset(x), batch_size=batch_size, shuffle=False))

    results = {}
    for entry in store.for_method(method):
        result = relabel(compare_models(model, model, loader(clean), layers, layers, time=time,
                                        loader_b=loader(entry.adv), stream=stream), "clean-adv")
        result.config.update(method=method, eps=entry.eps, eps_label=format_eps(entry.eps, store.threat),
                             robust_acc=entry.robust_acc)
        results[entry.eps] = result
    return results
