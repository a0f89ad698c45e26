"""The spec reference of the documentation site, written from the pydantic models themselves
(docs/hooks.py renders it at build time), so it cannot drift from what the loader accepts:
every field with its type, default, description and an example from the bundled Adult spec."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from assay.config.spec import Spec

EXAMPLE_SPEC = Path(__file__).resolve().parents[3] / "configs" / "adult.yaml"
ANY = "<name>"  # a path part standing for any key of a dict section (a column's name, ...)


@dataclass(frozen=True)
class Row:
    path: str
    kind: str
    default: str
    description: str
    example: str


def sections(model: type[BaseModel] = Spec, prefix: str = "") -> Iterator[tuple[str, type]]:
    """Each section model reachable from `model`, with its dotted path; depth first."""
    yield prefix, model
    for name, field in model.model_fields.items():
        nested = _section_of(field.annotation)
        if nested is not None:
            path = f"{prefix}{field.alias or name}"
            if _is_mapping(field.annotation):
                path = f"{path}.{ANY}"
            if nested is not model:  # a recursive section (a row filter's `not`) once
                yield from sections(nested, f"{path}.")


def rows(example: dict[str, Any] | None = None) -> list[Row]:
    """One row per field of every section; the example is the Adult spec's value there."""
    example = example if example is not None else _example()
    found = []
    for prefix, model in sections():
        for name, field in model.model_fields.items():
            path = f"{prefix}{field.alias or name}"
            default = "required" if field.is_required() else _shown(field.default)
            shown = _shown(_value_at(example, path))
            if _section_of(field.annotation) is not None:  # its own table shows its fields
                shown = f"see `{path}{'.' + ANY if _is_mapping(field.annotation) else ''}`"
            kind = _type_name(field.annotation)
            found.append(Row(path, kind, default, field.description or "", shown))
    return found


def markdown() -> str:
    """The reference as one Markdown table per section."""
    out = []
    by_section: dict[str, list[Row]] = {}
    for row in rows():
        section = row.path.rpartition(".")[0] or "(top level)"
        by_section.setdefault(section, []).append(row)
    for section, found in by_section.items():
        out += [f"## `{section}`", "", "| field | type | default | example | what it means |"]
        out.append("|---|---|---|---|---|")
        for r in found:
            cells = [f"`{r.path.rpartition('.')[2]}`", r.kind, r.default, r.example, r.description]
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        out.append("")
    return "\n".join(out)


def _example() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE_SPEC.read_text(encoding="utf-8"))


def _value_at(raw: Any, path: str) -> Any:
    """The value at a dotted path of a raw spec; a `<name>` part takes the first entry."""
    node = raw
    for part in path.split("."):
        if not isinstance(node, dict) or not node:
            return PydanticUndefined
        node = next(iter(node.values())) if part == ANY else node.get(part, PydanticUndefined)
    return node


def _section_of(annotation: Any) -> type[BaseModel] | None:
    """The section model a field holds (directly, optionally, or as a dict's values)."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
        inner = typing.get_args(candidate)
        if inner and isinstance(inner[-1], type) and issubclass(inner[-1], BaseModel):
            return inner[-1]
    return None


def _is_mapping(annotation: Any) -> bool:
    return typing.get_origin(annotation) is dict


def _type_name(annotation: Any) -> str:
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in args)
    name = getattr(origin, "__name__", str(origin))
    return f"{name}[{', '.join(_type_name(a) for a in args)}]"


def _shown(value: Any) -> str:
    """A value as YAML on one line, cut at 60 characters ('' for none)."""
    if value is PydanticUndefined:
        return ""
    if isinstance(value, BaseModel):
        return "(the section's defaults)"
    if isinstance(value, Path):
        value = str(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("\n...").strip()
    return f"`{text if len(text) <= 60 else text[:57] + '...'}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") if "\\|" not in text else text
