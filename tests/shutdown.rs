//! Graceful shutdown: in-process (a request held in flight by a test
//! Deployment mutator) and the real binary under SIGTERM; plus the binary's
//! fail-fast start-up checks.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::process::Process;
use common::{Http, Pki, TestServer, client, fixture, post_review, review, wait_until, write_pair};
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};
use vmcp_normalizer::admission::{
    Admission, BoxFuture, Decision, Verdict, WorkloadMutator, WorkloadReview,
};
use vmcp_normalizer::metrics::Metrics;
use vmcp_normalizer::server::ServerOptions;

const WAIT: Duration = Duration::from_secs(10);

/// Holds every Deployment review until released: a request in flight on demand.
struct Gate {
    entered: mpsc::UnboundedSender<()>,
    release: Arc<Semaphore>,
}

impl WorkloadMutator for Gate {
    fn mutate<'a>(&'a self, _: WorkloadReview<'a>) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let _ = self.entered.send(());
            let _permit = self.release.acquire().await;
            Verdict::allow(Decision::Unchanged)
        })
    }
}

struct Held {
    pki: Pki,
    _dir: tempfile::TempDir,
    server: TestServer,
    entered: mpsc::UnboundedReceiver<()>,
    release: Arc<Semaphore>,
}

async fn start_held(drain_timeout: Duration) -> Held {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let mut options = ServerOptions::new(write_pair(dir.path(), &pki.leaf()));
    options.drain_timeout = drain_timeout;
    let (entered_tx, entered) = mpsc::unbounded_channel();
    let release = Arc::new(Semaphore::new(0));
    let gate = Gate {
        entered: entered_tx,
        release: release.clone(),
    };
    let admission = Admission::new(Arc::new(Metrics::new())).with_workload_mutator(Arc::new(gate));
    let server = TestServer::start_with(options, admission).await;
    Held {
        pki,
        _dir: dir,
        server,
        entered,
        release,
    }
}

impl Held {
    /// Send a Deployment review that the gate holds; returns once it is held.
    async fn request_in_flight(
        &mut self,
    ) -> tokio::task::JoinHandle<reqwest::Result<(reqwest::StatusCode, Vec<u8>)>> {
        let client = client(&self.pki.ca_pem, self.server.addr, Http::V1);
        let url = self.server.url("/mutate");
        let deployment = fixture("vmcp-deployment.yaml");
        let body = review("uid-held", "UPDATE", &deployment, Some(&deployment));
        let request = tokio::spawn(async move { post_review(&client, &url, &body).await });
        tokio::time::timeout(WAIT, self.entered.recv())
            .await
            .expect("the request reaches the mutator")
            .expect("gate alive");
        request
    }

    async fn readyz(&self) -> u16 {
        reqwest::get(self.server.admin_url("/readyz"))
            .await
            .map(|response| response.status().as_u16())
            .unwrap_or(0)
    }
}

