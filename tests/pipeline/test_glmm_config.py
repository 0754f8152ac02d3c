"""Start-up checks of GLMMs in the configuration (lmmflow.pipeline.glmm_config), without Snakemake."""

import pytest
import yaml
from conftest import CONFIG_SCHEMA

from lmmflow.pipeline.config import ConfigError, validate
from lmmflow.pipeline.glmm_config import GLMMConfigError, check_glmm_models, glmm_models

SCHEMA = yaml.safe_load(CONFIG_SCHEMA.read_text())


def valid(config):
    validate(config, SCHEMA)
    return config


def refused(config) -> str:
    with pytest.raises(GLMMConfigError) as caught:
        check_glmm_models(valid(config))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_the_default_config_has_the_speed_dating_glmm_and_gaussian_models_by_default(config):
    valid(config)
    check_glmm_models(config)
    assert list(glmm_models(config)) == ["speed_dating"]
    assert config["models"]["gpa_mixed"]["family"] == "gaussian"


def test_an_unknown_family_is_refused_by_the_schema(config):
    config["models"]["speed_dating"]["family"] = "gamma"
    with pytest.raises(ConfigError, match=r"models\.speed_dating\.family"):
        valid(config)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"link": "log"}, r"models\.speed_dating\.link: 'log' is not a link of family 'binomial'"),
        ({"family": "poisson", "link": "probit"}, r"models\.speed_dating\.link: 'probit'"),
        ({"nAGQ": 25, "formula": "decision ~ sex + (1 | iid) + (1 | wave)"}, r"models\.speed_dating\.nAGQ: 25 needs"),
        ({"nAGQ": 9, "formula": "decision ~ sex + (1 + attractive_sc | iid)"}, r"single scalar random-effect term"),
        ({"engine": "statsmodels"}, r"models\.speed_dating\.engine"),
    ],
)
def test_bad_glmm_settings_are_named_in_one_line(config, changes, message):
    config["models"]["speed_dating"].update(changes)
    assert __import__("re").search(message, refused(config))


@pytest.mark.parametrize("formula", ["decision ~ sex + (1 | iid)", "decision ~ sex + (0 + attractive_sc | iid)"])
def test_nagq_above_one_is_allowed_for_one_scalar_term(config, formula):
    config["models"]["speed_dating"].update({"nAGQ": 25, "formula": formula})
    check_glmm_models(valid(config))


def test_link_and_nagq_need_a_family(config):
    config["models"]["gpa_mixed"]["link"] = "logit"
    assert "models.gpa_mixed.link" in refused(config)
    del config["models"]["gpa_mixed"]["link"]
    config["models"]["gpa_mixed"]["nAGQ"] = 5
    assert "models.gpa_mixed.nAGQ" in refused(config)


def test_glmms_get_profile_intervals_not_bootstrap_ones(config):
    config["intervals"]["models"] = ["sleep_slopes", "speed_dating"]
    check_glmm_models(valid(config))
    config["intervals"]["method"] = "both"
    assert "intervals.method: 'both' asks for bootstrap intervals of 'speed_dating'" in refused(config)


def test_models_of_different_families_are_not_compared(config):
    config["likelihood_ratio_tests"]["mixed"] = ["gpa_null", "speed_dating"]
    assert "likelihood_ratio_tests.mixed: models of different families" in refused(config)


def test_a_cbind_response_needs_the_binomial_family(config):
    config["models"]["gpa_mixed"]["formula"] = "cbind(gpa, 4 - gpa) ~ occasion + (1 | student)"
    assert "models.gpa_mixed.formula: a cbind(successes, failures) response needs family: binomial" in refused(config)
