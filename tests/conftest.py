"""Shared fixtures. Prefect's state goes to a temp folder before Prefect is imported anywhere,
and one test harness (a temporary Prefect API) serves every flow test in the session."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

# Each xdist worker gets its share of the cores for torch's and OpenMP's thread pools (set
# before numpy or torch is imported; subprocesses inherit it). Two workers that each spin two
# threads on a 2-core machine oversubscribe it: two quick Adult runs at once took 157 s at the
# default and 98 s at one thread each. Models differ in their last bits across thread counts,
# so every model of a session is trained at the same count.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, str(max(1, len(os.sched_getaffinity(0)) // _WORKERS)))
_STATE = Path(tempfile.mkdtemp(prefix="assay-tests-"))
os.environ["PREFECT_HOME"] = str(_STATE / "prefect")
os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"] = str(_STATE / "prefect" / "results")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["GX_ANALYTICS_ENABLED"] = "false"
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("ASSAY_HOME", None)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from assay.config import Spec, load_spec  # noqa: E402
from assay.home import Home  # noqa: E402
from assay.modeling.paired import PairedDifference  # noqa: E402
from assay.validation.suite import load_suite  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ADULT_SPEC = ROOT / "configs" / "adult.yaml"
# Fixtures that make a test slow: a Prefect API to start, an Adult model to train. A test that
# uses one is marked `slow`, and `make test-fast` leaves it out.
SLOW_FIXTURES = {"prefect_api", "quick_adult_run"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def prefect_api():
    """A temporary Prefect API for the whole session (startup costs ~10 s, so share it)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def quick_adult_run(tmp_path_factory, prefect_api) -> tuple[Home, str]:
    """`assay run --profile quick` in-process on a fresh home: ingest the bundled files, then
    train (the reference family and the teacher on the quick profile's 6,000-row sample).
    Shared: other tests compare their models with this one, byte for byte."""
    home = Home(tmp_path_factory.mktemp("adult") / "home", "adult")
    code, out = assay_in_process(
        "run", "--home", str(home.root), "--spec", str(ADULT_SPEC), "--profile", "quick"
    )
    assert code == 0
    return home, out


def assay_in_process(*args: str) -> tuple[int, str]:
    """An `assay` command in this process (so it uses the tests' Prefect API): its exit
    code and what it printed."""
    from cli.main import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(args))
    return code, out.getvalue()


@pytest.fixture(scope="session")
def adult_spec() -> Spec:
    return load_spec(ADULT_SPEC)


@pytest.fixture(scope="session")
def adult_suite(adult_spec):
    return load_suite(adult_spec.expectations)


@pytest.fixture(scope="session")
def adult_lines() -> list[str]:
    """The first 400 data lines of the bundled adult.data, as the UCI file writes them."""
    with gzip.open(ROOT / "data" / "adult.data.gz", "rt", encoding="utf-8") as f:
        return [next(f).rstrip("\n") for _ in range(400)]


@pytest.fixture
def home(tmp_path) -> Home:
    return Home(tmp_path / "home", "adult")


@pytest.fixture
def write(tmp_path):
    """write(name, text_or_bytes) -> path of a new file in a fresh folder."""
    folder = tmp_path / "incoming"
    folder.mkdir()

    def _write(name: str, content: str | bytes) -> Path:
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return _write


@pytest.fixture
def toy_spec(tmp_path) -> Spec:
    """Two features (x numeric, colour categorical), label y in {yes, no}."""
    return Spec.model_validate(
        {
            "name": "toy",
            "columns": {"x": {"type": "numeric"}, "colour": {"type": "categorical"}},
            "label": {"column": "y", "positive": "yes", "negative": "no"},
            "split": {"rule": "source", "test_sources": ["test*"], "validation_fraction": 0.25},
            "expectations": tmp_path / "suite.json",
            "baseline": {"max_iter": 50},
        }
    )


