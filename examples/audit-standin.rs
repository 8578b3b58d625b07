//! The tests' Kubernetes API stand-in as a process, holding a large cluster
//! for the audit benchmark (bench/audit.sh):
//!
//! ```text
//! cargo run --release --example audit-standin -- DIR VMCPS
//! ```
//!
//! Stores VMCPS vMCP ConfigMaps (every other one in buggy backend order)
//! with their Deployments (the buggy ones' checksums stale), one vMCP per
//! namespace, and as many ConfigMaps without the vMCP label (which the
//! audit's label selector keeps off the wire). Serves HTTPS on 127.0.0.1,
//! writes `DIR/kubeconfig`, prints its URL, and runs until SIGTERM or SIGINT.

#[path = "../tests/common/apiserver.rs"]
mod apiserver;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tokio::signal::unix::{SignalKind, signal};

fn fixture(name: &str) -> Result<Value, Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    Ok(yaml_serde::from_str(&std::fs::read_to_string(path)?)?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "bench/out".into()));
    let vmcps: usize = match args.next() {
        Some(count) => count.to_string_lossy().parse()?,
        None => 1000,
    };
    std::fs::create_dir_all(&dir)?;

    let api = apiserver::ApiServer::start().await;
    let buggy = fixture("vmcp-configmap.yaml")?;
    let canonical = fixture("vmcp-configmap.normalized.yaml")?;
    let deployment = fixture("vmcp-deployment.yaml")?;
    for i in 0..vmcps {
        let namespace = format!("ns-{i:05}");
        let mut configmap = if i % 2 == 0 {
            buggy.clone()
        } else {
            canonical.clone()
        };
        configmap["metadata"]["namespace"] = json!(namespace);
        api.insert(configmap);
        let mut deployment = deployment.clone();
        deployment["metadata"]["namespace"] = json!(namespace);
        if i % 2 == 1 {
            deployment["spec"]["template"]["metadata"]["annotations"]["toolhive.stacklok.dev/runconfig-checksum"] =
                json!("32cf106c9df1f5bf6fd492475eb31e30bd0e14a00f18b61ccbc9b589f10501ee");
        }
        api.insert(deployment);
        api.insert(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"namespace": namespace, "name": "kube-root-ca.crt"},
            "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n"}}));
    }
    let kubeconfig = api.write_kubeconfig(&dir);
    println!("{} serving {vmcps} vMCPs", api.url());
    println!("kubeconfig: {}", kubeconfig.display());

    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    println!("requests served: {}", api.requests().len());
    Ok(())
}
