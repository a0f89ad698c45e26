"""Generated datasets shaped like the public ones that Adult-only defaults failed on (issue 16):
a headerless space-delimited file with coded categories, a CSV whose header repeats a name, a
text task with timestamps and broken lines, an imbalanced JSON-lines file. Each writer returns
the spec's path; the suite is drafted by `assay expectations suggest` in the tests, from the
dataset's own reference file, so the suite accepting that file is itself a check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

# A spec's own quick profile merges over the built-in one: tiny networks keep the test fast.
TINY_QUICK = {
    "model": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32,
              "numeric_bins": 8, "numeric_frequencies": 4},
    "compression": {"student": {"hidden_size": 16, "num_heads": 2, "intermediate_size": 32},
                    "gate": {"max_latency_ms": 20.0}},
    "fairness": {"bootstrap": 50},
    "explanations": {"rows": 200},
}  # fmt: skip


def _positive(score: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    noisy = score + rng.logistic(size=len(score)) * 0.5
    return noisy > np.quantile(noisy, 1 - share)


def _write_spec(folder: Path, name: str, raw: dict[str, Any]) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, **raw, "expectations": "suite.json"}))
    return path


def census_1k(folder: Path, seed: int = 0) -> Path:
    """1,000 rows, space-delimited, no header; education and job are short codes explained by
    a code table (a JSON file and an inline map); age is a fairness-only attribute in bands,
    independent of the label, so every band gets positive decisions."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = 1000
    edu = rng.integers(1, 6, n)
    job = rng.integers(1, 5, n)
    hours = rng.integers(10, 70, n)
    savings = rng.gamma(2.0, 20.0, n).round(1)
    score = 0.9 * edu + (hours - 40) / 8 + 0.8 * (job == 2) - 0.8 * (job == 4) + savings / 30
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "edu": [f"e{v}" for v in edu],
            "job": [f"J{v}" for v in job],
            "hours": hours,
            "savings": savings,
            "earns": np.where(_positive(score, 0.3, rng), "1", "0"),
        }
    )
    frame.to_csv(folder / "people.txt", sep=" ", header=False, index=False)
    codes = {"e1": "primary", "e2": "secondary", "e3": "college", "e4": "bachelor", "e5": "master"}
    (folder / "edu_codes.json").write_text(json.dumps(codes))
    return _write_spec(
        folder,
        "census1k",
        {
            "description": "Generated census-like rows: headerless, space-delimited, coded.",
            "source": {"header": False, "delimiter": " ", "names": list(frame.columns)},
            "columns": {
                "edu": {"type": "categorical", "values": "edu_codes.json"},
                "job": {
                    "type": "categorical",
                    "values": {"J1": "clerk", "J2": "engineer", "J3": "sales", "J4": "labour"},
                },
                "hours": {"type": "numeric"},
                "savings": {"type": "numeric"},
            },
            "label": {"column": "earns", "positive": "1", "negative": "0"},
            "fairness": {"attributes": {"age_band": {"column": "age", "bins": [35, 55]}}},
            "sensitive_features": ["age_band"],
            "split": {"rule": "random", "test_fraction": 0.25},
            # 250 test rows: the paired interval of (student - baseline) is about 0.035 wide,
            # so the default margin (0.01) cannot be shown whatever the point difference
            "gates": {"quality": {"margin": 0.05}},
        },
    )


