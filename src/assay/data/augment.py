"""Synthetic training rows for the scarce groups of sensitive features (the spec's `augment`),
checked so that none is a copy of a real row.

SMOTE-NC (imbalanced-learn) draws each synthetic row between a real row and one of its k
nearest neighbours of the same group and label: numbers on the line between the two (rounded
where the real column holds whole numbers), categories the neighbours' most common. Drawing
within a group and label keeps the group's label balance as it was. Only the rows weights learn
from are augmented (fine-tuning and distillation); validation, calibration and test rows stay
real, so every figure is measured on real rows.

The distance-to-closest-record check: a synthetic row whose Gower distance to its closest real
training row is at most `augment.min_distance` is a copy of it (rounding and categories can
make one) and is dropped. The report gives the synthetic rows' distances beside the real rows'
own distances to their closest other row, the scale a reviewer judges them by.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from imblearn.over_sampling import SMOTEN, SMOTENC
from scipy import sparse
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import OneHotEncoder

from assay.config import AugmentSpec, Spec

MISSING = "\x00missing"  # a missing category, as SMOTE-NC sees it (it takes no NaN)
_CELL = "\x1f"  # joins a group and a label into the class SMOTE-NC draws within


@dataclass(frozen=True)
class Augmented:
    rows: pd.DataFrame  # the real rows, then the synthetic ones
    report: dict  # empty when the spec does not augment


def augment_rows(train: pd.DataFrame, spec: Spec) -> Augmented:
    """The training rows with synthetic rows for each scarce group of spec.augment.groups,
    drawn from the real rows alone (one feature's synthetic rows never seed another's)."""
    settings = spec.augment
    if settings is None:
        return Augmented(train, {})
    columns = [c for c in spec.required_columns if c != spec.id_column]
    numeric = [c for c in columns if spec.features.get(c) == "numeric"]
    drawn, groups, skipped = [], [], []
    closest: ClosestRecord | None = None  # built once, when the first rows are drawn
    for feature in settings.groups:
        synthetic, cells = _draw(train, feature, spec.label.column, columns, numeric, settings,
                                 spec.split.seed)  # fmt: skip
        skipped += [f"{feature}={g}, {spec.label.column}={y}: {n} rows" for g, y, n in cells]
        if synthetic.empty:
            continue
        closest = closest or ClosestRecord(train[columns], numeric)
        distance = closest.to_real(synthetic)
        copies = distance <= settings.min_distance
        kept = synthetic[~copies]
        for group in synthetic[feature].unique():
            mine = (synthetic[feature] == group).to_numpy()
            real = train.index[train[feature] == group]
            groups.append(
                {
                    "feature": feature,
                    "group": str(group),
                    "real_rows": len(real),
                    "synthetic_rows": int((mine & ~copies).sum()),
                    "copies_dropped": int((mine & copies).sum()),
                    # of the rows kept, against the real rows' own closest other row
                    **_quantiles("closest_real", distance[mine & ~copies]),
                    **_quantiles("real_closest_other", closest.to_other(real)),
                }
            )
        drawn.append(kept)
    synthetic_rows = pd.concat(drawn, ignore_index=True) if drawn else train.iloc[:0]
    report = {
        "method": settings.method,
        "factor": settings.factor,
        "real_rows": len(train),
        "synthetic_rows": len(synthetic_rows),
        "copies_dropped": sum(g["copies_dropped"] for g in groups),
        "groups": groups,
        "left_as_they_are": skipped,
    }
    rows = pd.concat([train, synthetic_rows.reindex(columns=train.columns)], ignore_index=True)
    return Augmented(rows.astype(train.dtypes.to_dict()), report)


def _quantiles(name: str, distance: np.ndarray) -> dict[str, float | None]:
    """The smallest distance and the 5th percentile (None: no rows)."""
    if not len(distance):
        return {f"{name}_min": None, f"{name}_p05": None}
    low, p05 = distance.min(), np.quantile(distance, 0.05)
    return {f"{name}_min": round(float(low), 5), f"{name}_p05": round(float(p05), 5)}


def _draw(
    train: pd.DataFrame,
    feature: str,
    label: str,
    columns: list[str],
    numeric: list[str],
    settings: AugmentSpec,
    seed: int,
) -> tuple[pd.DataFrame, list[tuple[str, str, int]]]:
    """SMOTE-NC rows for `feature`'s scarce groups, each group and label grown by the factor;
    the cells too small to draw in, as (group, label, rows)."""
    complete = train[columns].dropna(subset=numeric)  # SMOTE-NC takes no missing number
    counts = train[feature].value_counts()
    scarce = counts[counts < settings.scarce_share * len(train)].index
    cell = complete[feature].astype(str) + _CELL + complete[label].astype(str)
    wanted, small, scarce = {}, [], set(map(str, scarce))
    for key, rows in cell.value_counts().items():
        group, _, value = key.partition(_CELL)
        if group not in scarce:
            continue
        if rows <= settings.k_neighbors:
            small.append((group, value, int(rows)))
        else:
            wanted[key] = round(int(rows) * settings.factor)
    if not wanted:
        return complete.iloc[:0], small
    categorical = [c for c in columns if c not in numeric]
    x = complete.astype({c: object for c in categorical})
    x[categorical] = x[categorical].fillna(MISSING)
    if numeric:
        sampler = SMOTENC(
            categorical_features=[columns.index(c) for c in categorical],
            sampling_strategy=wanted,
            k_neighbors=settings.k_neighbors,
            random_state=seed,
        )
    else:
        sampler = SMOTEN(
            sampling_strategy=wanted, k_neighbors=settings.k_neighbors, random_state=seed
        )
    drawn, _ = sampler.fit_resample(x.to_numpy(dtype=object), cell.to_numpy())
    synthetic = pd.DataFrame(drawn[len(x) :], columns=columns).replace(MISSING, None)
    for name in numeric:
        values = pd.to_numeric(synthetic[name])
        whole = bool(np.all(np.mod(complete[name], 1) == 0))
        synthetic[name] = values.round() if whole else values
    return synthetic.astype(train[columns].dtypes.to_dict()), small


class ClosestRecord:
    """Gower distances to the closest real row, the encoding and the neighbour index of the
    real rows built once for every question asked of them."""

    def __init__(self, real: pd.DataFrame, numeric: list[str]) -> None:
        self.real, self.width = real, len(real.columns)
        self.encode = _gower_encoder(real, numeric)
        self.finder = NearestNeighbors(n_neighbors=2, metric="manhattan").fit(self.encode(real))

    def to_real(self, synthetic: pd.DataFrame) -> np.ndarray:
        """Each synthetic row's distance to its closest real row (0: the same cells)."""
        distance, _ = self.finder.kneighbors(self.encode(synthetic), n_neighbors=1)
        return distance[:, 0] / self.width

    def to_other(self, among: pd.Index) -> np.ndarray:
        """Each real row in `among`'s distance to its closest other real row."""
        distance, _ = self.finder.kneighbors(self.encode(self.real.loc[among]))
        return distance[:, 1] / self.width


