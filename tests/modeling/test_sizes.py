"""The rule that sizes batches and epochs from the rows when a spec leaves them unset."""

import pytest

from assay.modeling.sizes import batch_size_for, pretrain_sizes, supervised_sizes


@pytest.mark.parametrize(
    ("rows", "batch"), [(100, 16), (675, 16), (1000, 32), (5400, 128), (29305, 256), (10**6, 256)]
)
def test_batch_keeps_thirty_steps_per_epoch_within_bounds(rows, batch):
    assert batch_size_for(rows) == batch
    assert rows // batch >= 30 or batch == 16


def test_adult_sizes_are_the_old_fixed_defaults():
    assert supervised_sizes(29305, batch_size=None, epochs=None, patience=None).epochs == 12
    assert supervised_sizes(29305, batch_size=None, epochs=None, patience=None).patience == 3
    assert pretrain_sizes(32561, batch_size=None, epochs=None).epochs == 4


def test_small_data_trains_longer_and_settings_win():
    small = supervised_sizes(675, batch_size=None, epochs=None, patience=None)
    assert (small.batch_size, small.epochs, small.patience) == (16, 28, 7)
    fixed = supervised_sizes(675, batch_size=64, epochs=5, patience=2)
    assert (fixed.batch_size, fixed.epochs, fixed.patience) == (64, 5, 2)
    assert pretrain_sizes(750, batch_size=None, epochs=None).epochs == 11
