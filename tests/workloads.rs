//! Workload links of kinds other than Deployment (a StatefulSet by volume, a
//! DaemonSet by name template; `tests/fixtures/rules/workloads.yaml`):
//! through the real HTTPS server with the ConfigMap read live from the API
//! stand-in, through `normalize` offline, and `rules explain`.

mod common;

use common::process::run;
use std::sync::Arc;

use arc_swap::ArcSwap;
use common::apiserver::{ApiServer, configmap_path};
use common::{Http, Pki, TestServer, client, decode_patch, post_review, write_pair};
use serde_json::{Value, json};
use vmcp_normalizer::admission::Admission;
use vmcp_normalizer::checksum::sha256_hex;
use vmcp_normalizer::checksum_sync::WorkloadChecksumSync;
use vmcp_normalizer::metrics::Metrics;
use vmcp_normalizer::rules::RuleSet;
use vmcp_normalizer::server::ServerOptions;

const RULES: &str = "tests/fixtures/rules/workloads.yaml";
const OBJECTS: &str = "tests/fixtures/rules/workloads-objects.yaml";
const PEERS: &str = "example.com/peers-sha256";
const HOSTS: &str = "example.com/hosts-sha256";

fn fixture_text(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).expect("fixture")
}

/// The fixture objects by kind and name.
fn object(kind: &str, name: &str) -> Value {
    let mut found = None;
    vmcp_normalizer::manifest::for_each_document(&fixture_text(OBJECTS), |_, value, _| {
        if value["kind"] == kind && value["metadata"]["name"] == name {
            found = Some(value);
        }
    })
    .expect("fixture documents");
    found.unwrap_or_else(|| panic!("{kind} {name} in {OBJECTS}"))
}

