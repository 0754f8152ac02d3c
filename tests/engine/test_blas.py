"""One BLAS thread inside single_thread(), the previous count restored after."""

import numpy as np
from scipy import linalg

from lmmflow.engine.blas import _thread_controls, single_thread


def test_thread_counts_are_one_inside_and_restored_after():
    linalg.cholesky(np.eye(3))  # SciPy's LAPACK is loaded
    controls = _thread_controls()
    assert controls, "no OpenBLAS found in /proc/self/maps: the wheels of NumPy and SciPy bundle one"
    before = [get() for get, _ in controls]
    with single_thread():
        assert [get() for get, _ in controls] == [1] * len(controls)
    assert [get() for get, _ in controls] == before
