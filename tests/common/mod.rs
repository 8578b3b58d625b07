//! Shared helpers for the server tests: a test PKI, the kubelet's Secret
//! volume layout, the real server on 127.0.0.1:0, HTTPS clients that trust
//! only the test CA, and AdmissionReview fixtures.
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod apiserver;
pub mod process;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vmcp_normalizer::admission::Admission;
use vmcp_normalizer::metrics::Metrics;
use vmcp_normalizer::server::admin::Health;
use vmcp_normalizer::server::tls::TlsFiles;
use vmcp_normalizer::server::{ServeError, Server, ServerOptions};

/// ring as the process default, for the reqwest clients (rustls-no-provider).
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A test CA that issues `localhost` serving certificates.
pub struct Pki {
    pub ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A PEM certificate and its key.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl Pki {
    pub fn new() -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("CA cert");
        Self {
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    pub fn leaf(&self) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let params = CertificateParams::new(vec!["localhost".to_owned()]).expect("leaf params");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf cert");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

/// A directory laid out as the kubelet lays out a Secret volume:
/// `tls.crt -> ..data/tls.crt`, `..data -> ..<timestamp>/`. Updates write a
/// new timestamped directory and atomically rename a new `..data` symlink
/// over the old one; the files are never written in place.
pub struct KubeletVolume {
    pub dir: tempfile::TempDir,
    generation: u32,
    current: Option<PathBuf>,
}

impl KubeletVolume {
    pub fn new(leaf: &Leaf) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut volume = Self {
            dir,
            generation: 0,
            current: None,
        };
        volume.update(&leaf.cert_pem, &leaf.key_pem);
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(
                Path::new("..data").join(name),
                volume.dir.path().join(name),
            )
            .expect("file symlink");
        }
        volume
    }

    pub fn files(&self) -> TlsFiles {
        TlsFiles {
            cert: self.dir.path().join("tls.crt"),
            key: self.dir.path().join("tls.key"),
        }
    }

    /// The kubelet's atomic update.
    pub fn update(&mut self, cert_pem: &str, key_pem: &str) {
        self.generation += 1;
        let name = format!("..2026_11_25_06_00_00.{:09}", self.generation);
        let new_dir = self.dir.path().join(&name);
        std::fs::create_dir(&new_dir).expect("timestamped dir");
        std::fs::write(new_dir.join("tls.crt"), cert_pem).expect("write cert");
        std::fs::write(new_dir.join("tls.key"), key_pem).expect("write key");
        let tmp = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&name, &tmp).expect("..data_tmp");
        std::fs::rename(&tmp, self.dir.path().join("..data")).expect("swap ..data");
        if let Some(old) = self.current.replace(new_dir) {
            std::fs::remove_dir_all(old).expect("remove old dir");
        }
    }
}

/// The real server on loopback, stopped through its shutdown future.
pub struct TestServer {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), ServeError>>>,
}

impl TestServer {
    pub async fn start(options: ServerOptions) -> Self {
        Self::start_with(options, Admission::new(Arc::new(Metrics::new()))).await
    }

