//! The rules file as written: serde types that mirror the YAML one to one
//! (unknown fields refused), turned into checked [`super::Rule`]s by
//! [`super::RuleSet::from_yaml`].

use std::collections::BTreeMap;

use serde::Deserialize;

/// `apiVersion` of a rules file.
pub const API_VERSION: &str = "vmcp-normalizer.io/v1alpha1";
/// `kind` of a rules file.
pub const KIND: &str = "NormalizationRules";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RulesFile {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    /// Built-in presets to apply before the rules below (`toolhive-vmcp`).
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuleSpec {
    pub name: String,
    #[serde(default)]
    pub mode: ModeSpec,
    #[serde(rename = "match")]
    pub matches: MatchSpec,
    /// The data key (formats `yaml` and `json`).
    #[serde(default)]
    pub key: Option<String>,
    pub format: FormatSpec,
    #[serde(default)]
    pub sets: Vec<SetSpecFile>,
    #[serde(default)]
    pub checksum: Option<ChecksumSpec>,
    #[serde(default)]
    pub workload: Option<WorkloadSpec>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ModeSpec {
    #[default]
    Mutate,
    Warn,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FormatSpec {
    Yaml,
    Json,
    Object,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MatchSpec {
    #[serde(default)]
    pub api_version: Option<String>,
    pub kind: String,
    #[serde(default)]
    pub selector: Option<SelectorSpec>,
    /// `metadata.name`, where `*` stands for any characters.
    #[serde(default)]
    pub name: Option<String>,
}

/// A Kubernetes label selector.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SelectorSpec {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<ExpressionSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpressionSpec {
    pub key: String,
    pub operator: OperatorSpec,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum OperatorSpec {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSpecFile {
    pub path: String,
    /// A field of each item, or `.` for the item itself.
    pub by: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecksumSpec {
    pub annotation: String,
    pub algorithm: AlgorithmSpec,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum AlgorithmSpec {
    #[serde(rename = "toolhive-content")]
    ToolhiveContent,
    #[serde(rename = "sha256")]
    Sha256,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadSpec {
    pub kind: String,
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub selector: Option<SelectorSpec>,
    /// The pod-template annotation that must hold the ConfigMap's checksum.
    pub annotation: String,
    pub config_map: ConfigMapRefSpec,
}

/// How a workload names the ConfigMap it follows: exactly one of these.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigMapRefSpec {
    /// The pod volume that mounts it.
    #[serde(default)]
    pub volume: Option<String>,
    /// A name made from the workload's: `{name}` is its `metadata.name`.
    #[serde(default)]
    pub name_template: Option<String>,
    /// The environment variable whose `valueFrom.configMapKeyRef` names it.
    #[serde(default)]
    pub env: Option<String>,
}
