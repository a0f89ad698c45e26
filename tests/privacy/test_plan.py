"""The privacy plan of a training and the report of what its guarantee covers: the delta is
checked against the private rows, every DP-SGD stage is planned within the budget, each
private stage's cache key covers the whole plan, and the gate fails an overspent budget."""

from __future__ import annotations

import pytest

from assay.config import PrivacySpec, Spec
from assay.data.split import Split
from assay.errors import SpecError
from assay.modeling.privacy_plan import plan
from assay.modeling.rows import (
    distillation_parts,
    fitting_rows,
    pretraining_rows,
    training_rows,
)
from assay.privacy.budget import composed_epsilon
from assay.privacy.report import PrivacyReport, fits
from assay.stages.table import STAGES
from tests.conftest import mixed_rows


def private(spec: Spec, **settings) -> Spec:
    return spec.model_copy(update={"privacy": PrivacySpec(**{"epsilon": 4.0, **settings})})


@pytest.fixture
def split() -> Split:
    return Split(*(mixed_rows(n, seed) for seed, n in enumerate((2000, 300, 400, 500, 200))))


def test_every_private_stage_is_planned_and_their_composition_meets_the_budget(mixed_spec, split):
    spec = private(mixed_spec, delta=1e-4)
    planned = plan(split, spec)
    assert [s.stage for s in planned.stages] == [
        "pretrain", "finetune", "compression", "compression.pruning",
    ]  # fmt: skip
    # validation and calibration rows are private unless marked public
    assert planned.private_rows == 2000 + 300 + 200 + 500
    spent = composed_epsilon(planned.stages, planned.noise, 1e-4, "rdp")
    assert 4.0 - 0.01 <= spent <= 4.0
    # the learning rate DP-SGD runs with is scaled, and a privacy batch size applies
    with_batch = plan(split, private(mixed_spec, delta=1e-4, batch_size=128))
    assert with_batch.schedule(spec.finetune).batch_size == 128
    assert planned.schedule(spec.finetune).learning_rate == 3 * spec.finetune.learning_rate
    assert with_batch.noise != planned.noise


def test_public_validation_rows_are_not_private_and_fit_the_noise_free_steps(mixed_spec, split):
    spec = private(mixed_spec, delta=1e-4, public=["validation"])
    assert plan(split, spec).private_rows == 2000 + 200 + 500
    both = private(mixed_spec, delta=1e-4, public=["validation", "calibration"])
    assert plan(split, both).private_rows == 2000 + 500
    assert fitting_rows(split, spec) is split.valid
    assert fitting_rows(split, private(mixed_spec)) is training_rows(split, mixed_spec)


def test_a_delta_not_below_one_over_the_private_rows_is_a_spec_error(mixed_spec, split):
    with pytest.raises(SpecError, match=r"privacy.delta: 0.001 is not below 1 / 3000 private"):
        plan(split, private(mixed_spec, delta=1e-3))


def test_a_private_stages_key_covers_every_private_stages_settings(mixed_spec):
    sections = STAGES["pretrain"].sections
    later = mixed_spec.model_copy(
        update={"finetune": mixed_spec.finetune.model_copy(update={"epochs": 9})}
    )
    # without privacy, pretraining does not depend on fine-tuning, and the keys are as before
    assert later.stage_digest(*sections) == mixed_spec.stage_digest(*sections)
    assert mixed_spec.stage_digest(*sections) == mixed_spec.stage_digest(
        *(s for s in sections if s != "privacy")
    )
    assert "privacy" not in mixed_spec.model_dump(mode="json", exclude={"privacy"})
    # with privacy, the shared noise depends on fine-tuning's steps, so pretraining's key does
    assert private(later).stage_digest(*sections) != private(mixed_spec).stage_digest(*sections)
    assert private(mixed_spec).digest() != mixed_spec.digest()


