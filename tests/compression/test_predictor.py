"""`assay predict`: a deployed int8 model folder scores CSV, Parquet and JSON-lines files in
chunks, carries the id column, writes atomically, and never imports torch."""

from __future__ import annotations

import gzip
import io
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assay.config import Spec
from assay.errors import AssayError, ReadError
from assay.serving import predictor
from assay.serving.layout import MODEL_FILE, SPEC_FILE, TOKENIZER_DIR
from assay.serving.policy import (
    DecisionPolicy,
    GroupRule,
    GroupThresholds,
    Operation,
    apply_temperature,
)
from assay.serving.predictor import predict_file
from assay.serving.scorer import OnnxScorer
from cli.main import main
from tests.conftest import deploy_tiny_model, mixed_rows

ROWS = 60


@pytest.fixture(autouse=True)
def _home(monkeypatch, tmp_path_factory):
    """main() points ASSAY_HOME at the home it used; keep it out of the repo and other tests."""
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture(scope="module")
def _trained() -> dict[str, Path]:
    """One model per module: mixed_spec differs between tests only in its expectations path,
    which scoring never reads, so training it again for every test would only cost time."""
    return {}


@pytest.fixture
def model(_trained, mixed_spec, tmp_path_factory) -> Path:
    if "folder" not in _trained:
        _trained["folder"] = deploy_tiny_model(mixed_spec, tmp_path_factory.mktemp("model"))
    return _trained["folder"]


@pytest.fixture
def model_with_id(model, tmp_path) -> Path:
    """The same model deployed with a spec that names an id column."""
    folder = Path(shutil.copytree(model, tmp_path / "with-id"))
    spec = Spec.model_validate_json((model / SPEC_FILE).read_text())
    (folder / SPEC_FILE).write_text(spec.model_copy(update={"id_column": "rid"}).model_dump_json())
    return folder


@pytest.fixture
def rows() -> pd.DataFrame:
    """Rows to score: the label column is absent, as it usually is."""
    return mixed_rows(ROWS, 1).drop(columns=["y"])


def _expected(model: Path, rows: pd.DataFrame) -> np.ndarray:
    return OnnxScorer.load(model / MODEL_FILE, model / TOKENIZER_DIR).predict_proba(rows)


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype={"rid": str})
    return pd.read_csv(path, dtype={"rid": str})


@pytest.mark.parametrize("name", ["rows.csv", "rows.csv.gz", "rows.parquet", "rows.jsonl"])
def test_scores_match_the_onnx_scorer(model, rows, tmp_path, name):
    source = tmp_path / name
    if name.endswith(".parquet"):
        rows.to_parquet(source)
    elif name.endswith(".jsonl"):
        rows.to_json(source, orient="records", lines=True)
    else:
        rows.to_csv(source, index=False)
    assert predict_file(model, source, tmp_path / "out.csv") == ROWS
    out = _read(tmp_path / "out.csv")
    assert list(out.columns) == ["probability", "prediction"]
    np.testing.assert_allclose(out["probability"], _expected(model, rows), rtol=1e-6)
    positive = out["probability"] >= 0.5
    assert (out["prediction"] == np.where(positive, "yes", "no")).all()
    assert set(out["prediction"]) == {"yes", "no"}


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_chunked_scoring_equals_unchunked(model, rows, tmp_path, suffix, monkeypatch):
    source = tmp_path / f"rows{suffix}"
    rows.to_parquet(source) if suffix == ".parquet" else rows.to_csv(source, index=False)
    predict_file(model, source, tmp_path / "whole.parquet")
    monkeypatch.setattr(predictor, "SCORE_BATCH_ROWS", 3)  # onnxruntime runs within a chunk
    predict_file(model, source, tmp_path / "chunked.parquet", chunk_rows=7)
    whole, chunked = _read(tmp_path / "whole.parquet"), _read(tmp_path / "chunked.parquet")
    assert len(chunked) == ROWS
    np.testing.assert_allclose(chunked["probability"], whole["probability"], rtol=1e-6)
    assert (chunked["prediction"] == whole["prediction"]).all()


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_output_formats_carry_the_id_column_in_order(model_with_id, rows, tmp_path, suffix):
    ids = [f"r{i:03d}" for i in range(ROWS)]
    rows.assign(rid=ids, y="yes").to_csv(tmp_path / "rows.csv", index=False)  # label ignored
    out = tmp_path / f"out{suffix}"
    predict_file(model_with_id, tmp_path / "rows.csv", out, chunk_rows=7)
    frame = _read(out)
    assert list(frame.columns) == ["rid", "probability", "prediction"]
    assert frame["rid"].tolist() == ids
    np.testing.assert_allclose(frame["probability"], _expected(model_with_id, rows), rtol=1e-6)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []


