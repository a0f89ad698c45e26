"""Every refusal in the spec package has a test that triggers it: the table below changes the
Adult spec one way per refusal, and a last test finds each `raise` in src/assay/config (its
message with the formatted parts as wildcards) among the messages the table produced, so a new
refusal without a row here fails the suite."""

from __future__ import annotations

import ast
import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from assay.config import load_spec
from assay.errors import SpecError
from tests.conftest import ADULT_SPEC, ROOT

Raw = dict[str, Any]
ADULT: Raw = yaml.safe_load(ADULT_SPEC.read_text())
DATED = {"type": "datetime"}


def _set(path: str, value: Any) -> Callable[[Raw], None]:
    """A change that sets one dotted key (creating the sections on the way)."""

    def change(raw: Raw) -> None:
        *parents, leaf = path.split(".")
        node = raw
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value

    return change


def _both(*changes: Callable[[Raw], None]) -> Callable[[Raw], None]:
    def change(raw: Raw) -> None:
        for one in changes:
            one(raw)

    return change


def _filter(predicate: Any) -> Callable[[Raw], None]:
    return _set("source.filter", predicate)


def _code_table(content: str | None) -> Callable[[Raw], None]:
    """workclass reads its codes from codes.json beside the spec (None: no such file)."""

    def change(raw: Raw) -> None:
        raw["columns"]["workclass"]["values"] = "codes.json"
        raw["_codes"] = content

    return change


PRIVATE = {"epsilon": 3.0}
ATTRIBUTE = "fairness.attributes.age_band"
# (what is wrong, the change, a piece of the one-line refusal)
REFUSALS: list[tuple[str, Callable[[Raw], None], str]] = [
    ("no columns", _set("columns", {}), "columns must list at least one feature column"),
    ("label as a column", _set("columns.income", {"type": "categorical"}), "must not include"),
    ("names lack a column", _set("columns.tenure", {"type": "numeric"}), "source.names lacks"),
    (
        "privacy with federation",
        _both(_set("privacy", PRIVATE), _set("federation", {"sites": ["a", "b"]})),
        "privacy and federation together are not built yet",
    ),
    ("mitigation without groups", _set("sensitive_features", []), "mitigation needs sensitive"),
    (
        "reweighing on a non-sensitive column",
        _set("compression.reweigh_on", "workclass"),
        "compression.reweigh_on: 'workclass' is not a sensitive feature",
    ),
    (
        "mitigation on a non-sensitive column",
        _set("fairness.mitigate_on", "workclass"),
        "fairness.mitigate_on: 'workclass' is not a sensitive feature",
    ),
    (
        "review groups that are not sensitive",
        _set("uncertainty.group_by", ["workclass"]),
        "uncertainty.group_by: ['workclass'] are not sensitive features",
    ),
    (
        "augmenting a group that is not sensitive",
        _set("augment", {"groups": ["workclass"]}),
        "augment.groups: ['workclass'] are not sensitive features",
    ),
    (
        "a gate on a non-sensitive column",
        _set(
            "fairness.gate",
            [{"feature": "age", "metric": "demographic_parity_ratio", "limit": 0.8}],
        ),
        "fairness.gate: 'age' is not a sensitive feature (known:",
    ),
    (
        "augmentation with privacy",
        _both(_set("augment", {"groups": ["sex"]}), _set("privacy", PRIVATE)),
        "augment and privacy together are refused",
    ),
    (
        "a derived name taken twice",
        _set("derive.age", {"difference": ["age", "fnlwgt"]}),
        "derive: 'age' is already a name under columns",
    ),
    (
        "an attribute that is a model input",  # a datetime's inputs are its parts, not its name
        _both(_set("columns.age", DATED), _set("fairness.attributes.age", {})),
        "fairness.attributes.age: 'age' is a model input",
    ),
    (
        "a derived ratio of a category",
        _set("derive.odd", {"ratio": ["workclass", "age"]}),
        "derive.odd: 'workclass' is categorical, not numeric",
    ),
    (
        "bands of a category",
        _set(ATTRIBUTE, {"column": "workclass", "bins": [1]}),
        "fairness.attributes.age_band: bins need a numeric column",
    ),
    (
        "merged numbers",
        _set(ATTRIBUTE, {"column": "age", "merge": {"old": ["90"]}}),
        "fairness.attributes.age_band: merge needs a categorical column",
    ),
    (
        "an unknown sensitive feature",
        _set("sensitive_features", ["sex", "gender"]),
        "'gender' is neither a model input nor a name under fairness.attributes",
    ),
    (
        "a numeric sensitive feature",
        _both(_set("sensitive_features", ["sex", "age"]), _set("fairness.gate", [])),
        "'age' is numeric, which makes one group per value; band it",
    ),
    ("bad sites", _set("federation", {"sites": ["North", "b"]}), "sites must be distinct"),
    (
        "public stages without public rows",
        _set("privacy", {**PRIVATE, "public": [], "distil_on": "public"}),
        "distil_on: public needs public: [validation]",
    ),
    ("threshold out of range", _set("decision.threshold", 1.5), "threshold must lie strictly"),
    ("no test patterns", _set("split", {"rule": "source"}), "test_sources must list at least"),
    ("heads that do not divide", _set("model.num_heads", 5), "num_heads must divide hidden_size"),
    (
        "bands not ascending",
        _set("derive.age_bins", {"bins": {"column": "age", "edges": [40, 30]}}),
        "edges must be strictly ascending",
    ),
    (
        "band names miscounted",
        _set(ATTRIBUTE, {"column": "age", "bins": [30, 60], "labels": ["young"]}),
        "labels needs 3 names for 2 edges",
    ),
    (
        "bands and merge together",
        _set(ATTRIBUTE, {"column": "age", "bins": [30], "merge": {"x": ["1"]}}),
        "give bins (numbers) or merge (categories), not both",
    ),
    ("band names without bands", _set(ATTRIBUTE, {"labels": ["a"]}), "labels name the bands"),
    (
        "no rule for a derived column",
        _set("derive.nothing", {"description": "?"}),
        "give exactly one of ratio, difference, bins (found [])",
    ),
    (
        "a combinator with a test",
        _filter({"all": [{"column": "age", "min": 1}], "column": "age"}),
        "a filter is either one of all/any/not",
    ),
    ("an empty combinator", _filter({"any": []}), "all/any need at least one predicate"),
    ("a test without a column", _filter({"min": 1}), "a test needs `column`"),
    ("two tests", _filter({"column": "age", "min": 1, "max": 2}), "needs exactly one test of"),
    ("a reversed range", _filter({"column": "age", "between": [9, 1]}), "low is above high"),
    ("a fractional count", _set("source.max_bad_lines", 2.5), "max_bad_lines: a count must be"),
    ("a rename collision", _set("source.rename", {"a": "x", "b": "x"}), "rename maps several"),
    (
        "datetime options on a number",
        _set("columns.age", {"type": "numeric", "timezone": "Europe/Paris"}),
        "['timezone'] only apply to datetime columns",
    ),
    (
        "a code table on a number",
        _set("columns.age", {"type": "numeric", "values": {"1": "one"}}),
        "values (a code table) only applies to categorical columns",
    ),
    (
        "a datetime with no parts",
        _set("columns.age", {**DATED, "features": []}),
        "a datetime column needs at least one of features",
    ),
    (
        "elapsed days from nowhere",
        _set("columns.age", {**DATED, "features": ["elapsed_days"]}),
        "elapsed_days needs reference",
    ),
    ("one class twice", _set("label.negative", ">50K"), "positive and negative must differ"),
    (
        "a third class",
        _set("label.values", {"maybe": ["?"]}),
        "values keys must be '>50K' or '<=50K', not ['maybe']",
    ),
    (
        "a value in both classes",
        _set("label.values", {">50K": ["x"], "<=50K": ["x"]}),
        "values ['x'] are listed under both classes",
    ),
    ("a missing code table", _code_table(None), "columns: code table"),
    ("a code table that is not JSON", _code_table("{"), "is not valid JSON"),
    ("a code table that is a list", _code_table("[1, 2]"), "must be one JSON object of code"),
    ("a misspelt key", _set("colums", {}), "colums: unknown key"),
]

