"""Hostile input: junk bytes, huge fields, deep JSON, formula text and paths that try to leave
ASSAY_HOME. Each is refused with a one-line reason; a refused file is kept byte for byte in
quarantine; nothing outside the home is read, moved or written."""

from __future__ import annotations

import gzip
import os
import string
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from assay.data.fingerprint import file_digest
from assay.data.paths import check_path, unchanged
from assay.data.reader import MAX_COLUMNS, MAX_REASON_CHARS, read_table
from assay.data.store import BatchStore
from assay.errors import ReadError
from assay.ingest import Parsed, parse, parse_checked
from assay.registry.audit import AuditLog
from assay.validation.check import check
from assay.validation.report import render_html
from tests.conftest import ADULT_SPEC

pytestmark = pytest.mark.reliability

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # the same examples on every run and in CI
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
SUFFIXES = [".csv", ".csv.gz", ".jsonl", ".json", ".parquet", ".data"]
ROW = (
    "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, "
    "Male, 2174, 0, 40, United-States, <=50K"
)
INJECTIONS = [
    "=1+2<script>alert(1)</script>",
    "@SUM(A1:A9)",
    "+cmd|' /C calc'!A0",
    "-2+3&<b>x</b>",
    '=HYPERLINK("http://evil.example/")',
]


def _assert_one_line(reason: str) -> None:
    assert reason and "\n" not in reason and "\r" not in reason
    assert len(reason) <= MAX_REASON_CHARS
    assert reason.isprintable()


def _read(data: bytes, suffix: str, spec) -> str | None:
    """Parse `data` as a file with `suffix`: None if it became a frame, else the reason."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        path.write_bytes(data)
        parsed = parse(path, spec)
        assert file_digest(path) == _digest(data), "the reader changed the file"
    if parsed.error is not None:
        _assert_one_line(parsed.error)
    event("refused" if parsed.error else "parsed")
    return parsed.error


def _digest(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


# -- the reader never crashes: a frame, or a one-line reason ----------------------------------


@FUZZ
@given(data=st.binary(max_size=4096), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes_give_a_frame_or_a_one_line_reason(adult_spec, data, suffix):
    _read(data, suffix, adult_spec)


@FUZZ
@given(text=st.text(max_size=2000), suffix=st.sampled_from(SUFFIXES))
def test_random_text_gives_a_frame_or_a_one_line_reason(adult_spec, text, suffix):
    _read(text.encode("utf-8", "surrogatepass"), suffix, adult_spec)


_CELLS = st.one_of(
    st.sampled_from(ROW.split(", ")),
    st.sampled_from(INJECTIONS),
    st.sampled_from(['"', '""', "?", "", "nan", "inf", "1e999", "\x00", "\ufeff", "|x", "\u2028"]),
    st.text(string.printable, max_size=30),
    st.text(max_size=10),
    st.integers(-(10**30), 10**30).map(str),
)
_FIELDS = ROW.split(", ")
# Mostly well-formed Adult rows with a few hostile cells, so most examples reach the suite;
# some rows are cut short or padded, so the reader's shape checks are fuzzed too.
_ROW = st.builds(
    lambda edits, cut, extra: [
        *(dict(edits).get(i, v) for i, v in enumerate(_FIELDS[: cut or None])),
        *extra,
    ],
    st.lists(st.tuples(st.integers(0, len(_FIELDS) - 1), _CELLS), max_size=3),
    st.sampled_from([0] * 8 + [1, 14]),
    st.sampled_from([[]] * 8 + [["x"]]),
)
_ROWS = st.lists(_ROW, min_size=1, max_size=25)


@settings(FUZZ, max_examples=40)
@given(rows=_ROWS, sep=st.sampled_from([", ", ",", "\t"]))
def test_csv_like_rows_are_parsed_and_validated_or_refused(adult_spec, adult_suite, rows, sep):
    """The reader and the GE suite together: a verdict with a one-line reason, and a report
    page in which no cell is markup."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rows.csv"
        path.write_text("\n".join(sep.join(r) for r in rows) + "\n", encoding="utf-8")
        parsed = parse(path, adult_spec)
    if parsed.frame is None:
        _assert_one_line(parsed.error)
        event("refused by the reader")
        return
    report = check(parsed.frame, adult_suite)
    event("accepted by the suite" if report.passed else "rejected by the suite")
    assert isinstance(report.reason, str) and "\n" not in report.reason
    page = render_html(report, "fuzz <title>")
    assert "<script>" not in page and "<b>x" not in page


# -- each hostile file, read directly ---------------------------------------------------------