def test_the_report_lists_what_the_guarantee_covers_and_what_it_does_not(mixed_spec):
    closed = {f.what: f for f in fits(private(mixed_spec))}
    assert closed["student weights (distillation)"].covered
    assert not closed["tokenizer quantile bins and vocabulary"].covered
    assert not closed["calibration temperature"].covered
    assert not closed["conformal quantile"].covered
    validation = {f.what: f for f in fits(private(mixed_spec, public=["validation"]))}
    assert validation["calibration temperature"].covered
    assert not validation["conformal quantile"].covered  # it reads the calibration rows
    public = fits(private(mixed_spec, public=["validation", "calibration"]))
    assert all(f.covered for f in public), [f.what for f in public if not f.covered]
    reweighed = mixed_spec.model_copy(
        update={"compression": mixed_spec.compression.model_copy(update={"reweigh_on": "colour"})}
    )
    everything = ["validation", "calibration"]
    names = [f.what for f in fits(private(reweighed, public=everything)) if not f.covered]
    assert names == ["reweighing weights (counts per group and label)"]
    fair = mixed_spec.model_copy(update={"sensitive_features": ["colour"]})
    mitigation = "group thresholds of the fairness mitigation"
    how = {f.what: f.how for f in fits(private(fair, public=everything))}
    assert how[mitigation] == "public validation and calibration rows"
    assert {f.what: f.how for f in fits(private(fair, public=["validation"]))}[mitigation] == (
        "public validation rows"
    )


def test_the_privacy_gate_fails_a_spend_over_the_budget(mixed_spec):
    spec = private(mixed_spec, epsilon=1.0, delta=1e-5)
    light = PrivacyReport.of(spec, {"finetune": [(5.0, 0.01, 100)]})
    assert light.gate().passed and light.epsilon <= 1.0
    heavy = PrivacyReport.of(spec, {"finetune": [(0.5, 0.1, 1000)], "compress": []})
    gate = heavy.gate()
    assert not gate.passed
    assert gate.reason.startswith("privacy gate failed: spent epsilon")
    assert heavy.steps == {"finetune": 1000, "compress": 0}
    tags = heavy.tags()
    assert tags["assay.privacy.delta"] == "1e-05"
    assert "calibration temperature (validation rows)" in tags["assay.privacy.not_covered"]


def test_public_pretraining_and_distillation_leave_the_budget_to_fine_tuning(mixed_spec, split):
    both = private(
        mixed_spec,
        delta=1e-4,
        public=["validation", "calibration"],
        pretrain_on="public",
        distil_on="public",
    )
    planned = plan(split, both)
    assert [s.stage for s in planned.stages] == ["finetune"]
    alone = composed_epsilon(planned.stages, planned.noise, 1e-4, "rdp")
    assert 4.0 - 0.01 <= alone <= 4.0
    # one stage spending the whole budget needs less noise than four sharing it
    assert planned.noise < plan(split, private(mixed_spec, delta=1e-4, public=["validation"])).noise
    assert pretraining_rows(split, both, training_rows(split, both)).equals(
        split.valid.reset_index(drop=True)
    )
    # the student's pool: the public validation rows and, unlabelled, as many synthetic rows
    # between them as the training and unlabelled rows it would distil on without privacy
    labelled, unlabelled = distillation_parts(split, both)
    assert labelled is split.valid and len(unlabelled) == 2000 + 500
    assert unlabelled["x"].between(split.valid["x"].min(), split.valid["x"].max()).all()
    assert set(unlabelled.columns) == {"x", "colour", "note"}
    none = both.model_copy(
        update={"privacy": both.privacy.model_copy(update={"distil_synthetic_rows": 0})}
    )
    assert distillation_parts(split, none)[1].empty
    distil_only = private(mixed_spec, delta=1e-4, public=["validation"], distil_on="public")
    assert [s.stage for s in plan(split, distil_only).stages] == ["pretrain", "finetune"]
    assert len(pretraining_rows(split, distil_only, split.train)) == 2000 + 300 + 500
    # the report says how each student and encoder weight is covered
    how = {f.what: f.how for f in fits(both)}
    assert how["encoder weights (pretraining)"] == "public validation rows"
    assert how["adapter and head weights (fine-tuning)"] == "DP-SGD"
    assert how["student weights (distillation)"].endswith(
        "public validation rows and synthetic rows between them"
    )
    assert all(f.covered for f in fits(both))


@pytest.mark.parametrize("field", ["pretrain_on", "distil_on"])
def test_training_on_public_rows_needs_public_validation_rows(mixed_spec, field):
    with pytest.raises(ValueError, match=f"{field}: public needs public: \\[validation\\]"):
        PrivacySpec(epsilon=3.0, **{field: "public"})
