"""The model registry: one registered model per dataset, every candidate a version, and the
aliases `challenger` and `champion` (MLflow 3 deprecates stages; aliases only).

Order makes promotion safe to interrupt: a version is created only after its artifacts are
uploaded, an alias moves only onto a version that exists, and the audit record comes last and is
written again by a rerun that finds it missing. So a crash at any point leaves `champion` on a
complete version, and rerunning the same snapshot finishes the job without a second version."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from assay.errors import AssayError
from assay.home import Home
from assay.modeling.paired import PairedDifference, PairedRule
from assay.registry.audit import AuditEntry, AuditLog
from assay.registry.tracking import has_registry, tracking_uri
from assay.serving import pyfunc
from assay.serving.layout import MANIFEST_FILE
from assay.serving.manifest import package_files, verify_package, write_manifest
from assay.serving.predictor import Predictor

CHAMPION, CHALLENGER = "champion", "challenger"
PACKAGE = "package"  # run artifact folder holding the deployable package
DIGEST_TAG = "assay.package_sha256"  # the manifest's SHA-256 on each version
IDENTITY_TAGS = ("assay.fingerprint", "assay.spec_digest", "assay.code")


class RegistryError(AssayError):
    """A registry request that cannot be met (unknown alias or version, nothing to roll back)."""


class UnverifiedPackageWarning(UserWarning):
    """A version registered before package digests: its files cannot be checked."""


@dataclass(frozen=True)
class Candidate:
    name: str
    version: str
    run_id: str
    reused: bool  # found by fingerprint: nothing was registered


@dataclass(frozen=True)
class Submission:
    """What a training hands the registry for one version: the package and the files uploaded
    beside it, raw rows for the version's signature and input example, and the tags it is
    found again by (its identity among them)."""

    package: Path
    example: pd.DataFrame
    tags: dict[str, str]
    extras: Sequence[tuple[str, Path]] = ()


@dataclass(frozen=True)
class Decision:
    """Whether a candidate takes `champion`, why, and the figures it was decided on."""

    promoted: bool
    reason: str
    evidence: dict


def client(home: Home) -> MlflowClient:
    return MlflowClient(tracking_uri(home))


def find_version(home: Home, name: str, identity: dict[str, str]) -> ModelVersion | None:
    """The version registered for this snapshot, spec and code, if any."""
    query = " and ".join(f"tags.`{k}` = '{identity[k]}'" for k in IDENTITY_TAGS)
    try:
        found = client(home).search_model_versions(f"name = '{name}' and {query}")
    except MlflowException:
        return None  # no such registered model yet
    return found[0] if found else None


def register(home: Home, name: str, run_id: str, submitted: Submission) -> Candidate:
    """Upload the package (plus `extras`: (subfolder, file or folder) pairs such as the LoRA
    adapter and the gate reports) with its manifest under the run, then create the version: an
    MLflow pyfunc logged from code (assay.serving.pyfunc) whose artifact is the same package,
    with a signature on the raw columns and an input example of raw rows from `example`. The
    manifest's digest is the tag `assay.package_sha256` (checked on every download) and the
    pyfunc's model config (checked when it loads). Reuses the version of the same identity."""
    existing = find_version(home, name, submitted.tags)
    if existing is not None:
        return Candidate(name, str(existing.version), existing.run_id, True)
    mlflow.set_tracking_uri(tracking_uri(home))
    with tempfile.TemporaryDirectory() as scratch:
        staged = Path(scratch) / PACKAGE
        digest = _stage(submitted.package, submitted.extras, staged)
        predictor = Predictor.load(staged)
        rows = pyfunc.raw_example(submitted.example, predictor.spec)
        output = predictor.predict(pyfunc.read_raw(rows, pyfunc.serving_spec(predictor.spec)))
        with mlflow.start_run(run_id=run_id):
            mlflow.log_artifacts(str(staged), artifact_path=PACKAGE)
            logged = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(pyfunc.MODEL_CODE),
                artifacts={pyfunc.ARTIFACT: str(staged)},
                model_config={pyfunc.DIGEST_KEY: digest},
                signature=pyfunc.signature(predictor.spec, rows, output),
                input_example=rows,
                pip_requirements=pyfunc.requirements(),
            )
    version = mlflow.register_model(
        logged.model_uri, name, tags={**submitted.tags, DIGEST_TAG: digest}
    )
    return Candidate(name, str(version.version), run_id, False)