def loans_repeated_header(folder: Path, seed: int = 1) -> Path:
    """A CSV export whose header repeats 'Amount' (requested, then approved), renamed into
    use; a published filter (36- or 60-month terms, no 'other' purpose, status not 'Current');
    a derived ratio. The test file has the same shape."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = 3000
    income = rng.gamma(3.0, 20_000.0, n).round(0)
    requested = rng.gamma(2.0, 6_000.0, n).round(0)
    approved = (requested * rng.uniform(0.6, 1.0, n)).round(0)
    purpose = rng.choice(["car", "home", "debt", "other"], n, p=[0.3, 0.3, 0.3, 0.1])
    term = rng.choice([12, 36, 60], n, p=[0.1, 0.5, 0.4])
    score = -3 * approved / income + 0.5 * (purpose == "debt") + (term == 36) * 0.6
    status = np.where(_positive(score, 0.6, rng), "Fully Paid", "Charged Off")
    status = np.where(rng.random(n) < 0.1, "Current", status)
    frame = pd.DataFrame(
        [requested, term, purpose, rng.choice(["N", "S", "E", "W"], n), approved, income, status]
    ).T
    frame.columns = ["Amount", "Term", "Purpose", "Region", "Amount", "Income", "Status"]
    cut = int(n * 0.75)
    frame.iloc[:cut].to_csv(folder / "loans.csv", index=False)
    frame.iloc[cut:].to_csv(folder / "loans-test.csv", index=False)
    return _write_spec(
        folder,
        "loans",
        {
            "source": {
                "repeated_headers": "suffix",
                "rename": {
                    "Amount": "requested",
                    "Amount.1": "approved",
                    "Term": "term",
                    "Purpose": "purpose",
                    "Region": "region",
                    "Income": "income",
                    "Status": "status",
                },
                "filter": {
                    "all": [
                        {"column": "term", "in": [36, 60]},
                        {"column": "purpose", "not_equals": "other"},
                        {"column": "status", "not_equals": "Current"},
                    ]
                },
            },
            "columns": {
                "approved": {"type": "numeric"},
                "income": {"type": "numeric"},
                "term": {"type": "categorical"},
                "purpose": {"type": "categorical"},
                "region": {"type": "categorical"},
            },
            "derive": {"approved_share": {"ratio": ["approved", "income"]}},
            "label": {"column": "status", "positive": "Fully Paid", "negative": "Charged Off"},
            "split": {"rule": "source", "test_sources": ["loans-test*"]},
            "profiles": {"quick": TINY_QUICK},
        },
    )


QUEUES = {
    "billing.refund": ["refund", "charge", "money", "back", "card"],
    "billing.invoice": ["invoice", "bill", "vat", "amount", "pdf"],
    "tech.login": ["login", "password", "reset", "locked", "account"],
    "tech.crash": ["crash", "error", "app", "freeze", "update"],
    "sales.demo": ["demo", "pricing", "trial", "plan", "seats"],
    "hr.leave": ["leave", "holiday", "payroll", "contract", "manager"],
}
COMMON = ["please", "help", "urgent", "today", "issue", "hello", "thanks", "still", "again"]


def tickets_text(folder: Path, seed: int = 2) -> Path:
    """Support tickets: a subject line (text), the time it was opened (billing works office
    hours, so the hour tells the queues apart where the words do not), the queue (six values,
    billing vs tech selected by label.values, the rest dropped), and 0.1% of lines broken by
    an unquoted newline inside the subject."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = 4000
    queue = rng.choice(list(QUEUES), n)
    billing = np.char.startswith(queue.astype(str), "billing")
    hours = np.where(billing, rng.integers(8, 18, n), rng.integers(0, 24, n))
    stamps = (
        pd.Timestamp("2025-03-01")
        + pd.to_timedelta(rng.integers(0, 120, n), unit="D")
        + pd.to_timedelta(hours * 60 + rng.integers(0, 60, n), unit="min")
    )
    subjects = []
    for q in queue:
        own = rng.choice(QUEUES[q], rng.integers(0, 3))  # sometimes no telling word at all
        subjects.append(" ".join([*own, *rng.choice(COMMON, 3)]))
    frame = pd.DataFrame(
        {
            "opened_at": stamps.strftime("%Y-%m-%dT%H:%M:%S"),
            "subject": subjects,
            "channel": rng.choice(["mail", "chat", "phone"], n),
            "queue": queue,
        }
    )
    lines = frame.to_csv(index=False).splitlines(keepends=True)
    for row in rng.choice(np.arange(1, n + 1), 4, replace=False):  # 0.1%: a newline mid-subject
        opened, subject, rest = lines[row].split(",", 2)
        first, *others = subject.split(" ")
        lines[row] = f"{opened},{first}\n{' '.join(others)},{rest}"
    (folder / "tickets.csv").write_text("".join(lines))
    return _write_spec(
        folder,
        "tickets",
        {
            "source": {"bad_lines": "skip", "max_bad_lines": 0.005},
            "columns": {
                "opened_at": {"type": "datetime", "features": ["hour", "weekday"]},
                "subject": {"type": "text"},
                "channel": {"type": "categorical"},
            },
            "label": {
                "column": "queue",
                "positive": "billing",
                "negative": "tech",
                "values": {
                    "billing": ["billing.refund", "billing.invoice"],
                    "tech": ["tech.login", "tech.crash"],
                },
                "other": "drop",
            },
            "split": {"rule": "random"},
            "profiles": {"quick": TINY_QUICK},
        },
    )


def imbalanced_jsonl(folder: Path, seed: int = 3) -> Path:
    """About 10% positives in JSON lines; `gender` is a sensitive attribute the model never
    sees (its rare values merged into one group), assessed and gated all the same."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = 4000
    frame = pd.DataFrame(
        {
            "visits": rng.poisson(4, n),
            "spend": rng.gamma(2.0, 30.0, n).round(2),
            "plan": rng.choice(["free", "basic", "pro"], n, p=[0.5, 0.35, 0.15]),
            "gender": rng.choice(["f", "m", "x", "unknown"], n, p=[0.48, 0.48, 0.02, 0.02]),
        }
    )
    score = frame["visits"] / 2 + frame["spend"] / 40 + 1.5 * (frame["plan"] == "pro")
    frame["upgraded"] = np.where(_positive(score.to_numpy(), 0.1, rng), "yes", "no")
    frame.to_json(folder / "events.jsonl", orient="records", lines=True)
    return _write_spec(
        folder,
        "upgrades",
        {
            "columns": {
                "visits": {"type": "numeric"},
                "spend": {"type": "numeric"},
                "plan": {"type": "categorical"},
            },
            "label": {"column": "upgraded", "positive": "yes", "negative": "no"},
            "fairness": {
                "attributes": {"gender": {"merge": {"other": ["x", "unknown"]}}},
                "gate": [
                    {"feature": "gender", "metric": "equalized_odds_difference", "limit": 0.25}
                ],
            },
            "sensitive_features": ["gender"],
            "split": {"rule": "random"},
            "profiles": {"quick": TINY_QUICK},
        },
    )
