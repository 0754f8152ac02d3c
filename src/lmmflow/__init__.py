"""lmmflow: linear mixed models fitted exactly as R's lme4, as a Python library
(``lmmflow.lmer``, ``lmmflow.glmer``, ``lmmflow.anova``) and as a Snakemake workflow built on it.

The library is loaded on first use of one of its names (``__getattr__``), so that ``import
lmmflow`` and the workflow's jobs, which import only the modules they use, stay light.
"""

__version__ = "0.1.0"
__all__ = ["FittedGLMM", "FittedModel", "anova", "glmer", "lmer"]


def __getattr__(name: str):
    if name in __all__:
        from lmmflow import api

        return getattr(api, name)
    raise AttributeError(f"module 'lmmflow' has no attribute {name!r}")
