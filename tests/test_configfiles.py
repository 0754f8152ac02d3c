import pytest

from lmmflow.configfiles import DuplicateKeyError, check_duplicate_keys, duplicate_keys


def test_repeated_keys_are_named_with_both_lines(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("models:\n  a: {dataset: d}\n  b: {dataset: d}\n  a: {dataset: e}\nseeds: [1, {x: 1, x: 2}]\n")
    assert duplicate_keys(path) == [
        "config.yaml line 4: 'models.a' (first given at line 2)",
        "config.yaml line 5: 'seeds.1.x' (first given at line 5)",
    ]
    with pytest.raises(DuplicateKeyError, match="'models.a'"):
        check_duplicate_keys([path])


def test_equal_keys_in_different_mappings_are_fine(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("a: {x: 1}\nb: {x: 2}\n")
    assert duplicate_keys(path) == []
    check_duplicate_keys([path])
