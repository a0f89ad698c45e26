"""Score flow: the champion's predictions for every accepted batch without labels, one file per
(batch, version) in predictions/<dataset>/, with the challenger scoring beside it in shadow."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact

from assay.serving.batch import predictions_file
from flows.dataset import open_dataset
from tasks import score as s


@flow(name="score", log_prints=True)
def score(spec_path: str, home: str | None = None, batches: list[str] | None = None) -> list[str]:
    """Score `batches` (hashes or prefixes; all unlabelled ones without scores when left
    out) with the champion; return the predictions files written or found."""
    spec, where = open_dataset(spec_path, home)
    champion, challenger = s.versions(where, spec)
    if champion is None:
        print(f"{spec.registered_name} has no champion yet: nothing to score with")
        return []
    todo = s.batches(where, champion.number, batches)
    if not todo:
        print(f"every unlabelled batch has champion v{champion.number}'s predictions")
        return []
    written = []
    for record in todo:
        scored = s.score(where, record, champion)
        path = predictions_file(where.predictions, record.hash, champion.number)
        print(f"{record.source}: {len(scored):,} rows scored by v{champion.number} -> {path}")
        written.append({"batch": record.hash[:12], "source": record.source, "rows": len(scored)})
        if challenger is not None:
            shadow = s.score(where, record, challenger, shadow=True)
            found = s.report_shadow(where, spec, record, (champion, challenger), (scored, shadow))
            print(found.summary())
    create_table_artifact(
        key="scored-batches",
        table=written,
        description=f"scored by champion v{champion.number} into {where.predictions}",
    )
    return [str(predictions_file(where.predictions, r.hash, champion.number)) for r in todo]
