"""The GLMM families and links lme4 (R's glm families) allows, by name: light enough for the
workflow's start-up checks (``lmmflow.pipeline.glmm_config``), which must not import scipy."""

CANONICAL = {"binomial": "logit", "poisson": "log"}
ALLOWED = {"binomial": ("logit", "probit", "cloglog"), "poisson": ("log",)}
