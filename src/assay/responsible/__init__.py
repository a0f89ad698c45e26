"""Fairness, calibration, uncertainty and explanations of a candidate model."""
