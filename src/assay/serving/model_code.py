"""The file MLflow logs as the model ("models from code"): loading it defines the model, so
nothing is pickled. See assay.serving.pyfunc."""

import mlflow

from assay.serving.pyfunc import PackageModel

mlflow.models.set_model(PackageModel())
