"""The spec itself: the sections composed, the checks that span sections, and the views of
its columns every consumer reads (features, the columns a batch or a file carries)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from assay.config import keys
from assay.config.operations import MonitoringSpec, RegistrySpec
from assay.config.optional import AUGMENT_REFUSED, AugmentSpec, FederationSpec, PrivacySpec
from assay.config.responsible import (
    DecisionSpec,
    ExplanationSpec,
    FairnessSpec,
    GatesSpec,
    UncertaintySpec,
)
from assay.config.source import ColumnSpec, DeriveSpec, FeatureKind, LabelSpec, Section, SourceSpec
from assay.config.training import (
    BaselineSpec,
    CompressionSpec,
    FinetuneSpec,
    ModelSpec,
    PretrainSpec,
    SplitSpec,
)


class Spec(Section):
    """A dataset and how assay trains on it."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Short id, used in names.")
    description: str = Field(default="", description="What the data is and where it came from.")
    source: SourceSpec = Field(default=SourceSpec(), description="How files are parsed.")
    columns: dict[str, ColumnSpec] = Field(description="Feature columns and their types.")
    derive: dict[str, DeriveSpec] = Field(
        default={},
        description="Model inputs computed from other columns (ratio, difference, bins).",
    )
    id_column: str | None = Field(default=None, description="Optional row identifier column.")
    label: LabelSpec = Field(description="What to predict.")
    sensitive_features: list[str] = Field(
        default=[],
        description="What fairness is assessed over: categorical model inputs, or names "
        "under fairness.attributes.",
    )
    split: SplitSpec = Field(description="How rows are split into train, validation and test.")
    expectations: Path = Field(description="Great Expectations suite (JSON) for this dataset.")
    bundled: list[Path] = Field(
        default=[], description="Files `assay run` ingests before training (the default data)."
    )
    baseline: BaselineSpec = Field(default=BaselineSpec(), description="Baseline model settings.")
    model: ModelSpec = Field(default=ModelSpec(), description="Encoder and tokenizer settings.")
    pretrain: PretrainSpec = Field(default=PretrainSpec(), description="Self-supervised stage.")
    finetune: FinetuneSpec = Field(default=FinetuneSpec(), description="Supervised stage.")
    compression: CompressionSpec = Field(
        default=CompressionSpec(), description="Student distillation, export and quantization."
    )
    fairness: FairnessSpec = Field(
        default=FairnessSpec(), description="Fairness assessment, mitigation and gate."
    )
    decision: DecisionSpec = Field(
        default=DecisionSpec(), description="Operating threshold and the degeneracy check."
    )
    gates: GatesSpec = Field(default=GatesSpec(), description="Leakage guard and the quality gate.")
    uncertainty: UncertaintySpec = Field(
        default=UncertaintySpec(), description="Conformal prediction sets and review flags."
    )
    explanations: ExplanationSpec = Field(
        default=ExplanationSpec(), description="Feature attributions in the report."
    )
    registry: RegistrySpec = Field(
        default=RegistrySpec(), description="Model registry name and promotion rule."
    )
    monitoring: MonitoringSpec = Field(
        default=MonitoringSpec(), description="Drift checks and the retraining policy."
    )
    privacy: PrivacySpec | None = Field(
        default=None, description="Differentially private training (off when absent)."
    )
    federation: FederationSpec | None = Field(
        default=None, description="Federated fine-tuning across sites (off when absent)."
    )
    augment: AugmentSpec | None = Field(
        default=None, description="Synthetic rows for scarce groups (off when absent)."
    )
    train_rows: int | None = Field(
        default=None, gt=0, description="Subsample train rows to this many (quick demos, tests)."
    )
    profile: str = Field(default="full", description="Which profile was applied (set by load).")
    profiles: dict[str, dict[str, Any]] = Field(
        default={}, description="Named overrides (`--profile NAME`), merged over the spec."
    )

    @model_validator(mode="after")
    def _names_are_consistent(self) -> Spec:
        if not self.columns:
            raise ValueError("columns must list at least one feature column")
        reserved = {self.label.column, self.id_column} - {None}
        clash = reserved & set(self.columns)
        if clash:
            raise ValueError(f"columns must not include the label or id column: {sorted(clash)}")
        self._batch_names_are_unique()
        self._derived_sources_are_numbers()
        self._sensitive_features_are_groups()
        if self.source.names is not None:
            filtered = self.source.filter.columns() if self.source.filter else []
            missing = [c for c in [*self.raw_columns, *filtered] if c not in self.source.names]
            if missing:
                raise ValueError(f"source.names lacks columns: {sorted(set(missing))}")
        self._fairness_names_sensitive_features()
        if self.privacy is not None and self.federation is not None:
            raise ValueError(
                "privacy and federation together are not built yet: DP on the sites' updates "
                "is future work (docs/privacy-and-federation.md, Federated fine-tuning)"
            )
        return self

    def _batch_names_are_unique(self) -> None:
        """A batch holds one column per name: derived inputs and attributes may not reuse one."""
        seen: dict[str, str] = {c: "the label or id" for c in (self.label.column, self.id_column)}
        for origin, names in (
            ("columns", [n for c, col in self.columns.items() for n in col.derived(c)]),
            ("derive", list(self.derive)),
            ("fairness.attributes", list(self.fairness.attributes)),
        ):
            for name in names:
                if name in seen:
                    raise ValueError(f"{origin}: {name!r} is already {seen[name]}")
                seen[name] = f"a name under {origin}"
        for name, attribute in self.fairness.attributes.items():
            source = attribute.column or name
            if source in self.columns and source == name:
                raise ValueError(f"fairness.attributes.{name}: {name!r} is a model input")

    def _derived_sources_are_numbers(self) -> None:
        for name, rule in self.derive.items():
            for source in rule.sources:
                kind = self.columns[source].type if source in self.columns else None
                if kind not in (None, "numeric"):
                    raise ValueError(f"derive.{name}: {source!r} is {kind}, not numeric")
        for name, attribute in self.fairness.attributes.items():
            column = self.columns.get(attribute.column or name)
            if column is not None and attribute.bins is not None and column.type != "numeric":
                raise ValueError(f"fairness.attributes.{name}: bins need a numeric column")
            if column is not None and attribute.merge and column.type != "categorical":
                raise ValueError(f"fairness.attributes.{name}: merge needs a categorical column")

    def _sensitive_features_are_groups(self) -> None:
        for name in self.sensitive_features:
            if name in self.fairness.attributes:
                continue
            kind = self.features.get(name)
            if kind is None:
                raise ValueError(
                    f"sensitive_features: {name!r} is neither a model input nor a name under "
                    "fairness.attributes (a column the model must not see goes there)"
                )
            if kind != "categorical":
                raise ValueError(
                    f"sensitive_features: {name!r} is {kind}, which makes one group per "
                    f"value; band it under fairness.attributes (e.g. {name}_band: "
                    f"{{column: {name}, bins: [25, 45, 65]}})"
                )

    def _fairness_names_sensitive_features(self) -> None:
        fairness, sensitive = self.fairness, self.sensitive_features
        if fairness.mitigation != "none" and not sensitive:
            raise ValueError("fairness.mitigation needs sensitive_features")
        reweigh_on = self.compression.reweigh_on
        if reweigh_on is not None and reweigh_on not in sensitive:
            raise ValueError(f"compression.reweigh_on: {reweigh_on!r} is not a sensitive feature")
        if fairness.mitigate_on is not None and fairness.mitigate_on not in sensitive:
            raise ValueError(
                f"fairness.mitigate_on: {fairness.mitigate_on!r} is not a sensitive feature"
            )
        self._augmented_groups_are_sensitive()
        unknown = [f for f in self.uncertainty.group_by if f not in sensitive]
        if unknown:
            raise ValueError(
                f"uncertainty.group_by: {unknown} are not sensitive features (known: {sensitive})"
            )
        known = [*sensitive, " x ".join(sensitive)] if len(sensitive) > 1 else list(sensitive)
        for limit in fairness.gate:
            if limit.feature not in known:
                raise ValueError(
                    f"fairness.gate: {limit.feature!r} is not a sensitive feature (known: {known})"
                )

    def _augmented_groups_are_sensitive(self) -> None:
        if self.augment is None:
            return
        unknown = [f for f in self.augment.groups if f not in self.sensitive_features]
        if unknown:
            raise ValueError(
                f"augment.groups: {unknown} are not sensitive features "
                f"(known: {self.sensitive_features})"
            )
        for other, why in AUGMENT_REFUSED.items():
            if getattr(self, other) is not None:
                raise ValueError(f"augment and {other} together are refused: {why}")

    @property
    def registered_name(self) -> str:
        return self.registry.model_name or f"assay-{self.name}"

    @property
    def features(self) -> dict[str, FeatureKind]:
        """The model inputs and their kinds, in a fixed order: the columns (a datetime as its
        parts), then the derived columns."""
        inputs: dict[str, FeatureKind] = {}
        for name, column in self.columns.items():
            inputs.update(column.derived(name))
        inputs.update({name: rule.kind for name, rule in self.derive.items()})
        return inputs

    @property
    def feature_columns(self) -> list[str]:
        return list(self.features)

    @property
    def attribute_columns(self) -> list[str]:
        """Fairness-only columns a batch carries beside the model inputs."""
        return list(self.fairness.attributes)

    @property
    def group_columns(self) -> list[str]:
        """What a decision may read per row: model inputs and fairness attributes."""
        return [*self.feature_columns, *self.attribute_columns]

    @property
    def example_columns(self) -> list[str]:
        """What makes two rows the same example: every model input and the label (not the id)."""
        return [*self.feature_columns, self.label.column]

    @property
    def required_columns(self) -> list[str]:
        """Every column a labelled batch holds, in a fixed order."""
        head = [self.id_column] if self.id_column else []
        return [*head, *self.feature_columns, *self.attribute_columns, self.label.column]

    @property
    def raw_columns(self) -> list[str]:
        """Every column a labelled file must carry (after renames), in a fixed order."""
        head = [self.id_column] if self.id_column else []
        sources = [s for rule in self.derive.values() for s in rule.sources]
        sources += [a.column or n for n, a in self.fairness.attributes.items()]
        extra = [s for s in dict.fromkeys(sources) if s not in self.columns]
        return [*head, *self.columns, *extra, self.label.column]

    def columns_of_type(self, kind: FeatureKind) -> list[str]:
        return [name for name, found in self.features.items() if found == kind]

    def digest(self) -> str:
        """Hash of what the spec means for a model (keys.digest): a registered model's identity."""
        return keys.digest(self)

    def parse_digest(self) -> str:
        """Hash of what turns a file into a batch: a batch records the one that parsed it."""
        return keys.parse_digest(self)

    def stage_digest(self, *sections: str) -> str:
        """Hash of the data sections plus the named ones: a stage's cache key changes only when
        something that stage depends on changes (keys.stage_digest)."""
        return keys.stage_digest(self, *sections)
