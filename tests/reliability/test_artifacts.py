"""Model artifact safety: a registered package loads only if its bytes are the ones whose digest
was registered (a flipped byte in the model, the decision policy or the tokenizer, a planted or
missing file, a rewritten manifest: refused, and `assay predict` exits with one line), and no
code path can unpickle (a static check over every shipped module, with a planted control).

One tiny model is trained and registered for the whole module; each test restores what it
tampers with."""

from __future__ import annotations

import ast
import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import pytest

from assay.data.fingerprint import file_digest
from assay.home import Home
from assay.registry.audit import AuditLog
from assay.registry.models import (
    CHAMPION,
    DIGEST_TAG,
    PACKAGE,
    Submission,
    UnverifiedPackageWarning,
    client,
    download,
    holder,
    register,
    rollback,
)
from assay.registry.tracking import ensure_experiment, tracking_uri
from assay.serving.layout import MANIFEST_FILE, MODEL_FILE, POLICY_FILE
from assay.serving.manifest import TamperedPackage
from assay.serving.policy import DecisionPolicy
from assay.serving.predictor import Predictor
from cli.main import main
from tests.conftest import ROOT, deploy_tiny_model, mixed_rows, mixed_spec_for

pytestmark = pytest.mark.reliability

SHIPPED = ("src", "tasks", "flows", "deployments")
TAMPERED = (MODEL_FILE, POLICY_FILE, "tokenizer/cells.tokenizer.json", "reports/gate.json")


@dataclass(frozen=True)
class Registered:
    """Version 1 of a registered tiny model, where its files are stored, and files to feed
    `assay predict` (a spec naming the model, rows to score)."""

    home: Home
    name: str
    store: Path  # the package folder in the artifact store
    spec: Path
    rows: Path
    package: Path  # the local package it was registered from

    @property
    def cache(self) -> Path:
        return self.home.root / "models" / self.name / "v1"

    def predict(self, model: str, *extra: str) -> int:
        home = ["--home", str(self.home.root), "--spec", str(self.spec)]
        return main(["predict", "--model", model, *home, str(self.rows), *extra])


@pytest.fixture(scope="module")
def version_1(tmp_path_factory) -> Registered:
    root = tmp_path_factory.mktemp("artifacts")
    spec = mixed_spec_for(root / "suite.json")
    package = deploy_tiny_model(spec, root / "package")
    DecisionPolicy(temperature=1.5).save(package)
    home = Home(root / "home", spec.name)
    (root / "adapter").mkdir()
    (root / "adapter" / "adapter_config.json").write_text('{"r": 2}', encoding="utf-8")
    (root / "gate.json").write_text('{"passed": true}', encoding="utf-8")
    extras = [("adapter", root / "adapter"), ("reports", root / "gate.json")]
    run_id = _new_run(home, spec.registered_name)
    submitted = Submission(package, mixed_rows(4, 9), _identity(1), extras)
    register(home, spec.registered_name, run_id, submitted)
    (root / "spec.yaml").write_text(spec.model_dump_json(), encoding="utf-8")
    mixed_rows(20, 3).drop(columns=["y"]).to_csv(root / "rows.csv", index=False)
    store = Path(urlparse(mlflow.get_run(run_id).info.artifact_uri).path) / PACKAGE
    paths = (store, root / "spec.yaml", root / "rows.csv", package)
    return Registered(home, spec.registered_name, *paths)


def _new_run(home: Home, experiment: str) -> str:
    mlflow.set_tracking_uri(tracking_uri(home))
    with mlflow.start_run(experiment_id=ensure_experiment(home, experiment)) as run:
        return run.info.run_id


def _identity(n: int) -> dict[str, str]:
    return {"assay.fingerprint": f"f{n}", "assay.spec_digest": "s", "assay.code": "c"}


@pytest.fixture
def registered(version_1, monkeypatch) -> Registered:
    """Version 1 with no cached download yet; main() must not leak ASSAY_HOME."""
    monkeypatch.setenv("ASSAY_HOME", "unused")
    shutil.rmtree(version_1.cache, ignore_errors=True)
    return version_1


