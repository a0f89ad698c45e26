"""Whole runs on generated datasets that are not Adult (issue 15): each case once produced
wrong evidence without a warning. Every run is the `assay` command in its own process, as a
user runs it, so its console output and exit code are what is checked."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from assay.config import load_spec
from assay.data.snapshot import take_snapshot
from assay.data.store import BatchStore
from assay.home import Home
from tests.synthetic import LENIENT, TINY, edit, write_dataset

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ASSAY = Path(sys.executable).with_name("assay")


def assay(*args: str | Path, home: Path) -> subprocess.CompletedProcess:
    """One `assay` command with its own Prefect state under `home` (nothing from the tests)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env |= {"ASSAY_PROGRESS": "0", "ASSAY_HOME": str(home)}
    done = subprocess.run(
        [str(ASSAY), *map(str, args)], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    for stream in (done.stdout, done.stderr):  # an expected failure is never a traceback
        assert "Traceback" not in stream and "UNIQUE constraint" not in stream, stream[-3000:]
    return done


def shipped_sha(out: str) -> str:
    folder = re.search(r"decision policy: `([^`]+)`", out).group(1)
    return hashlib.sha256((Path(folder) / "model.int8.onnx").read_bytes()).hexdigest()


def test_two_datasets_share_a_home_and_never_mix(tmp_path):
    home = tmp_path / "home"
    churn = write_dataset(tmp_path / "churn", name="churn", spec=LENIENT)
    # 1,200 rows leave about 600 to train on: the tiny models need more epochs to learn them
    longer = {
        "finetune": TINY["finetune"] | {"epochs": 8},
        "compression": TINY["compression"] | {"epochs": 12},
    }
    loans = write_dataset(
        tmp_path / "loans", name="loans", n=1200, positive_share=0.2, seed=1,
        spec=LENIENT | longer, rename={"region": "branch", "home_owner": "marital_status"},
    )  # fmt: skip
    first = assay("run", "--spec", churn, home=home)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "Registry now: champion version 1, challenger version 1 of assay-churn" in first.stdout
    other = assay("run", "--spec", loans, home=home)
    assert other.returncode == 0, other.stderr[-2000:]
    assert "Registry now: champion version 1, challenger version 1 of assay-loans" in other.stdout
    for name, rows in (("churn", 2000), ("loans", 1200)):
        spec = load_spec(tmp_path / name / f"{name}.yaml")
        store = BatchStore(Home(home).for_dataset(name).batches)
        assert take_snapshot(store, spec).rows == rows  # its own rows only

    again = assay("run", "--spec", churn, home=home)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Cached stages reused: baseline, pretrain, finetune, compress, calibrate" in again.stdout
    assert "assay-churn version 1 (already registered)" in again.stdout
    assert shipped_sha(again.stdout) == shipped_sha(first.stdout)

    # Another version takes champion; the cached rerun of version 1 reports today's holder
    wider = edit(churn, tmp_path / "churn" / "wider.yaml", {"registry": {"promotion_margin": 0.02}})
    promoted = assay("run", "--spec", wider, home=home)
    assert "assay-churn version 2;" in promoted.stdout, promoted.stderr[-2000:]
    rerun = assay("run", "--spec", churn, home=home)
    assert "assay-churn version 1 (already registered)" in rerun.stdout
    assert "Registry now: champion version 2, challenger version 2 of assay-churn" in (rerun.stdout)


def test_reingest_after_a_parsing_change_supersedes_instead_of_adding(tmp_path):
    home = tmp_path / "home"
    churn = write_dataset(tmp_path / "churn", name="churn", spec=LENIENT)
    files = [tmp_path / "churn" / "train.csv", tmp_path / "churn" / "test.csv"]
    assert assay("ingest", *files, "--spec", churn, home=home).returncode == 0
    # A spec edit that parses the same files differently: 'unknown' now means missing
    reparsed = edit(
        churn, tmp_path / "churn" / "v2.yaml", {"source": {"missing_values": ["", "unknown"]}}
    )
    done = assay("ingest", *files, "--spec", reparsed, home=home)
    assert done.returncode == 0
    assert done.stdout.count("supersedes batch") == 2  # each outcome is printed, with its reason
    spec = load_spec(reparsed)
    store = BatchStore(Home(home).for_dataset("churn").batches)
    assert take_snapshot(store, spec).rows == 2000  # not 4000: no file counted twice
    listed = assay("batches", "--spec", reparsed, home=home).stdout
    assert listed.count("superseded") == 2 and listed.count(" active ") == 2
    assert "parsed again into" in listed

    # A copy of the test rows in another file is caught before anything trains
    leaked = tmp_path / "churn" / "extra.csv"
    header, *lines = files[1].read_text().splitlines()
    leaked.write_text("\n".join([header, *reversed(lines)]) + "\n")  # same rows, another batch
    assert assay("ingest", leaked, "--spec", reparsed, home=home).returncode == 0
    run = assay("run", "--spec", reparsed, home=home)
    assert run.returncode == 3
    [error] = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert "leakage gate failed: 400 of 400 test rows (100.00%)" in error
    assert "(extra.csv, 400)" in error and "(test.csv, 400)" in error
    [batch] = [b for b in store.active() if b.source == "extra.csv"]
    retired = assay("batches", "retire", batch.hash[:12], "--reason", "a copy of test.csv",
                    "--spec", reparsed, home=home)  # fmt: skip
    assert retired.returncode == 0 and "is retired" in retired.stdout
    assert "batch-retired" in assay("history", "--spec", reparsed, home=home).stdout


def test_rare_positives_get_positive_decisions_and_a_forced_half_fails_loudly(tmp_path):
    """Also: the scarce home_owner group is augmented, and the run's summary, MLflow run and
    model card say by how many synthetic rows."""
    home = tmp_path / "home"
    rare = write_dataset(
        tmp_path / "rare", name="rare", n=3000, positive_share=0.1, signal=1.0, seed=2,
        spec=LENIENT | {"augment": {"groups": ["home_owner"]}},
    )  # fmt: skip
    default = assay("run", "--spec", rare, home=home)
    decision = re.search(r"- Decision check: (.*)", default.stdout).group(1)
    assert decision.startswith("passed"), default.stdout[-3000:]
    share = float(re.search(r"threshold [\d.]+ \(max_f1\).*?, ([\d.]+)% positive", default.stdout)
                  .group(1))  # fmt: skip
    assert 1 < share < 99
    synthetic = re.search(r"- Augmentation: ([\d,]+) synthetic training rows \(smote_nc, x2\): "
                          r"home_owner=unknown \+([\d,]+)", default.stdout)  # fmt: skip
    assert synthetic and int(synthetic.group(1)) == int(synthetic.group(2)) > 0, default.stdout
    run_id, uri = re.search(r"- MLflow run `(\w+)` logged in `([^`]+)`", default.stdout).groups()
    logged = MlflowClient(uri).get_run(run_id).data
    assert logged.metrics["augment.synthetic_rows"] == int(synthetic.group(1))
    assert logged.tags["assay.augment.groups"] == "home_owner=unknown"
    card = re.search(r"- Model card: `([^`]+)`", default.stdout).group(1)
    assert "## Synthetic training rows" in Path(card).with_suffix(".md").read_text()

    half = edit(rare, tmp_path / "rare" / "half.yaml", {"decision": {"threshold": 0.5}})
    forced = assay("run", "--spec", half, home=home)
    assert forced.returncode == 3
    assert "| student_int8 |" in forced.stdout  # the metrics table is still shown
    [error] = [line for line in forced.stderr.splitlines() if line.startswith("error:")]
    assert "decision gate failed: share of test decisions in one class 1 (must be <= 0.99; " in (
        error
    )
    assert "not champion" in forced.stdout


def test_a_student_below_the_reference_is_registered_but_never_champion(tmp_path):
    """A barely trained teacher, and the student distilled from it alone (from the ensemble it
    would learn the reference's knowledge and not be weak)."""
    home = tmp_path / "home"
    weak = write_dataset(
        tmp_path / "weak", name="weak", signal=3.0, seed=3,
        spec={"pretrain": {"enabled": False},
              "finetune": {"epochs": 1, "batch_size": 64, "learning_rate": 1e-5},
              "compression": TINY["compression"] | {"teacher": "teacher"}},
    )  # fmt: skip
    done = assay("run", "--spec", weak, home=home)
    assert done.returncode == 3
    assert "| reference (" in done.stdout and "- Quality gate: quality gate failed" in done.stdout
    assert re.search(r"Registered: assay-weak version 1; not champion: .*quality gate", done.stdout)
    assert "Registry now: champion none, challenger version 1" in done.stdout
    [error] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert re.search(
        r"95% paired lower bound of roc_auc, int8 student minus reference \((boosting|logistic)\) "
        r"-[\d.]+ \(must be >= -0\.01.*: FAILED; .*int8 student 0\.\d+, reference \(\w+\) "
        r"0\.\d+ on the same test rows; roc_auc difference -[\d.]+ \(95% paired bootstrap "
        r"interval -[\d.]+ to [+-][\d.]+, 1000 stratified resamples\)",
        error,
    )


def test_a_prefect_api_that_does_not_start_in_time_is_one_line(tmp_path):
    churn = write_dataset(tmp_path / "churn", name="churn")
    home = tmp_path / "home"
    env_timeout = {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "0"}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    done = subprocess.run(
        [str(ASSAY), "ingest", str(tmp_path / "churn" / "test.csv"), "--spec", str(churn),
         "--home", str(home)],
        env=env | env_timeout, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 4
    assert "Traceback" not in done.stderr
    [error] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert "the temporary Prefect API did not start within 0 s" in error
    shutil.rmtree(home, ignore_errors=True)
