"""Benchmark: what the chain buys with few labels. For each dataset, N labelled rows (250, 500,
1,000, 2,000 and all; stratified, several seeds) are kept and every other non-test row is left
unlabelled, as a user's training file would hold them; the run's own split then takes its
validation and calibration rows from the N. Each N and seed trains, on the same test rows: the
chain as it ships (int8 student), its teacher and the ensemble the student learnt from, the
chain without pretraining, and the references: tuned gradient boosting, spline logistic
regression (assay.modeling.reference) and k nearest neighbours (k chosen on the validation
rows). The encoder is pretrained once per dataset on every non-test row, which is what a run
pretrains on whatever the number of labels (the calibration rows' features, at most a fifth
of N, are in that corpus here and not in a run's).

Datasets: the spec's own (Adult by default, adult.test as its test rows), `generated` (20,000
rows with numbers, categories and a text column, 15% positives, a known signal with
interactions) and `breast-cancer` (569 rows, 30 numbers; shipped with scikit-learn). Settings
come from the environment: ASSAY_LABELS_SIZES (default 250,500,1000,2000,all),
ASSAY_LABELS_SEEDS (default 5) and ASSAY_LABELS_DATASETS (default spec,generated,breast-cancer;
`spec` is the --spec dataset). The chain's settings are the spec's (with --profile) for every
dataset.

Reported per dataset and N: each model's mean test ROC AUC over the seeds with a 95% t
interval; int8 minus the best reference (the reference with the best mean at that N) paired by
seed, with its interval; and the label-efficiency ratio: the labels the int8 model needs to
reach the best reference's mean at 2,000 labels (interpolated in log N), over 2,000. The last
line printed is JSON.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from assay.compression.stage import compress_stage
from assay.config import Spec, load_spec
from assay.data.labels import labels
from assay.data.split import Split, split_batches
from assay.data.store import BatchRecord
from assay.modeling.reference import load_members
from assay.modeling.teacher import finetune_stage, pretrain_stage
from assay.stages.baseline import fit_and_score_baseline
from bench.quality import spec_split

SIZES = "250,500,1000,2000,all"
DATASETS = "spec,generated,breast-cancer"
REFERENCES = ("boosting", "logistic", "knn")
CHAIN = ("int8", "teacher", "ensemble", "int8 without pretraining")
TEST_SOURCE = "bench-test"
K_NEIGHBOURS = (5, 15, 45)


def settings() -> tuple[list[int | None], int, list[str]]:
    """Sizes (None: all), seeds and datasets from the environment."""
    sizes = os.environ.get("ASSAY_LABELS_SIZES", SIZES).split(",")
    seeds = int(os.environ.get("ASSAY_LABELS_SEEDS", "5"))
    names = os.environ.get("ASSAY_LABELS_DATASETS", DATASETS).split(",")
    return [None if s == "all" else int(s) for s in sizes], seeds, names


def main(spec_path: str, profile: str | None = None) -> int:
    spec = load_spec(spec_path, profile)
    sizes, seeds, names = settings()
    results = []
    with tempfile.TemporaryDirectory(prefix="assay-bench-") as scratch:
        for name in names:
            dataset_spec, pool, test = dataset(name, spec)
            print(f"{name}: {len(pool):,} non-test rows, {len(test):,} test rows", flush=True)
            results.append(
                measure(name, dataset_spec, pool, test, sizes, seeds, Path(scratch) / name)
            )
    for result in results:
        print_table(result)
    print(json.dumps({"bench": "labels", "profile": spec.profile, "datasets": results}))
    return 0


def dataset(name: str, spec: Spec) -> tuple[Spec, pd.DataFrame, pd.DataFrame]:
    """The dataset's spec (split by source: the test rows are their own batch), its labelled
    non-test rows and its test rows."""
    if name == "spec":
        split = spec_split(spec)
        pool = pd.concat([split.train, split.valid, split.calibration], ignore_index=True)
        return by_source(spec), pool, split.test
    if name == "generated":
        frame = generated_rows(25_000, seed=0)
        columns = {"income": "numeric", "tenure": "numeric", "region": "categorical",
                   "plan": "categorical", "note": "text"}  # fmt: skip
    elif name == "breast-cancer":
        from sklearn.datasets import load_breast_cancer

        data = load_breast_cancer(as_frame=True)
        frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
        frame["target"] = np.where(frame["target"] == 0, "malignant", "benign")
        columns = {c: "numeric" for c in frame.columns if c != "target"}
    else:
        raise SystemExit(f"unknown dataset {name!r}: one of {DATASETS}")
    label = "target"
    positive = "yes" if name == "generated" else "malignant"
    negative = "no" if name == "generated" else "benign"
    derived = Spec.model_validate(
        {
            **spec.model_dump(
                include={"baseline", "model", "pretrain", "finetune", "compression", "gates"}
            ),
            "name": name.replace("-", "_"),
            "columns": {c: {"type": kind} for c, kind in columns.items()},
            "label": {"column": label, "positive": positive, "negative": negative},
            "split": {"rule": "source", "test_sources": [TEST_SOURCE]},
            "expectations": spec.expectations,
            "profile": spec.profile,
        }
    )
    test = frame.sample(frac=0.3, random_state=0)
    return derived, frame.drop(index=test.index).reset_index(drop=True), test.reset_index(drop=True)


def by_source(spec: Spec) -> Spec:
    split = spec.split.model_copy(update={"rule": "source", "test_sources": [TEST_SOURCE]})
    return spec.model_copy(update={"split": split})


def generated_rows(n: int, seed: int) -> pd.DataFrame:
    """A known signal: log-odds from income (a threshold and a slope), an interaction of
    region and plan, tenure, and words of the note; 15% positives."""
    rng = np.random.default_rng(seed)
    income = rng.gamma(3.0, 15.0, n)
    tenure = rng.integers(0, 40, n).astype(float)
    region = rng.choice(["north", "south", "east", "west", "centre"], n)
    plan = rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2])
    angry = rng.random(n) < 0.3
    note = np.where(
        angry,
        rng.choice(["refund please", "charged twice", "cancel now", "very late"], n),
        rng.choice(["thanks", "all good", "question about plan", "no comment"], n),
    )
    score = (
        1.2 * (income > 60) + 0.02 * income - 0.03 * tenure + 1.1 * angry
        + 0.9 * ((region == "north") & (plan == "pro")) - 0.6 * (plan == "basic")
        + rng.logistic(size=n)
    )  # fmt: skip
    positive = score > np.quantile(score, 0.85)
    frame = pd.DataFrame(
        {
            "income": income.round(2),
            "tenure": tenure,
            "region": region,
            "plan": plan,
            "note": note,
            "target": np.where(positive, "yes", "no"),
        }
    )
    frame.loc[rng.random(n) < 0.02, "income"] = np.nan  # some missing numbers
    return frame


def labelled_split(pool: pd.DataFrame, test: pd.DataFrame, spec: Spec, n: int | None, seed: int):
    """N stratified labelled rows (all for None), every other pool row without its label, split
    as a run splits them (validation and calibration rows from the labelled ones)."""
    label = spec.label.column
    kept = pool.copy()
    if n is not None and n < len(pool):
        keep, _ = train_test_split(
            pool.index, train_size=n, stratify=pool[label], random_state=seed
        )
        kept[label] = kept[label].where(kept.index.isin(keep))
    split = spec.split.model_copy(update={"seed": seed})
    spec = spec.model_copy(update={"split": split})
    batches = [
        (BatchRecord("pool", "pool", "", len(kept), True, ""), kept),
        (BatchRecord("test", TEST_SOURCE, "", len(test), True, ""), test),
    ]
    return spec, split_batches(batches, spec)


def pretrained_once(pool: pd.DataFrame, test: pd.DataFrame, spec: Spec, folder: Path) -> dict:
    """The encoder pretrained on every non-test row, and the same tokenizer without
    pretraining (the chain without it), as {True: folder, False: folder}."""
    features = pool.drop(columns=[spec.label.column])
    none = pool.iloc[:0]
    everything = Split(none, none, test, features, none)
    pretrain_stage(everything, spec, folder / "pretrained")
    off = spec.model_copy(update={"pretrain": spec.pretrain.model_copy(update={"enabled": False})})
    pretrain_stage(everything, off, folder / "scratch")
    return {True: folder / "pretrained", False: folder / "scratch"}


def knn_scores(split: Split, spec: Spec, references: Path) -> np.ndarray:
    """k nearest neighbours on the logistic member's features (one-hot, splines, TF-IDF),
    k chosen on the validation rows."""
    features = load_members(references)["logistic"]
    prepared = {
        part: features.pipeline[0].transform(features.columns.prepare(getattr(split, part)))
        for part in ("train", "valid", "test")
    }
    y_train, y_valid = labels(split.train, spec), labels(split.valid, spec)
    best, best_auc = None, -1.0
    for k in K_NEIGHBOURS:
        if k > len(y_train):
            break
        model = KNeighborsClassifier(n_neighbors=k).fit(prepared["train"], y_train)
        auc = roc_auc_score(y_valid, model.predict_proba(prepared["valid"])[:, 1])
        if auc > best_auc:
            best, best_auc = model, auc
    return best.predict_proba(prepared["test"])[:, 1]


def one_run(spec: Spec, split: Split, encoders: dict, folder: Path) -> dict[str, float]:
    """Every model's test ROC AUC for one N and seed."""
    y = labels(split.test, spec)
    auc = {}
    reference = fit_and_score_baseline(split, spec, folder / "reference")
    references = Path(reference.model_dir)
    for member, model in load_members(references).items():
        auc[member] = roc_auc_score(y, model.predict_proba(split.test))
    auc["knn"] = roc_auc_score(y, knn_scores(split, spec, references))
    for pretrained, suffix in ((True, ""), (False, " without pretraining")):
        teacher = finetune_stage(split, spec, encoders[pretrained], folder / f"teacher{suffix}")
        student = compress_stage(
            split, spec, Path(teacher.folder), folder / f"student{suffix}", references
        )
        auc[f"int8{suffix}"] = roc_auc_score(y, np.load(student.test_scores))
        if pretrained:
            auc["teacher"] = roc_auc_score(y, np.load(teacher.test_scores))
            auc["ensemble"] = roc_auc_score(y, np.load(student.ensemble_test_scores))
    return {k: float(v) for k, v in auc.items()}