def _header_spec(adult_spec):
    source = adult_spec.source.model_copy(update={"header": True, "names": None})
    return adult_spec.model_copy(update={"source": source})


HOSTILE_FILES = {
    "junk.csv": (lambda: bytes(range(256)) * 40, "not valid UTF-8 text"),
    "utf16.csv": (lambda: (ROW + "\n").encode("utf-16"), "not valid UTF-8 text"),
    "huge-line.csv": (lambda: b"39, " + b"x" * 50_000_000 + b"\n", "line 1 is longer than"),
    "huge-cell.csv": (
        lambda: (ROW + "\n" + ROW.replace("State-gov", "y" * 100_000) + "\n").encode(),
        "column 'workclass': a cell of 100,000 characters in data row 2",
    ),
    "bomb.csv.gz": (lambda: gzip.compress(b"a" * 30_000_000), "line 1 is longer than"),
    "wide.csv": (
        lambda: (",".join(["1"] * 10_000) + "\n").encode(),
        "10000 fields where source.names lists 15",
    ),
    "deep.jsonl": (
        lambda: ('{"age": ' + "[" * 100_000 + "]" * 100_000 + "}\n").encode(),
        "cannot parse as jsonl: Reached object decoding depth limit",
    ),
    "array.json": (lambda: b'[{"age": 39}, {"age": 40}]\n', "every JSON line must be one object"),
    "mixed.jsonl": (lambda: b'{"age": 39}\n[1]\n', "cannot parse as jsonl"),
    "empty.csv": (lambda: b"", "file is empty (0 bytes)"),
    "header-only.csv": (
        lambda: (", ".join(ADULT_COLUMNS) + "\n").encode(),
        "the first row is a header, but the spec says the file has none",
    ),
    "not-parquet.parquet": (lambda: b"PAR1" + os.urandom(64), "cannot parse as parquet"),
}
ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week",
    "native_country", "income",
]  # fmt: skip


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_each_hostile_file_is_refused_with_its_reason(tmp_path, adult_spec, name):
    make, reason = HOSTILE_FILES[name]
    path = tmp_path / name
    path.write_bytes(make())
    with pytest.raises(ReadError) as err:
        read_table(path, adult_spec)
    assert reason in str(err.value)
    _assert_one_line(str(err.value))


def test_too_many_columns_and_a_bare_header_with_a_header_spec(tmp_path, adult_spec):
    spec = _header_spec(adult_spec)
    wide = tmp_path / "wide.csv"
    wide.write_text(
        ",".join(f"c{i}" for i in range(MAX_COLUMNS + 1)) + "\n" + "1," * MAX_COLUMNS + "1\n"
    )
    with pytest.raises(ReadError, match=f"{MAX_COLUMNS + 1:,} columns: more than the limit"):
        read_table(wide, spec)
    bare = tmp_path / "bare.csv"
    bare.write_text(",".join(ADULT_COLUMNS) + "\n")
    with pytest.raises(ReadError, match="file has no data rows"):
        read_table(bare, spec)


def test_nested_parquet_cells_are_refused(tmp_path, adult_spec):
    frame = read_table(_adult_file(tmp_path, 2), adult_spec)
    nested = pa.array([[1, 2], [3]], type=pa.list_(pa.int64()))
    table = pa.Table.from_pandas(frame).set_column(1, "workclass", nested)
    pq.write_table(table.replace_schema_metadata(None), tmp_path / "plain.parquet")
    with pytest.raises(ReadError, match="column 'workclass' holds nested values"):
        read_table(tmp_path / "plain.parquet", adult_spec)
    # pandas metadata that promises text where the data holds lists: pyarrow's own error
    pq.write_table(table, tmp_path / "lying.parquet")
    with pytest.raises(ReadError, match="cannot parse as parquet: Unsupported cast"):
        read_table(tmp_path / "lying.parquet", adult_spec)


def test_formula_text_fails_the_value_set_and_the_report_escapes_it(
    tmp_path, adult_spec, adult_suite
):
    """Decision: formula-looking text is data. In a categorical column it is an unknown
    value, so the suite's value set rejects it (above the allowed rate); reasons quote it with
    repr, the HTML report escapes it, and Parquet stores it as inert text."""
    rows = [ROW.replace("Adm-clerical", INJECTIONS[i % len(INJECTIONS)]) for i in range(50)]
    path = tmp_path / "formulas.csv"
    path.write_text("\n".join(rows) + "\n")
    report = check(read_table(path, adult_spec), adult_suite)
    assert not report.passed
    assert "column 'occupation' column_values_to_be_in_set: 100.00% unexpected" in report.reason
    page = render_html(report, "formulas")
    assert "<script>" not in page and "&lt;script&gt;" in page


