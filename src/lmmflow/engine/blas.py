"""Run dense factorizations on one BLAS thread.

OpenBLAS's worker threads spin while they wait. On a machine whose cores are busy with other
processes, a multithreaded Cholesky factorization of a dense block the size of InstEval's
(1,142 x 1,142) can take tens of times longer than on one thread (docs/benchmarks.md); one
thread also makes the rounding, hence every reported digit, independent of the number of cores. NumPy and SciPy each
bundle their own OpenBLAS and offer no call to set its threads, so the libraries already loaded
into the process are found in /proc/self/maps and their ``openblas_set_num_threads`` called
through ctypes (what threadpoolctl does, without the dependency). Where that is not possible
(another BLAS, another operating system) nothing changes.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

# Symbol names of OpenBLAS builds: plain, SciPy's wheels (prefix scipy_) and NumPy's 64-bit-integer one.
_PREFIXES = ("", "scipy_")
_SUFFIXES = ("", "64_")


@cache
def _thread_controls() -> tuple[tuple[object, object], ...]:
    """(get, set) thread-count functions of every OpenBLAS loaded into this process."""
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and ".so" in line})
    except OSError:
        return ()
    controls = []
    for path in paths:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                get = getattr(library, f"{prefix}openblas_get_num_threads{suffix}", None)
                set_ = getattr(library, f"{prefix}openblas_set_num_threads{suffix}", None)
                if get is not None and set_ is not None:
                    get.restype, set_.argtypes = ctypes.c_int, [ctypes.c_int]
                    controls.append((get, set_))
    return tuple(controls)


@contextmanager
def single_thread() -> Iterator[None]:
    """Within the block, every loaded OpenBLAS uses one thread; the previous counts are restored after."""
    controls = _thread_controls()
    previous = [get() for get, _ in controls]
    for _, set_ in controls:
        set_(1)
    try:
        yield
    finally:
        for (_, set_), count in zip(controls, previous):
            set_(count)