@pytest.fixture
def mixed_spec(tmp_path) -> Spec:
    return mixed_spec_for(tmp_path / "suite.json")


def mixed_spec_for(expectations: Path, **sections: Any) -> Spec:
    """A tiny model over numeric, categorical and text columns (see mixed_rows), with
    `sections` added to the spec."""
    return Spec.model_validate(
        {
            "name": "toy",
            "columns": {
                "x": {"type": "numeric"},
                "colour": {"type": "categorical"},
                "note": {"type": "text"},
            },
            "label": {"column": "y", "positive": "yes", "negative": "no"},
            "split": {"rule": "random"},
            "expectations": expectations,
            "model": {
                "hidden_size": 16,
                "num_layers": 1,
                "num_heads": 2,
                "intermediate_size": 32,
                "numeric_bins": 4,
                "numeric_frequencies": 4,
                "text_vocab_size": 40,
                "text_max_tokens": 4,
            },
            "pretrain": {"epochs": 2, "batch_size": 32},
            "finetune": {
                "epochs": 3,
                "batch_size": 32,
                "patience": 2,
                "lora_r": 2,
                "lora_alpha": 4,
            },
            **sections,
        }
    )


def mixed_rows(n: int, seed: int) -> pd.DataFrame:
    """y is 'yes' when colour is red or x > 0.8: learnable from two columns."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "blue", "green"], n)
    x = rng.normal(size=n)
    note = rng.choice(["very happy customer", "angry about billing", "no comment"], n)
    y = np.where((colour == "red") | (x > 0.8), "yes", "no")
    return pd.DataFrame(
        {
            "x": x,
            "colour": pd.array(colour, dtype="string"),
            "note": pd.array(note, dtype="string"),
            "y": pd.array(y, dtype="string"),
        }
    )


def tiny_classifier(spec: Spec, train: pd.DataFrame):
    """The tiny mixed-column classifier fine-tuned in full on `train`: (model, tokenizer, the
    encoded training rows)."""
    from assay.modeling.encoder import EncoderConfig
    from assay.modeling.finetune import finetune
    from assay.modeling.tokenizer import RecordTokenizer

    tokenizer = RecordTokenizer.fit(train, spec)
    config = EncoderConfig.from_spec(spec.model, tokenizer.vocab_size, tokenizer.length)
    y = (train["y"] == spec.label.positive).to_numpy(dtype=np.int64)
    settings = spec.finetune.model_copy(
        update={"method": "full", "epochs": 6, "learning_rate": 5e-3}
    )
    encoded = tokenizer.encode(train)
    return finetune(encoded, y, encoded, y, config, settings, seed=0).model, tokenizer, encoded


def versus(candidate: float, reference: float, half: float = 0.0) -> PairedDifference:
    """A paired ROC AUC comparison with the given points and an interval `half` either side
    of their difference (for tests of what is decided from one, not of the bootstrap)."""
    d = candidate - reference
    return PairedDifference("roc_auc", candidate, reference, d - half, d + half, 1000, 0)


def deploy_tiny_model(spec: Spec, folder: Path) -> Path:
    """Train, export and quantize the tiny mixed-column model into a deployable folder.

    Static (calibrated) int8: its activation scales are fixed, so a row's score does not depend
    on the rows batched with it. (Dynamic int8 takes one scale per batch, so its scores shift
    slightly with the chunk size, and chunked could not equal unchunked.)"""
    from assay.compression.export import export_onnx
    from assay.compression.quantize import quantize

    model, tokenizer, encoded = tiny_classifier(spec, mixed_rows(300, 0))
    fp32 = export_onnx(model, encoded, folder / "build" / "model.onnx")
    quantize(fp32, folder / "model.int8.onnx", method="static", calibration=encoded)
    shutil.rmtree(folder / "build")
    tokenizer.save(folder / "tokenizer")
    (folder / "spec.json").write_text(spec.model_dump_json(), encoding="utf-8")
    return folder