def _stage(package: Path, extras: Sequence[tuple[str, Path]], staged: Path) -> str:
    """The package as uploaded, in `staged`: its own files, then the extras' (a later one at
    the same path wins), then the manifest of them all; the manifest's digest."""
    files = package_files(package)
    for folder, path in extras:
        inside = package_files(path) if path.is_dir() else {path.name: path}
        files |= {f"{folder}/{rel}": p for rel, p in inside.items()}
    for rel, path in files.items():
        (staged / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, staged / rel)
    return write_manifest(package_files(staged), staged / MANIFEST_FILE)


def attach_card(home: Home, name: str, version: str, run_id: str, folder: Path) -> None:
    """The model card folder in the version's run (`model-card/`), its Markdown as the
    version's description (shown on the version page of the MLflow UI)."""
    mlflow.set_tracking_uri(tracking_uri(home))
    with mlflow.start_run(run_id=run_id):
        mlflow.log_artifacts(str(folder), artifact_path="model-card")
    markdown = (folder / "model-card.md").read_text(encoding="utf-8")
    registry = client(home)
    registry.update_model_version(name, version, description=markdown[:20000])
    registry.set_model_version_tag(name, version, "assay.model_card", "model-card/model-card.html")


def alias_version(home: Home, name: str, alias: str) -> ModelVersion | None:
    try:
        return client(home).get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def holder(home: Home, name: str, alias: str) -> str | None:
    """The version number (as text, like the audit log) holding `alias`, if any."""
    found = alias_version(home, name, alias)
    return None if found is None else str(found.version)


def decide(
    gates: dict[str, dict],
    candidate_auc: float,
    champion: PairedDifference | None,
    rule: PairedRule,
) -> Decision:
    """Champion only if every gate passed and, on the same test rows, the paired interval of
    (candidate - champion) ROC AUC has its lower bound at or above -margin (`rule`); the
    interval and the rule go into the evidence whatever is decided."""
    evidence = {
        "gates": {k: g["reason"] for k, g in gates.items()},
        "candidate_roc_auc": candidate_auc,
        "champion_roc_auc": champion.reference if champion else None,
        "versus_champion": champion.to_dict() if champion else None,
        "margin": rule.margin,
        "rule": rule.describe("champion"),
    }
    failed = [g["reason"] for g in gates.values() if not g["passed"]]
    if failed:
        return Decision(False, "; ".join(failed), evidence)
    if champion is not None and not rule.accepts(champion):
        return Decision(
            False,
            f"against the champion (ROC AUC {champion.reference:.4f}) on the same test rows, "
            f"{champion.describe()}: the lower bound is below -{rule.margin:g}",
            evidence,
        )
    versus = f" ({champion.describe()} against the champion)" if champion else ""
    return Decision(True, f"every gate passed and not worse than the champion{versus}", evidence)


def promote(home: Home, candidate: Candidate, decision: Decision, audit: AuditLog) -> None:
    """challenger := candidate; champion := candidate when the decision says so; then the
    decision on the version (its tag `assay.decision` written last marks the promotion done);
    then the audit record (unless a previous attempt already wrote it)."""
    registry = client(home)
    name, version = candidate.name, candidate.version
    registry.set_registered_model_alias(name, CHALLENGER, version)
    if decision.promoted:
        registry.set_registered_model_alias(name, CHAMPION, version)
    registry.set_model_version_tag(name, version, "assay.decision.reason", decision.reason[:5000])
    registry.set_model_version_tag(
        name, version, "assay.decision.evidence", json.dumps(decision.evidence)[:5000]
    )
    registry.set_model_version_tag(name, version, "assay.decision", _action(decision))
    _record_once(home, audit, _entry(candidate, decision))


def recorded_decision(home: Home, candidate: Candidate) -> Decision | None:
    """The decision a finished promotion left on the version, if it finished."""
    tags = client(home).get_model_version(candidate.name, candidate.version).tags
    if "assay.decision" not in tags:
        return None
    return Decision(
        tags["assay.decision"] == "promoted",
        tags["assay.decision.reason"],
        json.loads(tags["assay.decision.evidence"]),
    )


def finish_recorded(home: Home, candidate: Candidate, audit: AuditLog) -> Decision | None:
    """For a version found again by identity: its recorded decision stands (aliases are not
    moved again, so a rerun never undoes a rollback); only a missing audit record is added."""
    decision = recorded_decision(home, candidate)
    if decision is not None:
        _record_once(home, audit, _entry(candidate, decision))
    return decision


def _action(decision: Decision) -> str:
    return "promoted" if decision.promoted else "not-promoted"


def _entry(candidate: Candidate, decision: Decision) -> AuditEntry:
    return AuditEntry(
        _action(decision), decision.reason, candidate.name, candidate.version, decision.evidence
    )


