"""The package: the deployable folder (`assay predict --model` takes it), from every step
before it: model.int8.onnx, tokenizer/, spec.json (copied from the compression stage),
decision.json (the policy the predictor applies), responsible.json (every figure),
reference-profile.json (the training rows and their scores: what drift monitoring compares
new rows with) and the PNG plots. It reports the fairness, mitigation, calibration, review and
explanation evidence the Prefect UI shows."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assay.config import Spec
from assay.data.split import Split
from assay.responsible.conformal import group_coverage_rows, method
from assay.responsible.fairness import FairnessReport
from assay.serving.groups import INTERSECTION
from assay.serving.layout import PROFILE_FILE, REPORT_FILE, SCORES_FILE, copy_model_files
from assay.serving.policy import DecisionPolicy, GroupQuantiles
from assay.serving.profile import build_profile
from assay.stages import calibrate, compress, conformal, explain, fairness
from assay.stages.calibrate import Calibration, scored_frames
from assay.stages.compress import STUDENT_SECTIONS
from assay.stages.conformal import ConformalReview
from assay.stages.explain import Explanations
from assay.stages.fairness import FairnessOutcome
from assay.stages.stage import Image, Markdown, Report, Stage, Table, folder_of

NAME = "responsible"


@dataclass(frozen=True)
class ResponsibleOutcome:
    folder: str
    test_scores: str
    calibration: dict
    conformal: dict
    tradeoff: list[dict]
    mitigation: str
    fairness: dict
    gate: dict
    importance: dict[str, float]
    examples: list[dict]
    plots: dict[str, str]
    threshold: dict
    decision_gate: dict
    notes: list[str]

    @property
    def passed(self) -> bool:
        return bool(self.gate["passed"])

    def summary(self) -> str:
        """One line on what ships: decisions, fairness, calibration, review."""
        shipped = next(r for r in self.tradeoff if r["option"] == self.mitigation)
        gaps = "".join(
            f"{k.replace('_difference', '')} {v:.4f}, " for k, v in shipped.items() if "(" in k
        ).removesuffix(", ")
        gaps = f"{gaps}; " if gaps else ""
        t = self.threshold
        return (
            f"threshold {t['value']:.4f} ({t['rule']}), mitigation `{self.mitigation}`: "
            f"test accuracy {shipped['accuracy']:.4f}, "
            f"{100 * shipped['positive_share']:.1f}% positive; {gaps}"
            f"ECE {self.calibration['ece_before']:.4f} -> {self.calibration['ece_after']:.4f}; "
            f"conformal coverage {self.conformal['empirical_coverage']:.4f} "
            f"(target {self.conformal['target_coverage']:.2f}{self._lowest_group()}), "
            f"{100 * self.conformal['review_share']:.1f}% of rows to review"
        )

    def _lowest_group(self) -> str:
        """The least covered group that is not small, for the summary line."""
        judged = [
            (g["coverage"], feature, g["group"])
            for feature, groups in self.conformal["groups"].items()
            if INTERSECTION not in feature
            for g in groups
            if not g["small"]
        ]
        if not judged:
            return ""
        coverage, feature, group = min(judged)
        return f"; lowest group {feature} {group} {coverage:.4f}"


def _into(folder: Path, path: str) -> str:
    """A copy of the file in the package folder (the path itself when it already is there)."""
    target = folder / Path(path).name
    if Path(path).resolve() != target.resolve():
        shutil.copy2(path, target)
    return str(target)


def package_stage(
    split: Split,
    spec: Spec,
    folder: Path,
    compressed: Path,
    calibration: Calibration,
    conformal: ConformalReview,
    fairness: FairnessOutcome,
    explanations: Explanations,
) -> ResponsibleOutcome:
    """The deployable package: the compressed model's files, the decision policy, the plots,
    the drift reference and every figure."""
    copy_model_files(compressed, folder)
    DecisionPolicy(
        calibration.temperature,
        fairness.rules,
        conformal.target_coverage,
        conformal.qhat,
        fairness.threshold["value"],
        fairness.threshold["rule"],
        GroupQuantiles(**conformal.group_qhats) if conformal.group_qhats else None,
    ).save(folder)
    scores = folder / SCORES_FILE
    np.save(scores, calibration.scores("test"), allow_pickle=False)
    # What drift is measured against in production: the training rows and the shipped scores
    train = scored_frames(split, spec)["train"]
    build_profile(train, spec, calibration.scores("train")).save(folder / PROFILE_FILE)
    plots = {
        "reliability": calibration.plot,
        **fairness.plots,
        "importance": explanations.plot,
        "dependence": explanations.dependence,
    }
    outcome = ResponsibleOutcome(
        folder=str(folder),
        test_scores=str(scores),
        calibration=calibration.figures(),
        conformal=conformal.to_dict(),
        tradeoff=fairness.tradeoff,
        mitigation=fairness.mitigation,
        fairness=fairness.fairness,
        gate=fairness.gate,
        importance=explanations.importance,
        examples=explanations.examples,
        plots={name: _into(folder, path) for name, path in plots.items()},
        threshold=fairness.threshold,
        decision_gate=fairness.decision_gate,
        notes=[*conformal.notes, *fairness.notes],
    )
    (folder / REPORT_FILE).write_text(json.dumps(asdict(outcome), indent=2))
    return outcome


def run(folder: Path, split: Split, spec: Spec, compressed: Any, *parts: Any) -> ResponsibleOutcome:
    """`parts`: the calibration, conformal review, fairness and explanations, in that order."""
    return package_stage(split, spec, folder, folder_of(compressed), *parts)


def reports(outcome: ResponsibleOutcome) -> list[Report]:
    """Tables and plots an operator reads in the Prefect UI without opening any file."""
    gate, threshold = outcome.gate, outcome.threshold
    return [
        Table(
            "fairness-gate",
            gate["checks"] or [{"check": "none configured"}],
            f"**Fairness gate**: {gate['reason']}; shipped mitigation: `{outcome.mitigation}`; "
            f"threshold {threshold['value']:.4f} ({threshold['rule']}); **degeneracy check**: "
            f"{outcome.decision_gate['reason']}",
        ),
        Table(
            "fairness-disparities",
            FairnessReport.from_dict(outcome.fairness).disparity_table(),
            "Disparities of the shipped decisions on the test split (bootstrap 95% CI)",
        ),
        Table(
            "mitigation-tradeoff",
            [
                {k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}
                for r in outcome.tradeoff
            ],
            "Each mitigation option on the test split",
        ),
        Table(
            "conformal-coverage",
            group_coverage_rows(outcome.conformal),
            "Conformal coverage and review share per sensitive group on the test split",
        ),
        Markdown("calibration-uncertainty-explanations", evidence(outcome)),
        *(
            Image(
                f"plot-{name}",
                Path(path),
                f"`{Path(path).name}` of the shipped int8 model, on the test split",
            )
            for name, path in outcome.plots.items()
        ),
    ]


def evidence(outcome: ResponsibleOutcome) -> str:
    """Calibration, conformal review and the explanations, in words."""
    calibration, review = outcome.calibration, outcome.conformal
    top = list(outcome.importance.items())[:5]
    return "\n".join(
        [
            f"**Calibration**: temperature {calibration['temperature']:.3f}, ECE "
            f"{calibration['ece_before']:.4f} -> {calibration['ece_after']:.4f} (test)",
            "",
            f"**Conformal review** ({method(review)}): target coverage "
            f"{review['target_coverage']:.2f}, empirical "
            f"{review['empirical_coverage']:.4f}; "
            f"{100 * review['review_share']:.1f}% of test rows flagged for review "
            "(per group: the `conformal-coverage` table)",
            "",
            "**Most important features** (mean |SHAP|): "
            + ", ".join(f"{name} {value:.4f}" for name, value in top),
            "",
            "**Example explanations** (SHAP values of the calibrated probability):",
            *(
                f"- row {e['row']}, probability {e['probability']:.3f}: "
                + ", ".join(
                    f"{f['feature']}={f['value']} ({f['attribution']:+.3f})" for f in e["features"]
                )
                for e in outcome.examples
            ),
        ]
    )


STAGE = Stage(
    NAME,
    (
        *STUDENT_SECTIONS,
        "sensitive_features",
        "fairness",
        "decision",
        "uncertainty",
        "explanations",
    ),
    (compress.NAME, calibrate.NAME, conformal.NAME, fairness.NAME, explain.NAME),
    run,
    ResponsibleOutcome,
    files=lambda o: [("plots", Path(p)) for p in o.plots.values()],
    kept=lambda o: Path(o.folder),
    reports=reports,
)
