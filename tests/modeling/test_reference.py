"""The reference family: each member learns what it should, the choice reads the validation
rows only, and a saved reference loads back without pickle."""

import numpy as np
import pandas as pd
import pytest
import yaml

from assay.config import load_spec
from assay.data.labels import labels
from assay.modeling.evaluation import binary_metrics
from assay.modeling.reference import ReferenceModel, boosting_shapes, fit_reference


@pytest.fixture
def spec(toy_spec):
    return toy_spec


def _frame(n: int, seed: int, *, linear: bool = False) -> pd.DataFrame:
    """A categorical rule (boosting's kind), or a smooth linear one in x (the linear model's)."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "blue", "green"], n)
    x = rng.normal(size=n)
    y = rng.random(n) < 1 / (1 + np.exp(-2 * x)) if linear else (colour == "red") | (x > 1)
    return pd.DataFrame(
        {"x": x, "colour": pd.array(colour, dtype="string"), "y": np.where(y, "yes", "no")}
    )


def test_each_member_learns_and_the_choice_is_deterministic(spec):
    train, valid, test = _frame(600, 0), _frame(200, 1), _frame(300, 2)
    first = fit_reference(train, valid, spec)
    second = fit_reference(train, valid, spec)
    np.testing.assert_array_equal(
        first.chosen.predict_proba(test), second.chosen.predict_proba(test)
    )
    assert set(first.best) == {"boosting", "logistic"}
    assert binary_metrics(labels(test, spec), first.chosen.predict_proba(test))["accuracy"] > 0.95
    # the spec's four boosting shapes and six values of C, every one judged on validation rows
    assert [t.member for t in first.tried] == ["boosting"] * 4 + ["logistic"] * 6
    assert first.describe().startswith(f"{first.chosen_member} (validation roc_auc: boosting ")


def test_the_member_is_chosen_on_validation_rows(spec):
    """A smooth signal in few rows: the linear member wins on validation; a rule on categories
    with interactions: boosting does."""
    smooth = fit_reference(_frame(200, 0, linear=True), _frame(400, 1, linear=True), spec)
    best = max(smooth.tried, key=lambda t: t.valid_metric)
    assert smooth.chosen_member == best.member
    rule = fit_reference(_frame(600, 0), _frame(200, 1), spec)
    assert rule.chosen_member == "boosting"


def test_members_can_be_limited(spec):
    only = spec.model_copy(
        update={"baseline": spec.baseline.model_copy(update={"members": ["logistic"]})}
    )
    family = fit_reference(_frame(300, 0), _frame(100, 1), only)
    assert family.chosen_member == "logistic" and family.chosen.iterations == 0


def test_the_search_draws_seeded_shapes_after_the_specs_own(spec):
    shapes = boosting_shapes(spec.baseline.model_copy(update={"search": 5}))
    assert len(shapes) == 5 and shapes[0]["max_leaf_nodes"] == spec.baseline.max_leaf_nodes
    assert shapes == boosting_shapes(spec.baseline.model_copy(update={"search": 5}))
    assert len({tuple(s.items()) for s in shapes}) == 5


def test_unseen_categories_and_missing_values_still_score(spec):
    family = fit_reference(_frame(300, 0), _frame(100, 1), spec)
    odd = pd.DataFrame(
        {"x": [np.nan, 0.0], "colour": pd.array(["violet", None], dtype="string"), "y": ["no"] * 2}
    )
    for model in family.best.values():
        scores = model.predict_proba(odd)
        assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))


def test_a_constant_or_empty_numeric_column_is_no_error(spec):
    train = _frame(300, 0).assign(x=1.0)
    valid = _frame(100, 1).assign(x=np.nan)
    family = fit_reference(train, valid, spec)
    assert np.all(np.isfinite(family.chosen.predict_proba(valid)))


def test_saved_without_pickle_and_loaded_back(tmp_path, spec):
    family = fit_reference(_frame(200, 0), _frame(100, 1), spec)
    test = _frame(50, 2)
    for member, model in family.best.items():
        folder = model.save(tmp_path / member)
        assert sorted(p.name for p in folder.iterdir()) == ["reference.json", "reference.skops"]
        again = ReferenceModel.load(folder)
        assert again.member == member
        np.testing.assert_array_equal(again.predict_proba(test), model.predict_proba(test))


def test_a_file_holding_foreign_types_is_refused(tmp_path, spec, monkeypatch):
    folder = fit_reference(_frame(200, 0), _frame(100, 1), spec).chosen.save(tmp_path / "m")
    monkeypatch.setattr(
        "skops.io.get_untrusted_types", lambda file: ["builtins.eval", "sklearn.pipeline.Pipeline"]
    )
    with pytest.raises(ValueError, match=r"not scikit-learn's: \['builtins.eval'\]"):
        ReferenceModel.load(folder)


def test_metrics_on_a_known_case():
    m = binary_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]))
    assert m["accuracy"] == 0.5 and m["roc_auc"] == 0.75 and m["rows"] == 4
    assert m["brier"] == pytest.approx((0.01 + 0.36 + 0.36 + 0.01) / 4)


def test_both_members_read_text_columns(tmp_path):
    """A text-only task: without the words either member would be a constant (ROC AUC 0.5)."""
    raw = {"name": "notes", "columns": {"note": {"type": "text"}},
           "label": {"column": "y", "positive": "yes", "negative": "no"},
           "split": {"rule": "random"}, "expectations": "s.json"}  # fmt: skip
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw))
    spec = load_spec(tmp_path / "s.yaml")
    rng = np.random.default_rng(0)

    def notes(n: int) -> pd.DataFrame:
        y = rng.random(n) < 0.4
        words = np.where(y, "refund charge late", "login password reset")
        noise = rng.choice(["hello", "please", "thanks", "refund", "login"], n)
        return pd.DataFrame({"note": [f"{w} {z}" for w, z in zip(words, noise, strict=True)],
                             "y": np.where(y, "yes", "no")})  # fmt: skip

    family = fit_reference(notes(400), notes(100), spec)
    test = notes(200)
    for model in family.best.values():
        assert binary_metrics(labels(test, spec), model.predict_proba(test))["roc_auc"] > 0.95


def test_a_text_column_without_words_is_left_out(tmp_path):
    raw = {"name": "notes", "columns": {"note": {"type": "text"}, "x": {"type": "numeric"}},
           "label": {"column": "y", "positive": "yes", "negative": "no"},
           "split": {"rule": "random"}, "expectations": "s.json"}  # fmt: skip
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw))
    spec = load_spec(tmp_path / "s.yaml")
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    frame = pd.DataFrame({"note": [None] * 300, "x": x, "y": np.where(x > 0, "yes", "no")})
    family = fit_reference(frame.iloc[:200], frame.iloc[200:], spec)
    assert family.chosen.predict_proba(frame.iloc[200:]).shape == (100,)


def test_few_validation_rows_choose_c_by_cross_validation(spec):
    """Under CV_BELOW validation rows C is chosen by 5-fold CV on the training rows (each value
    of C carries its mean); with enough validation rows they choose it, at no extra fits."""
    few = fit_reference(_frame(400, 0, linear=True), _frame(60, 1, linear=True), spec)
    logistic = [t for t in few.tried if t.member == "logistic"]
    assert all(0.5 < t.cv_metric <= 1 for t in logistic)
    best = max(logistic, key=lambda t: t.cv_metric)
    assert few.best["logistic"].settings == best.settings
    assert all(t.cv_metric is None for t in few.tried if t.member == "boosting")
    many = fit_reference(_frame(400, 0, linear=True), _frame(1000, 1, linear=True), spec)
    assert all(t.cv_metric is None for t in many.tried)