def test_csv_on_stdout_without_out(model, rows, tmp_path, capsys):
    rows.to_csv(tmp_path / "rows.csv", index=False)
    code = main(["predict", "--model", str(model), str(tmp_path / "rows.csv"), "--chunk-rows", "7"])
    captured = capsys.readouterr()
    assert code == 0
    out = pd.read_csv(io.StringIO(captured.out))
    assert len(out) == ROWS and list(out.columns) == ["probability", "prediction"]
    np.testing.assert_allclose(out["probability"], _expected(model, rows), rtol=1e-6)
    assert f"scored {ROWS} rows" in captured.err


def test_the_spec_source_settings_are_used(model, rows, tmp_path):
    """Header-less, ';'-separated, with comment lines and missing markers, as the spec says."""
    spec = Spec.model_validate_json((model / SPEC_FILE).read_text())
    source = spec.source.model_copy(
        update={"header": False, "names": ["x", "colour", "note", "y"], "delimiter": ";"}
    )
    source = source.model_copy(update={"comment": "#", "missing_values": ["-"]})
    folder = Path(shutil.copytree(model, tmp_path / "headerless"))
    (folder / SPEC_FILE).write_text(spec.model_copy(update={"source": source}).model_dump_json())
    rows.loc[3, "colour"] = pd.NA
    text = rows.to_csv(sep=";", header=False, index=False, na_rep="-")
    with gzip.open(tmp_path / "rows.csv.gz", "wt") as f:
        f.write("# exported nightly\n" + text)
    predict_file(folder, tmp_path / "rows.csv.gz", tmp_path / "out.csv")
    expected = _expected(model, rows)
    np.testing.assert_allclose(_read(tmp_path / "out.csv")["probability"], expected, rtol=1e-6)


def _cli_error(capsys, *argv: str) -> str:
    assert main(["predict", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


def test_missing_input_column_is_named(model, rows, tmp_path, capsys):
    rows.drop(columns=["colour"]).to_parquet(tmp_path / "rows.parquet")
    out = tmp_path / "out.csv"
    err = _cli_error(
        capsys, "--model", str(model), str(tmp_path / "rows.parquet"), "--out", str(out)
    )
    assert "missing column(s): colour" in err and "rows.parquet" in err
    assert list(tmp_path.iterdir()) == [tmp_path / "rows.parquet"], "no output, no temp file"


def test_a_row_with_too_many_fields_is_named_by_line(model, rows, tmp_path, capsys):
    lines = rows.to_csv(index=False).splitlines()
    lines[12] += ",extra"
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    err = _cli_error(capsys, "--model", str(model), str(tmp_path / "rows.csv"), "--chunk-rows", "5")
    assert "malformed CSV: line 13 has 4 fields where the header has 3" in err


def test_a_non_numeric_value_names_the_column_and_row(model, rows, tmp_path):
    rows["x"] = rows["x"].astype(object)
    rows.loc[20, "x"] = "lots"
    rows.to_csv(tmp_path / "rows.csv", index=False)
    with pytest.raises(
        ReadError, match=r"column 'x': 1 value\(s\) are not numbers \('lots'\)"
    ) as e:
        predict_file(model, tmp_path / "rows.csv", tmp_path / "out.csv", chunk_rows=7)
    assert "first in data row 21" in str(e.value)
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "file is empty (0 bytes)"), (b"x,colour,note\n", "file has no data rows")],
)
def test_an_empty_input_is_an_error(model, tmp_path, content, reason):
    (tmp_path / "rows.csv").write_bytes(content)
    with pytest.raises(ReadError, match=re.escape(reason)):
        predict_file(model, tmp_path / "rows.csv")


def test_a_missing_model_folder_mentions_aliases(tmp_path, capsys):
    (tmp_path / "rows.csv").write_text("x,colour,note\n1,red,hi\n")
    err = _cli_error(capsys, "--model", "nosuch", str(tmp_path / "rows.csv"))
    assert "model nosuch does not exist: pass a model folder" in err
    assert "or champion, challenger or a registered version number" in err


def test_an_alias_without_a_registered_model_is_named(tmp_path, capsys):
    (tmp_path / "rows.csv").write_text("x,colour,note\n1,red,hi\n")
    err = _cli_error(capsys, "--model", "champion", str(tmp_path / "rows.csv"))
    assert "no model registry in" in err and "run `assay run` first" in err


def test_an_incomplete_model_folder_names_what_is_missing(model, tmp_path):
    folder = Path(shutil.copytree(model, tmp_path / "partial"))
    (folder / MODEL_FILE).unlink()
    shutil.rmtree(folder / TOKENIZER_DIR)
    (tmp_path / "rows.csv").write_text("x,colour,note\n1,red,hi\n")
    with pytest.raises(AssayError, match=f"lacks {TOKENIZER_DIR}/, {MODEL_FILE}$"):
        predict_file(folder, tmp_path / "rows.csv")


