"""lme4 1.1-31 and lmerTest numbers for models with offset() terms and prior weights, on
sleepstudy and gpa from /work/shared/data; the R calls are in tests/model/test_offset_weights.py."""

ORACLE = {
    "A": dict(
        formula="Reaction ~ Days + offset(z) + (Days | Subject)",
        data="sleep",
        weights="w",
        reml=True,
        logLik=-873.983760361273,
        beta=[249.28106449669170, 9.90036075653879],
        se=[6.87707501285115, 1.51556449763910],
        variances=[641.41836974562239, 33.95616016680287, 1203.35165852394948],  # (Int), Days, residual
        fitted=[254.409699113828, 273.118003762568, 452.957669346312],
        df=[17.1413379928752, 16.7400827089121],
    ),
    "B": dict(
        formula="Reaction ~ Days + offset(z) + (Days | Subject)",
        data="sleep",
        weights="w",
        reml=False,
        logLik=-878.123533528956,
        beta=[249.28457186494794, 9.89979107658163],
        se=[6.68399859966918, 1.47202608640601],
        variances=[594.33183758967061, 31.61660974289516, 1203.44897544882633],
        fitted=[254.764436150595, 273.387356874193, 452.815177313728],
    ),
    "C": dict(
        formula="gpa ~ occasion + sex + offset(0.1 * highgpa) + (1 | student)",
        data="gpa",
        weights="w2",
        reml=True,
        logLik=-228.017087305721,
        beta=[2.373982042993614, 0.105453061224491, -0.154328441198273],
        se=[0.02704921648236623, 0.00409179234329896, 0.03633389546057259],
        variances=[0.0550966807027944, 0.1025494330566646],
        fitted=[2.54271208991151, 2.64816515113600, 2.63242209606203],
        df=[269.836767463756, 1001.804112464166, 199.539610747114],
    ),
    "D": dict(  # crossed Subject x fDays: the blocked engine; singular (fDays variance 0)
        formula="Reaction ~ offset(log(Days + 1)) + Days + (1 | Subject) + (1 | fDays)",
        data="sleep",
        weights="w",
        reml=True,
        logLik=-894.505993401274,
        beta=[250.6571216376066, 10.1742279491936],
        se=[9.519277640260920, 0.770504708457426],
        variances=[1326.50737529676, 0.0, 1760.96580233767],
        fitted=[284.627422051813, 295.494797181566, 416.900595823769],
        df=[22.5482329983771, 161.0323601814158],
    ),
}