@contextmanager
def tampered(path: Path) -> Iterator[None]:
    """One bit of one byte of `path` flipped, restored afterwards."""
    original = path.read_bytes()
    changed = bytearray(original)
    changed[len(changed) // 2] ^= 0x01
    path.write_bytes(bytes(changed))
    try:
        yield
    finally:
        path.write_bytes(original)


def refusal(registered: Registered, problem: str) -> str:
    return f"model {registered.name} v1: {problem}; refusing to load"


def refused(registered: Registered, problem: str):
    """Expect exactly the one-line refusal of version 1 for `problem`."""
    return pytest.raises(TamperedPackage, match=f"^{re.escape(refusal(registered, problem))}$")


def stderr_lines(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


def test_the_untampered_version_loads_and_predicts(registered, tmp_path, capsys):
    folder = download(registered.home, registered.name, "1")
    tag = client(registered.home).get_model_version(registered.name, "1").tags[DIGEST_TAG]
    assert file_digest(folder / MANIFEST_FILE) == tag
    listed = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))["files"]
    assert {MODEL_FILE, "adapter/adapter_config.json", "reports/gate.json"} <= listed.keys()
    assert download(registered.home, registered.name, "1") == folder  # the cache, checked
    assert len(Predictor.load(folder).predict(mixed_rows(5, 3).drop(columns=["y"]))) == 5
    assert registered.predict("1", "--out", str(tmp_path / "p.csv")) == 0
    assert stderr_lines(capsys)[-1].startswith("scored 20 rows")


@pytest.mark.parametrize("name", TAMPERED)
def test_a_tampered_registered_file_is_refused_and_nothing_loads(
    registered, name, capsys, monkeypatch
):
    # the library's download below runs outside the CLI, which turns MLflow's progress bar off
    # (cli.main.prepare_environment); without this the test passed only after a CLI test
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    problem = f"{name} does not match the registered digest (tampered or corrupted)"
    with tampered(registered.store / name):
        with refused(registered, problem):
            download(registered.home, registered.name, "1")
        assert not registered.cache.exists()  # a refused fetch is not cached
        assert registered.predict("1") == 2
    assert stderr_lines(capsys) == [f"error: {refusal(registered, problem)}"]
    assert not registered.cache.exists()


def test_a_tampered_cached_copy_is_refused(registered):
    folder = download(registered.home, registered.name, "1")
    problem = f"{MODEL_FILE} does not match the registered digest (tampered or corrupted)"
    with tampered(folder / MODEL_FILE), refused(registered, problem):
        download(registered.home, registered.name, "1")


def test_a_planted_or_missing_file_is_refused(registered):
    """A file slipped in beside the model is refused, and so is a package without its decision
    policy (it would silently score with the plain one)."""
    folder = download(registered.home, registered.name, "1")
    planted = folder / "tokenizer" / "model.pkl"
    planted.write_bytes(b"\x80\x04K\x01.")
    problem = "tokenizer/model.pkl is not part of the package it was registered as"
    with refused(registered, problem):
        download(registered.home, registered.name, "1")
    planted.unlink()
    (folder / POLICY_FILE).unlink()
    with refused(registered, f"{POLICY_FILE} listed in {MANIFEST_FILE} is missing"):
        download(registered.home, registered.name, "1")


