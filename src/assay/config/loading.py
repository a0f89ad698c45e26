"""Reading a spec file: YAML, a profile merged in, validation with one line per problem naming
its key, and relative paths resolved against the spec's folder."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from assay.config.profiles import BUILTIN_PROFILES, merge
from assay.config.source import resolved_values
from assay.config.spec import Spec
from assay.errors import SpecError


def load_spec(path: str | Path, profile: str | None = None) -> Spec:
    """Read and validate a spec file, with a named profile's overrides merged in; raise
    SpecError naming the file and the bad key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{path}: spec file not found") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping of settings at the top level")
    if profile is not None and profile != "full":  # "full": the spec as written
        profiles = {**BUILTIN_PROFILES, **(raw.get("profiles") or {})}
        if profile not in profiles:
            known = ", ".join(sorted(profiles))
            raise SpecError(f"{path}: no profile '{profile}' (profiles: {known})")
        overrides = merge(BUILTIN_PROFILES.get(profile, {}), profiles[profile])
        raw = merge(raw, overrides)
        raw["profile"] = profile
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"{path}: {_describe(exc)}") from None
    base = path.resolve().parent
    try:
        columns = {name: resolved_values(col, base) for name, col in spec.columns.items()}
    except ValueError as exc:
        raise SpecError(f"{path}: columns: {exc}") from None
    return spec.model_copy(
        update={
            "columns": columns,
            "expectations": base / spec.expectations,
            "bundled": [base / p for p in spec.bundled],
            "model": spec.model.model_copy(
                update={
                    "checkpoint": base / spec.model.checkpoint if spec.model.checkpoint else None
                }
            ),
        }
    )


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's message spans several lines (context, then problem, each with a mark): the
    problem and where it is, on one."""
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return " ".join(str(getattr(exc, "problem", None) or exc).split()) + where


def _describe(exc: ValidationError) -> str:
    """One line per problem, each naming its key path."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against configs/adult.yaml)"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
