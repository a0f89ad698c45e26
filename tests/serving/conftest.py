"""A registered tiny model, shared by the pyfunc and HTTP serving tests."""

from __future__ import annotations

import mlflow
import pytest

from assay.home import Home
from assay.modeling.paired import PairedRule
from assay.registry.audit import AuditLog
from assay.registry.models import Submission, decide, promote, register
from assay.registry.tracking import ensure_experiment, tracking_uri
from assay.serving.layout import PROFILE_FILE
from assay.serving.policy import DecisionPolicy
from assay.serving.predictor import Predictor
from assay.serving.profile import build_profile
from tests.conftest import deploy_tiny_model, mixed_rows, mixed_spec_for

NAME = "assay-toy"


def run_id(home: Home) -> str:
    mlflow.set_tracking_uri(tracking_uri(home))
    with mlflow.start_run(experiment_id=ensure_experiment(home, NAME), run_name="train") as run:
        return run.info.run_id


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """(home, package folder): version 1 of assay-toy, the champion, with a conformal policy
    and a reference profile of its training rows."""
    root = tmp_path_factory.mktemp("serving")
    spec = mixed_spec_for(root / "suite.json")
    package = deploy_tiny_model(spec, root / "package")
    DecisionPolicy(temperature=1.5, coverage=0.9, qhat=0.6, threshold=0.4).save(package)
    reference = mixed_rows(300, 0)
    scores = Predictor.load(package).probabilities(reference)
    build_profile(reference, spec, scores).save(package / PROFILE_FILE)
    home = Home(root / "home", "toy")
    identity = {"assay.fingerprint": "f1", "assay.spec_digest": "s", "assay.code": "c"}
    candidate = register(home, NAME, run_id(home), Submission(package, mixed_rows(4, 9), identity))
    passed = {"compression": {"passed": True, "reason": "passed"}}
    promote(home, candidate, decide(passed, 0.9, None, PairedRule(0.0)), AuditLog(home.audit))
    assert candidate.version == "1"
    return home, package
