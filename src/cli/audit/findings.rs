//! What `audit` says about one object: the core's own answers (the
//! ConfigMap normalizer, the Deployment's checksum step) turned into rows.
//! Nothing here decides anything the webhook does not.

use serde::Serialize;
use serde_json::Value;

use crate::normalize::{
    Change, ChecksumSync, Outcome, Unsynced, UnsyncedReason, normalize_configmap,
    sync_to_canonical_checksum,
};

/// One reason an object is not canonical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub namespace: String,
    /// `ConfigMap` or `Deployment`.
    pub kind: &'static str,
    pub name: String,
    /// Stable code (see [`Code`]).
    pub finding: Code,
    pub effect: Effect,
    /// The core's low-cardinality reason, for refusals.
    pub reason: Option<&'static str>,
    pub detail: String,
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
    /// The ConfigMap cannot be normalized; `reason` says why.
    Refused,
    /// The pod-template `runconfig-checksum` differs from the canonical
    /// ConfigMap's checksum.
    RunconfigChecksumStale,
    /// The ConfigMap the Deployment mounts does not exist.
    ConfigmapMissing,
    /// The Deployment's checksum cannot be told; `reason` says why.
    Unsynced,
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
            Code::Refused => "refused",
            Code::RunconfigChecksumStale => "runconfig_checksum_stale",
            Code::ConfigmapMissing => "configmap_missing",
            Code::Unsynced => "unsynced",
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

/// The findings for a vMCP ConfigMap, given `canonical`, the core's
/// `canonical_content_checksum` of it.
pub fn configmap_findings(configmap: &Value, canonical: &Result<String, Unsynced>) -> Vec<Finding> {
    let (namespace, name) = identity(configmap);
    let finding =
        |finding: Code, effect: Effect, reason: Option<&'static str>, detail: String| Finding {
            namespace: namespace.clone(),
            kind: "ConfigMap",
            name: name.clone(),
            finding,
            effect,
            reason,
            detail,
        };
    let mut findings = Vec::new();
    match normalize_configmap(configmap) {
        Outcome::NotVmcp => return findings,
        Outcome::Unchanged => {}
        Outcome::Normalized(normalized) => {
            for change in &normalized.changes {
                let (code, effect, reason) = match change {
                    Change::BackendsReordered { .. } => {
                        (Code::BackendsOrder, Effect::WouldChange, None)
                    }
                    Change::LastAppliedReordered { .. } => {
                        (Code::LastAppliedOrder, Effect::WouldChange, None)
                    }
                    Change::LastAppliedLeft(refusal) => (
                        Code::LastAppliedRefused,
                        Effect::Note,
                        Some(refusal.reason.as_str()),
                    ),
                    Change::ContentChecksum { .. } => {
                        (Code::ContentChecksumWrong, Effect::WouldChange, None)
                    }
                    // The preset reports its own set and checksum above;
                    // these come from declared rules.
                    Change::SetReordered { .. } => (Code::SetOrder, Effect::WouldChange, None),
                    Change::Checksum { .. } => (Code::ChecksumWrong, Effect::WouldChange, None),
                };
                findings.push(finding(code, effect, reason, change.to_string()));
            }
        }
        Outcome::Refused(refusal) => {
            findings.push(finding(
                Code::Refused,
                Effect::CannotNormalize,
                Some(refusal.reason.as_str()),
                refusal.to_string(),
            ));
            return findings;
        }
    }
    if let Err(unsynced) = canonical
        && unsynced.reason == UnsyncedReason::NoContentChecksum
    {
        findings.push(finding(
            Code::ContentChecksumMissing,
            Effect::Note,
            None,
            "no toolhive.stacklok.dev/content-checksum annotation (never added)".to_owned(),
        ));
    }
    findings
}

/// The findings for a vMCP Deployment that mounts ConfigMap `configmap`:
/// `canonical` is that ConfigMap's canonical checksum (the core's
/// `canonical_content_checksum`), or `None` when it does not exist.
pub fn deployment_findings(
    deployment: &Value,
    configmap: &str,
    canonical: Option<&Result<String, Unsynced>>,
) -> Vec<Finding> {
    let (namespace, name) = identity(deployment);
    let finding = |finding: Code, effect: Effect, reason: Option<&'static str>, detail: String| {
        vec![Finding {
            namespace: namespace.clone(),
            kind: "Deployment",
            name: name.clone(),
            finding,
            effect,
            reason,
            detail,
        }]
    };
    let Some(canonical) = canonical else {
        return finding(
            Code::ConfigmapMissing,
            Effect::CannotNormalize,
            None,
            format!("its ConfigMap {configmap} does not exist in namespace {namespace}"),
        );
    };
    match sync_to_canonical_checksum(deployment, || canonical.clone()) {
        ChecksumSync::NotVmcp | ChecksumSync::NoRunconfigChecksum | ChecksumSync::InStep => {
            Vec::new()
        }
        ChecksumSync::Replace { from, to, .. } => finding(
            Code::RunconfigChecksumStale,
            Effect::WouldChange,
            None,
            format!(
                "runconfig-checksum {} -> {} (ConfigMap {configmap})",
                short(&from),
                short(&to)
            ),
        ),
        ChecksumSync::Unsynced(unsynced) => unsynced_finding(deployment, &unsynced),
    }
}

/// A vMCP Deployment whose checksum cannot be told, with the core's reason.
pub fn unsynced_finding(deployment: &Value, unsynced: &Unsynced) -> Vec<Finding> {
    let (namespace, name) = identity(deployment);
    vec![Finding {
        namespace,
        kind: "Deployment",
        name,
        finding: Code::Unsynced,
        effect: Effect::CannotNormalize,
        reason: Some(unsynced.reason.as_str()),
        detail: format!("{}: {}", unsynced.reason.describe(), unsynced.detail),
    }]
}

fn short(checksum: &str) -> &str {
    checksum.get(..12).unwrap_or(checksum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::canonical_content_checksum;
    use crate::recognize::{CONTENT_CHECKSUM_ANNOTATION, RUNCONFIG_CHECKSUM_ANNOTATION};

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

    fn configmap(configmap: &Value) -> Vec<Finding> {
        configmap_findings(configmap, &canonical_content_checksum(configmap))
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
