"""The README's "your own CSV" walk-through, run as written: its spec and its three commands on a
generated `data/mine.csv` of the shape it describes (a header, four features, `churned` as
yes/no), in a fresh folder with a fresh home."""

from __future__ import annotations

import re
import shlex

import numpy as np
import pandas as pd

from tests.conftest import ROOT, assay_in_process

MARKER = "<!-- walk-through: tests/test_walkthrough.py runs this spec and the commands below -->"


def walkthrough() -> tuple[str, list[list[str]]]:
    """The YAML block after the marker, and the commands of the bash block after it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8").split(MARKER, 1)[1]
    spec = re.search(r"```yaml\n(.*?)```", text, re.DOTALL).group(1)
    script = re.search(r"```bash\n(.*?)```", text, re.DOTALL).group(1)
    commands = [shlex.split(line) for line in script.splitlines() if line.strip()]
    return spec, commands


def customers(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Churn that falls with age and income and rises on the monthly plan."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income_k": rng.gamma(4.0, 12.0, n).round(1),
            "plan": rng.choice(["monthly", "yearly", "family"], n, p=[0.5, 0.3, 0.2]),
            "region": rng.choice(["north", "south", "east", "west"], n),
        }
    )
    logit = 1.5 - 0.04 * frame["age"] - 0.02 * frame["income_k"]
    logit += np.where(frame["plan"] == "monthly", 1.5, -0.5)
    churned = rng.random(n) < 1 / (1 + np.exp(-logit))
    return frame.assign(churned=np.where(churned, "yes", "no"))


def test_the_walkthrough_runs_as_written(tmp_path, monkeypatch, prefect_api):
    spec, commands = walkthrough()
    assert [c[:2] for c in commands] == [
        [".venv/bin/assay", "expectations"],
        [".venv/bin/assay", "ingest"],
        [".venv/bin/assay", "run"],
    ]
    for folder in ("data", "configs", "expectations"):
        (tmp_path / folder).mkdir()
    (tmp_path / "configs" / "mine.yaml").write_text(spec)
    customers().to_csv(tmp_path / "data" / "mine.csv", index=False)
    monkeypatch.chdir(tmp_path)
    home = ["--home", str(tmp_path / "home")]
    outputs = []
    for command in commands:
        code, out = assay_in_process(*command[1:], *home)
        outputs.append((code, out))
        assert code in (0, 3), (command, out)  # 3: a gate refused the candidate, said why
    assert outputs[0][0] == 0 and (tmp_path / "expectations" / "mine.json").is_file()
    assert outputs[1][0] == 0 and "accepted" in outputs[1][1]
    summary = outputs[2][1]
    assert "| student_int8 |" in summary and "Registered: assay-mine version 1" in summary
