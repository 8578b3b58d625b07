//! Certificate hot reload under load: the kubelet's `..data` symlink swap,
//! bad pairs that must not replace a good one, and the polling fallback.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{
    Http, KubeletVolume, Leaf, Pki, TestServer, client, client_builder, fixture, post_review,
    review, wait_until, write_pair,
};
use serde_json::Value;
use vmcp_normalizer::server::ServerOptions;
use vmcp_normalizer::server::reload::ReloadOptions;

const WAIT: Duration = Duration::from_secs(15);

/// The leaf certificate a brand-new connection is served.
async fn served_cert(pki: &Pki, server: &TestServer) -> Vec<u8> {
    let client = client_builder(&pki.ca_pem, server.addr, Http::V1)
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let response = client.get(server.url("/mutate")).send().await.unwrap();
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("peer certificate")
        .to_vec()
}

/// A client sending reviews back to back until stopped, counting outcomes.
struct Load {
    ok: Arc<AtomicUsize>,
    failures: Arc<std::sync::Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start(client: reqwest::Client, url: String) -> Self {
        let ok = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let body = review("uid-load", "CREATE", &fixture("vmcp-configmap.yaml"), None);
        let task = tokio::spawn({
            let (ok, failures, stop) = (ok.clone(), failures.clone(), stop.clone());
            async move {
                while !stop.load(Ordering::SeqCst) {
                    let failure = match post_review(&client, &url, &body).await {
                        Ok((status, bytes)) if status == 200 => {
                            let answer: Value = serde_json::from_slice(&bytes).unwrap_or_default();
                            if answer["response"]["allowed"] == true {
                                None
                            } else {
                                Some(format!("unexpected answer {answer}"))
                            }
                        }
                        Ok((status, _)) => Some(format!("status {status}")),
                        Err(error) => Some(format!("{error:?}")),
                    };
                    match failure {
                        None => {
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                        Some(failure) => failures.lock().unwrap().push(failure),
                    }
                }
            }
        });
        Self {
            ok,
            failures,
            stop,
            task,
        }
    }

    fn ok(&self) -> usize {
        self.ok.load(Ordering::SeqCst)
    }

    async fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
        self.failures.lock().unwrap().clone()
    }
}

async fn wait_for_progress(loads: &[&Load], more: usize) {
    let targets: Vec<usize> = loads.iter().map(|load| load.ok() + more).collect();
    wait_until("requests to keep succeeding", WAIT, || async {
        loads
            .iter()
            .zip(&targets)
            .all(|(load, target)| load.ok() >= *target)
    })
    .await;
}

fn watch_only() -> ReloadOptions {
    // Poll so rarely it cannot be what picks up the change.
    ReloadOptions {
        poll_interval: Duration::from_secs(3600),
        watch: true,
    }
}

async fn metric_line(server: &TestServer, line: &str) -> bool {
    server.metrics_text().await.lines().any(|l| l == line)
}

#[tokio::test]
async fn kubelet_symlink_swap_rotates_without_failed_requests() {
    let pki = Pki::new();
    let (first, second, third) = (pki.leaf(), pki.leaf(), pki.leaf());
    let mut volume = KubeletVolume::new(&first);
    let mut options = ServerOptions::new(volume.files());
    options.reload = watch_only();
    let server = TestServer::start(options).await;
    assert_eq!(served_cert(&pki, &server).await, first.der);

    // One client on a kept-alive HTTP/2 connection, one that opens a new
    // HTTP/1.1 connection (and TLS handshake) for every request.
    let url = server.url("/mutate");
    let keep_alive = Load::start(client(&pki.ca_pem, server.addr, Http::V2), url.clone());
    let reconnecting = Load::start(
        client_builder(&pki.ca_pem, server.addr, Http::V1)
            .pool_max_idle_per_host(0)
            .build()
            .unwrap(),
        url,
    );
    wait_for_progress(&[&keep_alive, &reconnecting], 20).await;

    // Twice: a watch that followed the first file's inode would see the old
    // directory deleted once, then nothing.
    for next in [&second, &third] {
        volume.update(&next.cert_pem, &next.key_pem);
        wait_until("the new certificate to be served", WAIT, || async {
            served_cert(&pki, &server).await == next.der
        })
        .await;
        wait_for_progress(&[&keep_alive, &reconnecting], 20).await;
    }

    assert_eq!(keep_alive.finish().await, Vec::<String>::new());
    assert_eq!(reconnecting.finish().await, Vec::<String>::new());
    assert!(
        metric_line(
            &server,
            r#"vmcp_normalizer_certificate_reloads_total{outcome="ok"} 2"#
        )
        .await
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_pairs_keep_the_served_certificate() {
    let pki = Pki::new();
    let (first, second) = (pki.leaf(), pki.leaf());
    let mut volume = KubeletVolume::new(&first);
    let mut options = ServerOptions::new(volume.files());
    options.reload = watch_only();
    let server = TestServer::start(options).await;

    // A certificate with someone else's key.
    volume.update(&second.cert_pem, &first.key_pem);
    wait_until("the mismatch to be counted", WAIT, || {
        metric_line(
            &server,
            r#"vmcp_normalizer_certificate_reloads_total{outcome="failed"} 1"#,
        )
    })
    .await;
    assert_eq!(served_cert(&pki, &server).await, first.der);

    // Not PEM at all.
    volume.update("garbage", "garbage");
    wait_until("the garbage to be counted", WAIT, || {
        metric_line(
            &server,
            r#"vmcp_normalizer_certificate_reloads_total{outcome="failed"} 2"#,
        )
    })
    .await;
    assert_eq!(served_cert(&pki, &server).await, first.der);

    // A good pair again is picked up.
    volume.update(&second.cert_pem, &second.key_pem);
    wait_until("the good pair to be served", WAIT, || async {
        served_cert(&pki, &server).await == second.der
    })
    .await;
    assert!(
        metric_line(
            &server,
            r#"vmcp_normalizer_certificate_reloads_total{outcome="ok"} 1"#
        )
        .await
    );
    server.stop().await;
}

/// Without any file event (the watch is off), the hash poll finds the change.
#[tokio::test]
async fn polling_finds_changes_without_a_watch() {
    let pki = Pki::new();
    let (first, second): (Leaf, Leaf) = (pki.leaf(), pki.leaf());
    let dir = tempfile::tempdir().unwrap();
    let mut options = ServerOptions::new(write_pair(dir.path(), &first));
    options.reload = ReloadOptions {
        poll_interval: Duration::from_millis(100),
        watch: false,
    };
    let server = TestServer::start(options).await;
    assert_eq!(served_cert(&pki, &server).await, first.der);
    write_pair(dir.path(), &second);
    wait_until("the polled change to be served", WAIT, || async {
        served_cert(&pki, &server).await == second.der
    })
    .await;
    server.stop().await;
}