def rollback(home: Home, name: str, reason: str, audit: AuditLog, to: str | None = None) -> str:
    """Move `champion` to `to`, or to the version that held it before the current one; a
    target whose package fails its digest check is refused before anything moves."""
    current = holder(home, name, CHAMPION)
    if current is None:
        raise RegistryError(f"{name} has no champion to roll back")
    target = to or _previous_champion(audit, name, current)
    if target is None:
        raise RegistryError(f"{name}: no earlier champion than version {current}")
    try:
        client(home).get_model_version(name, target)
    except MlflowException:
        raise RegistryError(f"{name} has no version {target}") from None
    if target == current:
        raise RegistryError(f"version {target} of {name} is already the champion")
    download(home, name, target)
    client(home).set_registered_model_alias(name, CHAMPION, target)
    entry = AuditEntry("rolled-back", reason, name, target, {"from": current, "to": target})
    _record_once(home, audit, entry)
    return target


def _previous_champion(audit: AuditLog, name: str, current: str) -> str | None:
    """The champion before `current`: replay the audit log's champion moves as a stack
    (a promotion pushes, a rollback pops back to its target)."""
    stack: list[str] = []
    for e in audit.entries():
        if e.model != name:
            continue
        if e.action == "promoted" and (not stack or stack[-1] != e.version):
            stack.append(e.version)
        elif e.action == "rolled-back":
            if e.version in stack:
                del stack[len(stack) - stack[::-1].index(e.version) :]
            else:
                stack.append(e.version)
    return stack[-2] if len(stack) >= 2 and stack[-1] == current else None


def _record_once(home: Home, audit: AuditLog, entry: AuditEntry) -> None:
    """Append the audit entry unless the latest entry for this version already says the same,
    and mirror it as a tag on the version."""
    latest = [e for e in audit.entries() if (e.model, e.version) == (entry.model, entry.version)]
    if latest and (latest[-1].action, latest[-1].reason) == (entry.action, entry.reason):
        return
    written = audit.append(entry)
    client(home).set_model_version_tag(
        entry.model,
        entry.version,
        f"assay.audit.{written.time}.{written.action}",
        json.dumps({k: v for k, v in asdict(written).items() if k != "evidence"}),
    )


def require_registry(home: Home, name: str) -> None:
    """Refuse, saying what to do, a home without a registry (rather than create an empty one)."""
    if not has_registry(home):
        raise RegistryError(
            f"no model registry in {home.root} yet: run `assay run` first, or point --home "
            f"(or MLFLOW_TRACKING_URI) at the one that holds {name}"
        )


def download(home: Home, name: str, alias_or_version: str) -> Path:
    """The deployable package of a version (by alias or number), cached under ASSAY_HOME;
    checked against the version's registered digest every time, the cached copy included, so
    a tampered or corrupted package raises TamperedPackage (and a fresh fetch is not cached)."""
    require_registry(home, name)
    version = (
        alias_version(home, name, alias_or_version)
        if not alias_or_version.isdigit()
        else _version(home, name, alias_or_version)
    )
    if version is None:
        raise RegistryError(f"{name} has no model version or alias '{alias_or_version}'")
    folder = home.packages / name / f"v{version.version}"
    if folder.is_dir():
        _verify(folder, name, version)
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        mlflow.set_tracking_uri(tracking_uri(home))
        fetched = mlflow.artifacts.download_artifacts(
            run_id=version.run_id, artifact_path=PACKAGE, dst_path=scratch
        )
        _verify(Path(fetched), name, version)
        try:
            os.rename(fetched, folder)  # within one folder: whole or absent
        except OSError:
            if not folder.is_dir():  # not another process that fetched it first
                raise
    return folder


def _version(home: Home, name: str, number: str) -> ModelVersion | None:
    try:
        return client(home).get_model_version(name, number)
    except MlflowException:
        return None


def _verify(folder: Path, name: str, version: ModelVersion) -> None:
    """Refuse a package that is not the one registered. A version registered before digests
    has none to check: it loads (its files are ONNX and JSON, never unpickled) with a warning,
    so an older champion can still be scored and replaced; retraining gives a checked one."""
    expected = version.tags.get(DIGEST_TAG)
    what = f"model {name} v{version.version}"
    if expected:
        verify_package(folder, expected, what)
        return
    warnings.warn(
        f"{what} was registered without a package digest ({DIGEST_TAG}), so its files cannot "
        "be checked for tampering: retrain to register a verifiable version",
        UnverifiedPackageWarning,
        stacklevel=3,
    )
