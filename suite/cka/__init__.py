"""CKA: U-centred minibatch linear CKA, feature capture by hooks, model/layer/time comparisons.
The results they write are a results format: suite.results.cka."""

from suite.cka.compare import Options, compare_layers, compare_models, compare_time
from suite.cka.core import MinibatchCKA, cka_matrix, rbf_cka_matrix
from suite.cka.features import capture, default_layers, extract_features, layer_names, resolve_layers

__all__ = [
    "MinibatchCKA", "Options", "capture", "cka_matrix", "compare_layers", "compare_models", "compare_time",
    "default_layers", "extract_features", "layer_names", "rbf_cka_matrix", "resolve_layers",
]
