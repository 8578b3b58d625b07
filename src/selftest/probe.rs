//! The objects the self-test writes, and what the webhook must make of them,
//! computed by the project's own core (no second implementation).

use serde_json::{Value, json};

use crate::checksum::content_checksum;
use crate::normalize::{Outcome, canonical_content_checksum, normalize_configmap};
use crate::recognize::{
    COMPONENT_LABEL, CONFIG_KEY, CONFIG_VOLUME, CONTENT_CHECKSUM_ANNOTATION, INSTANCE_LABEL,
    NAME_LABEL, RUNCONFIG_CHECKSUM_ANNOTATION, VMCP_APP_NAME, VMCP_CONFIG_COMPONENT,
};

/// The vMCP the probe objects stand for: the Deployment's name and instance.
pub const PROBE_VMCP: &str = "vmcp-normalizer-selftest";
/// The ConfigMap the Deployment check stores (and always deletes again):
/// `<vmcp>-vmcp-config`, as the operator names it.
pub const PROBE_CONFIGMAP: &str = "vmcp-normalizer-selftest-vmcp-config";
/// The ConfigMap of the ConfigMap check, never stored: a name of its own,
/// so a [`PROBE_CONFIGMAP`] left by an interrupted run cannot make it a 409.
pub const DRY_RUN_CONFIGMAP: &str = "vmcp-normalizer-selftest-dry-run-vmcp-config";
/// Field manager of every write, so an audit log says who wrote.
pub const FIELD_MANAGER: &str = "vmcp-normalizer-selftest";

/// `config.yaml` with its backends out of name order, as the buggy operator
/// wrote them (yaml.v3's four-space indentation).
const UNORDERED_CONFIG: &str = "\
name: vmcp-normalizer-selftest
groupRef: vmcp-normalizer-selftest
backends:
    - name: zeta
      url: http://zeta.invalid:8080/mcp
      transport: streamable-http
    - name: alpha
      url: http://alpha.invalid:8080/mcp
      transport: streamable-http
    - name: mu
      url: http://mu.invalid:8080/sse
      transport: sse
";

/// A vMCP config ConfigMap `name` in `namespace`: backends out of order,
/// and the `content-checksum` of that order, as the buggy operator stores it.
pub fn unordered_configmap(namespace: &str, name: &str) -> Value {
    let mut configmap = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                COMPONENT_LABEL: VMCP_CONFIG_COMPONENT,
                "toolhive.stacklok.io/virtual-mcp-server": PROBE_VMCP,
                "app.kubernetes.io/managed-by": FIELD_MANAGER,
            },
            "annotations": {CONTENT_CHECKSUM_ANNOTATION: ""},
        },
        "data": {CONFIG_KEY: UNORDERED_CONFIG},
    });
    // Its own checksum: a static string cannot go stale if the labels change.
    let checksum = content_checksum(&configmap).unwrap_or_default();
    configmap["metadata"]["annotations"][CONTENT_CHECKSUM_ANNOTATION] = json!(checksum);
    configmap
}

/// A vMCP Deployment in `namespace` that mounts [`PROBE_CONFIGMAP`] and
/// carries `runconfig-checksum: stale`. Valid as the API server validates
/// it (a dry run is validated), never run: no replicas.
pub fn deployment(namespace: &str, stale: &str) -> Value {
    let labels = json!({NAME_LABEL: VMCP_APP_NAME, INSTANCE_LABEL: PROBE_VMCP});
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": PROBE_VMCP,
            "namespace": namespace,
            "labels": labels,
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {RUNCONFIG_CHECKSUM_ANNOTATION: stale},
                },
                "spec": {
                    "automountServiceAccountToken": false,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [{
                        "name": "vmcp",
                        "image": "vmcp-normalizer-selftest.invalid/never-pulled:0",
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }],
                    "volumes": [{"name": CONFIG_VOLUME, "configMap": {"name": PROBE_CONFIGMAP}}],
                },
            },
        },
    })
}

/// The `config.yaml` the webhook must return for `sent`, by the core.
pub fn canonical_config(sent: &Value) -> Option<String> {
    let canonical = match normalize_configmap(sent) {
        Outcome::Normalized(normalized) => normalized.apply_to(sent).ok()?,
        Outcome::Unchanged => sent.clone(),
        Outcome::NotVmcp | Outcome::Refused(_) => return None,
    };
    canonical
        .pointer("/data/config.yaml")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The `runconfig-checksum` the webhook must set for a Deployment that
/// mounts `stored` (the ConfigMap as the API server stores it).
pub fn expected_runconfig_checksum(stored: &Value) -> Option<String> {
    canonical_content_checksum(stored).ok()
}

pub fn config_of(configmap: &Value) -> Option<&str> {
    configmap
        .pointer("/data/config.yaml")
        .and_then(Value::as_str)
}

pub fn content_checksum_of(configmap: &Value) -> Option<&str> {
    configmap
        .get("metadata")?
        .get("annotations")?
        .get(CONTENT_CHECKSUM_ANNOTATION)?
        .as_str()
}

pub fn runconfig_checksum_of(deployment: &Value) -> Option<&str> {
    deployment
        .pointer("/spec/template/metadata/annotations")?
        .get(RUNCONFIG_CHECKSUM_ANNOTATION)?
        .as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recognize::{is_vmcp_configmap, vmcp_deployment_configmap};

    #[test]
    fn the_probes_are_what_the_webhook_recognizes_and_changes() {
        let configmap = unordered_configmap("ns", PROBE_CONFIGMAP);
        assert!(is_vmcp_configmap(&configmap));
        let canonical = canonical_config(&configmap).unwrap();
        assert_ne!(canonical, UNORDERED_CONFIG, "the probe must need a reorder");
        let names: Vec<&str> = canonical
            .lines()
            .filter_map(|line| line.trim().strip_prefix("- name: "))
            .collect();
        assert_eq!(names, ["alpha", "mu", "zeta"]);
        // The stored checksum is the one of the unordered text, so the
        // canonical one differs.
        assert_eq!(
            content_checksum_of(&configmap).unwrap(),
            content_checksum(&configmap).unwrap()
        );
        let expected = expected_runconfig_checksum(&configmap).unwrap();
        assert_ne!(content_checksum_of(&configmap).unwrap(), expected);

        let deployment = deployment("ns", "stale");
        assert_eq!(
            vmcp_deployment_configmap(&deployment),
            Some(PROBE_CONFIGMAP)
        );
        assert_eq!(runconfig_checksum_of(&deployment), Some("stale"));
        assert_eq!(
            PROBE_CONFIGMAP,
            format!("{PROBE_VMCP}-vmcp-config"),
            "named as the operator names it"
        );
    }
}
