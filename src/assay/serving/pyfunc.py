"""The registered model as an MLflow pyfunc: raw rows in, the shipped decisions out.

`mlflow.pyfunc.load_model("models:/<name>@champion").predict(frame)` and `mlflow models serve`
take a DataFrame of raw rows, as the spec reads a file (header names before `source.rename`,
cells as written), and return the id, the calibrated `probability`, the `prediction` of the
shipped policy and, with a conformal policy, `review`. It is the same Predictor that
`assay predict` uses, so the two agree row for row.

The model is logged from code (model_code.py calls `set_model`); its one artifact is the
package folder, checked against the package digest in the model config before anything in it
is read. Nothing is pickled.

MLflow enforces the signature before `predict` runs: a missing column or a cell of the wrong
type is refused there (HTTP 400 naming the column). A column the signature does not name is
refused too in a scoring server (see UnknownColumns); the label column is always ignored.
"""

from __future__ import annotations

import ast
import logging
import os
from importlib import metadata
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types import ColSpec, Schema

from assay.config import Spec
from assay.data.transform import to_batch
from assay.errors import AssayError
from assay.serving.manifest import verify_package
from assay.serving.predictor import Predictor, label_optional
from assay.serving.traffic import TrafficRecorder

MODEL_CODE = Path(__file__).with_name("model_code.py")
ARTIFACT = "package"  # the pyfunc artifact holding the package folder
DIGEST_KEY = "package_sha256"  # in the model config
# What the served model imports; the environment must also have assay itself installed
# (`pip install -e .` of the commit that trained it, as the ops stack's workers do).
SCHEMA_LOGGER = "mlflow.models.utils"  # where MLflow warns that it drops unknown columns
SERVING_FLAG = "_MLFLOW_IS_IN_SERVING_ENVIRONMENT"  # "true" inside MLflow's scoring server
REQUIREMENTS = ("mlflow", "onnxruntime", "tokenizers", "pandas", "numpy", "pyarrow", "pydantic")


def input_columns(spec: Spec) -> dict[str, str]:
    """The raw columns a request carries (their names before `source.rename`) and their MLflow
    types: numeric columns are doubles, every other cell is read as text. The label is not an
    input."""
    original = {new: old for old, new in spec.source.rename.items()}
    numeric = {n for n, c in spec.columns.items() if c.type == "numeric"}
    numeric |= {s for rule in spec.derive.values() for s in rule.sources}
    numeric |= {a.column or n for n, a in spec.fairness.attributes.items() if a.bins}
    return {
        original.get(name, name): "double" if name in numeric else "string"
        for name in spec.raw_columns
        if name != spec.label.column
    }


def raw_example(rows: pd.DataFrame, spec: Spec, count: int = 2) -> pd.DataFrame:
    """Raw rows for the model's input example, from batch rows: the cells a batch keeps as
    read; a raw column the batch does not keep (a datetime, a source of a derived column) is
    left empty."""
    original = {new: old for old, new in spec.source.rename.items()}
    head = rows.head(count).reset_index(drop=True)
    out = {}
    for name, kind in input_columns(spec).items():
        column = next((k for k, v in original.items() if v == name), name)
        kept = column in head.columns and not _is_datetime(spec, column)
        values = head[column] if kept else pd.Series([None] * len(head))
        out[name] = values.astype("float64") if kind == "double" else values.astype("object")
    return pd.DataFrame(out)


def _is_datetime(spec: Spec, column: str) -> bool:
    found = spec.columns.get(column)
    return found is not None and found.type == "datetime"


def signature(spec: Spec, example: pd.DataFrame, output: pd.DataFrame) -> ModelSignature:
    """Inputs: the raw columns with the spec's types; outputs: what `predict` returns."""
    inputs = Schema([ColSpec(kind, name) for name, kind in input_columns(spec).items()])
    return ModelSignature(inputs=inputs, outputs=mlflow.models.infer_signature(output).inputs)


def requirements() -> list[str]:
    """The installed versions of what the served model imports."""
    return [f"{name}=={metadata.version(name)}" for name in REQUIREMENTS]


def serving_spec(spec: Spec) -> Spec:
    """How a request's rows are read: no filter (every row asked about gets an answer, in
    order) and no label needed."""
    spec = label_optional(spec)
    return spec.model_copy(update={"source": spec.source.model_copy(update={"filter": None})})


class BadRequest(MlflowException):
    """A request the model cannot score: MLflow answers it with HTTP 400 and this message."""

    def __init__(self, message: str) -> None:
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)


class UnknownColumns(logging.Filter):
    """In MLflow's scoring server (`mlflow models serve`, `assay serve-model`) a request column
    the signature does not name is refused, not dropped. MLflow only logs a warning before it
    drops one, so that warning becomes the error: raised here, inside MLflow's schema check, it
    is answered with HTTP 400 naming the column. A model loaded in process keeps MLflow's
    behaviour (the warning). The label column is dropped quietly everywhere, so a labelled file
    can be scored as it is."""

    def __init__(self, label: str, columns: list[str]) -> None:
        super().__init__()
        self.label, self.columns = label, columns

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith("Found extra inputs"):
            return True
        unknown = [c for c in _listed(message) if c != self.label]
        if not unknown:
            return False
        if os.environ.get(SERVING_FLAG) != "true":
            return True
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise BadRequest(
            f"unknown column '{unknown[0]}'{more}: the model takes {', '.join(self.columns)}"
        )


def _listed(message: str) -> list[str]:
    """The column names in MLflow's warning ("... signature: `['a', 'b']`. ...")."""
    try:
        return [str(c) for c in ast.literal_eval(message.split("`")[1])]
    except (IndexError, ValueError, SyntaxError):
        return []


def refuse_unknown_columns(spec: Spec) -> None:
    """Install UnknownColumns for this spec (replacing an earlier model's)."""
    logger = logging.getLogger(SCHEMA_LOGGER)
    for old in [f for f in logger.filters if isinstance(f, UnknownColumns)]:
        logger.removeFilter(old)
    logger.addFilter(UnknownColumns(spec.label.column, list(input_columns(spec))))


class PackageModel(mlflow.pyfunc.PythonModel):
    """The deployable package behind MLflow's pyfunc interface."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """One onnxruntime thread: on a server, requests share the cores (measured on two
        cores, one thread gave lower single-row latency and no less throughput)."""
        folder = Path(context.artifacts[ARTIFACT])
        digest = (context.model_config or {}).get(DIGEST_KEY)
        verify_package(folder, digest, f"package {folder}")
        self.predictor = Predictor.load(folder, threads=1)
        self.spec = serving_spec(self.predictor.spec)
        self.traffic = TrafficRecorder.from_env(self.predictor.spec, str(digest))
        refuse_unknown_columns(self.predictor.spec)

    def predict(
        self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame, params=None
    ) -> pd.DataFrame:
        batch = read_raw(pd.DataFrame(model_input), self.spec)
        out = self.predictor.predict(batch)
        if self.traffic is not None:
            self.traffic.record(batch, out["probability"].to_numpy())
        return out


def read_raw(rows: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Raw rows through the spec's reading rules; a row that cannot be read is a BadRequest
    naming the column."""
    try:
        batch, _ = to_batch(rows, spec)
    except AssayError as exc:
        raise BadRequest(str(exc)) from None
    return batch
