//! What `audit` says about one object: the core's own answers (the
//! ConfigMap normalizer, the Deployment's checksum step) turned into rows.
//! Nothing here decides anything the webhook does not.

use serde::Serialize;
use serde_json::Value;

use crate::normalize::{Change, ChecksumSync, Outcome, Unsynced};
use crate::order_churn::{Kind as DetectorKind, detect_ignoring};
use crate::recognize::{CONTENT_CHECKSUM_ANNOTATION, RUNCONFIG_CHECKSUM_ANNOTATION, at};
use crate::rules::{Action, Mode, Rule};

/// One reason an object is not canonical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub namespace: String,
    /// `ConfigMap`, `Deployment`, or a rule's kind.
    pub kind: String,
    pub name: String,
    /// Stable code (see [`Code`]).
    pub finding: Code,
    pub effect: Effect,
    /// The core's low-cardinality reason, for refusals.
    pub reason: Option<&'static str>,
    pub detail: String,
    /// The rule that judged the object (`--rules` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// That rule's mode, `mutate` or `warn` (`--rules` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
    /// The lists that differ only in order, by path (`--rules` only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// How many rollouts (`checksum_only_rollouts`, `order_churn`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
}

impl Finding {
    /// A finding about `object` (its namespace and name) of kind `kind`.
    pub fn about(
        object: &Value,
        kind: &str,
        finding: Code,
        effect: Effect,
        reason: Option<&'static str>,
        detail: String,
    ) -> Self {
        let (namespace, name) = identity(object);
        Self {
            namespace,
            kind: kind.to_owned(),
            name,
            finding,
            effect,
            reason,
            detail,
            rule: None,
            mode: None,
            paths: Vec::new(),
            count: None,
        }
    }
}

/// What a finding is, as a stable snake_case code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// `config.yaml`'s backends are not in name order.
    BackendsOrder,
    /// The `config.yaml` copy in kubectl's last-applied annotation is not.
    LastAppliedOrder,
    /// That copy cannot be put in order (the rest still can).
    LastAppliedRefused,
    /// `content-checksum` is not the canonical ConfigMap's.
    ContentChecksumWrong,
    /// A declared set other than `backends` is out of order (a rule's).
    SetOrder,
    /// A declared checksum other than `content-checksum` is stale (a rule's).
    ChecksumWrong,
    /// No `content-checksum` at all (the webhook never adds one).
    ContentChecksumMissing,
    /// No declared checksum annotation at all (a rule's; never added).
    ChecksumMissing,
    /// The ConfigMap cannot be normalized; `reason` says why.
    Refused,
    /// The pod-template `runconfig-checksum` differs from the canonical
    /// ConfigMap's checksum.
    RunconfigChecksumStale,
    /// A rule's pod-template checksum annotation differs from the canonical
    /// ConfigMap's checksum.
    WorkloadChecksumStale,
    /// The ConfigMap the Deployment mounts does not exist.
    ConfigmapMissing,
    /// The Deployment's checksum cannot be told; `reason` says why.
    Unsynced,
    /// Rollouts whose pod templates differ only in the checksum annotation.
    ChecksumOnlyRollouts,
    /// Rollouts whose pod templates differ only in the order of lists.
    OrderChurn,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BackendsOrder => "backends_order",
            Code::LastAppliedOrder => "last_applied_order",
            Code::LastAppliedRefused => "last_applied_refused",
            Code::ContentChecksumWrong => "content_checksum_wrong",
            Code::SetOrder => "set_order",
            Code::ChecksumWrong => "checksum_wrong",
            Code::ContentChecksumMissing => "content_checksum_missing",
            Code::ChecksumMissing => "checksum_missing",
            Code::Refused => "refused",
            Code::RunconfigChecksumStale => "runconfig_checksum_stale",
            Code::WorkloadChecksumStale => "workload_checksum_stale",
            Code::ConfigmapMissing => "configmap_missing",
            Code::Unsynced => "unsynced",
            Code::ChecksumOnlyRollouts => "checksum_only_rollouts",
            Code::OrderChurn => "order_churn",
        }
    }
}

/// What the webhook would do about it, which sets the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Worth knowing; the webhook leaves it (exit status unaffected).
    Note,
    /// The webhook would change it on its next write (exit 1).
    WouldChange,
    /// The webhook would leave it as it is, unable to normalize it (exit 3).
    CannotNormalize,
}

/// Namespace and name of a listed object.
pub fn identity(object: &Value) -> (String, String) {
    let field = |key: &str| {
        object
            .get("metadata")
            .and_then(|metadata| metadata.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    (field("namespace"), field("name"))
}

/// A change the core would make, as a finding's code, effect and reason.
fn change_code(change: &Change) -> (Code, Effect, Option<&'static str>) {
    match change {
        Change::BackendsReordered { .. } => (Code::BackendsOrder, Effect::WouldChange, None),
        Change::LastAppliedReordered { .. } => (Code::LastAppliedOrder, Effect::WouldChange, None),
        Change::LastAppliedLeft(refusal) => (
            Code::LastAppliedRefused,
            Effect::Note,
            Some(refusal.reason.as_str()),
        ),
        Change::ContentChecksum { .. } => (Code::ContentChecksumWrong, Effect::WouldChange, None),
        // The preset reports its own set and checksum above; these come
        // from declared rules.
        Change::SetReordered { .. } => (Code::SetOrder, Effect::WouldChange, None),
        Change::Checksum { .. } => (Code::ChecksumWrong, Effect::WouldChange, None),
    }
}

/// The findings for an object `rule` matched first, from `outcome`, the
/// core's [`Rule::apply`] of it (what the webhook would act on). `paths`
/// name the lists that differ from the canonical form only in order (see
/// [`order_paths`]). A rule in mode `warn` gives notes only.
pub fn rule_findings(
    object: &Value,
    kind: &str,
    rule: &Rule,
    outcome: &Outcome,
    paths: &[String],
) -> Vec<Finding> {
    let finding = |finding: Code, effect: Effect, reason: Option<&'static str>, detail: String| {
        Finding::about(object, kind, finding, effect, reason, detail)
    };
    let mut findings = Vec::new();
    match outcome {
        Outcome::NotVmcp | Outcome::Unchanged => {}
        Outcome::Normalized(normalized) => {
            for change in &normalized.changes {
                let (code, effect, reason) = change_code(change);
                let mut found = finding(code, effect, reason, change.to_string());
                if let Some(place) = ListPlace::of(change) {
                    found.paths = paths
                        .iter()
                        .filter(|path| place.holds(path))
                        .cloned()
                        .collect();
                    if !found.paths.is_empty() {
                        found.detail = format!(
                            "{}; only the order of: {}",
                            found.detail,
                            found.paths.join(", ")
                        );
                    }
                }
                findings.push(found);
            }
        }
        Outcome::Refused(refusal) => findings.push(finding(
            Code::Refused,
            Effect::CannotNormalize,
            Some(refusal.reason.as_str()),
            refusal.to_string(),
        )),
    }
    if let Action::Data(data) = &rule.action
        && let Some(checksum) = &data.checksum
        && !matches!(outcome, Outcome::Refused(_))
        && at(object, &["metadata", "annotations", &checksum.annotation]).is_none()
    {
        let code = if checksum.annotation == CONTENT_CHECKSUM_ANNOTATION {
            Code::ContentChecksumMissing
        } else {
            Code::ChecksumMissing
        };
        findings.push(finding(
            code,
            Effect::Note,
            None,
            format!("no {} annotation (never added)", checksum.annotation),
        ));
    }
    by_rule(findings, rule)
}

/// Mark findings with the rule that judged them; a rule in mode `warn`
/// only warns, so its findings are notes.
pub fn by_rule(findings: Vec<Finding>, rule: &Rule) -> Vec<Finding> {
    let mut findings = attributed(findings, rule);
    if rule.mode == Mode::Warn {
        for finding in &mut findings {
            finding.effect = Effect::Note;
            finding.detail = format!("rule {} (warn only): {}", rule.name, finding.detail);
        }
    }
    findings
}

/// Name the rule (and its mode) the findings come under: for notes that
/// are the same whatever the mode, such as the rollout history.
pub fn attributed(mut findings: Vec<Finding>, rule: &Rule) -> Vec<Finding> {
    for finding in &mut findings {
        finding.rule = Some(rule.name.clone());
        finding.mode = Some(match rule.mode {
            Mode::Warn => "warn",
            Mode::Mutate => "mutate",
        });
    }
    findings
}

/// Where a reordered list sits, as the order-churn detector names it.
enum ListPlace {
    /// A data key's document: `KEY: path`.
    DataKey(String),
    /// kubectl's last-applied copy: `last-applied: ...`.
    LastApplied,
    /// The object's own fields: a path with no document in it.
    Object,
}

impl ListPlace {
    fn of(change: &Change) -> Option<Self> {
        Some(match change {
            Change::BackendsReordered { key, .. } => ListPlace::DataKey(key.clone()),
            Change::LastAppliedReordered { .. } => ListPlace::LastApplied,
            Change::SetReordered { place, .. } if place == "the object" => ListPlace::Object,
            Change::SetReordered { place, .. }
                if place.starts_with("the last-applied-configuration copy") =>
            {
                ListPlace::LastApplied
            }
            Change::SetReordered { place, .. } => ListPlace::DataKey(place.clone()),
            _ => return None,
        })
    }

    fn holds(&self, path: &str) -> bool {
        match self {
            ListPlace::DataKey(key) => path
                .strip_prefix(key.as_str())
                .is_some_and(|rest| rest.starts_with(": ")),
            ListPlace::LastApplied => path.starts_with("last-applied: "),
            ListPlace::Object => !path.contains(": "),
        }
    }
}

/// The lists in which `stored` differs from its canonical form only in
/// order, by the order-churn detector's paths; none when the outcome
/// changes nothing or more than order (checksums aside, which follow).
pub fn order_paths(
    stored: &Value,
    kind: &str,
    outcome: &Outcome,
    checksum_annotation: Option<&str>,
) -> Vec<String> {
    let Outcome::Normalized(normalized) = outcome else {
        return Vec::new();
    };
    let Ok(canonical) = normalized.apply_to(stored) else {
        return Vec::new();
    };
    let detector_kind = if kind == "Deployment" {
        DetectorKind::Deployment
    } else {
        DetectorKind::ConfigMap
    };
    match detect_ignoring(detector_kind, stored, &canonical, checksum_annotation) {
        Ok(churn) => {
            let mut paths: Vec<String> = churn.lists.into_iter().map(|list| list.path).collect();
            if churn.more {
                paths.push("(more)".to_owned());
            }
            paths
        }
        Err(_) => Vec::new(),
    }
}

/// A workload whose ConfigMap `configmap` does not exist.
pub fn configmap_missing(workload: &Value, kind: &str, configmap: &str) -> Vec<Finding> {
    let (namespace, _) = identity(workload);
    vec![Finding::about(
        workload,
        kind,
        Code::ConfigmapMissing,
        Effect::CannotNormalize,
        None,
        format!("its ConfigMap {configmap} does not exist in namespace {namespace}"),
    )]
}

/// The findings for a workload whose pod-template `annotation` follows
/// ConfigMap `configmap`, from the core's checksum step `sync`.
pub fn workload_findings(
    workload: &Value,
    kind: &str,
    annotation: &str,
    configmap: &str,
    sync: ChecksumSync,
) -> Vec<Finding> {
    match sync {
        ChecksumSync::NotVmcp | ChecksumSync::NoRunconfigChecksum | ChecksumSync::InStep => {
            Vec::new()
        }
        ChecksumSync::Replace { from, to, .. } => {
            let (code, label) = if annotation == RUNCONFIG_CHECKSUM_ANNOTATION {
                (Code::RunconfigChecksumStale, "runconfig-checksum")
            } else {
                (Code::WorkloadChecksumStale, annotation)
            };
            vec![Finding::about(
                workload,
                kind,
                code,
                Effect::WouldChange,
                None,
                format!(
                    "{label} {} -> {} (ConfigMap {configmap})",
                    short(&from),
                    short(&to)
                ),
            )]
        }
        ChecksumSync::Unsynced(unsynced) => unsynced_finding(workload, kind, &unsynced),
    }
}

/// A workload whose checksum cannot be told, with the core's reason.
pub fn unsynced_finding(workload: &Value, kind: &str, unsynced: &Unsynced) -> Vec<Finding> {
    vec![Finding::about(
        workload,
        kind,
        Code::Unsynced,
        Effect::CannotNormalize,
        Some(unsynced.reason.as_str()),
        format!("{}: {}", unsynced.reason.describe(), unsynced.detail),
    )]
}

fn short(checksum: &str) -> &str {
    checksum.get(..12).unwrap_or(checksum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::{canonical_content_checksum, sync_to_canonical_checksum};
    use crate::rules::{ObjectKind, RuleSet};

    const BUGGY: &str = "9ba036ba5342c5f43365d8ac13e4c6c642149f4d9519cf690e5147e78d60dc48";
    const CANONICAL: &str = "32cf106c9df1f5bf6fd492475eb31e30bd0e14a00f18b61ccbc9b589f10501ee";

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn codes(findings: &[Finding]) -> Vec<(&'static str, Effect)> {
        findings
            .iter()
            .map(|f| (f.finding.as_str(), f.effect))
            .collect()
    }

    /// What the audit's scan finds for a ConfigMap, by the preset.
    fn configmap(configmap: &Value) -> Vec<Finding> {
        let rules = RuleSet::preset();
        let applied = rules.apply(ObjectKind::of(configmap).unwrap(), configmap);
        match applied.rule {
            None => Vec::new(),
            Some(rule) => rule_findings(configmap, "ConfigMap", rule, &applied.outcome, &[]),
        }
    }

    /// What the audit's scan finds for a vMCP Deployment that mounts
    /// `configmap`, whose canonical checksum is `canonical` (`None`: absent).
    fn deployment_findings(
        deployment: &Value,
        configmap: &str,
        canonical: Option<&Result<String, Unsynced>>,
    ) -> Vec<Finding> {
        let Some(canonical) = canonical else {
            return configmap_missing(deployment, "Deployment", configmap);
        };
        let sync = sync_to_canonical_checksum(deployment, || canonical.clone());
        workload_findings(
            deployment,
            "Deployment",
            RUNCONFIG_CHECKSUM_ANNOTATION,
            configmap,
            sync,
        )
    }

    #[test]
    fn configmaps_are_reported_as_the_core_sees_them() {
        let buggy = fixture("vmcp-configmap.yaml");
        let findings = configmap(&buggy);
        assert_eq!(
            codes(&findings),
            [
                ("backends_order", Effect::WouldChange),
                ("content_checksum_wrong", Effect::WouldChange)
            ]
        );
        assert_eq!(findings[0].namespace, "toolhive-system");
        assert_eq!(findings[0].name, "demo-vmcp-vmcp-config");
        assert_eq!(
            findings[0].detail,
            "sorted 5 backends by name in config.yaml"
        );

        assert!(configmap(&fixture("vmcp-configmap.normalized.yaml")).is_empty());

        let mut unreadable = buggy.clone();
        unreadable["data"]["config.yaml"] = "backends: [a\n".into();
        let findings = configmap(&unreadable);
        assert_eq!(codes(&findings), [("refused", Effect::CannotNormalize)]);
        assert_eq!(findings[0].reason, Some("invalid_yaml"));

        let mut no_checksum = fixture("vmcp-configmap.normalized.yaml");
        no_checksum["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove(CONTENT_CHECKSUM_ANNOTATION);
        assert_eq!(
            codes(&configmap(&no_checksum)),
            [("content_checksum_missing", Effect::Note)]
        );

        let mut not_vmcp = buggy;
        not_vmcp["metadata"]["labels"] = serde_json::json!({});
        assert!(configmap(&not_vmcp).is_empty());
    }

    #[test]
    fn deployments_follow_the_canonical_configmap() {
        let deployment = fixture("vmcp-deployment.yaml");
        let canonical = canonical_content_checksum(&fixture("vmcp-configmap.yaml"));
        assert_eq!(canonical.as_deref(), Ok(CANONICAL));
        assert_eq!(
            deployment["spec"]["template"]["metadata"]["annotations"]
                [RUNCONFIG_CHECKSUM_ANNOTATION],
            BUGGY
        );
        let findings = deployment_findings(&deployment, "demo-vmcp-vmcp-config", Some(&canonical));
        assert_eq!(
            codes(&findings),
            [("runconfig_checksum_stale", Effect::WouldChange)]
        );
        assert_eq!(
            findings[0].detail,
            "runconfig-checksum 9ba036ba5342 -> 32cf106c9df1 (ConfigMap demo-vmcp-vmcp-config)"
        );

        let mut in_step = deployment.clone();
        in_step["spec"]["template"]["metadata"]["annotations"][RUNCONFIG_CHECKSUM_ANNOTATION] =
            CANONICAL.into();
        assert!(deployment_findings(&in_step, "x", Some(&canonical)).is_empty());

        let missing = deployment_findings(&deployment, "demo-vmcp-vmcp-config", None);
        assert_eq!(
            codes(&missing),
            [("configmap_missing", Effect::CannotNormalize)]
        );

        let mut refused = fixture("vmcp-configmap.yaml");
        refused["data"]["config.yaml"] = "backends: [a\n".into();
        let findings = deployment_findings(
            &deployment,
            "demo-vmcp-vmcp-config",
            Some(&canonical_content_checksum(&refused)),
        );
        assert_eq!(codes(&findings), [("unsynced", Effect::CannotNormalize)]);
        assert_eq!(findings[0].reason, Some("configmap_refused"));
    }
}
