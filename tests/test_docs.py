"""The README is a front door a newcomer reads in one sitting, and the spec reference of the
documentation site covers every field the loader validates (the site's strict build runs in
`make test`)."""

from __future__ import annotations

import re
from types import SimpleNamespace

from assay.config import Spec
from assay.config.reference import markdown, rows, sections
from tests.conftest import ROOT

README = ROOT / "README.md"


def test_the_readme_is_short_and_links_only_to_pages_that_exist():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250
    assert not [line for line in lines if len(line) > 200]
    for target in re.findall(r"\]\((docs/[^)#]+)", "\n".join(lines)):
        assert (ROOT / target).is_file(), target


def test_the_spec_reference_lists_every_field_of_every_section():
    """Checked against pydantic's own schema of a spec: each model it defines, each property."""
    schema = Spec.model_json_schema()
    expected = {("Spec", name) for name in schema["properties"]}
    for title, definition in schema["$defs"].items():
        expected |= {(title, name) for name in definition.get("properties", {})}
    listed = {
        (model.__name__, field.alias or name)
        for _, model in sections()
        for name, field in model.model_fields.items()
    }
    assert expected - listed == set()
    paths = {row.path.rpartition(".")[2] for row in rows()}
    assert {name for _, name in expected} <= paths


def test_the_reference_page_is_filled_in_at_build_time():
    import docs.hooks as hooks

    page = SimpleNamespace(file=SimpleNamespace(src_uri="spec-reference.md"))
    source = (ROOT / "docs" / "spec-reference.md").read_text(encoding="utf-8")
    built = hooks.on_page_markdown(source, page)
    assert hooks.MARKER in source and hooks.MARKER not in built
    assert markdown() in built
    assert "| `max_bad_lines` | float | `0.01` |" in built
    assert "## `compression.pruning`" in built and "## `columns.<name>`" in built
    other = SimpleNamespace(file=SimpleNamespace(src_uri="index.md"))
    assert hooks.on_page_markdown(source, other) == source


def test_every_command_of_the_table_is_documented():
    from cli.commands import COMMANDS

    documented = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    missing = [c.name for c in COMMANDS if f"`assay {c.name}" not in documented]
    assert not missing
