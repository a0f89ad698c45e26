"""The training pipeline as data: its stages, and the bundle of their outcomes."""
