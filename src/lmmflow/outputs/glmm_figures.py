"""A binomial GLMM's figure of predicted probabilities (PNG and SVG, byte-identical on reruns):
(a) against its strongest numeric covariate, for a typical member of the grouping factor and
members at -+1 and -+2 SD of the random intercept; (b) the distribution of the members' own
probabilities at the reference (their conditional modes)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from scipy.special import expit

from lmmflow.outputs.figures import PALETTE, RC, plt, save_figure
from lmmflow.outputs.glmm_effects import INTERCEPT, intercept_sd, probability_curves, strongest_covariate


def predicted_probabilities(
    data: pd.DataFrame,
    fixed: pd.DataFrame,
    components: pd.DataFrame,
    random_effects: pd.DataFrame,
    *,
    model: str,
    png: str | os.PathLike,
    svg: str | os.PathLike,
) -> None:
    group, sd = intercept_sd(components)
    x = strongest_covariate(fixed, data)
    low, high = np.nanquantile(data[x].to_numpy(float), [0.01, 0.99])
    curves = probability_curves(fixed, sd, x, np.linspace(low, high, 101))
    b0 = float(fixed.loc[fixed["term"] == INTERCEPT, "value"].iloc[0])
    modes = random_effects[(random_effects["group_var"] == group) & (random_effects["effect"] == INTERCEPT)]
    with plt.rc_context(RC):
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
        left.fill_between(
            curves[x],
            curves["-2 SD"],
            curves["+2 SD"],
            color=PALETTE["sky_blue"],
            alpha=0.25,
            label=f"{group} at ±2 SD",
        )
        left.fill_between(
            curves[x], curves["-1 SD"], curves["+1 SD"], color=PALETTE["sky_blue"], alpha=0.5, label=f"{group} at ±1 SD"
        )
        left.plot(curves[x], curves["+0 SD"], color=PALETTE["blue"], linewidth=2.5, label=f"Typical {group}")
        left.set(xlabel=x, ylabel="Predicted probability", ylim=(0, 1), title=f"(a) Against {x}")
        left.legend(loc="upper left")
        right.hist(
            expit(b0 + modes["value"].to_numpy()),
            bins=np.linspace(0, 1, 26),
            color=PALETTE["blue"],
            alpha=0.8,
            edgecolor="white",
        )
        right.axvline(expit(b0), color=PALETTE["black"], linestyle="--", label="Typical (random intercept 0)")
        right.set(
            xlabel="Predicted probability at the reference",
            ylabel=f"Number of {group}",
            title=f"(b) Each {group}'s own probability",
        )
        right.legend(loc="upper right")
        fig.suptitle(f"{model}: predicted probabilities (other covariates at 0, reference levels)")
        save_figure(fig, png, svg)
