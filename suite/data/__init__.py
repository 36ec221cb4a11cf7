"""Datasets: registry, static loaders, Tonic event loaders, frame caching, saccade simulator."""

from suite.data import static  # noqa: F401  (registers digits, cifar10, cifar100, caltech101)
from suite.data import event_datasets  # noqa: F401  (registers cifar10dvs, nmnist, ncaltech101, <static>-dvs)
from suite.data.registry import (DataSpec, DatasetInfo, get_dataset_info, list_datasets,
                                 load_dataset)

__all__ = ["DataSpec", "DatasetInfo", "get_dataset_info", "list_datasets", "load_dataset"]
