"""No secret is committed: every file git would ship (tracked, or new and not ignored) is
scanned with detect-secrets' default plugins. Credentials come from the environment or Prefect
Secret blocks (see deployments/auth.py).

The scanner's inline escape hatch (an allowlist pragma comment) is switched off, so the only
way to accept a finding is ALLOWED below: exact file, line and kind, with the reason.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from detect_secrets import SecretsCollection
from detect_secrets.settings import default_settings

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[2]
INLINE_ALLOWLIST = "detect_secrets.filters.allowlist.is_line_allowlisted"

# (path, secret type, the flagged value) -> why it is not a secret. Real false positives only
# (a variable's name, a fixture hash, a public test vector), never a credential. Keyed by the
# value, not a line number: edits elsewhere in the file keep it valid, a changed value is not.
ALLOWED: dict[tuple[str, str, str], str] = {
    ("deployments/auth.py", "Secret Keyword", "ASSAY_MLFLOW_ADMIN_PASSWORD"): (
        "the name of the MLflow admin's environment variable, not its value"
    ),
    ("deployments/auth.py", "Secret Keyword", "MLFLOW_FLASK_SERVER_SECRET_KEY"): (
        "the name of MLflow's Flask secret key variable, not its value"
    ),
}


def shipped_files() -> list[str]:
    """Tracked files plus untracked ones that are not ignored: what the next commit can hold."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted({name for name in listed.split("\0") if name and (ROOT / name).is_file()})


def scan(root: Path, names: list[str]) -> list[tuple[str, str, str, int]]:
    """(path, type, value, line) of every finding, paths relative to `root`."""
    found = SecretsCollection(root=str(root))
    with default_settings() as settings:
        settings.disable_filters(INLINE_ALLOWLIST)
        for name in names:
            found.scan_file(name)
    return sorted((name, s.type, str(s.secret_value), s.line_number) for name, s in found)


def test_no_secrets_in_the_repository():
    names = shipped_files()
    assert len(names) > 50  # the listing worked: not a vacuous pass
    findings = [f for f in scan(ROOT, names) if f[:3] not in ALLOWED]
    where = [f"{path}:{line} {kind}" for path, kind, _, line in findings]
    assert where == [], "secrets in files git would ship: move them to the environment"


def test_every_allowlisted_finding_still_exists():
    """A stale allowance would silently cover the same value if it came back as a secret."""
    found = {f[:3] for f in scan(ROOT, sorted({path for path, _, _ in ALLOWED}))}
    assert set(ALLOWED) <= found


def test_the_scanner_finds_planted_secrets(tmp_path):
    """Built from pieces at run time, so this file holds none of them."""
    aws_key, other_key = "AKIA" + "Q7ZX3LMN4PRT2WBY", "AKIA" + "B2VC8NHJ5KTE6QSD"
    pem = "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n"
    pragma = "  # pragma: allowlist" + " secret"
    (tmp_path / "settings.py").write_text(
        f'AWS_ACCESS_KEY_ID = "{aws_key}"\n'
        f'db_password = "{"Tr0ub4dor" + "-and-3"}"\n'
        f'aws = "{other_key}"{pragma}\n',
        encoding="utf-8",
    )
    (tmp_path / "deploy.pem").write_text(pem, encoding="utf-8")
    found = {(f[0], f[1], f[3]) for f in scan(tmp_path, ["settings.py", "deploy.pem"])}
    assert ("settings.py", "AWS Access Key", 1) in found
    assert ("settings.py", "Secret Keyword", 2) in found
    assert ("settings.py", "AWS Access Key", 3) in found  # an inline pragma does not hide it
    assert ("deploy.pem", "Private Key", 1) in found