# -- the path check, without Prefect ----------------------------------------------------------


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder beside the home with a sentinel file that must never change."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "sentinel.csv").write_text(ROW + "\n")
    return folder


def test_path_rules(home, outside, monkeypatch):
    landing = home.landing
    landing.mkdir(parents=True)
    (landing / "ok.csv").write_text(ROW + "\n")
    (landing / "link.csv").symlink_to(outside / "sentinel.csv")
    (landing / "inner-link.csv").symlink_to(landing / "ok.csv")
    (landing / "dir").mkdir()
    os.mkfifo(landing / "fifo.csv")
    monkeypatch.chdir(outside)
    confined = {
        str(landing / "ok.csv"): "ok",
        "sentinel.csv": "outside the landing folder",
        str(outside / "sentinel.csv"): "outside the landing folder",
        f"{landing}/../../outside/sentinel.csv": "'..' in the path",
        str(landing / "link.csv"): "a symbolic link (to ",
        str(landing / "inner-link.csv"): "a symbolic link",
        str(landing / "dir"): "a folder, not a regular file",
        str(landing / "fifo.csv"): "a FIFO (named pipe), not a regular file",
        str(landing): "outside the landing folder",
        "/dev/zero": "outside the landing folder",
        "": "the path is empty",
        "a\x00b": "holds a NUL byte",
        str(landing / "gone.csv"): "no such file",
    }
    for given_path, expected in confined.items():
        checked = check_path(given_path, landing, confine=True)
        assert expected in (checked.reason or checked.verdict), given_path
        _assert_one_line(checked.reason or "ok")
    # A direct call may name files anywhere, but the landing folder keeps its rules.
    assert check_path("sentinel.csv", landing, confine=False).verdict == "ok"
    assert "character device" in check_path("/dev/zero", landing, confine=False).reason
    assert "symbolic link" in check_path(str(landing / "link.csv"), landing, confine=False).reason


def test_a_file_swapped_after_the_check_is_never_read(home, outside, adult_spec):
    home.landing.mkdir(parents=True)
    path = home.landing / "swap.csv"
    path.write_text(ROW + "\n")
    checked = check_path(str(path), home.landing, confine=True)
    assert checked.verdict == "ok" and unchanged(checked)
    with path.open("rb"):  # holds the checked inode, so the new file cannot reuse its number
        other = home.landing / "other.csv"
        other.write_text(ROW + "\n")
        os.replace(other, path)  # same name and bytes, another file than the one checked
        assert not unchanged(checked) and parse_checked(checked, adult_spec).changed
        path.unlink()
        path.symlink_to(outside / "sentinel.csv")
        assert parse_checked(checked, adult_spec) == Parsed(None, None, changed=True)


@pytest.mark.parametrize("name", ["rows.csv.gz", "rows.jsonl.gz", "rows.parquet"])
def test_a_checked_file_is_read_through_its_descriptor(home, adult_spec, name):
    """Format and compression still go by the file's own name."""
    home.landing.mkdir(parents=True)
    frame = read_table(_adult_file(home.landing, 3), adult_spec)
    path = home.landing / name
    if name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    elif name.startswith("rows.jsonl"):
        frame.to_json(path, orient="records", lines=True, compression="gzip")
    else:
        path.write_bytes(gzip.compress((ROW + "\n").encode() * 3))
    parsed = parse_checked(check_path(str(path), home.landing, confine=True), adult_spec)
    assert parsed.error is None and len(parsed.frame) == 3


# -- through the real ingest flow -------------------------------------------------------------


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under folder with its bytes and mtime (links not followed)."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.lstat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def _run(paths, home, **kwargs):
    from flows.ingest import ingest

    return ingest([str(p) for p in paths], str(ADULT_SPEC), str(home.root), **kwargs)