/// The checksums the canonical ConfigMaps carry (plain SHA-256 of the
/// sorted data key, as Go's writers would emit it).
fn canonical_peers() -> String {
    sha256_hex(br#"["cache-0","cache-1","cache-2"]"#)
}

fn canonical_hosts() -> String {
    sha256_hex(
        b"hosts:\n  - name: alpha\n    address: 10.0.0.1\n  - name: zeta\n    address: 10.0.0.3\n",
    )
}

fn pod_annotation(workload: &Value, annotation: &str) -> Value {
    workload["spec"]["template"]["metadata"]["annotations"][annotation].clone()
}

/// An AdmissionReview of `object` (an `apps/v1` workload), as the API
/// server sends it for `resource`.
fn review(uid: &str, object: &Value, old: Option<&Value>, resource: &str) -> Value {
    let operation = if old.is_some() { "UPDATE" } else { "CREATE" };
    let mut review = common::review(uid, operation, object, old);
    let kind = json!({"group": "apps", "version": "v1", "kind": object["kind"]});
    let gvr = json!({"group": "apps", "version": "v1", "resource": resource});
    review["request"]["kind"] = kind.clone();
    review["request"]["requestKind"] = kind;
    review["request"]["resource"] = gvr.clone();
    review["request"]["requestResource"] = gvr;
    review
}

/// The API stand-in holding the fixture ConfigMaps as written (out of
/// order, stale checksums), and the real server following the fixture
/// rules, built as `serve --rules` builds it.
struct Cluster {
    api: ApiServer,
    pki: Pki,
    server: TestServer,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Self {
        let api = ApiServer::start().await;
        api.insert(object("ConfigMap", "cache-peers"));
        api.insert(object("ConfigMap", "node-agent-hosts"));
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = api.write_kubeconfig(dir.path());
        common::install_crypto_provider();
        let rules = RuleSet::from_yaml(&fixture_text(RULES)).expect("the fixture rules");
        let cell = Arc::new(ArcSwap::from_pointee(rules));
        let metrics = Arc::new(Metrics::new());
        let sync = WorkloadChecksumSync::connect(Some(&kubeconfig), metrics.clone())
            .await
            .expect("the kubeconfig loads")
            .with_rules(cell.clone());
        let admission = Admission::new(metrics)
            .with_workload_mutator(Arc::new(sync))
            .with_rules(cell);
        let pki = Pki::new();
        let files = write_pair(dir.path(), &pki.leaf());
        let server = TestServer::start_with(ServerOptions::new(files), admission).await;
        Self {
            api,
            pki,
            server,
            _dir: dir,
        }
    }

    async fn answer(&self, body: &Value) -> Value {
        let client = client(&self.pki.ca_pem, self.server.addr, Http::V2);
        let (status, bytes) = post_review(&client, &self.server.url("/mutate"), body)
            .await
            .expect("request");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
        serde_json::from_slice(&bytes).expect("JSON review")
    }
}

/// A linked StatefulSet (volume) and DaemonSet (name template): each is
/// answered with a patch that sets its pod-template annotation to the
/// checksum of its ConfigMap in canonical form, read live; the metrics
/// count them under their own kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linked_statefulsets_and_daemonsets_follow_their_configmaps_canonical_checksum() {
    let cluster = Cluster::start().await;
    for (kind, name, resource, annotation, configmap, canonical) in [
        (
            "StatefulSet",
            "cache",
            "statefulsets",
            PEERS,
            "cache-peers",
            canonical_peers(),
        ),
        (
            "DaemonSet",
            "node-agent",
            "daemonsets",
            HOSTS,
            "node-agent-hosts",
            canonical_hosts(),
        ),
    ] {
        let workload = object(kind, name);
        let answer = cluster
            .answer(&review("uid-create", &workload, None, resource))
            .await;
        let response = &answer["response"];
        assert_eq!(response["allowed"], true, "{answer}");
        let patch = decode_patch(&answer).unwrap_or_else(|| panic!("{kind}: a patch: {answer}"));
        let mut patched = workload.clone();
        json_patch::patch(&mut patched, &patch).expect("the patch applies");
        assert_eq!(
            pod_annotation(&patched, annotation),
            json!(canonical),
            "{kind}"
        );
        // Only that annotation changed.
        patched["spec"]["template"]["metadata"]["annotations"][annotation] = json!("stale");
        assert_eq!(patched, workload, "{kind}");
        assert_eq!(
            response["warnings"],
            json!([format!(
                "vmcp-normalizer: {annotation} stale -> {} (canonical ConfigMap {configmap})",
                &canonical[..12]
            )]),
            "{kind}"
        );
        assert_eq!(
            cluster.api.count("GET", &configmap_path("edge", configmap)),
            1,
            "{kind}"
        );
    }
    let text = cluster.server.metrics_text().await;
    for kind in ["StatefulSet", "DaemonSet"] {
        let series = format!(
            r#"vmcp_normalizer_admission_requests_total{{kind="{kind}",operation="CREATE",outcome="patched"}} 1"#
        );
        assert!(
            text.lines().any(|line| line == series),
            "{series} in\n{text}"
        );
        let patches = format!(r#"vmcp_normalizer_patches_total{{kind="{kind}"}} 1"#);
        assert!(text.lines().any(|line| line == patches), "{patches}");
    }
}

/// A StatefulSet or DaemonSet no link matches passes through unchanged,
/// without a lookup, as any kind no rule names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlinked_statefulset_or_daemonset_passes_through() {
    let cluster = Cluster::start().await;
    for (kind, name, resource) in [
        ("StatefulSet", "cache", "statefulsets"),
        ("DaemonSet", "node-agent", "daemonsets"),
    ] {
        let mut workload = object(kind, name);
        workload["metadata"]["labels"] = json!({"app.kubernetes.io/name": "other"});
        let answer = cluster
            .answer(&review("uid-other", &workload, None, resource))
            .await;
        assert_eq!(answer["response"]["allowed"], true);
        assert!(answer["response"].get("patch").is_none(), "{answer}");
    }
    // A link names its kind: a DaemonSet with the StatefulSet's labels and
    // volume is not linked.
    let mut daemonset = object("StatefulSet", "cache");
    daemonset["kind"] = json!("DaemonSet");
    let answer = cluster
        .answer(&review("uid-kind", &daemonset, None, "daemonsets"))
        .await;
    assert!(answer["response"].get("patch").is_none(), "{answer}");
    assert!(cluster.api.requests().is_empty(), "no lookup");
    let text = cluster.server.metrics_text().await;
    for (kind, count) in [("StatefulSet", 1), ("DaemonSet", 2)] {
        let series = format!(
            r#"vmcp_normalizer_admission_requests_total{{kind="{kind}",operation="CREATE",outcome="not_vmcp"}} {count}"#
        );
        assert!(
            text.lines().any(|line| line == series),
            "{series} in\n{text}"
        );
    }
}