# Refusals of the file itself: (what is wrong, the file's text or None for no file, profile)
FILE_REFUSALS: list[tuple[str, str | None, str | None, str]] = [
    ("no file", None, None, "spec file not found"),
    ("not YAML", "name: [", None, "not valid YAML"),
    ("not a mapping", "- a\n- b\n", None, "expected a mapping of settings at the top level"),
    ("an unknown profile", yaml.safe_dump(ADULT), "fastest", "no profile 'fastest' (profiles:"),
]


def _refusal(tmp_path: Path, change: Callable[[Raw], None]) -> str:
    raw = copy.deepcopy(ADULT)
    change(raw)
    codes = raw.pop("_codes", None)
    if codes is not None:
        (tmp_path / "codes.json").write_text(codes)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    (tmp_path / ADULT["expectations"]).parent.mkdir(parents=True, exist_ok=True)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    return str(caught.value)


def _file_refusal(tmp_path: Path, text: str | None, profile: str | None) -> str:
    path = tmp_path / "spec.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_spec(path, profile)
    return str(caught.value)


@pytest.mark.parametrize(("why", "change", "expected"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_each_refusal_is_one_line_naming_the_problem(tmp_path, why, change, expected):
    message = _refusal(tmp_path, change)
    assert expected in message, message
    assert "\n" not in message and message.startswith(str(tmp_path / "spec.yaml"))


@pytest.mark.parametrize(
    ("why", "text", "profile", "expected"), FILE_REFUSALS, ids=[r[0] for r in FILE_REFUSALS]
)
def test_each_refusal_of_the_file_is_one_line(tmp_path, why, text, profile, expected):
    message = _file_refusal(tmp_path, text, profile)
    assert expected in message and "\n" not in message, message


def _raise_sites() -> dict[str, re.Pattern[str]]:
    """Each `raise ValueError|SpecError(...)` in the spec package, as a pattern of its message:
    the literal parts in order, anything between them."""
    sites = {}
    for path in sorted((ROOT / "src" / "assay" / "config").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
                continue
            if getattr(node.exc.func, "id", "") not in ("ValueError", "SpecError"):
                continue
            parts = [
                n.value
                for n in ast.walk(node.exc.args[0])
                if isinstance(n, ast.Constant) and isinstance(n.value, str)
            ]
            sites[f"{path.name}:{node.lineno}"] = re.compile(
                ".*".join(re.escape(p) for p in parts), re.DOTALL
            )
    return sites


def test_every_refusal_in_the_spec_package_is_triggered_by_a_row_above(tmp_path_factory):
    messages = [_refusal(tmp_path_factory.mktemp("spec"), change) for _, change, _ in REFUSALS] + [
        _file_refusal(tmp_path_factory.mktemp("file"), text, profile)
        for _, text, profile, _ in FILE_REFUSALS
    ]
    untested = [
        site
        for site, pattern in _raise_sites().items()
        if not any(pattern.search(m) for m in messages)
    ]
    assert len(_raise_sites()) >= 45
    assert not untested, f"refusals no row of REFUSALS triggers: {untested}"
