"""Benchmark: what privacy costs. On the spec's own split (adult.test for Adult), in one run:
the whole chain (pretrain, fine-tune, distil and quantize, responsible steps) without privacy
and by DP-SGD at epsilon 8, 3 and 1 (pretraining and fine-tuning private, the student
distilled on the public validation rows and synthetic rows between them unless the spec says
otherwise), each with the shipped int8 ROC AUC, the accuracy and equalized-odds difference
of its shipped (mitigated) decisions and its training seconds; then
federated fine-tuning on the same pretrained encoder with the training and validation rows
dealt to five sites, IID and non-IID (a Dirichlet draw, alpha 0.5, over the first sensitive
feature's groups), beside centralised LoRA: the teachers' test ROC AUC, the rounds of averaging
behind the adapter kept, bytes sent per round and the worst site's validation AUC.

The sites answer their rounds in this process through the library's own site code (the
Prefect shell that runs them as deployments on their own work pools is tested in
tests/federated/test_sites.py). The last line printed is JSON.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from assay.compression.stage import compress_stage
from assay.config import FederationSpec, PrivacySpec, Spec, load_spec
from assay.data.labels import labels
from assay.data.split import Split
from assay.federated.exchange import Exchange
from assay.federated.site import SiteData, answer_round, take_census
from assay.federated.stage import federated_finetune_stage
from assay.modeling.rows import training_rows
from assay.modeling.teacher import TeacherOutcome, finetune_stage, pretrain_stage
from assay.pipeline.compose import responsible_stage
from assay.privacy.report import PrivacyReport
from assay.responsible.options import mitigation_feature
from bench.quality import spec_split

EPSILONS = (None, 8.0, 3.0, 1.0)  # None: the chain without privacy
DELTA = 1e-5
SITES = 5
ALPHA = 0.5  # Dirichlet concentration of the non-IID deal
MIN_CLASS_ROWS = 10  # fewest rows of each class a site holds in training and in validation
DRAWS = 100  # Dirichlet draws tried before the data is judged too small for the sites


def main(spec_path: str, profile: str | None = None) -> int:
    spec = load_spec(spec_path, profile)
    split = spec_split(spec)
    with tempfile.TemporaryDirectory(prefix="assay-bench-") as scratch:
        root = Path(scratch)
        private = [private_chain(split, spec, epsilon, root) for epsilon in EPSILONS]
        federated = federation(split, spec, root)
    for row in private:
        print(
            f"epsilon {row['epsilon'] or 'off':>5}  int8 ROC AUC {row['roc_auc']:.4f}  "
            f"accuracy {row['accuracy']:.4f}  EOD {row['equalized_odds']:.4f}  "
            f"{row['seconds']:.0f} s"
        )
    for row in federated["runs"]:
        print(
            f"{row['deal']:>11}: teacher ROC AUC {row['roc_auc']:.4f} "
            f"({row['gap']:+.4f} vs centralised), best after {row['rounds_to_best']} rounds, "
            f"{row['bytes_per_round']:,} bytes/round, worst site {row['worst_site_auc']:.4f}"
        )
    result = {
        "bench": "privacy",
        "profile": spec.profile,
        "delta": DELTA,
        "private": private,
        "federated": federated,
    }
    print(json.dumps(result))
    return 0


def private_chain(split: Split, spec: Spec, epsilon: float | None, root: Path) -> dict:
    """The whole chain at `epsilon` (None: without privacy) and its shipped figures."""
    spec = with_privacy(spec, epsilon)
    folder = root / f"epsilon-{epsilon or 'off'}"
    started = time.perf_counter()
    pretrained = pretrain_stage(split, spec, folder / "pretrain")
    teacher = finetune_stage(split, spec, folder / "pretrain", folder / "teacher")
    student = compress_stage(split, spec, folder / "teacher", folder / "student")
    seconds = time.perf_counter() - started
    responsible = responsible_stage(split, spec, folder / "student", folder / "responsible")
    shipped = next(r for r in responsible.tradeoff if r["option"] == responsible.mitigation)
    feature = mitigation_feature(spec)
    scores = np.load(responsible.test_scores, allow_pickle=False)
    row = {
        "epsilon": epsilon,
        "roc_auc": float(roc_auc_score(labels(split.test, spec), scores)),
        "accuracy": shipped["accuracy"],
        "equalized_odds": shipped[f"equalized_odds_difference ({feature})"],
        "mitigation": responsible.mitigation,
        "feature": feature,
        "seconds": seconds,
    }
    if epsilon is not None:
        histories = {
            "pretrain": pretrained.dp_history,
            "finetune": teacher.dp_history,
            "compress": student.dp_history,
        }
        report = PrivacyReport.of(spec, histories)
        row |= {"spent_epsilon": report.epsilon, "not_covered": report.not_covered}
    return row


def with_privacy(spec: Spec, epsilon: float | None) -> Spec:
    """The spec at `epsilon`: its own privacy settings when it has them (else defaults with
    public validation and calibration rows, the student distilled on the former), the budget
    and delta set
    here; None takes privacy off."""
    if epsilon is None:
        return spec.model_copy(update={"privacy": None})
    template = spec.privacy or PrivacySpec(
        epsilon=epsilon, public=["validation", "calibration"], distil_on="public"
    )
    privacy = template.model_copy(update={"epsilon": epsilon, "delta": DELTA})
    return spec.model_copy(update={"privacy": privacy})


def federation(split: Split, spec: Spec, root: Path, rounds: int | None = None) -> dict:
    """Centralised LoRA and federated rounds (IID and Dirichlet deals) on one pretrained
    encoder; each teacher scored on the same test rows."""
    spec = spec.model_copy(update={"privacy": None, "federation": None})
    folder = root / "federation"
    pretrain_stage(split, spec, folder / "pretrain")
    central = finetune_stage(split, spec, folder / "pretrain", folder / "central")
    central_auc = teacher_auc(central, split, spec)
    sites = [f"site-{i + 1}" for i in range(SITES)]
    federated = spec.model_copy(
        update={"federation": FederationSpec(sites=sites, rounds=rounds or 20)}
    )
    # the sites share out the rows centralised LoRA trained on (the quick profile's capped
    # sample, not every training row), so the two see the same rows
    train = training_rows(split, spec)
    runs = []
    for deal in ("iid", "dirichlet"):
        assign = deal_rows(replace(split, train=train), federated, deal)
        parts = {
            site: Split(
                train[assign["train"] == i], split.valid[assign["valid"] == i],
                split.test.iloc[:0], split.unlabelled.iloc[:0], split.calibration.iloc[:0],
            )
            for i, site in enumerate(sites)
        }  # fmt: skip
        outcome = federated_rounds(split, federated, parts, folder / deal)
        record = outcome.federation
        auc = teacher_auc(outcome, split, spec)
        runs.append(
            {
                "deal": deal,
                "roc_auc": auc,
                "gap": auc - central_auc,
                "rounds_trained": len(record["rounds"]) - 1,
                "rounds_to_best": record["best_round"] - 1,  # averages behind the kept adapter
                "bytes_per_round": int(np.mean([r["bytes"] for r in record["rounds"]])),
                "worst_site_auc": min(record["site_auc"].values()),
                "site_rows": record["site_rows"],
                "seconds": record["seconds"],
            }
        )
    return {"sites": SITES, "alpha": ALPHA, "central_roc_auc": central_auc, "runs": runs}


def deal_rows(split: Split, spec: Spec, deal: str) -> dict[str, np.ndarray]:
    """Each training and validation row's site: uniformly at random ("iid"), or per group of
    the first sensitive feature by site shares drawn from Dirichlet(ALPHA) ("dirichlet").

    A draw that leaves any site fewer than MIN_CLASS_ROWS rows of either class in either split
    is drawn again (the minimum-size loop of the NIID-Bench partitioner): a site's validation
    AUC on a handful of rows says nothing, and a round cannot train on one class. When no draw
    in DRAWS meets it, the data is too small for five sites and the error says so."""
    rng = np.random.default_rng(spec.model.seed)
    frames = {"train": split.train, "valid": split.valid}
    feature = spec.sensitive_features[0]
    groups = {name: frame[feature].astype(str).to_numpy() for name, frame in frames.items()}
    positive = {name: labels(frame, spec).astype(bool) for name, frame in frames.items()}
    short = ""
    for _ in range(DRAWS):
        assign = _draw(groups, deal, rng)
        short = _short_site(positive, assign)
        if not short:
            return assign
    raise ValueError(
        f"no {deal} deal of {len(split.train):,} training and {len(split.valid):,} validation "
        f"rows in {DRAWS} draws gives each of {SITES} sites {MIN_CLASS_ROWS} rows of each class "
        f"(last draw: {short}); benchmark federation on more rows"
    )


def _draw(
    groups: dict[str, np.ndarray], deal: str, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """One deal of each split's rows, given each row's group."""
    shares: dict[object, np.ndarray] = {}
    assign = {}
    for name, group_of in groups.items():
        if deal == "iid":
            assign[name] = rng.integers(0, SITES, len(group_of))
            continue
        site = np.empty(len(group_of), dtype=int)
        for group in np.unique(group_of):
            share = shares.setdefault(group, rng.dirichlet(np.full(SITES, ALPHA)))
            rows = group_of == group
            site[rows] = rng.choice(SITES, rows.sum(), p=share)
        assign[name] = site
    return assign


def _short_site(positive: dict[str, np.ndarray], assign: dict[str, np.ndarray]) -> str:
    """The first site short of MIN_CLASS_ROWS rows of a class, described; "" when none is."""
    for name, site in assign.items():
        for cls, rows in (("positive", positive[name]), ("negative", ~positive[name])):
            counts = np.bincount(site[rows], minlength=SITES)
            if counts.min() < MIN_CLASS_ROWS:
                return f"site-{counts.argmin() + 1} got {counts.min()} {cls} {name} rows"
    return ""


def federated_rounds(
    split: Split, spec: Spec, parts: dict[str, Split], folder: Path
) -> TeacherOutcome:
    """The coordinator's rounds, each site answering on its own part."""
    exchange = Exchange(folder / "exchange")
    sites = [SiteData(site, part, spec) for site, part in parts.items()]
    for local in sites:
        take_census(exchange, local, fingerprint=f"{local.name}-bench")

    def ask(mode: str, round_: int) -> None:
        for local in sites:
            answer_round(exchange, round_, local, train=mode == "train")

    return federated_finetune_stage(
        split, spec, folder.parent / "pretrain", folder / "teacher", exchange, ask
    )


def teacher_auc(outcome: TeacherOutcome, split: Split, spec: Spec) -> float:
    scores = np.load(outcome.test_scores, allow_pickle=False)
    return float(roc_auc_score(labels(split.test, spec), scores))
