"""Evaluation loaders: a seeded, reproducible subset of a split, yielding (x, label, index)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, SequentialSampler, Subset

from suite import distributed
from suite.data.registry import DataSpec, load_dataset
from suite.data.static import IndexedDataset
from suite.errors import SuiteError


def subset_indices(n_total: int, samples: int | None, seed: int) -> list[int]:
    """`samples` distinct indices of range(n_total) drawn with `seed`, sorted; all if None."""
    if samples is None or samples >= n_total:
        return list(range(n_total))
    if samples < 1:
        raise SuiteError(f"--samples must be positive, got {samples}")
    gen = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(n_total, generator=gen)[:samples].tolist())


def indexed_subset(dataset: Dataset, indices: list[int]) -> Dataset:
    """Samples `indices` of `dataset`, each as (x, label, index in the full split)."""
    return Subset(IndexedDataset(dataset), indices)


def eval_loader(spec: DataSpec, root: str | Path, split: str = "test", samples: int | None = None,
                batch_size: int = 128, seed: int = 0, pin_memory: bool = False) -> DataLoader:
    """An ordered loader over a seeded subset of `split` (no augmentation); `pin_memory` for
    a CUDA consumer (page-locked batches copy to the GPU without blocking)."""
    if batch_size < 1:
        raise SuiteError(f"--batch-size must be positive, got {batch_size}")
    dataset = load_dataset(spec, root, split)
    return DataLoader(indexed_subset(dataset, subset_indices(len(dataset), samples, seed)),
                      batch_size=batch_size, shuffle=False, pin_memory=pin_memory)


def shard_loader(loader: DataLoader) -> DataLoader:
    """This process's batches of an ordered loader under torchrun (the loader itself in one
    process): a contiguous block of whole batches (`distributed.shard`), each batch exactly
    the one a single process would see, so the processes together see every batch once."""
    if distributed.world_size() == 1:
        return loader
    if not isinstance(loader.sampler, SequentialSampler) or loader.batch_size is None or loader.drop_last:
        raise SuiteError("only an ordered loader with a fixed batch size and no drop_last can be shared "
                         "between processes")
    size, n = loader.batch_size, len(loader.dataset)
    mine = [i for start in distributed.shard(range(0, n, size)) for i in range(start, min(start + size, n))]
    return DataLoader(Subset(loader.dataset, mine), batch_size=size, shuffle=False,
                      num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                      pin_memory=loader.pin_memory)
