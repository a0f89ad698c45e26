from pathlib import Path

import pytest
import yaml

from assay.config import FairnessLimit, Spec, load_spec
from assay.errors import SpecError
from tests.conftest import ADULT_SPEC


def _variant(tmp_path: Path, **changes) -> Path:
    raw = yaml.safe_load(ADULT_SPEC.read_text())
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = raw
        for key in parents:
            node = node[key]
        if value is _DELETE:
            del node[leaf]
        else:
            node[leaf] = value
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


_DELETE = object()


def test_adult_spec_loads_with_paths_beside_it(adult_spec):
    assert adult_spec.label.positive == ">50K"
    assert adult_spec.label.aliases[">50K."] == ">50K"
    assert adult_spec.expectations.is_file()
    assert all(p.is_file() for p in adult_spec.bundled)
    assert adult_spec.columns_of_type("numeric")[0] == "age"
    assert adult_spec.required_columns[-1] == "income"


def test_digest_ignores_file_locations(tmp_path, adult_spec):
    moved = adult_spec.model_copy(update={"bundled": [tmp_path / "elsewhere.csv"]})
    assert moved.digest() == adult_spec.digest()
    changed = adult_spec.model_copy(update={"sensitive_features": ["sex"]})
    assert changed.digest() != adult_spec.digest()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"colums": {}}, "colums: unknown key"),
        ({"columns__age": {"type": "integer"}}, "columns.age.type: Input should be"),
        ({"label__positiv": "x"}, "label.positiv: unknown key"),
        ({"label": _DELETE}, "label: Field required"),
        (
            {"sensitive_features": ["gender"]},
            "is neither a model input nor a name under fairness.attributes",
        ),
        ({"columns__income": {"type": "categorical"}}, "must not include the label"),
        ({"split__test_sources": []}, "test_sources must list at least one pattern"),
        ({"split__validation_fraction": 1.5}, "split.validation_fraction"),
        ({"name": "Adult Data"}, "name: String should match pattern"),
        ({"source__names": ["age"]}, "source.names lacks columns"),
        ({"uncertainty": {"group_by": ["age"]}}, "uncertainty.group_by: ['age'] are not"),
        ({"split__calibration_fraction": 0}, "split.calibration_fraction"),
        ({"privacy": {"epsilon": 3, "public": ["test"]}}, "privacy.public.0: Input should be"),
    ],
)
def test_spec_errors_name_the_key(tmp_path, changes, message):
    with pytest.raises(SpecError, match=r"spec\.yaml: ") as err:
        load_spec(_variant(tmp_path, **changes))
    assert message in str(err.value)


def test_missing_and_malformed_spec_files(tmp_path):
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(SpecError, match="expected a mapping"):
        load_spec(bad)


def test_profiles_override_only_what_they_list(adult_spec):
    quick = load_spec(ADULT_SPEC, "quick")
    assert quick.profile == "quick" and adult_spec.profile == "full"
    assert quick.model.hidden_size < adult_spec.model.hidden_size
    assert quick.model.num_heads == adult_spec.model.num_heads  # not listed: unchanged
    assert quick.train_rows is not None and adult_spec.train_rows is None
    assert quick.digest() != adult_spec.digest()


def test_stage_digest_ignores_sections_the_stage_does_not_read(adult_spec):
    tuned = adult_spec.model_copy(
        update={"finetune": adult_spec.finetune.model_copy(update={"epochs": 99})}
    )
    assert tuned.stage_digest("model", "pretrain") == adult_spec.stage_digest("model", "pretrain")
    assert tuned.stage_digest("finetune") != adult_spec.stage_digest("finetune")


def test_a_stage_may_depend_on_one_field_of_a_section(adult_spec):
    def fairness(**change) -> Spec:
        return adult_spec.model_copy(
            update={"fairness": adult_spec.fairness.model_copy(update=change)}
        )

    key = ("fairness.min_group_size", "uncertainty")
    limit = FairnessLimit(feature="sex", metric="equalized_odds_difference", limit=0.0)
    gated = fairness(gate=[limit])
    assert gated.stage_digest(*key) == adult_spec.stage_digest(*key)
    assert gated.stage_digest("fairness") != adult_spec.stage_digest("fairness")
    smaller = fairness(min_group_size=adult_spec.fairness.min_group_size + 1)
    assert smaller.stage_digest(*key) != adult_spec.stage_digest(*key)


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(SpecError, match=r"no profile 'fast' \(profiles: private, quick\)"):
        load_spec(ADULT_SPEC, "fast")


def test_model_heads_must_divide_width(tmp_path):
    with pytest.raises(SpecError, match="model: num_heads must divide hidden_size"):
        load_spec(_variant(tmp_path, model={"hidden_size": 30, "num_heads": 4}))


def test_quick_profile_works_on_a_spec_without_profiles(tmp_path):
    raw = yaml.safe_load(ADULT_SPEC.read_text())
    raw.pop("profiles")
    path = tmp_path / "plain.yaml"
    path.write_text(yaml.safe_dump(raw))
    quick = load_spec(path, "quick")
    assert quick.train_rows == 6000 and quick.pretrain.max_rows == 12000
    assert quick.model.hidden_size == 32 and quick.gates.quality.margin == 0.05


def test_a_spec_quick_profile_merges_over_the_built_in_one():
    quick = load_spec(ADULT_SPEC, "quick")
    assert quick.pretrain.max_rows == 12000  # built in
    assert quick.fairness.gate[0].limit == 0.1  # Adult's own


def test_profile_full_is_the_spec_as_written(adult_spec):
    assert load_spec(ADULT_SPEC, "full") == adult_spec
