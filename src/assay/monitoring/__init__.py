"""Drift and live performance of new batches against what the champion was trained on."""