#[tokio::test]
async fn in_flight_request_completes_while_readiness_turns_false() {
    let mut held = start_held(Duration::from_secs(20)).await;
    assert_eq!(held.readyz().await, 200);
    // An idle kept-alive HTTP/2 connection, as the apiserver holds them: it
    // must not hold up the drain.
    let idle = client(&held.pki.ca_pem, held.server.addr, Http::V2);
    let canonical = fixture("vmcp-configmap.normalized.yaml");
    let (status, _) = post_review(
        &idle,
        &held.server.url("/mutate"),
        &review("uid-idle", "CREATE", &canonical, None),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let in_flight = held.request_in_flight().await;

    let run = held.server.begin_shutdown();
    wait_until("readiness to turn false", WAIT, || async {
        held.readyz().await == 503
    })
    .await;
    let addr = held.server.addr;
    wait_until("new connections to be refused", WAIT, || async {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;
    assert!(!run.is_finished(), "still draining the held request");

    held.release.add_permits(1);
    let (status, bytes) = tokio::time::timeout(WAIT, in_flight)
        .await
        .expect("in-flight request answered")
        .unwrap()
        .expect("in-flight request succeeds");
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer["response"]["uid"], "uid-held");
    assert_eq!(answer["response"]["allowed"], true);

    let released = Instant::now();
    tokio::time::timeout(WAIT, run)
        .await
        .expect("run returns after the drain")
        .unwrap()
        .expect("clean shutdown");
    assert!(
        released.elapsed() < Duration::from_secs(5),
        "the idle connection did not hold the drain up to its deadline"
    );
    drop(idle);
}

#[tokio::test]
async fn drain_stops_at_the_deadline() {
    let drain = Duration::from_millis(300);
    let mut held = start_held(drain).await;
    let in_flight = held.request_in_flight().await;
    let started = Instant::now();
    let run = held.server.begin_shutdown();
    tokio::time::timeout(WAIT, run)
        .await
        .expect("run returns at the drain deadline")
        .unwrap()
        .expect("shutdown is still Ok");
    let elapsed = started.elapsed();
    assert!(elapsed >= drain, "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    let result = tokio::time::timeout(WAIT, in_flight)
        .await
        .expect("the held request is closed, not left hanging")
        .unwrap();
    assert!(result.is_err(), "the connection was closed: {result:?}");
}

// ---- the real binary -------------------------------------------------------

// Multi-threaded: the test blocks a thread reading the child's output, and
// the client's idle HTTP/2 connection must still answer the server's
// shutdown PING on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_drains_and_exits_zero_on_sigterm() {
    let common::ServedBinary {
        mut process,
        pki,
        addr,
        admin,
        ..
    } = common::serve_binary(&["--drain-timeout=5s"]);
    let readyz = reqwest::get(format!("http://{admin}/readyz"))
        .await
        .unwrap();
    assert_eq!(readyz.status(), 200);

    let buggy = fixture("vmcp-configmap.yaml");
    let client = client(&pki.ca_pem, addr, Http::V2);
    let url = format!("https://localhost:{}/mutate", addr.port());
    let (status, _) = post_review(&client, &url, &review("uid-bin", "CREATE", &buggy, None))
        .await
        .unwrap();
    assert_eq!(status, 200);
    // One log line per admission, with what an operator needs to find it.
    let line = process.wait_for_log("admission");
    for field in [
        "uid",
        "kind",
        "namespace",
        "name",
        "operation",
        "dry_run",
        "outcome",
        "elapsed_us",
    ] {
        assert!(line.get(field).is_some(), "{field} missing from {line}");
    }
    assert_eq!(line["uid"], "uid-bin");
    assert_eq!(line["namespace"], "toolhive-system");
    assert_eq!(line["name"], "demo-vmcp-vmcp-config");
    // A patched review says what changed in the audit summary's words.
    assert_eq!(line["outcome"], "patched");
    assert_eq!(line["normalized"], "backends-reordered,content-checksum");

    let started = Instant::now();
    process.signal("TERM");
    process.wait_for_log("shutdown requested");
    process.wait_for_log("all connections drained");
    let status = process.wait_for_exit();
    assert_eq!(status.code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn binary_fails_fast_before_binding_on_bad_certificates() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let files = write_pair(dir.path(), &pki.leaf());
    let other_key = dir.path().join("other.key");
    std::fs::write(&other_key, pki.leaf().key_pem).unwrap();
    // Hold the port: if the server tried to bind first, it would report that.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = format!("--listen={}", taken.local_addr().unwrap());

    let cert = files.cert.to_str().unwrap();
    let missing = dir.path().join("missing.crt");
    let cases = [
        (
            missing.to_str().unwrap(),
            files.key.to_str().unwrap(),
            "cannot read certificate",
        ),
        (
            cert,
            other_key.to_str().unwrap(),
            "does not match private key",
        ),
        (
            files.key.to_str().unwrap(),
            files.key.to_str().unwrap(),
            "no PEM certificate",
        ),
    ];
    for (cert, key, expected) in cases {
        let mut process = Process::spawn(
            &[
                "serve",
                &listen,
                "--admin-listen=127.0.0.1:0",
                "--tls-cert",
                cert,
                "--tls-key",
                key,
            ],
            &[],
        );
        let status = process.wait_for_exit();
        let output = process.output_so_far();
        assert_eq!(status.code(), Some(1), "{output}");
        assert!(
            output
                .lines()
                .any(|line| line.starts_with("error: ") && line.contains(expected)),
            "{expected:?} not in {output}"
        );
        assert!(!output.contains("cannot listen"), "{output}");
    }
}

/// A request whose body never finishes arriving keeps the drain busy; a
/// second SIGTERM must end the process at once anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_second_signal_exits_without_waiting_for_the_drain() {
    use rustls_pki_types::pem::PemObject as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let common::ServedBinary {
        mut process,
        pki,
        addr,
        ..
    } = common::serve_binary(&["--drain-timeout=60s"]);

    // Half a request over raw TLS: headers promise 1000 bytes, 10 arrive.
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    // `expect: 100-continue`: the server says "100 Continue" once the handler
    // reads the body, so we know the request is in flight before signalling.
    tls.write_all(
        b"POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 1000\r\nexpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    tls.flush().await.unwrap();
    let mut interim = Vec::new();
    while !String::from_utf8_lossy(&interim).contains("100 Continue\r\n\r\n") {
        let mut buffer = [0u8; 256];
        let read = tokio::time::timeout(WAIT, tls.read(&mut buffer))
            .await
            .expect("100 Continue in time")
            .unwrap();
        assert!(
            read > 0,
            "connection closed: {:?}",
            String::from_utf8_lossy(&interim)
        );
        interim.extend_from_slice(&buffer[..read]);
    }
    tls.write_all(b"{\"apiVers").await.unwrap();
    tls.flush().await.unwrap();

    process.signal("TERM");
    process.wait_for_log("shutting down: draining in-flight requests");
    let started = Instant::now();
    process.signal("TERM");
    let status = process.wait_for_exit();
    assert_eq!(status.code(), Some(130));
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(tls);
}