def measure(
    name: str,
    spec: Spec,
    pool: pd.DataFrame,
    test: pd.DataFrame,
    sizes: list[int | None],
    seeds: int,
    folder: Path,
) -> dict:
    """Every size and seed of one dataset, summarised."""
    started = time.perf_counter()
    encoders = pretrained_once(pool, test, spec, folder)
    rows = []
    for n in sizes:
        if n is not None and n >= len(pool):
            continue
        runs = []
        for seed in range(seeds if n is not None else 1):
            seeded, split = labelled_split(pool, test, spec, n, seed)
            runs.append(one_run(seeded, split, encoders, folder / f"{n}-{seed}"))
            print(f"{name} N={n or 'all'} seed {seed}: " + ", ".join(
                f"{k} {v:.4f}" for k, v in runs[-1].items()), flush=True)  # fmt: skip
        rows.append(summarise(n or len(pool), runs))
    return {
        "dataset": name,
        "pool_rows": len(pool),
        "test_rows": len(test),
        "seeds": seeds,
        "sizes": rows,
        "label_efficiency": label_efficiency(rows),
        "seconds": round(time.perf_counter() - started, 1),
    }


def interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95% t interval (a single value has none: its bounds are the value)."""
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, mean, mean
    half = stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def summarise(n: int, runs: list[dict[str, float]]) -> dict:
    models = {k: interval([r[k] for r in runs]) for k in runs[0]}
    best = max(REFERENCES, key=lambda k: models[k][0])
    mean, low, high = interval([r["int8"] - r[best] for r in runs])
    return {
        "labels": n,
        "models": {k: [round(v, 4) for v in m] for k, m in models.items()},
        "best_reference": best,
        "int8_minus_best_reference": [round(mean, 4), round(low, 4), round(high, 4)],
    }


def label_efficiency(rows: list[dict]) -> float | None:
    """Labels the int8 model needs to reach the best reference's mean at 2,000 labels, over
    2,000 (interpolated in log N between measured sizes); None when 2,000 was not measured or
    the int8 model never reaches it."""
    at = {r["labels"]: r for r in rows}
    if 2000 not in at:
        return None
    target = at[2000]["models"][at[2000]["best_reference"]][0]
    points = sorted((r["labels"], r["models"]["int8"][0]) for r in rows)
    previous = None
    for n, value in points:
        if value >= target:
            if previous is None:
                return n / 2000
            (n0, v0) = previous
            share = (target - v0) / (value - v0)
            return math.exp(math.log(n0) + share * (math.log(n) - math.log(n0))) / 2000
        previous = (n, value)
    return None


def print_table(result: dict) -> None:
    names = [*CHAIN, *REFERENCES]
    print(f"\n{result['dataset']}: test ROC AUC, mean of {result['seeds']} seeds")
    print(f"{'labels':>7} " + " ".join(f"{n[:14]:>14}" for n in names) + "  int8 - best ref")
    for row in result["sizes"]:
        cells = " ".join(f"{row['models'][n][0]:14.4f}" for n in names)
        mean, low, high = row["int8_minus_best_reference"]
        print(
            f"{row['labels']:>7} {cells}  {mean:+.4f} ({low:+.4f} to {high:+.4f}) vs "
            f"{row['best_reference']}"
        )
    ratio = result["label_efficiency"]
    print(f"label-efficiency ratio: {'not reached' if ratio is None else f'{ratio:.2f}'}")
