"""The functional core stays free of Prefect: tasks/ and flows/ are the only shell."""

import ast

from tests.conftest import ROOT


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_library_never_imports_prefect():
    offenders = {
        str(path.relative_to(ROOT)): name
        for path in (ROOT / "src" / "assay").rglob("*.py")
        for name in _imports(path)
        if name.split(".")[0] in {"prefect", "tasks"}
    }
    assert offenders == {}


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci
