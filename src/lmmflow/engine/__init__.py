"""Fitting engines: lme4's variance parameters, the profiled criterion, and the optimizers that minimise it."""