def test_an_unknown_output_suffix_is_refused_before_scoring(model, tmp_path):
    with pytest.raises(AssayError, match="unknown output format"):
        predict_file(model, tmp_path / "absent.csv", tmp_path / "out.xlsx")


def test_predict_never_imports_torch(model, rows, tmp_path):
    rows.to_parquet(tmp_path / "rows.parquet")
    out = tmp_path / "out.jsonl"
    script = textwrap.dedent(
        f"""
        import sys
        from cli.main import main
        code = main(["predict", "--model", {str(model)!r}, {str(tmp_path / "rows.parquet")!r},
                     "--out", {str(out)!r}])
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in
                       {{"torch", "transformers", "peft", "prefect", "mlflow", "fairlearn",
                         "sklearn", "scipy", "matplotlib"}})
        print(code, heavy)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "0 []"
    assert len(pd.read_json(out, lines=True)) == ROWS


def _with_policy(model: Path, folder: Path, policy: DecisionPolicy) -> Path:
    deployed = Path(shutil.copytree(model, folder))
    policy.save(deployed)
    return deployed


def test_predictor_applies_group_thresholds_and_temperature(model, rows, tmp_path):
    """red rows always positive, blue never, green at 0.5 of the calibrated probability."""
    always, never = Operation(">", -1.0), Operation(">", 2.0)
    rules = GroupThresholds(
        "colour",
        "equalized_odds",
        {
            "red": GroupRule(1.0, always, never),
            "blue": GroupRule(0.0, always, never),
            "green": GroupRule(1.0, Operation(">", 0.5), never),
        },
    )
    policy = DecisionPolicy(temperature=3.0, thresholds=rules)
    folder = _with_policy(model, tmp_path / "mitigated", policy)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    assert predict_file(folder, tmp_path / "rows.csv", tmp_path / "out.csv") == ROWS
    out = _read(tmp_path / "out.csv")
    logits = OnnxScorer.load(model / MODEL_FILE, model / TOKENIZER_DIR).logits(rows)
    calibrated = apply_temperature(logits, 3.0)
    np.testing.assert_allclose(out["probability"], calibrated, rtol=1e-6)
    colour = rows["colour"].to_numpy()
    assert (out["prediction"][colour == "red"] == "yes").all()
    assert (out["prediction"][colour == "blue"] == "no").all()
    green = colour == "green"
    expected = np.where(calibrated[green] > 0.5, "yes", "no")
    assert (out["prediction"][green].to_numpy() == expected).all()
    assert "review" not in out.columns


def test_predictor_flags_rows_for_review_with_a_conformal_policy(model, rows, tmp_path):
    scores = _expected(model, rows)
    qhat = float(np.median(np.minimum(scores, 1 - scores)))  # about half the rows are unsure
    folder = _with_policy(model, tmp_path / "conformal", DecisionPolicy(coverage=0.9, qhat=qhat))
    rows.to_parquet(tmp_path / "rows.parquet")
    predict_file(folder, tmp_path / "rows.parquet", tmp_path / "out.parquet")
    out = _read(tmp_path / "out.parquet")
    # qhat < 0.5: a class is in the set when its probability is at least 1 - qhat, so a row
    # sure of neither class gets an empty set
    unsure = np.minimum(scores, 1 - scores) > qhat
    np.testing.assert_array_equal(out["review"].to_numpy(), unsure)
    assert 0 < out["review"].sum() < ROWS


def test_extra_columns_do_not_change_mitigated_decisions(model, rows, tmp_path):
    """The randomized group rules draw from the row's features, not from an id or label."""
    half = GroupRule(0.5, Operation(">", -1.0), Operation(">", 2.0))  # a coin flip per row
    rules = GroupThresholds(
        "colour", "equalized_odds", dict.fromkeys(["red", "blue", "green"], half)
    )
    folder = _with_policy(model, tmp_path / "coin", DecisionPolicy(thresholds=rules))
    rows.to_csv(tmp_path / "bare.csv", index=False)
    extra = rows.assign(y="yes", rid=[f"r{i}" for i in range(ROWS)])
    extra.to_csv(tmp_path / "extra.csv", index=False)
    predict_file(folder, tmp_path / "bare.csv", tmp_path / "bare-out.csv")
    predict_file(folder, tmp_path / "extra.csv", tmp_path / "extra-out.csv")
    bare, with_extra = _read(tmp_path / "bare-out.csv"), _read(tmp_path / "extra-out.csv")
    assert (bare["prediction"] == with_extra["prediction"]).all()
    assert 0 < (bare["prediction"] == "yes").sum() < ROWS