/// An UPDATE of a linked StatefulSet whose pod template changed only in
/// the linked annotation is a checksum-only rollout: audit annotation with
/// its ConfigMap, counted under its kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checksum_only_statefulset_rollout_is_counted() {
    let cluster = Cluster::start().await;
    let stored = object("StatefulSet", "cache");
    let mut written = stored.clone();
    written["spec"]["template"]["metadata"]["annotations"][PEERS] = json!(canonical_peers());
    let answer = cluster
        .answer(&review(
            "uid-rollout",
            &written,
            Some(&stored),
            "statefulsets",
        ))
        .await;
    assert_eq!(
        answer["response"]["auditAnnotations"]["checksum-only-rollout"], "cache-peers",
        "{answer}"
    );
    let text = cluster.server.metrics_text().await;
    let series = r#"vmcp_normalizer_checksum_only_rollouts_total{kind="StatefulSet"} 1"#;
    assert!(
        text.lines().any(|line| line == series),
        "{series} in\n{text}"
    );

    // A change beside the checksum (the image) is a real rollout.
    let mut image = written.clone();
    image["spec"]["template"]["spec"]["containers"][0]["image"] = json!("example.com/cache:2");
    let answer = cluster
        .answer(&review("uid-image", &image, Some(&stored), "statefulsets"))
        .await;
    assert!(
        answer["response"]
            .pointer("/auditAnnotations/checksum-only-rollout")
            .is_none(),
        "{answer}"
    );
}

/// `normalize` keeps a StatefulSet and a DaemonSet in step offline when
/// their ConfigMaps are in the same input, as the webhook does live.
#[test]
fn normalize_keeps_statefulsets_and_daemonsets_in_step_offline() {
    let (code, stdout, stderr) = run(&["normalize", "--rules", RULES, OBJECTS]);
    assert_eq!(code, 0, "{stderr}");
    let mut written = Vec::new();
    vmcp_normalizer::manifest::for_each_document(&stdout, |_, value, _| written.push(value))
        .expect("YAML out");
    let find = |kind: &str| {
        written
            .iter()
            .find(|object| object["kind"] == kind)
            .unwrap_or_else(|| panic!("{kind} in {stdout}"))
    };
    assert_eq!(
        pod_annotation(find("StatefulSet"), PEERS),
        json!(canonical_peers())
    );
    assert_eq!(
        pod_annotation(find("DaemonSet"), HOSTS),
        json!(canonical_hosts())
    );

    // Without its ConfigMap in the input, the workload is left as read.
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join("statefulset.yaml");
    std::fs::write(
        &alone,
        serde_json::to_string(&object("StatefulSet", "cache")).unwrap(),
    )
    .unwrap();
    let (code, _, stderr) = run(&[
        "normalize",
        "--check",
        "--rules",
        RULES,
        alone.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(
            "example.com/peers-sha256 left as read: its ConfigMap cache-peers is not in the input"
        ),
        "{stderr}"
    );
}

/// `rules explain` names each workload's rule and how it names its ConfigMap.
#[test]
fn rules_explain_shows_statefulset_and_daemonset_links() {
    let (code, stdout, stderr) = run(&["rules", "explain", RULES, OBJECTS]);
    assert_eq!(code, 0, "{stderr}");
    for line in [
        "StatefulSet edge/cache:\n  workload of rule cache-peers: pod-template annotation example.com/peers-sha256 follows the checksum of the ConfigMap its volume peers mounts",
        "DaemonSet edge/node-agent:\n  workload of rule agent-hosts: pod-template annotation example.com/hosts-sha256 follows the checksum of the ConfigMap named {name}-hosts",
    ] {
        assert!(stdout.contains(line), "{line} in\n{stdout}");
    }
}
