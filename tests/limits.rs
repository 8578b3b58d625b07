//! The limits that keep one client from starving the webhook, each made to
//! fire against the real server on loopback with small configured values: a
//! stalled body is cut at its deadline, idle connections are closed on both
//! ports, a request over a budget gets 503 at once and is counted, and the
//! server keeps serving after each.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{Http, Pki, TestServer, client, fixture, post_review, review, wait_until, write_pair};
use rustls_pki_types::pem::PemObject as _;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use vmcp_normalizer::server::ServerOptions;

/// A generous bound for what must happen "soon"; every timeout configured
/// below is a small fraction of it, and every limit not under test is far
/// beyond it, so a loaded machine cannot make a test pass or fail by chance.
const WAIT: Duration = Duration::from_secs(10);
const NEVER: Duration = Duration::from_secs(600);

struct Webhook {
    pki: Pki,
    _dir: tempfile::TempDir,
    server: TestServer,
}

/// The server with every time limit out of reach, then `configure`d.
async fn start(configure: impl FnOnce(&mut ServerOptions)) -> Webhook {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let mut options = ServerOptions::new(write_pair(dir.path(), &pki.leaf()));
    options.header_read_timeout = NEVER;
    options.idle_timeout = NEVER;
    options.request_timeout = Duration::from_secs(30);
    configure(&mut options);
    let server = TestServer::start(options).await;
    Webhook {
        pki,
        _dir: dir,
        server,
    }
}

impl Webhook {
    /// A raw TLS connection offering `alpn`.
    async fn tls(&self, alpn: &[u8]) -> TlsStream<TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(
                rustls_pki_types::CertificateDer::from_pem_slice(self.pki.ca_pem.as_bytes())
                    .unwrap(),
            )
            .unwrap();
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![alpn.to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(self.server.addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        connector.connect(name, tcp).await.unwrap()
    }

    /// An HTTP/1.1 POST that promises `content_length` bytes, is admitted
    /// (the server asks for the body with "100 Continue" only once the handler
    /// reads it, so it holds its budgets), sends `sent` of them and stops.
    async fn stalled_upload(
        &self,
        path: &str,
        content_length: usize,
        sent: &[u8],
    ) -> TlsStream<TcpStream> {
        let mut tls = self.tls(b"http/1.1").await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
             content-length: {content_length}\r\nexpect: 100-continue\r\n\r\n"
        );
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.flush().await.unwrap();
        let mut interim = Vec::new();
        while !String::from_utf8_lossy(&interim).contains("\r\n\r\n") {
            let mut buffer = [0u8; 256];
            let read = tokio::time::timeout(WAIT, tls.read(&mut buffer))
                .await
                .expect("an interim answer in time")
                .unwrap();
            assert!(read > 0, "closed: {:?}", String::from_utf8_lossy(&interim));
            interim.extend_from_slice(&buffer[..read]);
        }
        let interim = String::from_utf8_lossy(&interim);
        assert!(interim.starts_with("HTTP/1.1 100 Continue"), "{interim}");
        tls.write_all(sent).await.unwrap();
        tls.flush().await.unwrap();
        tls
    }

    async fn post(&self, http: Http, path: &str, body: &Value) -> reqwest::StatusCode {
        let client = client(&self.pki.ca_pem, self.server.addr, http);
        let (status, _) = post_review(&client, &self.server.url(path), body)
            .await
            .expect("an answer");
        status
    }

    /// A fresh client's review of the buggy fixture: must be answered.
    async fn serves(&self) {
        let body = review("uid-ok", "CREATE", &fixture("vmcp-configmap.yaml"), None);
        for http in [Http::V1, Http::V2] {
            assert_eq!(self.post(http, "/mutate", &body).await, 200, "{http:?}");
        }
    }

    async fn metric(&self, series: &str) -> bool {
        self.server.metrics_text().await.contains(series)
    }
}

/// Read everything until the server closes the connection (EOF or reset),
/// failing after [`WAIT`]; what it sent before.
async fn read_until_closed(stream: &mut (impl AsyncRead + AsyncWrite + Unpin)) -> Vec<u8> {
    let mut received = Vec::new();
    let closed = tokio::time::timeout(WAIT, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => received.extend_from_slice(&buffer[..read]),
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "still open after {WAIT:?}; received {:?}",
        String::from_utf8_lossy(&received)
    );
    received
}

/// The HTTP/2 client preface and an empty SETTINGS frame; then silence, not
/// even the SETTINGS acknowledgement or a PING answer.
async fn h2_preface(stream: &mut (impl AsyncWrite + Unpin)) {
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    stream.flush().await.unwrap();
}

/// A review whose body is about `size` bytes.
fn review_of_size(size: usize) -> Value {
    let mut configmap = fixture("vmcp-configmap.yaml");
    configmap["data"]["padding"] = json!("x".repeat(size));
    review("uid-big", "CREATE", &configmap, None)
}

