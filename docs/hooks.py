"""mkdocs hook: the spec reference page is written at build time from the pydantic models
(assay.config.reference), so the site cannot describe a field the code does not have."""

from __future__ import annotations

from typing import Any

from assay.config.reference import markdown

MARKER = "<!-- spec reference: generated at build time -->"


def on_page_markdown(text: str, page: Any, **_: Any) -> str:
    if page.file.src_uri == "spec-reference.md":
        return text.replace(MARKER, markdown())
    return text
