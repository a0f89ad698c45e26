"""The `assay` command as a user types it (in-process, through the shared Prefect harness)."""

from __future__ import annotations

import json
import socket

import pytest

from assay.validation.suite import load_suite
from cli.main import main
from tests.conftest import ADULT_SPEC, ROOT
from tests.synthetic import write_dataset


@pytest.fixture(autouse=True)
def _restore_env(monkeypatch):
    """main() points ASSAY_HOME at the home it used; keep that from leaking between tests."""
    monkeypatch.setenv("ASSAY_HOME", "unused")


def test_suggest_writes_a_reviewable_suite(tmp_path, capsys):
    out = tmp_path / "draft.json"
    code = main(["expectations", "suggest", str(ROOT / "data" / "adult.test.gz"),
                 "--spec", str(ADULT_SPEC), "--out", str(out)])  # fmt: skip
    assert code == 0
    assert "review each one" in capsys.readouterr().out
    suite = load_suite(out)
    assert suite.name == "adult" and len(suite.expectations) > 20


def test_errors_are_one_line_and_exit_2(tmp_path, capsys):
    code = main(["expectations", "suggest", "x.csv", "--spec", str(tmp_path / "none.yaml")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("error: ") and "none.yaml: spec file not found" in err


def test_unknown_benchmark_is_named(capsys):
    assert main(["bench", "nope"]) == 2
    assert "no benchmark named 'nope'" in capsys.readouterr().err


@pytest.mark.usefixtures("prefect_api")
def test_ingest_exit_code_says_whether_anything_was_rejected(tmp_path, capsys, adult_lines):
    good = tmp_path / "good.csv"
    good.write_text("\n".join(adult_lines[:60]) + "\n")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    home = ["--home", str(tmp_path / "home"), "--spec", str(ADULT_SPEC)]
    assert main(["ingest", str(good), *home]) == 0
    assert main(["ingest", str(good), str(empty), str(tmp_path / "gone.csv"), *home]) == 1
    out = capsys.readouterr().out
    assert "quarantined" in out and "file is empty (0 bytes)" in out
    assert "missing" in out and "no such file" in out


def test_bench_ingest_prints_json_last(capsys):
    assert main(["bench", "ingest", "--spec", str(ADULT_SPEC)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    assert result["rows"] == 48842 and result["validate_and_store_rows_per_s"] > 0


@pytest.mark.slow  # trains every model of the benchmark (tiny, on generated data)
def test_bench_quality_trains_every_model_in_one_run(tmp_path, capsys):
    """The benchmark's plumbing on generated data; its Adult figures are docs/benchmarks.md's, and
    the quick Adult run's quality is tests/flows/test_train_flow.py's."""
    spec = write_dataset(tmp_path / "churn", n=3000)
    assert main(["bench", "quality", "--spec", str(spec)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["profile"] == "full" and result["test_rows"] == 600
    assert len(result["models"]) == 6
    assert result["teacher_auc"] > 0.6 and result["reference_auc"] > 0.8
    assert result["teacher_minus_reference_auc"] == pytest.approx(
        result["teacher_auc"] - result["reference_auc"], abs=1e-3
    )


@pytest.mark.slow  # tiny models on generated data, two variants
def test_bench_students_runs_each_variant_on_one_teacher(tmp_path, capsys, monkeypatch):
    """The plumbing (its Adult figures are docs/benchmarks.md's): one teacher and one reference
    family, a compression stage per variant, each int8 student beside its ensemble."""
    spec = write_dataset(tmp_path / "churn", n=3000)
    variants = {"as specified": {}, "no pruning": {"pruning": {"enabled": False}}}
    monkeypatch.setenv("ASSAY_STUDENT_VARIANTS", json.dumps(variants))
    assert main(["bench", "students", "--spec", str(spec)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result["variants"]) == set(variants)
    for row in result["variants"].values():
        assert 0.5 < row["int8_auc"] <= 1 and 0.5 < row["ensemble_auc"] <= 1
    assert 0.5 < result["teacher_auc"] <= 1 and result["reference"].startswith("reference (")
    pruned, whole = result["variants"]["as specified"], result["variants"]["no pruning"]
    assert whole["int8_bytes"] >= pruned["int8_bytes"]  # equal when pruning was not kept


@pytest.mark.slow  # the benchmark's quick variant: tiny models, one dataset, two sizes, one seed
def test_bench_labels_measures_the_chain_and_the_references_per_size(tmp_path, capsys, monkeypatch):
    """The plumbing on generated data (its Adult and other datasets' figures are the
    docs/benchmarks.md's): every model of the chain and every reference at each size, the paired
    difference and the label-efficiency ratio (None: 2,000 labels not measured)."""
    spec = write_dataset(tmp_path / "churn", n=3000)
    monkeypatch.setenv("ASSAY_LABELS_SIZES", "250,all")
    monkeypatch.setenv("ASSAY_LABELS_SEEDS", "1")
    monkeypatch.setenv("ASSAY_LABELS_DATASETS", "spec")
    assert main(["bench", "labels", "--spec", str(spec)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    [churn] = result["datasets"]
    assert churn["pool_rows"] == 2400 and churn["test_rows"] == 600
    assert [row["labels"] for row in churn["sizes"]] == [250, 2400]
    for row in churn["sizes"]:
        assert set(row["models"]) == {
            "int8",
            "teacher",
            "ensemble",
            "int8 without pretraining",
            "boosting",
            "logistic",
            "knn",
        }
        assert row["best_reference"] in {"boosting", "logistic", "knn"}
        mean, low, high = row["int8_minus_best_reference"]
        assert low == mean == high  # one seed: no interval
        assert all(0.5 < m[0] <= 1 for m in row["models"].values())
    assert churn["label_efficiency"] is None


@pytest.mark.slow  # trains and exports every model of the benchmark (tiny, generated data)
def test_bench_compression_measures_every_model_in_one_run(tmp_path, capsys):
    spec = write_dataset(tmp_path / "churn", n=3000)
    assert main(["bench", "compression", "--spec", str(spec)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result["models"]) == {
        "torch fp32 teacher",
        "torch fp32 student (unpruned)",
        "torch fp32 student",
        "onnx fp32 student",
        "onnx int8 student (unpruned)",
        "onnx int8 student (dynamic)",
        "onnx int8 student (static QDQ)",
    }
    for row in result["models"].values():
        assert row["bytes"] > 0 and row["p50_ms_1t"] > 0 and row["rows_per_s_1t"] > 0
        assert row["rows_per_s_all_cores"] > 0 and 0.5 < row["roc_auc"] <= 1
    assert result["pruning"].startswith("heads 2->1, feed-forward units 32->16")
    assert result["parity_max_abs_logit"] <= 1e-4 and result["gate"].startswith("passed")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["retire"], "`assay batches retire` needs a batch id and --reason TEXT"),
        (["retire", "abc"], "`assay batches retire` needs a batch id and --reason TEXT"),
        (["restore", "abc", "--reason", "x"], "no batch in "),
    ],
)
def test_batch_commands_refuse_what_they_cannot_do_in_one_line(tmp_path, capsys, args, message):
    home = ["--home", str(tmp_path / "home"), "--spec", str(ADULT_SPEC)]
    assert main(["batches", *args, *home]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_batches_lists_nothing_in_a_new_home(tmp_path, capsys):
    assert main(["batches", "--home", str(tmp_path / "home"), "--spec", str(ADULT_SPEC)]) == 0
    assert "no batches yet in" in capsys.readouterr().out


def test_serving_without_a_model_to_serve_is_one_line(tmp_path, capsys):
    from assay.home import Home
    from assay.registry.tracking import ensure_experiment

    home = ["--home", str(tmp_path / "home"), "--spec", str(ADULT_SPEC)]
    assert main(["serve-model", *home]) == 2
    assert "no model registry in" in capsys.readouterr().err
    assert main(["bench", "serving", *home]) == 2
    assert "has no champion of assay-adult: run `assay run` first" in capsys.readouterr().err
    ensure_experiment(Home(tmp_path / "home", "adult"), "assay-adult")  # a registry, no model
    capsys.readouterr()
    assert main(["serve-model", *home]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        "error: assay-adult has no version with the alias 'champion'"
    )
    assert "Traceback" not in err
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = str(busy.getsockname()[1])
        assert main(["serve-model", *home, "--port", port]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