#[tokio::test]
async fn a_stalled_body_is_cut_at_the_deadline() {
    let webhook = start(|_| {}).await;
    // ?timeout=200ms: the body and the answer are due 180 ms after the
    // headers, whatever the client does.
    let mut upload = webhook
        .stalled_upload("/mutate?timeout=200ms", 1000, b"{\"apiVers")
        .await;
    let answer = read_until_closed(&mut upload).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains(r#""code":408"#), "{answer}");
    assert!(
        webhook
            .metric(r#"vmcp_normalizer_http_rejections_total{code="408"} 1"#)
            .await
    );
    webhook.serves().await;
}

#[tokio::test]
async fn the_server_caps_the_apiservers_timeout() {
    // The apiserver's timeout is at most 30 s; the server's own is shorter.
    let webhook = start(|options| options.request_timeout = Duration::from_millis(200)).await;
    let mut upload = webhook
        .stalled_upload("/mutate?timeout=30s", 1000, b"{")
        .await;
    let answer = read_until_closed(&mut upload).await;
    assert!(answer.starts_with(b"HTTP/1.1 408 "));
    webhook.serves().await;
}

#[tokio::test]
async fn requests_over_the_in_flight_limit_get_503_at_once() {
    let webhook = start(|options| options.max_in_flight = 1).await;
    let upload = webhook.stalled_upload("/mutate", 1000, b"{").await;

    let small = review(
        "uid-s",
        "CREATE",
        &fixture("vmcp-configmap.normalized.yaml"),
        None,
    );
    for http in [Http::V1, Http::V2] {
        assert_eq!(webhook.post(http, "/mutate", &small).await, 503, "{http:?}");
    }
    assert!(
        webhook
            .metric(r#"vmcp_normalizer_requests_shed_total{limit="in_flight"} 2"#)
            .await
    );
    assert!(
        webhook
            .metric(r#"vmcp_normalizer_http_rejections_total{code="503"} 2"#)
            .await
    );

    // The stalled client goes away; its slot comes back.
    drop(upload);
    wait_until("the slot to be free again", WAIT, || async {
        webhook.post(Http::V2, "/mutate", &small).await == 200
    })
    .await;
    webhook.serves().await;
}

#[tokio::test]
async fn large_bodies_over_the_byte_budget_get_503_and_small_ones_still_pass() {
    let webhook = start(|options| options.max_body_buffer = 128 * 1024).await;
    // A large upload holds 100,000 of the 131,072 bytes while it stalls.
    let upload = webhook.stalled_upload("/mutate", 100_000, b"{").await;

    let large = review_of_size(100_000);
    assert_eq!(webhook.post(Http::V2, "/mutate", &large).await, 503);
    assert!(
        webhook
            .metric(r#"vmcp_normalizer_requests_shed_total{limit="body_bytes"} 1"#)
            .await
    );
    // Small reviews need no bytes from the budget.
    webhook.serves().await;

    drop(upload);
    wait_until("the bytes to be free again", WAIT, || async {
        webhook.post(Http::V2, "/mutate", &large).await == 200
    })
    .await;
}

#[tokio::test]
async fn a_body_larger_than_the_whole_budget_is_never_admitted() {
    let webhook = start(|options| options.max_body_buffer = 128 * 1024).await;
    let larger = review_of_size(200_000);
    for http in [Http::V1, Http::V2] {
        assert_eq!(
            webhook.post(http, "/mutate", &larger).await,
            503,
            "{http:?}"
        );
    }
    webhook.serves().await;
}

#[tokio::test]
async fn idle_webhook_connections_are_closed() {
    let webhook = start(|options| options.idle_timeout = Duration::from_millis(200)).await;

    // TLS, then nothing at all.
    let mut silent = webhook.tls(b"http/1.1").await;
    assert!(read_until_closed(&mut silent).await.is_empty());

    // HTTP/1.1 kept alive after one answer.
    let mut kept_alive = webhook.tls(b"http/1.1").await;
    kept_alive
        .write_all(b"GET /nope HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut kept_alive).await;
    assert!(answer.starts_with(b"HTTP/1.1 404 "));

    // HTTP/2 after the preface, a client that never answers the GOAWAY's PING.
    let mut h2 = webhook.tls(b"h2").await;
    h2_preface(&mut h2).await;
    let frames = read_until_closed(&mut h2).await;
    // Frame type 7 (GOAWAY) was sent before the close.
    assert!(has_goaway(&frames), "{frames:?}");

    webhook.serves().await;
}

/// True when the server's HTTP/2 frames include a GOAWAY.
fn has_goaway(mut frames: &[u8]) -> bool {
    while frames.len() >= 9 {
        let length =
            (usize::from(frames[0]) << 16) | (usize::from(frames[1]) << 8) | usize::from(frames[2]);
        if frames[3] == 7 {
            return true;
        }
        frames = &frames[(9 + length).min(frames.len())..];
    }
    false
}

#[tokio::test]
async fn admin_connections_have_header_and_idle_limits() {
    let webhook = start(|options| options.header_read_timeout = Duration::from_millis(300)).await;
    let admin = webhook.server.admin_addr;

    // Slowloris: headers that never end.
    let mut slow = TcpStream::connect(admin).await.unwrap();
    slow.write_all(b"GET /livez HTTP/1.1\r\nhost: x\r\nx-a: ")
        .await
        .unwrap();
    read_until_closed(&mut slow).await;
    assert_eq!(livez(admin).await, 200);
    webhook.server.stop().await;

    let webhook = start(|options| options.idle_timeout = Duration::from_millis(200)).await;
    let admin = webhook.server.admin_addr;
    let mut silent = TcpStream::connect(admin).await.unwrap();
    assert!(read_until_closed(&mut silent).await.is_empty());
    let mut kept_alive = TcpStream::connect(admin).await.unwrap();
    kept_alive
        .write_all(b"GET /livez HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut kept_alive).await;
    assert!(answer.starts_with(b"HTTP/1.1 200 "));
    assert_eq!(livez(admin).await, 200);
}

async fn livez(admin: SocketAddr) -> u16 {
    reqwest::get(format!("http://{admin}/livez"))
        .await
        .map_or(0, |response| response.status().as_u16())
}

#[tokio::test]
async fn idle_connections_do_not_hold_up_shutdown() {
    let mut webhook = start(|options| options.drain_timeout = NEVER).await;
    let mut silent = webhook.tls(b"http/1.1").await;
    let mut h2 = webhook.tls(b"h2").await;
    h2_preface(&mut h2).await;
    let mut admin = TcpStream::connect(webhook.server.admin_addr).await.unwrap();
    // Both connections are being served before shutdown begins.
    webhook.serves().await;

    let run = webhook.server.begin_shutdown();
    tokio::time::timeout(WAIT, run)
        .await
        .expect("shutdown does not wait for idle connections")
        .unwrap()
        .expect("clean shutdown");
    read_until_closed(&mut silent).await;
    read_until_closed(&mut h2).await;
    read_until_closed(&mut admin).await;
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_on_accept() {
    let webhook = start(|options| options.max_connections = 1).await;
    let held = webhook.tls(b"http/1.1").await;
    let mut refused = TcpStream::connect(webhook.server.addr).await.unwrap();
    assert!(read_until_closed(&mut refused).await.is_empty());
    let admin_held = TcpStream::connect(webhook.server.admin_addr).await.unwrap();
    // The admin port counts its own connections: the webhook's do not fill it.
    wait_until(
        "the admin port to refuse a second connection",
        WAIT,
        || async {
            webhook
                .metric(r#"vmcp_normalizer_connections_refused_total{port="admin"} 1"#)
                .await
                || livez(webhook.server.admin_addr).await == 0
        },
    )
    .await;
    assert!(
        webhook
            .metric(r#"vmcp_normalizer_connections_refused_total{port="webhook"} 1"#)
            .await
    );

    drop(held);
    drop(admin_held);
    wait_until("a connection to be accepted again", WAIT, || async {
        let client = client(&webhook.pki.ca_pem, webhook.server.addr, Http::V2);
        let body = review("uid-again", "CREATE", &fixture("vmcp-configmap.yaml"), None);
        post_review(&client, &webhook.server.url("/mutate"), &body)
            .await
            .is_ok_and(|(status, _)| status == 200)
    })
    .await;
    assert_eq!(livez(webhook.server.admin_addr).await, 200);
}

/// The real binary's log line for a review whose uid and names are huge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logged_request_fields_are_capped() {
    use vmcp_normalizer::log_field::MAX_LOGGED_FIELD_BYTES;

    let common::ServedBinary {
        mut process,
        pki,
        addr,
        ..
    } = common::serve_binary(&[]);

    let huge = "u".repeat(1_000_000);
    let mut configmap = fixture("vmcp-configmap.yaml");
    configmap["metadata"]["name"] = json!(huge);
    configmap["metadata"]["namespace"] = json!(huge);
    let mut body = review(&huge, "CREATE", &configmap, None);
    body["request"]["kind"]["kind"] = json!(huge);
    body["request"]["operation"] = json!(huge);
    let client = client(&pki.ca_pem, addr, Http::V2);
    let url = format!("https://localhost:{}/mutate", addr.port());
    let (status, answer) = post_review(&client, &url, &body).await.unwrap();
    assert_eq!(status, 200);
    // The answer echoes the uid whole; only the log line is cut.
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(
        answer["response"]["uid"].as_str().unwrap().len(),
        huge.len()
    );

    let line = process.wait_for_log("admission");
    for field in ["uid", "kind", "namespace", "name", "operation"] {
        let value = line[field].as_str().unwrap();
        assert_eq!(value.len(), MAX_LOGGED_FIELD_BYTES, "{field}");
        assert!(value.ends_with('…'), "{field}");
    }
    assert!(line.to_string().len() < 5 * MAX_LOGGED_FIELD_BYTES + 1000);
}
