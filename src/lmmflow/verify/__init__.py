"""Independent checks of a fit: the criterion re-evaluated by other code (sparse LU, statsmodels)."""
