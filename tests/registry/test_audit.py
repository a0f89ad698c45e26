"""The audit log: append-only, stamped, and a torn last line never corrupts what follows."""

from __future__ import annotations

import pytest

from assay.registry.audit import AuditEntry, AuditLog


def test_entries_are_stamped_and_appended_in_order(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_ACTOR", "nightly-deployment")
    log = AuditLog(tmp_path / "store" / "audit.jsonl")
    first = log.append(AuditEntry("promoted", "every gate passed", "m", "1", {"auc": 0.9}))
    log.append(AuditEntry("rolled-back", "slow", "m", "1", {"from": "2"}))
    assert first.actor == "nightly-deployment" and first.time.endswith("Z")
    assert [(e.action, e.version) for e in log.entries()] == [
        ("promoted", "1"),
        ("rolled-back", "1"),
    ]
    assert log.entries()[0].evidence == {"auc": 0.9}


def test_appending_never_rewrites_earlier_bytes(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append(AuditEntry("quarantined", "bad file"))
    before = log.path.read_bytes()
    log.append(AuditEntry("gate-failed", "data gate"))
    assert log.path.read_bytes().startswith(before)


def test_a_torn_last_line_is_skipped_and_the_next_entry_is_whole(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append(AuditEntry("promoted", "ok", "m", "1"))
    with log.path.open("ab") as stream:
        stream.write(b'{"action": "promo')  # a crash mid-write
    assert [e.version for e in log.entries()] == ["1"]
    log.append(AuditEntry("rolled-back", "undo", "m", "1"))
    assert [e.action for e in log.entries()] == ["promoted", "rolled-back"]
    assert b'{"action": "promo\n' in log.path.read_bytes()  # kept as it was, ended


def test_an_unknown_action_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown audit action 'deleted'"):
        AuditLog(tmp_path / "audit.jsonl").append(AuditEntry("deleted", "?"))
