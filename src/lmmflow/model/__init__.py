"""Model specification: lme4 formulas read as R reads them, and the design matrices they give."""
