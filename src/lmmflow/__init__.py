"""lmmflow: lme4-style linear mixed models fitted by REML on statsmodels, with lme4-identical tables."""

__version__ = "0.1.0"
