"""The registry: a candidate becomes a version once per identity, aliases move only as the
decision says, rollback walks back the champion history, every move is audited once, and a
crash at either step of a promotion leaves a consistent registry that a rerun completes."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from assay.modeling.paired import PairedRule
from assay.registry import models
from assay.registry.audit import AuditLog
from assay.registry.models import (
    CHALLENGER,
    CHAMPION,
    RegistryError,
    Submission,
    decide,
    download,
    holder,
    promote,
    register,
    rollback,
)
from assay.registry.promotion import CandidateResults, settle
from assay.registry.tracking import ensure_experiment, tracking_uri
from assay.serving.policy import DecisionPolicy
from assay.serving.predictor import Predictor
from tests.conftest import deploy_tiny_model, mixed_rows, versus

NAME = "assay-toy"
PASS = {"compression": {"passed": True, "reason": "passed (5 checks)"}}
FAIL = {"fairness": {"passed": False, "reason": "fairness gate failed: eo on sex 0.2"}}


@pytest.fixture
def deployed(mixed_spec, tmp_path):
    folder = deploy_tiny_model(mixed_spec, tmp_path / "package")
    DecisionPolicy(temperature=1.5).save(folder)
    return folder


@pytest.fixture
def sample():
    return mixed_rows(4, 9)


def _run(home, name: str = "train") -> str:
    mlflow.set_tracking_uri(tracking_uri(home))
    with mlflow.start_run(experiment_id=ensure_experiment(home, "assay-toy"), run_name=name) as run:
        return run.info.run_id


def _identity(n: int) -> dict[str, str]:
    return {"assay.fingerprint": f"f{n}", "assay.spec_digest": "s", "assay.code": "c"}


def _candidate(home, deployed, sample, n: int):
    return register(home, NAME, _run(home), Submission(deployed, sample, _identity(n)))


def test_a_candidate_is_registered_once_per_identity(home, deployed, sample):
    first = _candidate(home, deployed, sample, 1)
    again = _candidate(home, deployed, sample, 1)
    assert (first.version, first.reused) == ("1", False)
    assert (again.version, again.reused) == ("1", True)
    versions = models.client(home).search_model_versions(f"name = '{NAME}'")
    assert len(versions) == 1 and versions[0].tags["assay.fingerprint"] == "f1"
    info = mlflow.models.get_model_info(versions[0].source)
    assert "python_function" in info.flavors and "onnx" not in info.flavors
    assert info.signature.inputs.input_names() == ["x", "colour", "note"]  # raw rows, no label


def test_decide_needs_every_gate_and_no_regression_beyond_the_margin():
    assert decide(PASS, 0.90, None, PairedRule(0.005)).promoted
    assert decide(PASS, 0.896, versus(0.896, 0.90), PairedRule(0.005)).promoted
    worse = decide(PASS, 0.89, versus(0.89, 0.90), PairedRule(0.005))
    assert not worse.promoted and "the lower bound is below -0.005" in worse.reason
    failed = decide({**PASS, **FAIL}, 0.99, versus(0.99, 0.90), PairedRule(0.005))
    assert not failed.promoted and failed.reason == "fairness gate failed: eo on sex 0.2"
    assert failed.evidence["gates"]["compression"] == "passed (5 checks)"


def test_a_higher_point_auc_whose_paired_interval_crosses_the_margin_is_not_promoted():
    """The rule as written: the lower bound of (challenger - champion), not the point."""
    rng = np.random.default_rng(5)
    y = np.repeat([0, 1], 60)
    champion = y * 0.8 + rng.random(len(y))
    challenger = y * 0.8 + rng.random(len(y))  # as good, ahead on these 120 rows by chance
    rule = PairedRule(0.005)
    comparison = rule.compare(y, challenger, champion)
    assert comparison.difference > 0 and comparison.low < -0.005
    decision = decide(PASS, comparison.candidate, comparison, rule)
    assert not decision.promoted
    assert decision.reason == (
        f"against the champion (ROC AUC {comparison.reference:.4f}) on the same test rows, "
        f"{comparison.describe()}: the lower bound is below -0.005"
    )
    recorded = decision.evidence
    assert recorded["versus_champion"] == comparison.to_dict()
    assert recorded["rule"] == (
        "passes when the 95% paired lower bound of (candidate - champion) is at or above -0.005"
    )
    clear = decide(PASS, 0.95, versus(0.95, 0.90, half=0.004), rule)
    assert clear.promoted and "+0.0460 to +0.0540" in clear.reason


def test_promotion_moves_aliases_as_decided_and_audits_each_move(home, deployed, sample):
    audit = AuditLog(home.audit)
    first = _candidate(home, deployed, sample, 1)
    promote(home, first, decide(PASS, 0.90, None, PairedRule(0.005)), audit)
    second = _candidate(home, deployed, sample, 2)
    promote(
        home, second, decide({**PASS, **FAIL}, 0.91, versus(0.91, 0.90), PairedRule(0.005)), audit
    )
    assert holder(home, NAME, CHAMPION) == "1"
    assert holder(home, NAME, CHALLENGER) == "2"
    entries = audit.entries()
    assert [(e.action, e.version) for e in entries] == [("promoted", "1"), ("not-promoted", "2")]
    assert entries[1].reason == "fairness gate failed: eo on sex 0.2" and entries[1].actor
    tags = models.client(home).get_model_version(NAME, "2").tags
    assert tags["assay.decision"] == "not-promoted"
    assert json.loads(tags["assay.decision.evidence"])["candidate_roc_auc"] == 0.91
    assert any(k.startswith("assay.audit.") and k.endswith(".not-promoted") for k in tags)


def test_rollback_walks_back_the_champions_and_then_refuses(home, deployed, sample):
    audit = AuditLog(home.audit)
    for n in (1, 2, 3):
        promote(
            home,
            _candidate(home, deployed, sample, n),
            decide(PASS, 0.9, None, PairedRule(0.0)),
            audit,
        )
    assert rollback(home, NAME, "v3 misbehaves", audit) == "2"
    assert rollback(home, NAME, "v2 too", audit) == "1"
    with pytest.raises(RegistryError, match="no earlier champion than version 1"):
        rollback(home, NAME, "again", audit)
    assert rollback(home, NAME, "back to the newest", audit, to="3") == "3"
    with pytest.raises(RegistryError, match="has no version 9"):
        rollback(home, NAME, "typo", audit, to="9")
    moves = [(e.action, e.version, e.evidence.get("from")) for e in audit.entries()][3:]
    assert moves == [
        ("rolled-back", "2", "3"),
        ("rolled-back", "1", "2"),
        ("rolled-back", "3", "1"),
    ]


def test_rollback_without_a_champion_is_refused(home):
    with pytest.raises(RegistryError, match="has no champion to roll back"):
        rollback(home, NAME, "nothing yet", AuditLog(home.audit))


def test_the_champion_downloads_as_a_working_package(home, deployed, sample):
    audit = AuditLog(home.audit)
    promote(
        home, _candidate(home, deployed, sample, 1), decide(PASS, 0.9, None, PairedRule(0.0)), audit
    )
    folder = download(home, NAME, CHAMPION)
    assert folder == download(home, NAME, "1")  # cached, by number too
    predictor = Predictor.load(folder)
    assert predictor.policy.temperature == 1.5
    assert len(predictor.predict(mixed_rows(5, 3).drop(columns=["y"]))) == 5
    with pytest.raises(RegistryError, match="no model version or alias 'nightly'"):
        download(home, NAME, "nightly")


class Crash(Exception):
    """An injected fault."""


def test_a_crash_before_the_alias_move_leaves_the_old_champion_and_a_rerun_completes(
    home, deployed, sample, monkeypatch
):
    audit = AuditLog(home.audit)
    promote(
        home, _candidate(home, deployed, sample, 1), decide(PASS, 0.9, None, PairedRule(0.0)), audit
    )
    original = models.MlflowClient.set_registered_model_alias

    def crash(self, *args, **kwargs):
        raise Crash("killed after the upload, before the alias move")

    monkeypatch.setattr(models.MlflowClient, "set_registered_model_alias", crash)
    candidate = _candidate(home, deployed, sample, 2)  # artifacts uploaded, version created
    with pytest.raises(Crash):
        promote(home, candidate, decide(PASS, 0.9, versus(0.9, 0.9), PairedRule(0.0)), audit)
    assert holder(home, NAME, CHAMPION) == "1"  # complete, untouched
    monkeypatch.setattr(models.MlflowClient, "set_registered_model_alias", original)
    rerun = _candidate(home, deployed, sample, 2)
    promote(home, rerun, decide(PASS, 0.9, versus(0.9, 0.9), PairedRule(0.0)), audit)
    assert rerun.reused and holder(home, NAME, CHAMPION) == "2"
    assert [(e.action, e.version) for e in audit.entries()] == [
        ("promoted", "1"),
        ("promoted", "2"),
    ]


def test_a_crash_before_the_audit_record_is_completed_by_the_rerun(
    home, deployed, sample, monkeypatch
):
    audit = AuditLog(home.audit)
    candidate = _candidate(home, deployed, sample, 1)

    def crash(self, entry):
        raise Crash("killed after the alias move, before the audit record")

    monkeypatch.setattr(AuditLog, "append", crash)
    with pytest.raises(Crash):
        promote(home, candidate, decide(PASS, 0.9, None, PairedRule(0.0)), audit)
    assert holder(home, NAME, CHAMPION) == "1" and audit.entries() == []
    monkeypatch.undo()
    rerun = _candidate(home, deployed, sample, 1)
    promote(home, rerun, decide(PASS, 0.9, None, PairedRule(0.0)), audit)
    promote(
        home, rerun, decide(PASS, 0.9, None, PairedRule(0.0)), audit
    )  # and again: still one record
    assert rerun.reused
    assert [(e.action, e.version) for e in audit.entries()] == [("promoted", "1")]
    assert len(models.client(home).search_model_versions(f"name = '{NAME}'")) == 1


def test_a_rerun_of_a_decided_version_does_not_undo_a_rollback(home, deployed, sample):
    audit = AuditLog(home.audit)
    rows = mixed_rows(40, 11)
    y = (rows["y"] == "yes").to_numpy(dtype=int)
    scores = Predictor.load(deployed).probabilities(rows)
    results = CandidateResults(PASS, rows, y, scores)
    for n in (1, 2):
        candidate = _candidate(home, deployed, sample, n)
        assert settle(home, candidate, results, PairedRule(0.005), audit).promoted
    assert rollback(home, NAME, "v2 is slow", audit) == "1"
    rerun = _candidate(home, deployed, sample, 2)  # the nightly run on unchanged data
    decision = settle(home, rerun, results, PairedRule(0.005), audit)
    assert rerun.reused and decision.promoted  # its recorded decision...
    assert holder(home, NAME, CHAMPION) == "1"  # ...but the rollback stands
    assert [e.action for e in audit.entries()] == ["promoted", "promoted", "rolled-back"]


def test_the_champion_is_scored_on_the_same_rows_in_the_same_run(home, deployed, sample):
    audit = AuditLog(home.audit)
    rows = mixed_rows(60, 12)
    y = (rows["y"] == "yes").to_numpy(dtype=int)
    good = Predictor.load(deployed).probabilities(rows)
    first = _candidate(home, deployed, sample, 1)
    settle(home, first, CandidateResults(PASS, rows, y, good), PairedRule(0.005), audit)
    noise = np.random.default_rng(0).random(len(rows))
    second = _candidate(home, deployed, sample, 2)
    decision = settle(
        home, second, CandidateResults(PASS, rows, y, noise), PairedRule(0.005), audit
    )
    assert not decision.promoted and "the lower bound is below -0.005" in decision.reason
    assert decision.evidence["versus_champion"]["resamples"] == 1000
    assert decision.evidence["champion_version"] == "1"
    assert decision.evidence["champion_roc_auc"] == pytest.approx(roc_auc_score(y, good))
    assert holder(home, NAME, CHAMPION) == "1" and holder(home, NAME, CHALLENGER) == "2"
