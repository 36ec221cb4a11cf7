"""The fused CPU LIF kernel (lif_kernel.c): compiled on first use with the system C compiler,
cached on disk, called through ctypes.

Why: on CPU the LIF recurrence written as PyTorch ops costs ~6 memory passes per time step
forward and ~8 per tensor backward; the kernel does one pass each way. In
benchmarks/train_speed.py (ResNet-20, T=4, one thread) that cut the LIF from 145-165 to
60-80 ms of a 750-1000 ms training step and brought the step to 0.99-1.06x the ANN twin's
step times T, on one or two threads (numbers in benchmarks/README.md).

When it is used: float32, CPU, contiguous tensors, and a surrogate from the table below.
Everything else (CUDA, float64, a hand-made spike function) runs the PyTorch path, which is
the reference the kernel is tested against. Without a C compiler, or if the build fails, the
suite warns once and runs the PyTorch path; results are the same, only slower. Threads:
OpenMP, on the libgomp PyTorch has loaded (so on its thread pool); a compiler without
OpenMP gives a single-threaded kernel.

Environment: SUITE_LIF_KERNEL=0 turns the kernel off; CC names the compiler (default `cc`);
the shared library goes to $SUITE_CACHE or $XDG_CACHE_HOME/suite or ~/.cache/suite, named
by a hash of the source, flags and compiler, so an edited source is rebuilt.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import warnings
from pathlib import Path

import torch

from suite.errors import SuiteError
from suite.files import atomic_path

SOURCE = Path(__file__).with_name("lif_kernel.c")
FLAGS = ["-O3", "-shared", "-fPIC", "-ffp-contract=off", "-fno-fast-math"]
OPENMP = "-fopenmp"  # without it (e.g. Apple clang) the kernel builds single-threaded
KEEP = {None: 0, "v": 1, "u": 2}
# the surrogate derivatives the kernel knows (the enum in lif_kernel.c)
CODES = {"atan": 0, "fast_sigmoid": 1, "sigmoid": 2, "triangular": 3, "ste": 4, "spike_rate_escape": 5}
KernelSpec = tuple[int, float, float]  # spec(...): a surrogate derivative with its parameters
MIN_PER_THREAD = 1 << 15  # elements per thread below which a thread costs more than it saves
_switched_off = False


def cache_dir() -> Path:
    root = os.environ.get("SUITE_CACHE") or os.environ.get("XDG_CACHE_HOME")
    return Path(root) / "suite" if root else Path.home() / ".cache" / "suite"


COMPILE_TIMEOUT_S = 120  # a compiler stuck this long is given up on; the LIF then runs on PyTorch ops


def _build(cc: str) -> Path:
    """Compile SOURCE into the cache, with OpenMP if the compiler has it."""
    try:
        return _compile(cc, [*FLAGS, OPENMP])
    except subprocess.CalledProcessError:
        return _compile(cc, FLAGS)


def _compile(cc: str, flags: list[str]) -> Path:
    """One build, named by what went into it; written atomically (parallel builders cannot
    see half a file)."""
    key = hashlib.sha256(b"\0".join([SOURCE.read_bytes(), " ".join(flags).encode(), cc.encode(),
                                     platform.machine().encode()])).hexdigest()[:16]
    out = cache_dir() / f"lif_kernel-{key}.so"
    if out.exists():
        return out
    with atomic_path(out) as tmp:  # readable by whoever shares the cache, as the umask allows
        subprocess.run([cc, *flags, str(SOURCE), "-o", str(tmp), "-lm"], check=True, capture_output=True,
                       text=True, timeout=COMPILE_TIMEOUT_S)
    return out


@functools.cache
def library() -> ctypes.CDLL | None:
    """The loaded kernel, or None (switched off, no compiler, or a failed build: warned once)."""
    if os.environ.get("SUITE_LIF_KERNEL", "1") == "0":
        return None
    cc = shutil.which(os.environ.get("CC", "cc"))
    try:
        if cc is None:
            raise OSError(f"no C compiler ({os.environ.get('CC', 'cc')!r} not found)")
        lib = ctypes.CDLL(str(_build(cc)))
    except (OSError, subprocess.SubprocessError, SuiteError) as e:
        detail = getattr(e, "stderr", None) or str(e)
        warnings.warn(f"fused LIF kernel unavailable, using the slower PyTorch path: "
                      f"{detail.strip().splitlines()[0] if detail.strip() else type(e).__name__}",
                      RuntimeWarning, stacklevel=2)
        return None
    ptr, i64, f32, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_int
    lib.lif_forward.argtypes = [ptr, ptr, ptr, i32, i64, i64, f32, f32, i32]
    lib.lif_backward.argtypes = [ptr, ptr, ptr, i32, i64, i64, f32, f32, i32, f32, f32, i32]
    lib.lif_forward.restype = lib.lif_backward.restype = None
    return lib


@contextlib.contextmanager
def switched_off():
    """Run LIF layers on the PyTorch path inside this block (benchmarks compare the two)."""
    global _switched_off
    before, _switched_off = _switched_off, True
    try:
        yield
    finally:
        _switched_off = before


def usable(*tensors: torch.Tensor) -> bool:
    """True if the kernel is loaded and can take these tensors as they are."""
    if _switched_off or not all(t.device.type == "cpu" and t.dtype == torch.float32 and t.is_contiguous()
                                for t in tensors):
        return False
    return library() is not None


def _threads(numel: int) -> int:
    return max(1, min(torch.get_num_threads(), numel // MIN_PER_THREAD))


def forward(xs: torch.Tensor, beta: float, threshold: float, keep: str | None):
    """`neurons._scan` in one pass: spikes [T, N...] and the kept tensor (v, u or None)."""
    spikes = torch.empty_like(xs)
    kept = torch.empty_like(xs) if keep is not None else None
    T = xs.shape[0]
    library().lif_forward(xs.data_ptr(), spikes.data_ptr(), kept.data_ptr() if kept is not None else None,
                          KEEP[keep], T, xs.numel() // T, beta, threshold, _threads(xs.numel()))
    return spikes, kept


def spec(name: str, p1: float = 0.0, p2: float = 0.0) -> KernelSpec:
    """How `backward` is told which surrogate derivative to use, with its parameters."""
    return CODES[name], p1, p2


def backward(kept: torch.Tensor, grad_spikes: torch.Tensor, beta: float, threshold: float,
             detach_reset: bool, surrogate: KernelSpec) -> torch.Tensor:
    """`LIFScan.backward` in one pass: dL/dx from the kept tensor and dL/ds, both [T, N...]."""
    code, p1, p2 = surrogate
    grad_x = torch.empty_like(kept)
    T = kept.shape[0]
    library().lif_backward(kept.data_ptr(), grad_spikes.data_ptr(), grad_x.data_ptr(), int(detach_reset),
                           T, kept.numel() // T, beta, threshold, code, p1, p2, _threads(kept.numel()))
    return grad_x
