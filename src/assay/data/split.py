"""Split a snapshot into train, validation and test rows by the spec's rule, reproducibly."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from assay.config import Spec
from assay.data.store import BatchRecord
from assay.errors import SpecError


@dataclass(frozen=True)
class Split:
    """Labelled rows in three parts, plus unlabelled rows (never test) for self-supervision."""

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    unlabelled: pd.DataFrame

    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in ("train", "valid", "test", "unlabelled")}


def split_batches(batches: list[tuple[BatchRecord, pd.DataFrame]], spec: Spec) -> Split:
    """Apply spec.split. Rule 'source' takes test rows from files matching test_sources;
    rule 'random' holds out a stratified share. Validation rows always come from train."""
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
        rest, test = _stratified(everything[labelled_mask], rule.test_fraction, label, rule.seed)
    train, valid = _stratified(rest, rule.validation_fraction, label, rule.seed)
    return Split(
        train=train.reset_index(drop=True),
        valid=valid.reset_index(drop=True),
        test=test.reset_index(drop=True),
        unlabelled=unlabelled,
    )


def _stratified(
    frame: pd.DataFrame, fraction: float, label: str, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    if frame[label].nunique() < 2:
        raise SpecError(f"label '{label}' has fewer than two classes among training rows")
    return train_test_split(frame, test_size=fraction, random_state=seed, stratify=frame[label])
