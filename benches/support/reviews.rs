//! The AdmissionReview bodies the load and admission benchmarks send, shared by
//! `examples/bench-reviews.rs` (which writes them for h2load) and
//! `benches/admission.rs` (which answers them in process).

use std::path::Path;

use serde_json::{Value, json};

fn fixture(name: &str) -> Result<Value, Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    Ok(yaml_serde::from_str(&std::fs::read_to_string(path)?)?)
}

/// An UPDATE review as the apiserver sends it for an operator's write.
fn review(object: &Value) -> Value {
    let (group, kind, resource) = match object["kind"].as_str() {
        Some("Deployment") => ("apps", "Deployment", "deployments"),
        _ => ("", "ConfigMap", "configmaps"),
    };
    let gvk = json!({"group": group, "version": "v1", "kind": kind});
    let gvr = json!({"group": group, "version": "v1", "resource": resource});
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "3c5b1f2e-7a9d-4e8b-b6c1-0f2d4a6e8c13",
            "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"],
            "operation": "UPDATE",
            "userInfo": {"username": "system:serviceaccount:toolhive-system:toolhive-operator",
                         "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": object,
            "oldObject": object,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"}
        }
    })
}

/// A body's name and its JSON.
pub type Body = (&'static str, Vec<u8>);

/// The bodies by name: `buggy`, `canonical`, `not-vmcp` and `deployment`.
pub fn bodies() -> Result<Vec<Body>, Box<dyn std::error::Error>> {
    let buggy = fixture("vmcp-configmap.yaml")?;
    let canonical = fixture("vmcp-configmap.normalized.yaml")?;
    let deployment = fixture("vmcp-deployment.yaml")?;
    let mut not_vmcp = buggy.clone();
    if let Some(labels) = not_vmcp
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove("toolhive.stacklok.io/component");
        labels.insert("app.kubernetes.io/component".into(), json!("vmcp-config"));
    }
    let mut bodies = Vec::new();
    for (name, object) in [
        ("buggy", &buggy),
        ("canonical", &canonical),
        ("not-vmcp", &not_vmcp),
        ("deployment", &deployment),
    ] {
        bodies.push((name, serde_json::to_vec(&review(object))?));
    }
    Ok(bodies)
}
