"""lme4's profile intervals of glmer fits, ``confint(m, method = "profile")`` (lme4 1.1-31,
R 4.2.2, on this machine), for the reference models (``../shared/reference/glmm/``) prepared as
their ``data_prep`` says (``engine.glmm_reference``), e.g.::

    m <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial)
    confint(m, method = "profile")

lme4 samples each profile at ~10-20 points and reads the bounds off an interpolating spline,
from fits that stop 2e-5 to 5e-4 short of the optimum. The tolerances are the issue's for the
fit itself: fixed effects within 1% of their SE, SDs within 0.2% relative (measured: at most
0.26% of an SE and 0.0054% of an SD).
"""

FIXED_IN_SE = 0.01
SD_RELATIVE = 0.002
Z = 1.959963984540054

# confint(m, method = "profile"): lower and upper per parameter, lme4's order (.sig01, ..., then beta)
LME4 = {
    "cbpp_herd": (
        [0.346073203325377, -1.90121195487134, -1.61678325565436, -1.80102436562705, -2.50075056300818],
        [1.09997464823781, -0.947754005963396, -0.407763067760264, -0.511536071274935, -0.800755315285063],
    ),
    "cbpp_herd_agq25": (
        [0.348801742668052, -1.90468405507669, -1.61608366037513, -1.80040817369001, -2.50019191790908],
        [1.11129746607699, -0.9462133522792, -0.406610820800073, -0.510449857048696, -0.799592024624283],
    ),
    "cbpp_pois_offset": (
        [0.224449282258425, -2.07796505453547, -1.42943816880637, -1.60216903405942, -2.28268931654735],
        [0.877882912128311, -1.28740604345048, -0.306467323229874, -0.394890802734764, -0.653797873357827],
    ),
    "contra_district": (
        [
            0.334192394629594,
            -1.38488516383553,
            -0.0147025072806277,
            -0.00600756860187949,
            0.460339945463714,
            0.49607143490682,
            0.552606636847063,
            0.550491754611915,
        ],
        [
            0.655171018181964,
            -0.693895827558695,
            0.0216940281645607,
            -0.00314334035967697,
            0.934529995826612,
            1.13666957824944,
            1.28405401836753,
            1.28578461372326,
        ],
    ),
    "speed_dating": (
        [1.50085556, -0.98317376, -0.16592873, 0.16727333, 0.47283070, 0.05903172, 0.10922349],
        [1.80404113, -0.50645558, 0.47873640, 0.46057570, 0.53140386, 0.11999168, 0.17740012],
    ),
}

# lme4's confint(m, method = "profile") wall seconds here (system.time elapsed, one run, while
# other work shared the 2-core machine): the anchors of benchmarks/run.py --glmm.
LME4_SECONDS = {
    "cbpp_herd": 5.005,
    "cbpp_herd_agq25": 5.897,
    "cbpp_pois_offset": 4.751,
    "contra_district": 120.822,
    "speed_dating": 257.311,
}
