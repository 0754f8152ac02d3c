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

from engine.glmm_reference import model_data, reference_models

from lmmflow.engine.glmm import glmer_with_design

FIXED_IN_SE = 0.01
SD_RELATIVE = 0.002
# lme4 warns "non-monotonic profile" for the correlation of contra_urban_slope and falls back to
# linear interpolation between its profile points: its bounds are 9e-4 off the exact roots (whose
# zeta is checked to 1e-6 in the tests).
COR_ABSOLUTE = 0.005
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
    # glmer(use ~ age10 + I(age10^2) + urban + livch + (1 + urban | district), Contraception, binomial,
    #       control = glmerControl(tolPwrss = 1e-12)), age10 = age / 10: with lme4's default fit on
    #       age itself, confint stops with "profiling detected new, lower deviance"
    "contra_urban_slope": (
        [
            0.440282094196776,
            -0.945112219738386,
            0.365350444591479,
            -1.43804370068875,
            -0.153753915172926,
            -0.595548846085757,
            0.452132822825317,
            0.509841391646863,
            0.545597496027831,
            0.559576768501433,
        ],
        [
            0.850552472159351,
            -0.417528076969333,
            1.16339528434847,
            -0.7026629084639,
            0.214387275017924,
            -0.305403814182649,
            1.11375268114585,
            1.15874139322856,
            1.28698410179162,
            1.3070466966785,
        ],
    ),
    "speed_dating": (
        [
            1.5008555571429,
            -0.983173757768151,
            -0.165928731169891,
            0.167273331660104,
            0.472830698606335,
            0.0590317195745059,
            0.109223493713848,
        ],
        [
            1.80404113317636,
            -0.506455577761426,
            0.478736404811031,
            0.460575695468874,
            0.53140386095182,
            0.119991680789109,
            0.177400123314995,
        ],
    ),
    "verbagg_crossed": (
        [
            1.21305473418924,
            0.3693822852657,
            -0.600719182755687,
            0.0244840403619899,
            -0.0557806136977729,
            -1.58498616213669,
            -2.63723141412739,
            -1.48713206559672,
        ],
        [
            1.4827944796081,
            0.692599006703049,
            0.998166229861161,
            0.0905507780427865,
            0.698062734829763,
            -0.534016599233248,
            -1.5793733261053,
            -0.626715320142417,
        ],
    ),
    # the LOCATION SD's profile reaches zero before zeta = -1.96: lme4 and lmmflow report 0
    "grouseticks_pois": (
        [
            0.451484012037568,
            0.521278932662592,
            0,
            -0.0282240088288409,
            0.713088856301203,
            -1.50239867616201,
            -0.030756357278247,
        ],
        [
            0.645185300215248,
            1.0569667098356,
            0.892876066701872,
            0.748577836546704,
            1.65836937220354,
            -0.460627788696933,
            -0.016938541461319,
        ],
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
    "contra_urban_slope": 602.717,
    "verbagg_crossed": 882.067,
    "grouseticks_pois": 40.615,
}

# Models beyond the reference files: key -> (the reference model whose data they use, formula).
FORMULAS = {
    "contra_urban_slope": ("contra_district", "use ~ age10 + I(age10^2) + urban + livch + (1 + urban | district)"),
}


def model_fit(key: str):
    """(GLMMDesign, GLMMFit) of the reference model ``key``, or of a model of ``FORMULAS`` on its
    reference model's data."""
    base, formula = FORMULAS.get(key, (key, None))
    model = reference_models()[base]
    data = (
        model_data(base).assign(age10=lambda frame: frame["age"] / 10)
        if base.startswith("contra")
        else model_data(base)
    )
    return glmer_with_design(
        formula or model["formula"], data, family=model["family"], nAGQ=model["nAGQ"], verify=False
    )
