"""The fault injector names a function by the module that defines it, and reaches every module
that imported it by name: moving an import cannot move (or silently drop) a fault."""

from __future__ import annotations

import pytest

import assay.ingest
from assay.data import reader
from tests.reliability.faults import INJECTED, fail_once


def test_a_fault_reaches_the_modules_that_imported_the_function(monkeypatch, tmp_path):
    fault = fail_once(monkeypatch, "assay.data.reader:read_batch")
    assert assay.ingest.read_batch is reader.read_batch  # both hold the faulty one
    with pytest.raises(ConnectionError, match=INJECTED):
        assay.ingest.read_batch(tmp_path / "x.csv", None)
    assert fault.failed


def test_a_target_named_by_an_importer_is_refused(monkeypatch):
    with pytest.raises(ValueError, match=r"name the module that defines it \(assay.data.reader\)"):
        fail_once(monkeypatch, "assay.ingest:read_batch")
