"""The model card, written only from what the run recorded: every number on it is one that
was logged to MLflow or kept in a stage folder, so the card cannot claim what was not measured.
Markdown for the registry and the Prefect UI, HTML (markdown-it) for a reviewer's browser."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

from assay.config import Spec
from assay.registry.models import Decision
from assay.responsible.conformal import group_coverage_rows, method
from assay.stages import baseline

MODELS = {
    "student_int8": "int8 student (ships)",
    "teacher": "teacher",
    "ensemble": "ensemble (what the student learnt from)",
    baseline.NAME: "reference",
}


@dataclass(frozen=True)
class CardEvidence:
    """What the card is written from: the spec and the recorded outcomes of one run."""

    spec: Spec
    name: str
    version: str
    fingerprint: str
    split_sizes: dict[str, int]
    metrics: dict[str, dict[str, float]]
    gates: dict[str, dict]  # every gate's verdict by name (data, leakage, quality, ...)
    compression: dict  # gate, sizes, measurements, pruning (CompressionOutcome fields)
    responsible: dict  # ResponsibleOutcome fields
    decision: Decision
    privacy: dict | None = None  # PrivacyReport.to_dict(); None when training is not private
    federation: tuple[str, ...] = ()  # its card section (FederationReport.card); () when off
    augmentation: tuple[str, ...] = ()  # its card section (assay.data.augment.card)
    reference: str = ""  # the chosen reference and the family's validation figures, in words


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _metrics(e: CardEvidence) -> list[str]:
    rows = []
    for model, label in MODELS.items():
        if model not in e.metrics:  # a run recorded before the model was evaluated
            continue
        m = e.metrics[model]
        rows.append(
            [
                label,
                f"{m['accuracy']:.4f} ({m['accuracy_low']:.4f}-{m['accuracy_high']:.4f})",
                f"{m['roc_auc']:.4f} ({m['roc_auc_low']:.4f}-{m['roc_auc_high']:.4f})",
                f"{m['log_loss']:.4f}",
            ]
        )
    evidence = e.decision.evidence
    versus = evidence.get("versus_champion")
    previous = (
        f"Previous champion (version {evidence.get('champion_version')}) on the same test rows "
        f"in this run: ROC AUC {versus['reference']:.4f}; this candidate minus the champion: "
        f"{versus['difference']:+.4f}, 95% paired bootstrap interval {versus['low']:+.4f} to "
        f"{versus['high']:+.4f} ({versus['resamples']} stratified resamples). Rule: "
        f"{evidence['rule']}."
        if versus
        else "There was no previous champion."
    )
    header = ["model", "accuracy (95% CI)", "ROC AUC (95% CI)", "log loss"]
    return [
        "## Performance (test split; accuracy at 0.5, before the shipped threshold)",
        "",
        *_table(header, rows),
        "",
        f"The reference is the best of the reference family (tuned gradient boosting, spline "
        f"logistic regression) on the validation rows: {e.reference}."
        if e.reference
        else "",
        "",
        previous,
    ]


def _fairness(e: CardEvidence) -> list[str]:
    r = e.responsible
    disparities = [
        [d["feature"], d["metric"], f"{d['value']:.4f}", f"{d['low']:.4f}-{d['high']:.4f}"]
        for f in r["fairness"]["features"]
        for d in f["disparities"]
    ]
    shipped = next(t for t in r["tradeoff"] if t["option"] == r["mitigation"])
    options = [
        [t["option"], t["training"], f"{t['accuracy']:.4f}"]
        + [f"{v:.4f}" for k, v in t.items() if "(" in k]
        for t in r["tradeoff"]
    ]
    gap_columns = [k for k in r["tradeoff"][0] if "(" in k]
    small = [
        f"{f['feature']} = {g['group']} ({int(g['count'])} rows)"
        for f in r["fairness"]["features"]
        for g in f["groups"]
        if g["small"]
    ]
    t = r["threshold"]
    return [
        "## Fairness",
        "",
        f"Operating threshold {t['value']:.4f}, chosen by `{t['rule']}` on the validation rows "
        f"(there: accuracy {t['valid_accuracy']:.4f}, F1 {t['valid_f1']:.4f}, "
        f"{100 * t['valid_positive_share']:.1f}% positive). Degeneracy check: "
        f"{r['decision_gate']['reason']}.",
        "",
        f"Shipped mitigation: `{r['mitigation']}` (test accuracy {shipped['accuracy']:.4f}, "
        f"{100 * shipped['positive_share']:.1f}% positive). "
        "Disparities of the shipped decisions, with bootstrap 95% intervals:",
        "",
        *_table(["feature", "metric", "value", "95% CI"], disparities),
        "",
        "Every mitigation option on the test split:",
        "",
        *_table(["option", "training", "accuracy", *gap_columns], options),
        "",
        *(f"![{name}]({Path(path).name})" for name, path in r["plots"].items() if "group" in name),
        "",
        "Groups below the minimum size of "
        f"{e.spec.fairness.min_group_size} test rows (figures unreliable"
        + (
            "; left out of the disparities, the gate and the mitigation's fit): "
            if e.spec.fairness.small_groups == "exclude"
            else "; still counted in the disparities and the gate): "
        )
        + (", ".join(small) if small else "none"),
        *(["", *(f"- {note}" for note in r["notes"])] if r["notes"] else []),
    ]


def _calibration_and_compression(e: CardEvidence) -> list[str]:
    c, u = e.responsible["calibration"], e.responsible["conformal"]
    coverage = group_coverage_rows(u)
    m, sizes = e.compression["measurements"], e.compression["sizes"]
    pruning = e.compression["pruning"]
    return [
        "## Calibration and uncertainty",
        "",
        f"Temperature {c['temperature']:.4f}; expected calibration error on test "
        f"{c['ece_before']:.4f} before scaling, {c['ece_after']:.4f} after. Conformal prediction "
        f"sets ({method(u)}, rows nothing else was fit on) at {u['target_coverage']:.2f} target "
        f"coverage reach {u['empirical_coverage']:.4f} on test; {100 * u['review_share']:.1f}% "
        "of rows are flagged for human review. Coverage and review share per group (a small "
        "group's figure is noise):",
        "",
        *_table(list(coverage[0]) if coverage else [], [list(r.values()) for r in coverage]),
        "",
        "## Compression",
        "",
        f"int8 student ROC AUC {m['int8_auc']:.4f} against the teacher's {m['teacher_auc']:.4f}; "
        f"agreement with the fp32 student {100 * m['agreement']:.2f}%; batch-1 p50 latency "
        f"{m['latency_p50_ms']:.3f} ms; file {sizes['model.int8.onnx']:,} bytes "
        f"(teacher ONNX {sizes['teacher.fp32.onnx']:,}). "
        + (f"Pruning: {pruning['summary']}." if pruning else "No pruning."),
        "",
        _what_it_learnt_from(e),
    ]


def _what_it_learnt_from(e: CardEvidence) -> str:
    """The ensemble the student was distilled from, or why it was the teacher alone."""
    ensemble = e.compression.get("ensemble") or {"weights": {"teacher": 1.0}}
    weights = ensemble["weights"]
    if set(weights) == {"teacher"}:
        why = (
            "under differential privacy the reference family learns from private rows without "
            "noise, so the released student may learn from the private teacher alone"
            if e.spec.privacy is not None
            else "as the spec asks (`compression.teacher`), or with no reference to join it"
        )
        return f"The student was distilled from the fine-tuned teacher alone: {why}."
    parts = ", ".join(f"{name} {w:.1f}" for name, w in weights.items())
    return (
        "The student was distilled from an ensemble of the fine-tuned teacher and the reference "
        f"family, weighted by log loss on the validation rows: {parts}."
    )


def _explanations(e: CardEvidence) -> list[str]:
    top = list(e.responsible["importance"].items())[: e.spec.explanations.top]
    examples = [
        f"- probability {x['probability']:.3f}: "
        + ", ".join(f"{f['feature']}={f['value']} ({f['attribution']:+.3f})" for f in x["features"])
        for x in e.responsible["examples"]
    ]
    return [
        "## Explanations (interventional SHAP of the shipped model's calibrated probability)",
        "",
        *_table(["feature", "mean abs. SHAP value"], [[k, f"{v:.4f}"] for k, v in top]),
        "",
        *examples,
        "",
        *(
            f"![{name}]({Path(path).name})"
            for name, path in e.responsible["plots"].items()
            if name in ("importance", "dependence")
        ),
    ]


def _privacy(e: CardEvidence) -> list[str]:
    p = e.privacy
    if p is None:
        return []
    steps = ", ".join(f"{stage} {n}" for stage, n in p["steps"].items() if n)
    return [
        "## Differential privacy",
        "",
        f"(epsilon {p['epsilon']:.3f}, delta {p['delta']:g}) spent of a budget of epsilon "
        f"{p['budget']:g}, composed by the {p['accountant']} accountant over every DP-SGD step "
        f"({steps}).",
        "",
        "Covered:",
        *(f"- {item}" for item in p["covered"]),
        "",
        "Not covered (these read rows without noise):",
        *(f"- {item}" for item in p["not_covered"] or ["nothing"]),
        "",
        "Evidence only (never reaches the shipped model):",
        *(f"- {item}" for item in p["evidence_only"]),
        "",
    ]


def _gates(e: CardEvidence) -> list[str]:
    rows = [[name, _verdict(gate), gate["reason"]] for name, gate in e.gates.items()]
    rows.append(
        ["promotion", "champion" if e.decision.promoted else "not champion", e.decision.reason]
    )
    return ["## Gate decisions", "", *_table(["gate", "verdict", "reason"], rows)]


def _verdict(gate: dict) -> str:
    return "passed" if gate["passed"] else "failed"


def model_card(e: CardEvidence) -> str:
    """The card as Markdown."""
    spec = e.spec
    sizes = ", ".join(f"{k} {v:,}" for k, v in e.split_sizes.items())
    lines = [
        f"# Model card: {e.name} version {e.version}",
        "",
        "## Intended use",
        "",
        f"{spec.description.strip() or spec.name} Predicts `{spec.label.column}` = "
        f"`{spec.label.positive}` (against `{spec.label.negative}`) from "
        f"{len(spec.feature_columns)} columns: {', '.join(spec.feature_columns)}. Decisions use "
        "the shipped policy (calibration, mitigation rules, review flag); rows flagged for "
        "review should go to a person.",
        "",
        "## Data",
        "",
        f"Snapshot `{e.fingerprint[:12]}` ({sizes} rows); data gate: "
        f"{e.gates['data']['reason']}, {e.gates['data']['warnings']} warning expectation(s) "
        f"failed. Leakage guard: {e.gates['leakage']['reason']}. Sensitive features assessed: "
        f"{', '.join(spec.sensitive_features) or 'none'}.",
        "",
        *_metrics(e),
        "",
        *_fairness(e),
        "",
        *_calibration_and_compression(e),
        "",
        *_explanations(e),
        "",
        *_privacy(e),
        *e.federation,
        *e.augmentation,
        "## Limitations",
        "",
        f"- Measured on one test split of {e.split_sizes.get('test', 0):,} rows from the same "
        "source as training; performance on other populations is unknown.",
        "- The mitigation's per-group rules are randomized (drawn from a hash of each row): "
        "realized accuracy and disparities scatter around their expectation.",
        "- Dynamic int8 quantization scales activations per batch: a row's score can move with "
        "the rows scored beside it (on Adult by 1e-3 typically, up to 0.01), and SHAP values "
        "are computed on such batches.",
        "- SHAP values are interventional: an absent feature takes the values of sampled "
        "training rows, independently of the row's other features, so on correlated features "
        "the model is also asked about combinations the data never holds.",
        "",
        *_gates(e),
    ]
    return "\n".join(lines) + "\n"


def render_html(markdown: str, title: str) -> str:
    body = MarkdownIt("commonmark").enable("table").render(markdown)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em}"
        f"</style></head><body>{body}</body></html>\n"
    )


def write_card(e: CardEvidence, folder: Path) -> tuple[Path, Path]:
    """model-card.md and model-card.html in `folder`, with the plots they show."""
    folder.mkdir(parents=True, exist_ok=True)
    for plot in e.responsible["plots"].values():
        shutil.copy2(plot, folder / Path(plot).name)
    markdown = model_card(e)
    md, html = folder / "model-card.md", folder / "model-card.html"
    md.write_text(markdown, encoding="utf-8")
    html.write_text(render_html(markdown, f"{e.name} v{e.version}"), encoding="utf-8")
    return md, html
