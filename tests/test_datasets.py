"""Which datasets a command is about: specs one by one or a folder of them; one name, one
dataset; each bad case is one line from the command, with nothing started."""

from __future__ import annotations

import shutil

import pytest
import yaml

from assay.datasets import load_datasets
from assay.errors import SpecError
from cli.main import main
from tests.synthetic import write_dataset


@pytest.fixture
def two(tmp_path):
    return write_dataset(tmp_path / "churn", name="churn"), write_dataset(
        tmp_path / "loans", name="loans", rename={"region": "branch"}
    )


def test_specs_given_one_by_one_and_as_a_folder(two, tmp_path):
    churn, loans = two
    assert [d.name for d in load_datasets([churn, loans])] == ["churn", "loans"]
    folder = tmp_path / "specs"
    folder.mkdir()
    for spec in two:
        shutil.copytree(spec.parent, folder, dirs_exist_ok=True)
    (folder / "notes.txt").write_text("not a spec")
    found = load_datasets([], folder)
    assert [d.name for d in found] == ["churn", "loans"]
    assert all(d.path.is_absolute() for d in found)
    assert [d.name for d in load_datasets([folder / "churn.yaml"], folder)] == ["churn", "loans"]


def twin_of(spec, folder):
    """Another file describing the same dataset (same `name:`)."""
    twin = folder / "twin.yaml"
    raw = yaml.safe_load(spec.read_text())
    raw |= {"expectations": str(spec.parent / "suite.json"), "bundled": []}
    twin.write_text(yaml.safe_dump(raw))
    return twin


def test_two_specs_of_one_dataset_are_refused_naming_both(two, tmp_path):
    churn, _ = two
    twin = twin_of(churn, tmp_path)
    with pytest.raises(SpecError, match="both describe dataset 'churn'") as caught:
        load_datasets([churn, twin])
    assert str(twin) in str(caught.value) and str(churn) in str(caught.value)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "no spec (*.yaml, *.yml) in it"),
        (lambda p: p.write_text("x"), "not a folder"),
    ],
)
def test_a_specs_folder_without_specs_is_one_line(tmp_path, make, message, capsys):
    folder = tmp_path / "specs"
    make(folder)
    code = main(["serve", "--specs", str(folder), "--home", str(tmp_path / "home")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "home" / "logs").exists(), "nothing was started"


def test_serve_refuses_duplicates_and_a_bad_cap_before_starting(two, tmp_path, capsys):
    churn, _ = two
    home = str(tmp_path / "home")
    twin = twin_of(churn, tmp_path)
    assert main(["serve", "--spec", str(churn), "--spec", str(twin), "--home", home]) == 2
    assert "both describe dataset 'churn'" in capsys.readouterr().err
    assert main(["serve", "--spec", str(churn), "--max-trainings", "0", "--home", home]) == 2
    assert "--max-trainings must be at least 1" in capsys.readouterr().err
    missing = tmp_path / "missing.yaml"
    assert main(["serve", "--spec", str(churn), "--spec", str(missing), "--home", home]) == 2
    assert "spec file not found" in capsys.readouterr().err


def test_a_profile_that_one_spec_lacks_is_refused_before_starting(two, tmp_path, capsys):
    code = main(["serve", "--spec", str(two[0]), "--profile", "nightly", "--home", str(tmp_path)])
    assert code == 2 and "no profile 'nightly'" in capsys.readouterr().err


def test_status_of_an_empty_home_says_what_to_do(tmp_path, capsys):
    assert main(["status", "--home", str(tmp_path / "home")]) == 2
    assert "holds no dataset yet: run `assay run` or `assay serve`" in capsys.readouterr().err