    pub async fn start_with(options: ServerOptions, admission: Admission) -> Self {
        install_crypto_provider();
        let server = Server::new(options, admission).expect("certificate loads");
        // Bind once and hand the listeners over: no port races.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
        let addr = listener.local_addr().expect("addr");
        let admin_addr = admin.local_addr().expect("admin addr");
        let health = server.health();
        let metrics = server.metrics();
        let (shutdown, stop) = oneshot::channel::<()>();
        let handle = tokio::spawn(server.run(listener, admin, async move {
            let _ = stop.await;
        }));
        let test_server = Self {
            addr,
            admin_addr,
            health,
            metrics,
            shutdown: Some(shutdown),
            handle: Some(handle),
        };
        wait_until("the server is ready", Duration::from_secs(10), || async {
            test_server.health.is_ready()
        })
        .await;
        test_server
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin_addr)
    }

    /// Begin shutdown; the returned handle resolves when `run` returns.
    pub fn begin_shutdown(&mut self) -> JoinHandle<Result<(), ServeError>> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.handle.take().expect("running")
    }

    pub async fn stop(mut self) {
        let handle = self.begin_shutdown();
        tokio::time::timeout(Duration::from_secs(30), handle)
            .await
            .expect("stops within the drain timeout")
            .expect("run task")
            .expect("run returns Ok");
    }

    pub async fn metrics_text(&self) -> String {
        self.metrics.encode().expect("metrics")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Server options for a certificate pair in plain files in `dir`.
pub fn write_pair(dir: &Path, leaf: &Leaf) -> TlsFiles {
    std::fs::write(dir.join("tls.crt"), &leaf.cert_pem).expect("write cert");
    std::fs::write(dir.join("tls.key"), &leaf.key_pem).expect("write key");
    TlsFiles {
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
    }
}

/// The real binary serving HTTPS with a fresh test certificate on ports the
/// OS chose, once it says it serves.
pub struct ServedBinary {
    pub process: process::Process,
    pub pki: Pki,
    /// The webhook port.
    pub addr: SocketAddr,
    /// The admin port, `host:port`.
    pub admin: String,
    _certificates: tempfile::TempDir,
}

/// Start `vmcp-normalizer serve` with JSON logs and `extra` flags.
pub fn serve_binary(extra: &[&str]) -> ServedBinary {
    install_crypto_provider();
    let pki = Pki::new();
    let certificates = tempfile::tempdir().expect("temp dir");
    let files = write_pair(certificates.path(), &pki.leaf());
    let (cert, key) = (
        files.cert.to_str().expect("utf-8 path"),
        files.key.to_str().expect("utf-8 path"),
    );
    let mut args = vec![
        "serve",
        "--listen=127.0.0.1:0",
        "--admin-listen=127.0.0.1:0",
        "--log-format=json",
        "--tls-cert",
        cert,
        "--tls-key",
        key,
    ];
    args.extend_from_slice(extra);
    let mut process = process::Process::spawn(&args, &[]);
    let serving = process.wait_for_log("serving admission reviews");
    let addr = serving["listen"]
        .as_str()
        .expect("listen")
        .parse()
        .expect("address");
    let admin = serving["admin"].as_str().expect("admin").to_owned();
    ServedBinary {
        process,
        pki,
        addr,
        admin,
        _certificates: certificates,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Http {
    V1,
    V2,
}

/// An HTTPS client that trusts only the test CA and reaches `localhost` at
/// the server's address.
pub fn client(ca_pem: &str, server: SocketAddr, http: Http) -> reqwest::Client {
    client_builder(ca_pem, server, http)
        .build()
        .expect("client")
}

pub fn client_builder(ca_pem: &str, server: SocketAddr, http: Http) -> reqwest::ClientBuilder {
    install_crypto_provider();
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA");
    let builder = reqwest::Client::builder()
        .tls_certs_only([ca])
        .resolve("localhost", server)
        .timeout(Duration::from_secs(20));
    match http {
        Http::V1 => builder.http1_only(),
        Http::V2 => builder.http2_prior_knowledge(),
    }
}

/// Poll `check` until it holds, failing the test after `limit`.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("fixture");
    yaml_serde::from_str(&text).expect("fixture is YAML")
}

/// What the apiserver sends for a write of `object` (CREATE) or of `object`
/// over `old_object` (UPDATE), shaped like a real `admission.k8s.io/v1` review.
pub fn review(uid: &str, operation: &str, object: &Value, old_object: Option<&Value>) -> Value {
    let kind = object["kind"].as_str().unwrap_or("ConfigMap");
    let (group, version, resource) = match kind {
        "Deployment" => ("apps", "v1", "deployments"),
        "Secret" => ("", "v1", "secrets"),
        "Pod" => ("", "v1", "pods"),
        _ => ("", "v1", "configmaps"),
    };
    let gvk = json!({"group": group, "version": version, "kind": kind});
    let gvr = json!({"group": group, "version": version, "resource": resource});
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"],
            "operation": operation,
            "userInfo": {
                "username": "system:serviceaccount:toolhive-system:toolhive-operator",
                "uid": "0d3a4f6e-1c9b-4f6e-9e7a-2b8c5d1e0f42",
                "groups": ["system:serviceaccounts", "system:authenticated"]
            },
            "object": object,
            "oldObject": old_object.cloned().unwrap_or(Value::Null),
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": if operation == "CREATE" { "CreateOptions" } else { "UpdateOptions" }}
        }
    })
}

/// Decode a response's patch (base64 of RFC 6902 JSON), if any.
pub fn decode_patch(response: &Value) -> Option<json_patch::Patch> {
    use base64::Engine as _;
    let patch = response["response"]
        .get("patch")?
        .as_str()
        .expect("patch is a base64 string");
    let json = base64::engine::general_purpose::STANDARD
        .decode(patch)
        .expect("patch is base64");
    Some(serde_json::from_slice(&json).expect("patch is RFC 6902 JSON"))
}

pub async fn post_review(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
) -> reqwest::Result<(reqwest::StatusCode, Vec<u8>)> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).expect("encode"))
        .send()
        .await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    Ok((status, bytes.to_vec()))
}
