import numpy as np
import pandas as pd
import pytest

from assay.data.labels import labels
from assay.modeling.baseline import fit_baseline
from assay.modeling.evaluation import binary_metrics


@pytest.fixture
def spec(toy_spec):
    return toy_spec


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "blue", "green"], n)
    x = rng.normal(size=n)
    y = np.where((colour == "red") | (x > 1), "yes", "no")
    return pd.DataFrame({"x": x, "colour": pd.array(colour, dtype="string"), "y": y})


def test_baseline_learns_a_categorical_rule_and_is_deterministic(spec):
    train, valid, test = _frame(600, 0), _frame(200, 1), _frame(300, 2)
    first = fit_baseline(train, valid, spec).predict_proba(test)
    second = fit_baseline(train, valid, spec).predict_proba(test)
    np.testing.assert_array_equal(first, second)
    assert binary_metrics(labels(test, spec), first)["accuracy"] > 0.95


def test_unseen_categories_and_missing_values_still_score(spec):
    model = fit_baseline(_frame(300, 0), _frame(100, 1), spec)
    odd = pd.DataFrame(
        {"x": [np.nan, 0.0], "colour": pd.array(["violet", None], dtype="string"), "y": ["no"] * 2}
    )
    scores = model.predict_proba(odd)
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))


def test_model_is_saved_without_pickle(tmp_path, spec):
    folder = fit_baseline(_frame(200, 0), _frame(100, 1), spec).save(tmp_path / "m")
    assert sorted(p.name for p in folder.iterdir()) == ["baseline.skops", "baseline_features.json"]


def test_metrics_on_a_known_case():
    m = binary_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]))
    assert m["accuracy"] == 0.5 and m["roc_auc"] == 0.75 and m["rows"] == 4
    assert m["brier"] == pytest.approx((0.01 + 0.36 + 0.36 + 0.01) / 4)


def test_baseline_reads_text_columns(tmp_path):
    """A text-only task: without the words the baseline would be a constant (ROC AUC 0.5)."""
    import yaml

    from assay.config import load_spec

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

    model = fit_baseline(notes(400), notes(100), spec)
    test = notes(200)
    assert binary_metrics(labels(test, spec), model.predict_proba(test))["roc_auc"] > 0.95
    model.save(tmp_path / "saved")
    assert (tmp_path / "saved" / "baseline_text.skops").is_file()
