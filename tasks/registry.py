"""Prefect tasks for the registry: register the candidate, settle its promotion, roll back; each
move is an audit record and a Prefect event (`assay.model.promoted`, `assay.model.rolled-back`,
`assay.gate.failed`) that shows in the UI's event feed and can drive automations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from prefect import task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.events import emit_event

from assay.config import Spec
from assay.data.labels import labels
from assay.home import Home
from assay.pipeline.outcomes import RunOutcomes
from assay.pipeline.registration import evidence_files, version_tags
from assay.registry.audit import AuditEntry, AuditLog
from assay.registry.card import CardEvidence, write_card
from assay.registry.models import (
    CHALLENGER,
    CHAMPION,
    Candidate,
    Decision,
    Submission,
    attach_card,
    holder,
    register,
    rollback,
)
from assay.registry.promotion import CandidateResults, promotion_rule, settle
from assay.registry.tracking import model_version_url
from tasks.events import dataset_resource
from tasks.policy import IO_RETRIES, names_unreachable_store


def audit_log(home: Home) -> AuditLog:
    return AuditLog(home.audit)


def _emit(event: str, spec: Spec, version: str, payload: dict) -> None:
    """A model event: about the registered model, with its dataset as a related resource."""
    emit_event(
        event=event,
        resource={
            "prefect.resource.id": f"assay.model.{spec.registered_name}",
            "assay.version": version,
        },
        related=[
            {"prefect.resource.id": dataset_resource(spec.name), "prefect.resource.role": "dataset"}
        ],
        payload=payload,
    )


@task(name="register-candidate", **IO_RETRIES)
@names_unreachable_store
def register_candidate(home: Home, outcomes: RunOutcomes, run_id: str) -> Candidate:
    """A new version for a new (snapshot, spec, code); the existing one otherwise. Its tags
    hold the identity and every gate's verdict; the evidence files go into its package."""
    submitted = Submission(
        Path(outcomes.responsible.folder),
        outcomes.data.test,
        version_tags(outcomes),
        evidence_files(outcomes),
    )
    return register(home, outcomes.spec.registered_name, run_id, submitted)


@task(name="settle-promotion", **IO_RETRIES)
@names_unreachable_store
def settle_promotion(home: Home, outcomes: RunOutcomes, candidate: Candidate) -> Decision:
    """challenger, and champion if every gate passed and it is not worse than the champion."""
    spec, test, gates = outcomes.spec, outcomes.data.test, outcomes.gates()
    scores = np.load(outcomes.responsible.test_scores, allow_pickle=False)
    results = CandidateResults(gates, test, labels(test, spec), scores)
    decision = settle(home, candidate, results, promotion_rule(spec), audit_log(home))
    name, version = candidate.name, candidate.version
    payload = {"reason": decision.reason, "evidence": decision.evidence}
    if not candidate.reused:
        if decision.promoted:
            _emit("assay.model.promoted", spec, version, payload)
        failed = {k: g["reason"] for k, g in gates.items() if not g["passed"]}
        if failed:
            _emit("assay.gate.failed", spec, version, {"gates": failed})
    verdict = "**champion**" if decision.promoted else "challenger only"
    create_table_artifact(
        key="gates",
        table=[
            *(
                {"gate": k, "result": "pass" if g["passed"] else "FAIL", "why": g["reason"]}
                for k, g in gates.items()
            ),
            {
                "gate": "promotion",
                "result": "champion" if decision.promoted else "not champion",
                "why": decision.reason,
            },
        ],
        description=f"**{name} version {version}**: every gate, and the promotion decision",
    )
    create_link_artifact(
        key="model-version",
        link=model_version_url(home, name, version),
        link_text=f"{name} version {version}",
        description="The registered version: package, model card, gate verdicts in its tags",
    )
    create_markdown_artifact(
        key="promotion",
        markdown=f"**{name} version {version}**: {verdict}. {decision.reason}\n\n"
        + "\n".join(f"- {k}: {v}" for k, v in decision.evidence.items()),
    )
    return decision


def current_aliases(home: Home, spec: Spec) -> str:
    """Who holds `champion` and `challenger` now, read from the registry (a cached rerun must
    not repeat an old decision as if it were today's state)."""
    name = spec.registered_name
    held = {alias: holder(home, name, alias) for alias in (CHAMPION, CHALLENGER)}
    return (
        ", ".join(f"{alias} {'version ' + v if v else 'none'}" for alias, v in held.items())
        + f" of {name}"
    )


@task(name="record-gate-failure", **IO_RETRIES)
@names_unreachable_store
def record_gate_failure(home: Home, spec: Spec, reason: str) -> None:
    """A gate that stops a run before there is a candidate (the data gate)."""
    audit_log(home).append(AuditEntry("gate-failed", reason, spec.registered_name))
    _emit("assay.gate.failed", spec, "", {"reason": reason})


@task(name="roll-back", **IO_RETRIES)
@names_unreachable_store
def roll_back(home: Home, spec: Spec, reason: str, to: str | None) -> str:
    name = spec.registered_name
    version = rollback(home, name, reason, audit_log(home), to)
    _emit("assay.model.rolled-back", spec, version, {"reason": reason})
    create_markdown_artifact(
        key="rollback", markdown=f"**{name}**: champion is now version {version}. {reason}"
    )
    return version


@task(name="publish-model-card", **IO_RETRIES)
@names_unreachable_store
def publish_model_card(home: Home, evidence: CardEvidence, run_id: str, folder: Path) -> Path:
    """The card beside the run's files, attached to the version, and as a Prefect artifact."""
    markdown, html = write_card(evidence, folder)
    attach_card(home, evidence.name, evidence.version, run_id, folder)
    create_markdown_artifact(key="model-card", markdown=markdown.read_text(encoding="utf-8"))
    return html
