"""Prefect artifact keys made from user names are valid and unique."""

from tasks.artifacts import artifact_key, artifact_keys


def test_names_with_underscores_and_capitals_become_valid_keys():
    assert artifact_key("plot-groups-marital_status") == "plot-groups-marital-status"
    assert artifact_key("plot-groups-Sex x Race") == "plot-groups-sex-x-race"
    assert artifact_key("__") == "artifact"


def test_names_that_clean_to_one_key_stay_apart():
    keys = artifact_keys(["plot-a_b", "plot-a-b", "plot-A B"])
    assert list(keys.values()) == ["plot-a-b", "plot-a-b-2", "plot-a-b-3"]
