"""Split a snapshot into train, validation, calibration and test rows by the spec's rule,
reproducibly."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from assay.config import Spec
from assay.data.fingerprint import row_keys
from assay.data.store import BatchRecord
from assay.errors import SpecError


@dataclass(frozen=True)
class Split:
    """Labelled rows in four parts, plus unlabelled rows (never test) for self-supervision.
    The calibration rows' scores are read by the conformal quantile alone (a quantile fit on
    rows that early stopping or the temperature already chose by is optimistic); under privacy
    with both held-out splits public, the mitigation's group thresholds read their decisions
    too, which changes no score."""

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    unlabelled: pd.DataFrame
    calibration: pd.DataFrame

    def sizes(self) -> dict[str, int]:
        parts = ("train", "valid", "calibration", "test", "unlabelled")
        return {name: len(getattr(self, name)) for name in parts}


def split_batches(batches: list[tuple[BatchRecord, pd.DataFrame]], spec: Spec) -> Split:
    """Apply spec.split. Rule 'source' takes test rows from files matching test_sources;
    rule 'random' holds out a stratified share of distinct rows. Validation rows always come
    from train; calibration rows are held out of the non-test rows first, every copy of a row
    on one side (a copy of a training row would be scored as if seen)."""
    rule, label = spec.split, spec.label.column
    columns = spec.required_columns
    frames = [f.reindex(columns=columns) for _, f in batches]
    is_test = [
        rule.rule == "source" and any(fnmatch.fnmatch(r.source, p) for p in rule.test_sources)
        for r, _ in batches
    ]
    everything = pd.concat(frames, ignore_index=True)
    labelled_mask = everything[label].notna()
    unlabelled = everything[~labelled_mask].reset_index(drop=True)
    if rule.rule == "source":
        test_mask = np.repeat(is_test, [len(f) for f in frames])
        test = everything[test_mask & labelled_mask]
        rest = everything[~test_mask & labelled_mask]
        if test.empty:
            raise SpecError(
                f"split.test_sources {rule.test_sources} matches no accepted labelled batch: "
                "ingest a test file or use split.rule: random"
            )
    else:
        rest, test = _hold_out_whole_duplicates(
            everything[labelled_mask], rule.test_fraction, spec, rule.seed
        )
    held = min(rule.calibration_fraction, rule.max_calibration_rows / max(len(rest), 1))
    rest, calibration = _hold_out_whole_duplicates(rest, held, spec, rule.seed)
    train, valid = _stratified(rest, rule.validation_fraction, label, rule.seed)
    return Split(
        train=train.reset_index(drop=True),
        valid=valid.reset_index(drop=True),
        test=test.reset_index(drop=True),
        unlabelled=unlabelled,
        calibration=calibration.reset_index(drop=True),
    )


def _hold_out_whole_duplicates(
    frame: pd.DataFrame, fraction: float, spec: Spec, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stratified random split, drawn over distinct rows: every copy of a row lands on
    the same side, so an exact duplicate can never put a test row into training. Without
    duplicates this is the plain stratified split."""
    codes, uniques = pd.factorize(row_keys(frame, spec.example_columns))
    if len(uniques) == len(frame):
        return _stratified(frame, fraction, spec.label.column, seed)
    firsts = np.unique(codes, return_index=True)[1]  # one row per distinct row, in code order
    _, held = _stratified(
        frame.iloc[firsts].reset_index(drop=True), fraction, spec.label.column, seed
    )
    test_mask = np.isin(codes, held.index.to_numpy())
    return frame[~test_mask], frame[test_mask]


def _stratified(
    frame: pd.DataFrame, fraction: float, label: str, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    if frame[label].nunique() < 2:
        raise SpecError(f"label '{label}' has fewer than two classes among training rows")
    return train_test_split(frame, test_size=fraction, random_state=seed, stratify=frame[label])