def _gower_encoder(real: pd.DataFrame, numeric: list[str]):
    """Rows as vectors whose L1 distance is the sum of Gower's per-column distances: a number
    scaled by its column's range (a missing one differs by 1 from a present one), a category
    one-hot at weight 1/2 (a mismatch: 1)."""
    categorical = [c for c in real.columns if c not in numeric]
    low = real[numeric].min()
    spread = (real[numeric].max() - low).replace(0, 1)
    onehot = OneHotEncoder(handle_unknown="ignore").fit(_categories(real, categorical))

    def encode(frame: pd.DataFrame) -> sparse.csr_matrix:
        scaled = ((frame[numeric] - low) / spread).astype(float)
        missing = scaled.isna().to_numpy(dtype=float)
        parts = [scaled.fillna(0).to_numpy(), missing]
        cats = onehot.transform(_categories(frame, categorical)) * 0.5
        return sparse.hstack([sparse.csr_matrix(np.hstack(parts)), cats]).tocsr()

    return encode


def _categories(frame: pd.DataFrame, categorical: list[str]) -> np.ndarray:
    return frame[categorical].astype(object).fillna(MISSING).astype(str).to_numpy()


def summary(report: dict) -> str:
    """One line for the run summary ("off" when the spec does not augment)."""
    if not report:
        return "off"
    groups = ", ".join(
        f"{g['feature']}={g['group']} +{g['synthetic_rows']:,} ({g['real_rows']:,} real)"
        for g in report["groups"]
    )
    closest = [g["closest_real_min"] for g in report["groups"] if g["closest_real_min"] is not None]
    near = f"; closest to a real row {min(closest):.4f} (Gower)" if closest else ""
    left = report["left_as_they_are"]
    small = f"; left as they are: {'; '.join(left)}" if left else ""
    return (
        f"{report['synthetic_rows']:,} synthetic training rows ({report['method']}, x"
        f"{report['factor']:g}): {groups or 'no scarce group'}; {report['copies_dropped']} "
        f"copies of real rows dropped{near}{small}"
    )


def figures(report: dict) -> dict[str, float]:
    """MLflow metrics `augment.*`: the totals and each group's synthetic rows."""
    if not report:
        return {}
    out = {
        "augment.synthetic_rows": report["synthetic_rows"],
        "augment.copies_dropped": report["copies_dropped"],
    }
    for g in report["groups"]:
        out[f"augment.{g['feature']}.{g['group']}.synthetic_rows"] = g["synthetic_rows"]
        if g["closest_real_min"] is not None:
            out[f"augment.{g['feature']}.{g['group']}.closest_real_min"] = g["closest_real_min"]
    return out


def tags(report: dict) -> dict[str, str]:
    """Version and run tags: what trained the model besides real rows."""
    if not report:
        return {}
    groups = ",".join(f"{g['feature']}={g['group']}" for g in report["groups"])
    return {
        "assay.augment.method": report["method"],
        "assay.augment.synthetic_rows": str(report["synthetic_rows"]),
        "assay.augment.groups": groups or "none",
    }


def card(report: dict) -> list[str]:
    """The model card's section (none when the spec does not augment)."""
    if not report:
        return []
    rows = [
        f"| {g['feature']} = {g['group']} | {g['real_rows']:,} | {g['synthetic_rows']:,} | "
        f"{g['copies_dropped']} | {g['closest_real_min']} | {g['real_closest_other_p05']} |"
        for g in report["groups"]
    ]
    return [
        "## Synthetic training rows",
        "",
        f"Fine-tuning and distillation also learnt from {report['synthetic_rows']:,} synthetic "
        f"rows ({report['method']}, each scarce group and label grown x{report['factor']:g}); "
        "validation, calibration and test rows are all real. A synthetic row at most "
        "`augment.min_distance` (Gower) from a real training row is a copy and was dropped.",
        "",
        "| group | real rows | synthetic rows | copies dropped | closest to a real row | real "
        "rows' own closest other (5th pct.) |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]
