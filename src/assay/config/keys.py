"""Cache keys and identities from a spec: each hashes the part of the spec's meaning a result
depends on, so a key changes exactly when that part does. Paths are left out (they differ per
machine), and sections that are off hash as if they did not exist (keys made before they
existed stay valid)."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assay.config.spec import Spec

# What a spec says that no trained model depends on.
NOT_MODEL_SECTIONS = ("expectations", "bundled", "description")

# What turns a file's bytes into a batch's rows.
PARSE_SECTIONS = ("source", "columns", "derive", "id_column", "label")

# What every trained stage depends on: which rows, how they are read, labelled and split.
DATA_SECTIONS = ("name", "source", "columns", "derive", "id_column", "label", "split")

# Sections that are off when absent: a spec without them hashes as it did before they existed.
OPTIONAL_SECTIONS = ("privacy", "federation", "augment")

# What the noise of a private training is planned from: every DP-SGD stage's rows and steps.
PRIVACY_PLAN_SECTIONS = ("train_rows", "pretrain", "finetune", "compression")


def digest(spec: Spec) -> str:
    """Hash of what the spec means for a model, leaving out where files live, the named
    profiles, the monitoring policy (it changes when to retrain, not what is trained) and the
    optional sections that are off."""
    left_out = {*NOT_MODEL_SECTIONS, "monitoring", *_off(spec), "profiles"}
    return _hash(spec.model_dump(mode="json", exclude=left_out))


def parse_digest(spec: Spec) -> str:
    """Hash of what turns a file into a batch: a batch records the one that parsed it."""
    return _hash(spec.model_dump(mode="json", include=_with_attributes(PARSE_SECTIONS)))


def stage_digest(spec: Spec, *sections: str) -> str:
    """Hash of the data sections plus the named ones (`section.field` for one field)."""
    if "privacy" in sections:
        # The noise is planned over every private stage's steps, so each of them depends
        # on all their settings; without privacy the section is left out, keys unchanged.
        private = PRIVACY_PLAN_SECTIONS if spec.privacy is not None else ()
        sections = tuple(dict.fromkeys(s for s in (*sections, *private) if s != "privacy"))
        sections += ("privacy",) if spec.privacy is not None else ()
    sections = tuple(s for s in sections if s.partition(".")[0] not in _off(spec))
    return _hash(
        spec.model_dump(mode="json", include=_with_attributes((*DATA_SECTIONS, *sections)))
    )


def _off(spec: Spec) -> tuple[str, ...]:
    return tuple(name for name in OPTIONAL_SECTIONS if getattr(spec, name) is None)


def _with_attributes(sections: tuple[str, ...]) -> dict[str, Any]:
    """An include for model_dump: the sections (`section.field` takes one field of a section),
    plus the fairness attributes (they are batch columns, so they belong to how data is read)
    when the whole fairness section is not in."""
    include: dict[str, Any] = {"fairness": {"attributes"}}
    for name in sections:
        section, _, field = name.partition(".")
        if not field or include.get(section) is True:
            include[section] = True
        else:
            include[section] = {*include.get(section, ()), field}
    return include


def _hash(meaning: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(meaning, sort_keys=True, default=str).encode()).hexdigest()
