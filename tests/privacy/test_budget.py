"""One noise multiplier for every DP-SGD stage of a training, composed by one accountant."""

from __future__ import annotations

import pytest

from assay.errors import SpecError
from assay.privacy.budget import StageSteps, composed_epsilon, shared_noise

ROWS, DELTA = 30_000, 1e-5
# pretraining, fine-tuning and distillation over the same private rows
STAGES = [
    StageSteps("pretrain", 256 / ROWS, 10 * ROWS // 256),
    StageSteps("finetune", 64 / ROWS, 8 * ROWS // 64),
    StageSteps("distill", 128 / ROWS, 8 * ROWS // 128),
]


# PRV is the tighter accountant and the slower one (seconds per epsilon): one case in the fast tier
@pytest.mark.parametrize(
    ("accountant", "epsilon"),
    [
        ("rdp", 1.0),
        ("rdp", 3.0),
        ("rdp", 8.0),
        ("prv", 1.0),
        pytest.param("prv", 3.0, marks=pytest.mark.slow),
    ],
)
def test_the_shared_noise_spends_the_budget_and_no_more(accountant, epsilon):
    noise = shared_noise(STAGES, epsilon, DELTA, accountant)
    spent = composed_epsilon(STAGES, noise, DELTA, accountant)
    assert epsilon - 0.01 <= spent <= epsilon
    # a little less noise would overspend
    assert composed_epsilon(STAGES, noise * 0.97, DELTA, accountant) > epsilon


def test_composing_stages_costs_more_than_any_one_of_them():
    noise = shared_noise(STAGES, 3.0, DELTA, "rdp")
    alone = [composed_epsilon([s], noise, DELTA, "rdp") for s in STAGES]
    assert max(alone) < composed_epsilon(STAGES, noise, DELTA, "rdp") <= 3.0
    assert shared_noise(STAGES[:1], 3.0, DELTA, "rdp") < noise


def test_no_steps_spend_nothing():
    assert composed_epsilon([StageSteps("finetune", 0.01, 0)], 1.0, DELTA, "prv") == 0.0


def test_a_budget_no_noise_can_meet_is_one_clear_error():
    every_row_every_step = [StageSteps("finetune", 1.0, 10**7)]
    with pytest.raises(SpecError, match=r"epsilon 0.01 at delta 1e-05 cannot be met.*finetune"):
        shared_noise(every_row_every_step, 0.01, DELTA, "rdp")