@pytest.mark.usefixtures("prefect_api")
def test_hostile_files_in_landing_are_quarantined_intact(home, adult_lines):
    home.landing.mkdir(parents=True)
    names = ["junk.csv", "utf16.csv", "huge-line.csv", "bomb.csv.gz", "deep.jsonl", "array.json",
             "empty.csv", "header-only.csv", "wide.csv"]  # fmt: skip
    landed = {}
    for name in names:
        (home.landing / name).write_bytes(HOSTILE_FILES[name][0]())
        landed[name] = file_digest(home.landing / name)
    formulas = home.landing / "formulas.csv"
    formulas.write_text(
        "\n".join(
            ", ".join(
                f.strip() if i != 6 else INJECTIONS[n % 5] for i, f in enumerate(line.split(","))
            )
            for n, line in enumerate(adult_lines[:100])
        )
        + "\n"
    )
    landed["formulas.csv"] = file_digest(formulas)
    outcomes = _run([home.landing / n for n in landed], home)
    for name, outcome in zip(landed, outcomes, strict=True):
        assert outcome.status == "quarantined", (name, outcome)
        expected = HOSTILE_FILES[name][1] if name in HOSTILE_FILES else "column 'occupation'"
        assert expected in outcome.reason
        _assert_one_line(outcome.reason)
        folder = Path(outcome.quarantine_dir)
        assert file_digest(folder / name) == landed[name], f"{name}: quarantined copy differs"
        assert (folder / "reason.txt").read_text().splitlines() == [outcome.reason]
        assert not (home.landing / name).exists()
    page = Path(outcomes[-1].report).read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert BatchStore(home.batches).records() == []
    assert len(AuditLog(home.audit).entries()) == len(landed)


@pytest.mark.usefixtures("prefect_api")
def test_paths_that_leave_the_landing_folder_are_rejected(
    home, outside, tmp_path, monkeypatch, adult_lines
):
    """A deployment run (as an event would start one) is confined without being told."""
    import flows.ingest

    landing = home.landing
    landing.mkdir(parents=True)
    sentinel = outside / "sentinel.csv"
    (landing / "link.csv").symlink_to(sentinel)
    (landing / "linked-dir").symlink_to(outside, target_is_directory=True)
    (landing / "sub").mkdir()
    os.mkfifo(landing / "fifo.csv")
    os.link(sentinel, landing / "hard.csv")
    good = "\n".join(adult_lines[:50]) + "\n"
    (landing / "swapped.csv").write_text(good)
    (landing / ("n" * 230 + ".csv")).write_text(good)
    before = _snapshot(outside)
    others = sorted(p.name for p in tmp_path.iterdir())

    real_parse = flows.ingest.parse_file

    def swapping_parse(checked, spec):
        """Between the check and the read, the file becomes a link out of the home."""
        if checked.path.name == "swapped.csv":
            checked.path.unlink()
            checked.path.symlink_to(sentinel)
        return real_parse(checked, spec)

    monkeypatch.setattr(flows.ingest, "parse_file", swapping_parse)
    monkeypatch.setattr(flows.ingest, "from_deployment", lambda: True)
    monkeypatch.chdir(landing)
    payload = {
        str(sentinel): ("outside the landing folder", False),
        "../../outside/sentinel.csv": ("'..' in the path", False),
        f"{landing}/../../outside/sentinel.csv": ("'..' in the path", False),
        "link.csv": ("a symbolic link (to ", True),
        "linked-dir/sentinel.csv": ("outside the landing folder", False),
        "sub": ("a folder, not a regular file", False),
        "fifo.csv": ("a FIFO (named pipe)", True),
        "hard.csv": ("a hard link (2 names for one file)", True),
        "/dev/zero": ("outside the landing folder", False),
        "swapped.csv": ("changed (replaced or relinked) while it was being ingested", True),
        "n" * 230 + ".csv": ("a file name longer than 200 bytes", True),
    }
    outcomes = _run(list(payload), home)

    for (given_path, (reason, moved)), outcome in zip(payload.items(), outcomes, strict=True):
        assert (outcome.status, outcome.path) == ("rejected", given_path)
        assert reason in outcome.reason, given_path
        folder = Path(outcome.quarantine_dir)
        assert folder.parent == home.quarantine
        assert (folder / "reason.txt").read_text().splitlines() == [outcome.reason]
        kept = {p.name for p in folder.iterdir()} - {"reason.txt", "report.json"}
        assert len(kept) == moved and all(given_path.startswith(k) for k in kept)
    link = Path(outcomes[3].quarantine_dir) / "link.csv"
    assert link.is_symlink() and os.readlink(link) == str(sentinel), "the link itself is kept"
    assert (landing / "sub").is_dir(), "a folder in landing is named, not moved"
    assert _snapshot(outside) == before, "a file outside the home changed"
    assert sorted(p.name for p in tmp_path.iterdir()) == others, "something was written outside"
    assert BatchStore(home.batches).records() == []
    entries = AuditLog(home.audit).entries()
    assert [(e.action, e.evidence["status"]) for e in entries] == [("rejected", "rejected")] * 11


def _adult_file(tmp_path, rows: int) -> Path:
    path = tmp_path / "rows.csv"
    path.write_text("\n".join([ROW] * rows) + "\n")
    return path
