"""Benchmark: is the shipped candidate fair, calibrated and explainable, and what does each
mitigation cost? Trains the teacher and the student on the spec's split (full profile by
default), runs the responsible stage on the int8 student, then distils a second student with
reweighing by the first sensitive feature and runs the stage on it too. Reports, on the test
split, accuracy, demographic parity difference and equalized odds difference per sensitive
feature for every option, the calibration error before and after temperature scaling, the
conformal coverage, and the most important features. The last line printed is JSON.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from assay.compression.stage import compress_stage
from assay.config import load_spec
from assay.data.labels import labels
from assay.modeling.teacher import finetune_stage, pretrain_stage
from assay.pipeline.compose import responsible_stage
from assay.responsible.stage import mitigation_feature
from bench.quality import spec_split

EO_TARGET = 0.02  # the equalized-odds gap an option must reach to count as fair here


def main(spec_path: str, profile: str | None = None) -> int:
    spec = load_spec(spec_path, profile)
    feature = mitigation_feature(spec)
    reweighed = spec.model_copy(
        update={"compression": spec.compression.model_copy(update={"reweigh_on": feature})}
    )
    split = spec_split(spec)
    with tempfile.TemporaryDirectory(prefix="assay-bench-") as scratch:
        root = Path(scratch)
        pretrain_stage(split, spec, root / "pretrain")
        finetune_stage(split, spec, root / "pretrain", root / "teacher")
        outcomes = {}
        for name, variant in (("unweighted", spec), ("reweighed", reweighed)):
            compress_stage(split, variant, root / "teacher", root / f"student-{name}")
            outcomes[name] = responsible_stage(
                split, variant, root / f"student-{name}", root / f"responsible-{name}"
            )
        scores = np.load(outcomes["unweighted"].test_scores, allow_pickle=False)
        at_half = float(np.mean((scores >= 0.5) == labels(split.test, spec)))
    rows = [row for outcome in outcomes.values() for row in outcome.tradeoff]
    unmitigated = next(r for r in rows if r["option"] == "none" and r["training"] == "unweighted")
    # A mitigation's cost is measured from the most accurate unmitigated decisions: at the
    # spec's threshold (max_f1 by default trades accuracy for F1), or at 0.5
    reference = max(unmitigated["accuracy"], at_half)
    eo = f"equalized_odds_difference ({feature})"
    # The best equalized-odds option: the most accurate one within EO_TARGET (else the lowest gap)
    within = [r for r in rows if r[eo] <= EO_TARGET]
    best = max(within, key=lambda r: r["accuracy"]) if within else min(rows, key=lambda r: r[eo])
    for row in rows:
        cells = "  ".join(
            f"{k.replace('_difference', '')} {v:.4f}"
            for k, v in row.items()
            if isinstance(v, float)
        )
        print(f"{row['option']:26} {row['training']:18} {cells}")
    main_outcome = outcomes["unweighted"]
    result = {
        "bench": "fairness",
        "profile": spec.profile,
        "mitigated_feature": feature,
        "options": [
            {k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in rows
        ],
        "best_equalized_odds": {
            "option": best["option"],
            "training": best["training"],
            eo: round(best[eo], 4),
            "accuracy_cost_points": round(100 * (reference - best["accuracy"]), 2),
            # the same cost in expectation over the rules' random choices (as drawn: above)
            "expected_accuracy_cost_points": round(
                100 * (reference - best["expected_accuracy"]), 2
            ),
        },
        "unmitigated_accuracy": {
            "at_threshold": round(unmitigated["accuracy"], 4),
            "threshold": outcomes["unweighted"].threshold,
            "at_0.5": round(at_half, 4),
        },
        "calibration": {k: round(v, 4) for k, v in main_outcome.calibration.items()},
        "conformal": {k: round(v, 4) for k, v in main_outcome.conformal.items()},
        "top_features": dict(list(main_outcome.importance.items())[: spec.explanations.top]),
        "fairness_gate": main_outcome.gate["reason"],
    }
    print(json.dumps(result))
    return 0
