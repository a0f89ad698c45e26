"""Readable validation reports: a self-contained HTML page and the same facts as JSON."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from assay.data.atomic import write_atomic, write_json_atomic
from assay.validation.check import ValidationReport

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;color:#222}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;"
    "text-align:left}.fail{background:#fde2e2}.warn{background:#fff4d6}.ok{background:#e6f6e6}"
)


@dataclass(frozen=True)
class ReportName:
    """What a report is called: its files' stem and its page's title, both named from the file
    it checks, by the caller that knows that file."""

    stem: str
    title: str


@dataclass(frozen=True)
class WrittenReport:
    """A validation report with the page it was written to: an ingest outcome takes its
    reason from the one and links to the other."""

    report: ValidationReport
    page: Path


def render_html(report: ValidationReport, title: str) -> str:
    """One page: the verdict, then every expectation with its severity and evidence."""
    rows = []
    for o in report.outcomes:
        css = "ok" if o.success else ("fail" if o.severity == "critical" else "warn")
        verdict = "pass" if o.success else "FAIL"
        rows.append(
            f"<tr class='{css}'><td>{verdict}</td><td>{html.escape(o.severity)}</td>"
            f"<td>{html.escape(o.expectation)}</td><td>{html.escape(o.column or '')}</td>"
            f"<td>{html.escape(o.describe())}</td></tr>"
        )
    status = "ACCEPTED" if report.passed else "REJECTED"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p><b>{status}</b>: {html.escape(report.reason)}</p>"
        f"<p>Suite <code>{html.escape(report.suite)}</code>, {report.rows} rows, "
        f"{len(report.critical_failures)} critical failures, {len(report.warnings)} warnings.</p>"
        "<table><tr><th>result</th><th>severity</th><th>expectation</th><th>column</th>"
        f"<th>detail</th></tr>{''.join(rows)}</table></body></html>\n"
    )


def write_report(report: ValidationReport, folder: Path, stem: str, title: str) -> Path:
    """Write stem.html and stem.json into folder; returns the HTML path."""
    page = render_html(report, title)
    write_json_atomic(folder / f"{stem}.json", report.to_dict())
    return write_atomic(folder / f"{stem}.html", lambda p: p.write_text(page, encoding="utf-8"))
