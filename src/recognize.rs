//! Which objects are ToolHive vMCP objects. The one place these rules live.
//!
//! ToolHive labels use the `toolhive.stacklok.io` domain while the checksum
//! annotations use `toolhive.stacklok.dev`; that split is deliberate upstream.

use serde_json::Value;

/// Label the operator puts on the vMCP config ConfigMap.
pub const COMPONENT_LABEL: &str = "toolhive.stacklok.io/component";
/// Value of [`COMPONENT_LABEL`] on the vMCP config ConfigMap.
pub const VMCP_CONFIG_COMPONENT: &str = "vmcp-config";
/// The data key that holds the vMCP configuration.
pub const CONFIG_KEY: &str = "config.yaml";
/// Checksum of the ConfigMap content, on the ConfigMap itself.
pub const CONTENT_CHECKSUM_ANNOTATION: &str = "toolhive.stacklok.dev/content-checksum";
/// Where kubectl's client-side apply keeps the object it applied, as JSON.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Copy of the ConfigMap checksum on the vMCP Deployment's pod template.
pub const RUNCONFIG_CHECKSUM_ANNOTATION: &str = "toolhive.stacklok.dev/runconfig-checksum";
/// `app.kubernetes.io/name` of the vMCP Deployment.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const VMCP_APP_NAME: &str = "virtualmcpserver";
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// The pod volume through which the vMCP Deployment mounts its config ConfigMap.
pub const CONFIG_VOLUME: &str = "vmcp-config";

/// A vMCP config ConfigMap: label `toolhive.stacklok.io/component: vmcp-config`
/// and a `config.yaml` data key (of any type: a non-string value is still a
/// vMCP ConfigMap, just one the normalizer will refuse with a reason).
pub fn is_vmcp_configmap(object: &Value) -> bool {
    label(object, COMPONENT_LABEL) == Some(VMCP_CONFIG_COMPONENT)
        && at(object, &["data", CONFIG_KEY]).is_some()
}

/// A vMCP Deployment: labels `app.kubernetes.io/name: virtualmcpserver` and
/// `app.kubernetes.io/instance`, and a pod volume `vmcp-config` that mounts a
/// ConfigMap. Returns the name of that ConfigMap.
pub fn vmcp_deployment_configmap(object: &Value) -> Option<&str> {
    if label(object, NAME_LABEL) != Some(VMCP_APP_NAME) {
        return None;
    }
    label(object, INSTANCE_LABEL).filter(|instance| !instance.is_empty())?;
    at(object, &["spec", "template", "spec", "volumes"])?
        .as_array()?
        .iter()
        .find(|volume| volume.get("name").and_then(Value::as_str) == Some(CONFIG_VOLUME))
        .and_then(|volume| at(volume, &["configMap", "name"]))?
        .as_str()
        .filter(|name| !name.is_empty())
}

/// The server-side label selector that lists the candidates for
/// [`is_vmcp_configmap`] (the `config.yaml` key is checked on each).
pub fn vmcp_configmap_selector() -> String {
    format!("{COMPONENT_LABEL}={VMCP_CONFIG_COMPONENT}")
}

/// The server-side label selector that lists the candidates for
/// [`vmcp_deployment_configmap`] (the volume and an empty instance are
/// checked on each).
pub fn vmcp_deployment_selector() -> String {
    format!("{NAME_LABEL}={VMCP_APP_NAME},{INSTANCE_LABEL}")
}

fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    at(object, &["metadata", "labels", key])?.as_str()
}

/// The value under `keys`, one object key after another: `Value::pointer`
/// without parsing a pointer string, which allocates a copy of every token.
pub fn at<'v>(value: &'v Value, keys: &[&str]) -> Option<&'v Value> {
    keys.iter().try_fold(value, |value, key| value.get(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configmap_needs_label_and_config_key() {
        let labels = json!({ COMPONENT_LABEL: VMCP_CONFIG_COMPONENT });
        assert!(is_vmcp_configmap(
            &json!({"metadata": {"labels": labels}, "data": {"config.yaml": "x"}})
        ));
        assert!(!is_vmcp_configmap(
            &json!({"metadata": {"labels": labels}, "data": {}})
        ));
        assert!(!is_vmcp_configmap(
            &json!({"metadata": {}, "data": {"config.yaml": "x"}})
        ));
        assert!(!is_vmcp_configmap(&json!({
            "metadata": {"labels": {COMPONENT_LABEL: "run-config"}},
            "data": {"config.yaml": "x"}
        })));
    }

    #[test]
    fn deployment_needs_labels_and_config_volume() {
        let deployment = |labels: Value, volumes: Value| json!({"metadata": {"labels": labels}, "spec": {"template": {"spec": {"volumes": volumes}}}});
        let labels = json!({NAME_LABEL: VMCP_APP_NAME, INSTANCE_LABEL: "demo"});
        let volumes = json!([{"name": "other", "emptyDir": {}},
                             {"name": "vmcp-config", "configMap": {"name": "demo-vmcp-config"}}]);
        assert_eq!(
            vmcp_deployment_configmap(&deployment(labels.clone(), volumes.clone())),
            Some("demo-vmcp-config")
        );
        assert_eq!(
            vmcp_deployment_configmap(&deployment(
                json!({NAME_LABEL: VMCP_APP_NAME}),
                volumes.clone()
            )),
            None
        );
        assert_eq!(
            vmcp_deployment_configmap(&deployment(
                labels.clone(),
                json!([{"name": "vmcp-config", "emptyDir": {}}])
            )),
            None
        );
        assert_eq!(
            vmcp_deployment_configmap(&deployment(
                json!({NAME_LABEL: "other", INSTANCE_LABEL: "x"}),
                volumes.clone()
            )),
            None
        );
        // Empty values count as missing.
        assert_eq!(
            vmcp_deployment_configmap(&deployment(
                json!({NAME_LABEL: VMCP_APP_NAME, INSTANCE_LABEL: ""}),
                volumes
            )),
            None
        );
        assert_eq!(
            vmcp_deployment_configmap(&deployment(
                labels.clone(),
                json!([{"name": "vmcp-config", "configMap": {"name": ""}}])
            )),
            None
        );
        // Volumes that are not a list, or a list without the config volume.
        for volumes in [json!(null), json!({"vmcp-config": {}}), json!([])] {
            assert_eq!(
                vmcp_deployment_configmap(&deployment(labels.clone(), volumes.clone())),
                None,
                "{volumes}"
            );
        }
    }

    #[test]
    fn selectors_name_the_labels_the_rules_read() {
        assert_eq!(
            vmcp_configmap_selector(),
            "toolhive.stacklok.io/component=vmcp-config"
        );
        assert_eq!(
            vmcp_deployment_selector(),
            "app.kubernetes.io/name=virtualmcpserver,app.kubernetes.io/instance"
        );
    }

    #[test]
    fn label_values_must_be_strings() {
        assert!(!is_vmcp_configmap(&json!({
            "metadata": {"labels": {COMPONENT_LABEL: ["vmcp-config"]}},
            "data": {"config.yaml": "x"}
        })));
        // config.yaml of any type still marks a vMCP ConfigMap (refused later).
        assert!(is_vmcp_configmap(&json!({
            "metadata": {"labels": {COMPONENT_LABEL: VMCP_CONFIG_COMPONENT}},
            "data": {"config.yaml": 7}
        })));
    }
}
