"""The deployable package as one concept: its files, its manifest, and everything that scores
with it (the torch-free predictor, the decision policy, the MLflow pyfunc model). Training
stages write a package through this package; the registry and monitoring read through it."""
