"""What the registry keeps of one training, from its outcomes: the version's tags, the evidence
files packaged with it, and the model card's evidence."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from assay.data import augment
from assay.pipeline.outcomes import RunOutcomes
from assay.pipeline.payload import run_identity
from assay.registry.card import CardEvidence
from assay.registry.models import Candidate, Decision


def version_tags(o: RunOutcomes) -> dict[str, str]:
    """Identity (found again on a rerun), every gate's verdict, the dataset it is of, and
    under privacy the guarantee (epsilon, delta, what it covers and does not), federated the
    sites and rounds."""
    private, federated = o.privacy(), o.federation()
    return (
        run_identity(o.fingerprint, o.spec)
        | o.verdicts()
        | {"assay.spec": o.spec.name}
        | (private.tags() if private else {})
        | (federated.tags() if federated else {})
        | augment.tags(o.finetune.augmentation)
    )


def evidence_files(o: RunOutcomes) -> list[tuple[str, Path]]:
    """(folder in the package, file here) beside the deployable package: the adapter, the data
    gate's report, the compression gate and pruning records, those that exist."""
    compressed = Path(o.compress.folder)
    files = [
        ("adapter", Path(o.finetune.folder) / "adapter"),
        ("reports", Path(o.data_gate.report_html)),
        *(("reports", compressed / name) for name in ("gate.json", "pruning.json")),
    ]
    return [(folder, path) for folder, path in files if path.exists()]


def card_evidence(o: RunOutcomes, candidate: Candidate, decision: Decision) -> CardEvidence:
    return CardEvidence(
        spec=o.spec,
        name=candidate.name,
        version=candidate.version,
        fingerprint=o.fingerprint,
        split_sizes=o.data.sizes(),
        metrics=o.metrics,
        gates=o.gates(),
        compression=asdict(o.compress),
        responsible=asdict(o.responsible),
        decision=decision,
        privacy=private.to_dict() if (private := o.privacy()) else None,
        federation=tuple(federated.card()) if (federated := o.federation()) else (),
        augmentation=tuple(augment.card(o.finetune.augmentation)),
        reference=o.baseline.chosen,
    )
