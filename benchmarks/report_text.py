"""The report: a heading with the machine and the versions that were timed, then each section's lines."""

from __future__ import annotations

import os
import platform
import time


def report(quick: bool, sections: list[list[str]]) -> str:
    import numpy
    import scipy
    import statsmodels

    lines = [
        "# lmmflow benchmarks" + (" (--quick)" if quick else ""),
        "",
        f"{time.strftime('%Y-%m-%d %H:%M')} · {platform.node()} · {os.cpu_count()} CPUs · Python "
        f"{platform.python_version()} · numpy {numpy.__version__} · scipy {scipy.__version__} · "
        f"statsmodels {statsmodels.__version__}",
        "",
    ]
    for section in sections:
        lines += section
    return "\n".join(lines)
