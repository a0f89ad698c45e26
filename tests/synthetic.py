"""Generated datasets for end-to-end tests on data that is not Adult: other columns, sizes and
label balances, a sensitive feature whose name has an underscore and a group too small to
judge. Each dataset is written as a folder holding train.csv, test.csv, a minimal suite and a
spec whose model is tiny, so a full `assay run` takes well under a minute."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

TINY = {
    "model": {
        "hidden_size": 16,
        "num_layers": 1,
        "num_heads": 2,
        "intermediate_size": 32,
        "numeric_bins": 8,
        "numeric_frequencies": 4,
    },
    "pretrain": {"epochs": 1, "batch_size": 64},
    "finetune": {"epochs": 4, "patience": 2, "batch_size": 64, "lora_r": 4, "lora_alpha": 8},
    "baseline": {"max_iter": 100},
    "compression": {
        "student": {"hidden_size": 16, "num_heads": 2, "intermediate_size": 32},
        "epochs": 4,
        "batch_size": 64,
        "pruning": {"recovery_epochs": 1, "importance_rows": 512},
        "gate": {"max_size_ratio": 1.0, "max_auc_drop": 0.25, "min_agreement": 0.9,
                 "max_latency_ms": 20.0},
    },
    "fairness": {"bootstrap": 50},
    "explanations": {"rows": 200},
}  # fmt: skip
# The tiny test models trail the reference: tests using them judge other gates, and no margin
# lets a student the test rows show below the reference through (the quality gate's own tests
# are tests/test_training.py and test_a_student_below_the_reference_is_registered_...)
LENIENT = {"gates": {"quality": {"enabled": False}}}


def edit(spec: Path, target: Path, change: dict) -> Path:
    """A copy of the spec beside it with `change` merged in at the top level."""
    raw = yaml.safe_load(spec.read_text()) | change
    target.write_text(yaml.safe_dump(raw, sort_keys=False))
    return target


def rows(n: int, *, positive_share: float, signal: float, seed: int) -> pd.DataFrame:
    """Two numeric and two categorical features; the label's log-odds are `signal` times a
    mix of them, shifted so that `positive_share` of rows are positive. `home_owner` has a
    group ('unknown') of about 1% of rows."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "income_k": rng.gamma(4.0, 12.0, n).round(4),
            "tenure": rng.integers(0, 30, n).astype(float),
            "region": rng.choice(["north", "south", "east", "west"], n),
            "home_owner": rng.choice(["yes", "no", "unknown"], n, p=[0.55, 0.44, 0.01]),
        }
    )
    score = (
        (frame["income_k"] - 48) / 24
        + 0.6 * (frame["region"] == "north")
        - 0.04 * frame["tenure"]
        + 0.3 * (frame["home_owner"] == "yes")
    )
    noisy = signal * score.to_numpy() + rng.logistic(size=n)
    cut = np.quantile(noisy, 1 - positive_share)
    frame["churned"] = np.where(noisy > cut, "yes", "no")
    return frame


def write_dataset(
    folder: Path,
    *,
    name: str = "churn",
    n: int = 2000,
    positive_share: float = 0.3,
    signal: float = 2.0,
    seed: int = 0,
    rename: dict[str, str] | None = None,
    spec: dict[str, Any] | None = None,
) -> Path:
    """The dataset's folder with its files; returns the spec's path. `rename` renames feature
    columns (another dataset's schema); `spec` is merged over the generated spec (a key at the
    top level replaces the generated one)."""
    folder.mkdir(parents=True, exist_ok=True)
    rename = rename or {}
    frame = rows(n, positive_share=positive_share, signal=signal, seed=seed).rename(columns=rename)
    cut = int(n * 0.8)
    frame.iloc[:cut].to_csv(folder / "train.csv", index=False)
    frame.iloc[cut:].to_csv(folder / "test.csv", index=False)
    sensitive = rename.get("home_owner", "home_owner")
    suite = {
        "name": name,
        "expectations": [
            {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1},
             "meta": {}, "severity": "critical"},
        ],
    }  # fmt: skip
    (folder / "suite.json").write_text(json.dumps(suite))
    raw: dict[str, Any] = {
        "name": name,
        "description": "Generated churn data for tests.",
        "columns": {
            rename.get(c, c): {"type": kind}
            for c, kind in (
                ("income_k", "numeric"),
                ("tenure", "numeric"),
                ("region", "categorical"),
                ("home_owner", "categorical"),
            )
        },
        "label": {"column": "churned", "positive": "yes", "negative": "no"},
        "sensitive_features": [sensitive],
        "fairness": {
            **TINY["fairness"],
            "gate": [{"feature": sensitive, "metric": "equalized_odds_difference", "limit": 0.5}],
        },
        "split": {"rule": "source", "test_sources": ["test*"]},
        "expectations": "suite.json",
        "bundled": ["train.csv", "test.csv"],
        **{k: v for k, v in TINY.items() if k != "fairness"},
        **(spec or {}),
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path
