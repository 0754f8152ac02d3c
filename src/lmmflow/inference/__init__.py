"""Inference beyond the fit: Satterthwaite df, likelihood-ratio tests, AICc comparisons, intervals, shrinkage."""
