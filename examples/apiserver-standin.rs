//! The tests' Kubernetes API stand-in as a process, for the Deployment load
//! benchmark (bench/deployments.sh):
//!
//! ```text
//! cargo run --release --example apiserver-standin -- DIR [PORT]
//! ```
//!
//! Serves HTTPS on 127.0.0.1:PORT (default: any free port) with the fixture
//! vMCP ConfigMap stored (in buggy order, as written before the webhook was
//! installed), writes `DIR/kubeconfig` for it, prints its URL, and runs until
//! SIGTERM or SIGINT.

#[path = "../tests/common/apiserver.rs"]
mod apiserver;

use std::path::{Path, PathBuf};

use tokio::signal::unix::{SignalKind, signal};

fn fixture(name: &str) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    Ok(yaml_serde::from_str(&std::fs::read_to_string(path)?)?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "bench/out".into()));
    let port: u16 = match args.next() {
        Some(port) => port.to_string_lossy().parse()?,
        None => 0,
    };
    std::fs::create_dir_all(&dir)?;

    let api = apiserver::ApiServer::start_on(([127, 0, 0, 1], port).into()).await;
    let path = api.insert(fixture("vmcp-configmap.yaml")?);
    let kubeconfig = api.write_kubeconfig(&dir);
    println!("{} serving {path}", api.url());
    println!("kubeconfig: {}", kubeconfig.display());

    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    println!(
        "requests served: {}",
        api.count(
            "GET",
            &apiserver::configmap_path("toolhive-system", "demo-vmcp-vmcp-config")
        )
    );
    Ok(())
}
