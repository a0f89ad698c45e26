"""The functional core stays free of Prefect and of the shell (tasks/, flows/, deployments/,
cli/, bench/), its
subpackages import each other without cycles, and what serves a model needs no training
library."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT

LIBRARY = ROOT / "src" / "assay"
# What a model server must not need: the training stack.
TRAINING_ONLY = {"torch", "sklearn", "fairlearn", "scipy", "opacus"}
# Prefect and the shell around the library: none of it is imported by src/assay.
SHELL = {"prefect", "tasks", "flows", "deployments", "cli", "bench"}


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def _module(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def subpackage_graph(root: Path) -> dict[str, set[str]]:
    """Which subpackages of `root` (assay.data, assay.serving, ...) each one imports, at any
    depth of its modules, function-level imports included."""
    packages = {p.name for p in root.iterdir() if (p / "__init__.py").is_file()}
    graph: dict[str, set[str]] = {name: set() for name in packages}
    for name in packages:
        for path in (root / name).rglob("*.py"):
            for imported in _imports(path):
                parts = imported.split(".")
                if parts[0] == root.name and len(parts) > 1 and parts[1] in packages:
                    graph[name].add(parts[1])
        graph[name].discard(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle's nodes once, found by depth-first search from each node."""
    found: set[tuple[str, ...]] = set()

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt == start:
                i = path.index(min(path))
                found.add(tuple(path[i:] + path[:i]))
            elif nxt not in path and nxt > start:
                walk(start, nxt, [*path, nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return [list(c) for c in sorted(found)]


def shell_imports(root: Path) -> dict[str, str]:
    """Modules of the library at `root` that import Prefect or a shell package, anywhere in
    the module (function-level imports included)."""
    return {
        str(path.relative_to(root.parent)): name
        for path in root.rglob("*.py")
        for name in _imports(path)
        if name.split(".")[0] in SHELL
    }


def test_library_never_imports_prefect_or_the_shell():
    assert shell_imports(LIBRARY) == {}


@pytest.mark.parametrize("planted", ["import flows", "from cli.main import main", "import prefect"])
def test_a_planted_shell_import_is_found(tmp_path, planted):
    copy = tmp_path / "assay"
    shutil.copytree(LIBRARY, copy)
    module = copy / "data" / "split.py"
    module.write_text(module.read_text() + f"\n\ndef late():\n    {planted}\n")
    assert shell_imports(copy) == {"assay/data/split.py": planted.split()[1]}


def test_no_cycle_between_subpackages():
    assert cycles(subpackage_graph(LIBRARY)) == []


def test_a_planted_cycle_is_found(tmp_path):
    copy = tmp_path / "assay"
    shutil.copytree(LIBRARY, copy)
    layout = copy / "serving" / "layout.py"
    layout.write_text(layout.read_text() + "\nfrom assay.compression import stage\n")
    assert ["compression", "serving"] in cycles(subpackage_graph(copy))


def test_serving_imports_no_training_library():
    """Directly, or through any assay module it imports (at module level or in a function)."""
    modules = {_module(p, LIBRARY): p for p in LIBRARY.rglob("*.py")}
    seen, todo, offenders = set(), [m for m in modules if m.startswith("assay.serving")], {}
    while todo:
        name = todo.pop()
        if name in seen or name not in modules:
            continue
        seen.add(name)
        for imported in _imports(modules[name]):
            if imported.split(".")[0] in TRAINING_ONLY:
                offenders[name] = imported
            todo += [imported, imported.rpartition(".")[0]]
    assert offenders == {}
    assert "assay.modeling.tokenizer" in seen  # the walk follows imports out of serving


def test_loading_the_server_side_leaves_the_training_stack_unloaded():
    """At run time too: MLflow's pyfunc loads scipy itself, so scipy is checked on the
    modules that do not import MLflow."""
    bare, served = sorted(TRAINING_ONLY), sorted(TRAINING_ONLY - {"scipy"})
    probe = (
        "import sys\n"
        "import assay.serving.predictor\n"
        f"bare = [m for m in {bare} if m in sys.modules]\n"
        "import assay.serving.pyfunc, assay.serving.http\n"
        f"print(bare, [m for m in {served} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "[]"]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci


def test_every_package_is_in_the_distribution():
    """pyproject.toml lists the packages a wheel carries: one left out installs in editable
    mode (the tests) and is missing from a built wheel."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(("assay", *p.parent.relative_to(LIBRARY).parts))
        for p in LIBRARY.rglob("__init__.py")
    }
    found |= {p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name in SHELL}
    assert found - listed == set()


CODE = ("src", "tasks", "flows", "cli", "bench", "deployments")
# What issue 38 still has to cut (a ratchet: each list must shrink to empty, never grow; a
# test fails both on a new entry and on an entry that no longer needs its place)
MODULES_OVER_400_LINES: set[str] = set()
FUNCTIONS_OVER_60_LINES: set[str] = set()


def _sources() -> dict[str, ast.Module]:
    return {
        str(path.relative_to(ROOT)): ast.parse(path.read_text())
        for root in CODE
        for path in sorted((ROOT / root).rglob("*.py"))
    }


def test_no_module_over_400_lines_but_those_still_listed():
    long = {name for name in _sources() if (ROOT / name).read_text().count("\n") > 400}
    assert long == MODULES_OVER_400_LINES


def test_no_function_over_60_lines_but_those_still_listed():
    long = {
        f"{name}:{node.name}"
        for name, tree in _sources().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > 60
    }
    assert long == FUNCTIONS_OVER_60_LINES


# Calls in the shell with more than 5 arguments, by file and callee (keyword bundles instead)
CALLS_OVER_5_ARGUMENTS: set[str] = set()


def test_no_call_over_5_arguments_in_the_shell_but_those_still_listed():
    wide = {
        f"{name}:{ast.unparse(node.func)}"
        for name, tree in _sources().items()
        if name.startswith(("flows/", "tasks/"))
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and len(node.args) + len(node.keywords) > 5
    }
    assert wide == CALLS_OVER_5_ARGUMENTS


STAGES_PACKAGE = LIBRARY / "stages"
NOT_STAGES = {"__init__", "stage", "table"}  # the package's own machinery


def unlisted_stages(package: Path) -> list[str]:
    """Modules of the stages package that declare a `STAGE` but are not in the table's ORDER
    (read from the files: a planted copy needs no import)."""
    declared = {
        path.stem
        for path in package.glob("*.py")
        if path.stem not in NOT_STAGES
        and any(
            isinstance(node, ast.Assign)
            and any(getattr(t, "id", "") == "STAGE" for t in node.targets)
            for node in ast.parse(path.read_text()).body
        )
    }
    (order,) = (
        node.value
        for node in ast.parse((package / "table.py").read_text()).body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "ORDER"
    )
    listed = {element.value for element in order.elts}
    return sorted(declared - listed)


TOY_STAGE = '''"""A toy stage: the rows it was given."""

from pathlib import Path

from assay.stages.stage import Stage


def run(folder: Path, split, spec) -> dict:
    return {"rows": len(split.train)}


STAGE = Stage("toy", ("model",), (), run, dict)
'''


def test_every_stage_module_is_in_the_table():
    assert unlisted_stages(STAGES_PACKAGE) == []


def test_a_planted_stage_is_found_until_its_one_line_is_in_the_table(tmp_path):
    package = tmp_path / "stages"
    shutil.copytree(STAGES_PACKAGE, package)
    (package / "toy.py").write_text(TOY_STAGE)
    assert unlisted_stages(package) == ["toy"]
    table = package / "table.py"
    text = table.read_text()
    table.write_text(text.replace('    "responsible",\n)', '    "responsible",\n    "toy",\n)'))
    assert table.read_text().count("\n") == text.count("\n") + 1
    assert unlisted_stages(package) == []


# Where a stage's name may be written outside the stages package, and why: the same word
# names a spec section, a phase of the privacy plan (named by its spec section), or a field of
# the responsible record or a gate. Anywhere else a stage is reached through the table or its
# module's NAME.
SAME_WORD = {
    "src/assay/config/keys.py": {"pretrain", "finetune", "fairness"},  # spec sections
    "src/assay/config/optional.py": {"pretrain"},  # privacy.pretrain_on
    "src/assay/config/profiles.py": {"pretrain", "finetune"},  # spec sections
    "src/assay/pipeline/payload.py": {"baseline", "pretrain", "finetune"},  # spec sections
    "src/assay/modeling/privacy_plan.py": {"pretrain", "finetune"},  # phases (spec sections)
    "src/assay/modeling/teacher.py": {"pretrain", "finetune"},  # phases (spec sections)
    "src/assay/modeling/rows.py": {"pretrain"},  # privacy.pretrain_on
    "src/assay/privacy/report.py": {"pretrain"},  # privacy.pretrain_on
    "src/assay/registry/card.py": {"fairness", "conformal"},  # fields of the responsible record
    "src/assay/responsible/gate.py": {"fairness"},  # the fairness gate
    "deployments/screenshot.py": {"fairness"},  # the fairness gate
}


def stage_name_literals(roots: tuple[str, ...], names: set[str]) -> dict[str, set[str]]:
    """String literals equal to a stage's name, by file, outside the stages package."""
    found: dict[str, set[str]] = {}
    for root in roots:
        for path in sorted((ROOT / root).rglob("*.py")):
            name = str(path.relative_to(ROOT))
            if name.startswith("src/assay/stages/"):
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and node.value in names:
                    found.setdefault(name, set()).add(node.value)
    return found


def test_stage_names_are_written_once():
    from assay.stages.table import TABLE

    names = {stage.name for stage in TABLE}
    found = stage_name_literals(("src", "tasks", "flows", "cli", "deployments"), names)
    assert found == SAME_WORD
