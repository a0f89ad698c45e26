"""Differential privacy: the budget of a training (one accountant over every DP-SGD stage)
and the DP-SGD steps themselves (Opacus)."""