def test_a_manifest_rewritten_to_match_a_tampered_file_is_refused(registered):
    folder = download(registered.home, registered.name, "1")
    manifest = folder / MANIFEST_FILE
    policy = (folder / POLICY_FILE).read_text(encoding="utf-8")
    (folder / POLICY_FILE).write_text(policy.replace("1.5", "9.5"), encoding="utf-8")
    old, new = file_digest(registered.store / POLICY_FILE), file_digest(folder / POLICY_FILE)
    manifest.write_text(manifest.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    problem = f"{MANIFEST_FILE} does not match the registered digest (tampered or corrupted)"
    with refused(registered, problem):
        download(registered.home, registered.name, "1")


def test_a_plain_folder_with_a_manifest_is_checked_against_it(registered, tmp_path, capsys):
    folder = shutil.copytree(download(registered.home, registered.name, "1"), tmp_path / "m")
    assert Predictor.load(folder).policy.temperature == 1.5
    with tampered(folder / "spec.json"):
        assert registered.predict(str(folder)) == 2
    problem = "spec.json does not match its manifest (tampered or corrupted); refusing to load"
    assert stderr_lines(capsys) == [f"error: model folder {folder}: {problem}"]


def test_rollback_to_a_tampered_version_is_refused_and_the_champion_stays(registered):
    name, home = registered.name, registered.home
    submitted = Submission(registered.package, mixed_rows(4, 9), _identity(2))
    second = register(home, name, _new_run(home, name), submitted)
    client(home).set_registered_model_alias(name, CHAMPION, second.version)
    problem = f"{MODEL_FILE} does not match the registered digest (tampered or corrupted)"
    try:
        with tampered(registered.store / MODEL_FILE), refused(registered, problem):
            rollback(home, name, "v2 misbehaves", AuditLog(home.audit), to="1")
        assert holder(home, name, CHAMPION) == second.version
        assert AuditLog(home.audit).entries() == []
    finally:
        client(home).delete_registered_model_alias(name, CHAMPION)


def test_a_version_registered_before_digests_loads_with_a_warning(registered, tmp_path, capsys):
    """Its files are ONNX and JSON (nothing to unpickle), and refusing it would leave an older
    champion that can be neither scored nor replaced by the next training."""
    registry = client(registered.home)
    tag = registry.get_model_version(registered.name, "1").tags[DIGEST_TAG]
    registry.delete_model_version_tag(registered.name, "1", DIGEST_TAG)
    try:
        with pytest.warns(UnverifiedPackageWarning, match="retrain to register a verifiable"):
            download(registered.home, registered.name, "1")
        shutil.rmtree(registered.cache)
        assert registered.predict("1", "--out", str(tmp_path / "p.csv")) == 0
    finally:
        registry.set_model_version_tag(registered.name, "1", DIGEST_TAG, tag)
    warned = [line for line in stderr_lines(capsys) if line.startswith("warning:")]
    assert len(warned) == 1 and "without a package digest" in warned[0]


# The static check: nothing shipped can unpickle.

UNPICKLING_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve"}
# a pyfunc logged from code loads by running that code; assay.serving.http checks that the
# flavour names our model file (not a pickle) before it loads a version
SAFE_MLFLOW_LOADERS = {"mlflow.onnx.load_model", "mlflow.pyfunc.load_model"}


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> the dotted module or object it is bound to by an import."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                root = a.name.split(".")[0]
                names[a.asname or root] = a.name if a.asname else root
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {a.asname or a.name: f"{node.module}.{a.name}" for a in node.names}
    return names


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str:
    """`np.load` -> `numpy.load`; "" for a call on anything but a (chain of) name(s)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    return ".".join([aliases.get(node.id, node.id), *reversed(parts)])


def _keyword(call: ast.Call, name: str) -> object:
    """The literal value of keyword `name`; a sentinel when absent or not a literal."""
    for k in call.keywords:
        if k.arg == name and isinstance(k.value, ast.Constant):
            return k.value.value
    return ...


def _call_problem(full: str, call: ast.Call) -> str | None:
    if full.split(".")[0] in UNPICKLING_MODULES or full.endswith("read_pickle"):
        return f"{full} unpickles"
    if full == "numpy.load" and _keyword(call, "allow_pickle") is not False:
        return "numpy.load without allow_pickle=False"
    if full == "torch.load" and _keyword(call, "weights_only") is not True:
        return "torch.load without weights_only=True"
    if full in ("skops.io.load", "skops.io.loads") and _keyword(call, "trusted") is True:
        return f"{full} with trusted=True"
    if full.startswith("mlflow.") and full.endswith(".load_model"):
        return None if full in SAFE_MLFLOW_LOADERS else f"{full} may unpickle its flavour"
    if full in ("yaml.load", "yaml.unsafe_load"):
        return f"{full} (use yaml.safe_load)"
    return None


def unpickling(path: Path) -> list[tuple[int, str]]:
    """(line, problem) for every import of a pickling module and every loader call that could
    unpickle."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            modules += [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            for m in modules:
                if m.split(".")[0] in UNPICKLING_MODULES:
                    found.append((node.lineno, f"imports {m}"))
        elif isinstance(node, ast.Call):
            problem = _call_problem(_dotted(node.func, aliases), node)
            if problem:
                found.append((node.lineno, problem))
    return found


def test_no_shipped_code_can_unpickle():
    files = [p for folder in SHIPPED for p in sorted((ROOT / folder).rglob("*.py"))]
    assert len(files) > 50
    assert [f"{path}:{line}: {why}" for path in files for line, why in unpickling(path)] == []


PLANTED = """
import pickle  # bad
import numpy as np
import skops.io
import torch
import yaml
from joblib import load as jl  # bad
from numpy import load
from skops.io import load as sload
import mlflow.sklearn
import pandas as pd

pickle.loads(b"")  # bad
jl("x")  # bad
np.load("x.npy")  # bad
np.load("x.npy", allow_pickle=True)  # bad
load("x.npy", allow_pickle=True)  # bad
np.load("x.npy", allow_pickle=False)
torch.load("w.pt")  # bad
torch.load("w.pt", weights_only=False)  # bad
torch.load("w.pt", weights_only=True)
skops.io.load("m.skops", trusted=True)  # bad
sload("m.skops", trusted=True)  # bad
skops.io.load("m.skops", trusted=["sklearn.tree.DecisionTreeClassifier"])
mlflow.sklearn.load_model("models:/m/1")  # bad
mlflow.onnx.load_model("models:/m/1")
pd.read_pickle("x.pkl")  # bad
yaml.load("a: 1")  # bad
yaml.safe_load("a: 1")
"""


def test_the_check_catches_every_planted_unpickling_call(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text(PLANTED, encoding="utf-8")
    bad = {n for n, line in enumerate(PLANTED.splitlines(), 1) if line.endswith("# bad")}
    flagged = {line for line, _ in unpickling(planted)}
    assert flagged == bad
