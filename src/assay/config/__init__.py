"""The dataset spec: one YAML file says where data lives, what it means and how to train on it.

Every section is a pydantic model with a description on each field, unknown keys fail loudly,
and errors name the offending key (`columns.age.type: ...`) and the file they came from.
Relative paths in a spec are resolved against the spec file's folder, so a spec and the files it
names travel together.

The parts: `source` (how a file's rows become a batch), `training`, `responsible`,
`operations` and `optional` (the sections), `spec` (the whole and its cross-section checks),
`keys` (cache keys), `profiles` and `loading`. Import from here: `assay.config` is the public
name of all of them.
"""

from assay.config.loading import load_spec
from assay.config.operations import MonitoringSpec, RegistrySpec
from assay.config.optional import AugmentSpec, FederationSpec, PrivacySpec
from assay.config.responsible import (
    CostSpec,
    DecisionSpec,
    ExplanationSpec,
    FairnessLimit,
    FairnessSpec,
    GatesSpec,
    LeakageSpec,
    QualityGateSpec,
    UncertaintySpec,
)
from assay.config.spec import Spec
from assay.config.training import (
    BaselineSpec,
    CompressionGateSpec,
    CompressionSpec,
    FinetuneSpec,
    ModelSpec,
    PretrainSpec,
    PruningSpec,
    SplitSpec,
    StudentSpec,
)

__all__ = [
    "AugmentSpec",
    "BaselineSpec",
    "CompressionGateSpec",
    "CompressionSpec",
    "CostSpec",
    "DecisionSpec",
    "ExplanationSpec",
    "FairnessLimit",
    "FairnessSpec",
    "FederationSpec",
    "FinetuneSpec",
    "GatesSpec",
    "LeakageSpec",
    "ModelSpec",
    "MonitoringSpec",
    "PretrainSpec",
    "PrivacySpec",
    "PruningSpec",
    "QualityGateSpec",
    "RegistrySpec",
    "Spec",
    "SplitSpec",
    "StudentSpec",
    "UncertaintySpec",
    "load_spec",
]
