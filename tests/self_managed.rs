//! Self-managed certificates against the in-process Kubernetes API stand-in,
//! reached through a kubeconfig: the Secret store (create, reuse, renew,
//! rotate, races, the webhook configuration's caBundle), the startup and
//! background rounds, and the real binary serving what it stored.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::apiserver::{self, ApiServer, Fault, RecordedRequest, core_path};
use common::process::Process;
use common::{fixture, review, wait_until};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde_json::{Value, json};
use time::OffsetDateTime;
use vmcp_normalizer::certificates::authority::{
    self, CertificateSet, Decision, IssueReason, Policy,
};
use vmcp_normalizer::certificates::self_managed::{SelfManagedError, SelfManagedTls, Settings};
use vmcp_normalizer::certificates::store::{CertificateStore, Publish};
use vmcp_normalizer::lookup::{ClientConfig, client_config};
use vmcp_normalizer::metrics::Metrics;
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};

const NAMESPACE: &str = "vmcp-normalizer";
const SECRET: &str = "vmcp-normalizer-tls";
const CONFIGURATION: &str = "vmcp-normalizer";
const SERVICE: &str = "vmcp-normalizer";
const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// The most any polled wait in these tests may take.
const WAIT: Duration = Duration::from_secs(20);

fn dns_names() -> Vec<String> {
    vec![
        format!("{SERVICE}.{NAMESPACE}.svc"),
        format!("{SERVICE}.{NAMESPACE}.svc.cluster.local"),
    ]
}

fn secret_path() -> String {
    core_path("secrets", NAMESPACE, SECRET)
}

fn secrets_collection() -> String {
    format!("/api/v1/namespaces/{NAMESPACE}/secrets")
}

fn configuration_path() -> String {
    format!("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{CONFIGURATION}")
}

fn start() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// The chart's webhook configuration as Helm installs it: no caBundle. One
/// webhook carries a field this build has no type for, which must survive.
fn webhook_configuration() -> Value {
    let webhook = |name: &str, resource: &str| {
        json!({
            "name": name,
            "clientConfig": {
                "service": {"namespace": NAMESPACE, "name": SERVICE, "path": "/mutate", "port": 443}
            },
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                       "resources": [resource], "scope": "Namespaced"}],
            "failurePolicy": "Ignore",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 3
        })
    };
    let mut deployments = webhook("deployments.vmcp-normalizer.stacklok.dev", "deployments");
    deployments["futureField"] = json!({"kept": true});
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": CONFIGURATION, "labels": {"app.kubernetes.io/name": "vmcp-normalizer"}},
        "webhooks": [webhook("configmaps.vmcp-normalizer.stacklok.dev", "configmaps"), deployments]
    })
}

/// The stand-in and a kubeconfig for it.
struct Cluster {
    api: ApiServer,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Cluster {
    async fn start() -> Self {
        let cluster = Self::without_webhook_configuration().await;
        cluster.api.insert(webhook_configuration());
        cluster
    }

    async fn without_webhook_configuration() -> Self {
        let api = ApiServer::start().await;
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = api.write_kubeconfig(dir.path());
        Self {
            api,
            dir,
            kubeconfig,
        }
    }

    async fn client(&self) -> kube::Client {
        match client_config(Some(&self.kubeconfig)).await.unwrap() {
            ClientConfig::Found { config, .. } => kube::Client::try_from(*config).unwrap(),
            ClientConfig::Absent { why } => panic!("no client config: {why}"),
        }
    }

    /// A store as one replica builds it (its own client, its own connections).
    async fn store(&self) -> CertificateStore {
        self.store_with(Policy::default()).await
    }

    async fn store_with(&self, policy: Policy) -> CertificateStore {
        CertificateStore::new(
            self.client().await,
            NAMESPACE,
            SECRET,
            CONFIGURATION,
            dns_names(),
            policy,
        )
    }

    fn settings(&self, dir: &Path) -> Settings {
        Settings {
            namespace: NAMESPACE.to_owned(),
            secret_name: SECRET.to_owned(),
            webhook_configuration: CONFIGURATION.to_owned(),
            service_name: SERVICE.to_owned(),
            dir: dir.to_owned(),
            policy: Policy::default(),
        }
    }

    fn secret(&self) -> Value {
        self.api
            .object(&secret_path())
            .expect("the Secret is stored")
    }

    /// The set stored in the Secret.
    fn stored_set(&self) -> CertificateSet {
        set_of(&self.secret())
    }

    /// Store `set` as another replica would have written it.
    fn store_set(&self, set: &CertificateSet) {
        self.api.put(&secret_path(), secret_of(set));
    }

    /// The decoded caBundle of each webhook (`None` when absent).
    fn ca_bundles(&self) -> Vec<Option<String>> {
        let configuration = self.api.object(&configuration_path()).unwrap();
        configuration["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|webhook| webhook["clientConfig"]["caBundle"].as_str().map(decode))
            .collect()
    }

    /// Every request but GETs, as (method, path).
    fn writes(&self) -> Vec<(String, String)> {
        self.api
            .requests()
            .into_iter()
            .filter(|request| request.method != "GET")
            .map(|request| (request.method, request.path))
            .collect()
    }
}

fn decode(b64: &str) -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

fn encode(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn set_of(secret: &Value) -> CertificateSet {
    let key = |name: &str| decode(secret["data"][name].as_str().expect(name));
    CertificateSet {
        tls_cert: key("tls.crt"),
        tls_key: key("tls.key"),
        ca_bundle: key("ca.crt"),
        ca_key: key("ca.key"),
    }
}

fn secret_of(set: &CertificateSet) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET, "namespace": NAMESPACE},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": encode(&set.tls_cert),
            "tls.key": encode(&set.tls_key),
            "ca.crt": encode(&set.ca_bundle),
            "ca.key": encode(&set.ca_key),
        }
    })
}

fn ders(pem: &str) -> Vec<Vec<u8>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|der| der.unwrap().to_vec())
        .collect()
}

fn leaf_der(set: &CertificateSet) -> Vec<u8> {
    ders(&set.tls_cert).remove(0)
}

/// The CA at the head of the bundle: the one that signs the current leaf.
fn current_ca(set: &CertificateSet) -> Vec<u8> {
    ders(&set.ca_bundle).remove(0)
}

/// The leaf's DNS names, and whether `ca` signed it.
fn inspect_leaf(set: &CertificateSet, ca: &[u8]) -> (Vec<String>, bool) {
    let leaf_der = leaf_der(set);
    let (_, leaf) = X509Certificate::from_der(&leaf_der).unwrap();
    let (_, ca) = X509Certificate::from_der(ca).unwrap();
    let names = leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            _ => None,
        })
        .collect();
    let signed =
        leaf.issuer() == ca.subject() && leaf.verify_signature(Some(ca.public_key())).is_ok();
    (names, signed)
}

fn issue(stored: Option<&CertificateSet>, now: OffsetDateTime, policy: &Policy) -> CertificateSet {
    match authority::decide(stored, &dns_names(), now, policy).unwrap() {
        Decision::Issue { set, .. } => set,
        Decision::Keep => panic!("expected a new set"),
    }
}

/// A time at which the default policy rotates a CA issued at `issued`.
fn near_ca_expiry(issued: OffsetDateTime) -> OffsetDateTime {
    let policy = Policy::default();
    issued + policy.ca_lifetime - policy.ca_renew_before + DAY
}

// ---------------------------------------------------------------- the store

#[tokio::test]
async fn creates_the_secret_and_publishes_its_ca_to_every_webhook() {
    let cluster = Cluster::start().await;
    let ensured = cluster.store().await.ensure(start()).await.unwrap();
    assert_eq!(ensured.issued, Some(IssueReason::Missing));
    assert_eq!(ensured.published, Publish::Written);

    let secret = cluster.secret();
    assert_eq!(secret["type"], "kubernetes.io/tls");
    assert_eq!(secret["metadata"]["namespace"], NAMESPACE);
    assert_eq!(
        secret["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "vmcp-normalizer"
    );
    let keys: Vec<&str> = secret["data"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["ca.crt", "ca.key", "tls.crt", "tls.key"]);
    let set = cluster.stored_set();
    assert_eq!(set, ensured.set);
    assert_eq!(ders(&set.ca_bundle).len(), 1);

    let (names, signed) = inspect_leaf(&set, &current_ca(&set));
    assert_eq!(names, dns_names());
    assert!(signed, "the leaf chains to the stored CA");

    assert_eq!(
        cluster.ca_bundles(),
        [Some(set.ca_bundle.clone()), Some(set.ca_bundle.clone())],
        "every webhook trusts the CA"
    );
    let configuration = cluster.api.object(&configuration_path()).unwrap();
    assert_eq!(
        configuration["webhooks"][1]["futureField"],
        json!({"kept": true}),
        "fields this build does not know survive the write"
    );
    assert_eq!(
        cluster.writes(),
        [
            ("POST".to_owned(), secrets_collection()),
            ("PUT".to_owned(), configuration_path()),
        ]
    );
    let create = cluster
        .api
        .requests()
        .into_iter()
        .find(|request| request.method == "POST")
        .unwrap();
    assert_eq!(create.content_type.as_deref(), Some("application/json"));
}

#[tokio::test]
async fn a_valid_set_is_kept_without_any_write() {
    let cluster = Cluster::start().await;
    let store = cluster.store().await;
    let first = store.ensure(start()).await.unwrap();
    let before = cluster.api.requests().len();
    let secret_version = cluster.secret()["metadata"]["resourceVersion"].clone();

    // Another replica starting later, and this one a month on.
    for now in [start() + Duration::from_secs(60), start() + 30 * DAY] {
        let again = cluster.store().await.ensure(now).await.unwrap();
        assert_eq!(again.issued, None);
        assert_eq!(again.published, Publish::AlreadyCurrent);
        assert_eq!(again.set, first.set);
    }
    let after: Vec<RecordedRequest> = cluster.api.requests().split_off(before);
    assert!(!after.is_empty());
    assert!(
        after.iter().all(|request| request.method == "GET"),
        "only reads: {after:?}"
    );
    assert_eq!(
        cluster.secret()["metadata"]["resourceVersion"],
        secret_version
    );
}

#[tokio::test]
async fn the_leaf_is_renewed_near_expiry_under_the_same_ca() {
    let cluster = Cluster::start().await;
    let store = cluster.store().await;
    let first = store.ensure(start()).await.unwrap().set;
    let writes_before = cluster.writes().len();

    let renewed = store.ensure(start() + 80 * DAY).await.unwrap();
    assert_eq!(renewed.issued, Some(IssueReason::LeafExpiring));
    assert_eq!(renewed.published, Publish::AlreadyCurrent);
    let stored = cluster.stored_set();
    assert_eq!(stored, renewed.set);
    assert_ne!(stored.tls_cert, first.tls_cert);
    assert_ne!(stored.tls_key, first.tls_key);
    assert_eq!(
        stored.ca_bundle, first.ca_bundle,
        "same CA, nothing to publish"
    );
    assert_eq!(stored.ca_key, first.ca_key);
    assert!(inspect_leaf(&stored, &current_ca(&first)).1);
    assert_eq!(
        cluster.writes().split_off(writes_before),
        [("PUT".to_owned(), secret_path())],
        "the Secret is replaced; the webhook configuration is not touched"
    );
    assert_eq!(
        cluster.ca_bundles(),
        [Some(first.ca_bundle.clone()), Some(first.ca_bundle)]
    );
}

#[tokio::test]
async fn the_ca_is_rotated_with_the_old_one_trusted_before_the_new_leaf_is_stored() {
    let cluster = Cluster::start().await;
    let store = cluster.store().await;
    let issued_at = start();
    let first = store.ensure(issued_at).await.unwrap().set;
    let before = cluster.api.requests().len();

    let rotated = store.ensure(near_ca_expiry(issued_at)).await.unwrap();
    assert_eq!(rotated.issued, Some(IssueReason::CaExpiring));
    let stored = cluster.stored_set();
    assert_eq!(stored, rotated.set);
    let bundle = ders(&stored.ca_bundle);
    assert_eq!(bundle.len(), 2);
    assert_ne!(bundle[0], current_ca(&first), "a new CA first");
    assert_eq!(bundle[1], current_ca(&first), "the old CA kept second");
    assert!(
        inspect_leaf(&stored, &bundle[0]).1,
        "the new CA signs the new leaf"
    );
    assert_ne!(stored.ca_key, first.ca_key);

    // The webhooks trusted the new CA (beside the old) before the Secret,
    // and with it the new leaf, changed.
    let writes: Vec<RecordedRequest> = cluster
        .api
        .requests()
        .split_off(before)
        .into_iter()
        .filter(|request| request.method != "GET")
        .collect();
    let order: Vec<(&str, &str)> = writes
        .iter()
        .map(|request| (request.method.as_str(), request.path.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            ("PUT", configuration_path().as_str()),
            ("PUT", secret_path().as_str())
        ]
    );
    let published: Value = serde_json::from_slice(&writes[0].body).unwrap();
    for webhook in published["webhooks"].as_array().unwrap() {
        let trusted = ders(&decode(
            webhook["clientConfig"]["caBundle"].as_str().unwrap(),
        ));
        assert!(trusted.contains(&bundle[0]) && trusted.contains(&bundle[1]));
    }
    assert_eq!(
        cluster.ca_bundles(),
        [Some(stored.ca_bundle.clone()), Some(stored.ca_bundle)]
    );
}

#[tokio::test]
async fn two_replicas_starting_together_store_one_set() {
    let cluster = Cluster::start().await;
    let (a, b) = (cluster.store().await, cluster.store().await);
    let now = start();
    let (a, b) = tokio::join!(a.ensure(now), b.ensure(now));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.set, b.set, "both serve the same set");
    assert_eq!(cluster.stored_set(), a.set);
    let issued = [&a, &b].iter().filter(|e| e.issued.is_some()).count();
    assert!(issued >= 1, "at least one issued");
    assert_eq!(
        cluster.ca_bundles(),
        [Some(a.set.ca_bundle.clone()), Some(a.set.ca_bundle)]
    );
}

#[tokio::test]
async fn a_replica_that_loses_the_create_adopts_the_winners_set() {
    let cluster = Cluster::start().await;
    let winner = issue(None, start(), &Policy::default());
    // The other replica's create lands between this one's GET and POST.
    cluster.api.fail_once(
        "POST",
        &secrets_collection(),
        Fault::WriteFirst(secret_of(&winner)),
    );

    let ensured = cluster.store().await.ensure(start()).await.unwrap();
    assert_eq!(ensured.issued, None, "the loser issues nothing");
    assert_eq!(ensured.set, winner);
    assert_eq!(cluster.stored_set(), winner);
    assert_eq!(cluster.api.count("POST", &secrets_collection()), 1);
    assert_eq!(
        cluster.ca_bundles(),
        [Some(winner.ca_bundle.clone()), Some(winner.ca_bundle)]
    );
}

#[tokio::test]
async fn a_replica_that_loses_the_rotation_adopts_the_winners_ca() {
    let cluster = Cluster::start().await;
    let store = cluster.store().await;
    let issued_at = start();
    let first = store.ensure(issued_at).await.unwrap().set;
    let rotation_time = near_ca_expiry(issued_at);
    let winner = issue(Some(&first), rotation_time, &Policy::default());
    // The other replica's rotation lands between this one's GET and PUT: the
    // PUT carries a stale resourceVersion and gets a real 409 Conflict.
    cluster
        .api
        .fail_once("PUT", &secret_path(), Fault::WriteFirst(secret_of(&winner)));

    let ensured = store.ensure(rotation_time).await.unwrap();
    assert_eq!(ensured.issued, None);
    assert_eq!(ensured.set, winner);
    assert_eq!(cluster.stored_set(), winner);
    // This replica's own new CA was added to the bundle before its PUT, and
    // is gone again: exactly the winner's bundle (new CA, then the old one).
    assert_eq!(
        cluster.ca_bundles(),
        [
            Some(winner.ca_bundle.clone()),
            Some(winner.ca_bundle.clone())
        ]
    );
    assert_eq!(ders(&winner.ca_bundle)[1], current_ca(&first));
    let puts: Vec<String> = cluster
        .writes()
        .into_iter()
        .filter(|(method, _)| method == "PUT")
        .map(|(_, path)| path)
        .collect();
    assert_eq!(
        puts[1..],
        [configuration_path(), secret_path(), configuration_path()],
        "add own CA, lose the Secret, publish the winner's bundle"
    );
}

#[tokio::test]
async fn without_the_webhook_configuration_the_secret_is_still_created() {
    let cluster = Cluster::without_webhook_configuration().await;
    let store = cluster.store().await;
    let first = store.ensure(start()).await.unwrap();
    assert_eq!(first.issued, Some(IssueReason::Missing));
    assert_eq!(first.published, Publish::NoWebhookConfiguration);
    assert_eq!(cluster.stored_set(), first.set);

    // Helm creates it later: the next round publishes the CA.
    cluster.api.insert(webhook_configuration());
    let next = store.ensure(start()).await.unwrap();
    assert_eq!((next.issued, next.published), (None, Publish::Written));
    assert_eq!(
        cluster.ca_bundles(),
        [Some(first.set.ca_bundle.clone()), Some(first.set.ca_bundle)]
    );
}

#[tokio::test]
async fn a_configuration_without_webhooks_has_nothing_to_publish() {
    let cluster = Cluster::without_webhook_configuration().await;
    let mut configuration = webhook_configuration();
    configuration.as_object_mut().unwrap().remove("webhooks");
    cluster.api.insert(configuration);
    let ensured = cluster.store().await.ensure(start()).await.unwrap();
    assert_eq!(ensured.published, Publish::AlreadyCurrent);
    assert_eq!(cluster.stored_set(), ensured.set);
}

#[tokio::test]
async fn a_blanked_or_foreign_ca_bundle_is_rewritten_on_the_next_round() {
    let cluster = Cluster::start().await;
    let store = cluster.store().await;
    let set = store.ensure(start()).await.unwrap().set;

    // `helm upgrade` without the lookup (or --force) writes the chart's
    // configuration back: no caBundle. Someone else's CA is no better.
    let mut blanked = webhook_configuration();
    blanked["webhooks"][1]["clientConfig"]["caBundle"] =
        json!(encode(&issue(None, start(), &Policy::default()).ca_bundle));
    cluster.api.insert(blanked);
    assert_eq!(cluster.ca_bundles()[0], None);

    let next = store.ensure(start()).await.unwrap();
    assert_eq!((next.issued, next.published), (None, Publish::Written));
    assert_eq!(
        cluster.ca_bundles(),
        [Some(set.ca_bundle.clone()), Some(set.ca_bundle)]
    );
}

#[tokio::test]
async fn a_webhook_configuration_changed_under_the_write_is_read_again() {
    let cluster = Cluster::start().await;
    let store = cluster.store().await;
    // Helm rewrites the configuration between the store's GET and PUT.
    let mut relabeled = webhook_configuration();
    relabeled["metadata"]["labels"]["helm.sh/chart"] = json!("vmcp-normalizer-0.2.0");
    cluster
        .api
        .fail_once("PUT", &configuration_path(), Fault::WriteFirst(relabeled));

    let ensured = store.ensure(start()).await.unwrap();
    assert_eq!(ensured.published, Publish::Written);
    let configuration = cluster.api.object(&configuration_path()).unwrap();
    assert_eq!(
        configuration["metadata"]["labels"]["helm.sh/chart"], "vmcp-normalizer-0.2.0",
        "the other writer's change is kept"
    );
    assert_eq!(
        cluster.ca_bundles(),
        [
            Some(ensured.set.ca_bundle.clone()),
            Some(ensured.set.ca_bundle)
        ]
    );
    assert_eq!(cluster.api.count("PUT", &configuration_path()), 2);
}

// ------------------------------------------------ startup and background rounds

#[tokio::test]
async fn the_first_certificate_is_retried_and_written_to_files() {
    let cluster = Cluster::start().await;
    let dir = cluster.dir.path().join("tls");
    let metrics = Arc::new(Metrics::new());
    let tls = SelfManagedTls::connect(
        Some(&cluster.kubeconfig),
        cluster.settings(&dir),
        metrics.clone(),
    )
    .await
    .unwrap();
    cluster.api.fail_once(
        "GET",
        &secret_path(),
        Fault::Status(apiserver::internal_error("etcdserver: leader changed")),
    );

    let round = tls.first_certificate(WAIT).await.unwrap();
    assert!(round.files_changed);
    let set = cluster.stored_set();
    assert_eq!(round.ensured.set, set);
    assert_eq!(
        std::fs::read_to_string(dir.join("tls.crt")).unwrap(),
        set.tls_cert
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("tls.key")).unwrap(),
        set.tls_key
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("ca.crt")).unwrap(),
        set.ca_bundle
    );
    assert!(
        !dir.join("ca.key").exists(),
        "the CA key stays in the Secret"
    );
    let text = metrics.encode().unwrap();
    for line in [
        r#"vmcp_normalizer_certificate_store_rounds_total{outcome="api"} 1"#,
        r#"vmcp_normalizer_certificate_store_rounds_total{outcome="ok"} 1"#,
        r#"vmcp_normalizer_certificate_issuances_total{reason="missing"} 1"#,
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
}

#[tokio::test]
async fn no_first_certificate_within_the_budget_is_an_error_naming_the_cause() {
    let cluster = Cluster::start().await;
    let dir = cluster.dir.path().join("tls");
    let tls = SelfManagedTls::connect(
        Some(&cluster.kubeconfig),
        cluster.settings(&dir),
        Arc::new(Metrics::new()),
    )
    .await
    .unwrap();
    cluster.api.fail(
        "GET",
        &secret_path(),
        Fault::Status(apiserver::forbidden(
            "get",
            &apiserver::ResourceRef::parse(&secret_path()).unwrap(),
        )),
    );

    let budget = Duration::from_secs(3);
    let started = Instant::now();
    let error = tls.first_certificate(budget).await.unwrap_err();
    assert!(
        started.elapsed() < budget + Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let SelfManagedError::NoCertificate { attempts, .. } = &error else {
        panic!("{error:?}");
    };
    assert!(*attempts >= 2, "retried: {attempts}");
    let message = error.to_string();
    assert!(
        message.contains(&format!("{NAMESPACE}/{SECRET}")),
        "{message}"
    );
    assert!(
        message.contains("cannot get resource \"secrets\""),
        "{message}"
    );
    assert!(!dir.join("tls.crt").exists());
}

/// A clock the test sets, in Unix seconds.
#[derive(Clone)]
struct TestClock(Arc<AtomicI64>);

impl TestClock {
    fn new(now: OffsetDateTime) -> Self {
        Self(Arc::new(AtomicI64::new(now.unix_timestamp())))
    }

    fn set(&self, now: OffsetDateTime) {
        self.0.store(now.unix_timestamp(), Ordering::SeqCst);
    }

    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.0.load(Ordering::SeqCst)).unwrap()
    }
}

#[tokio::test]
async fn background_rounds_renew_survive_errors_and_stop() {
    let cluster = Cluster::start().await;
    let dir = cluster.dir.path().join("tls");
    let metrics = Arc::new(Metrics::new());
    let tls = SelfManagedTls::connect(
        Some(&cluster.kubeconfig),
        cluster.settings(&dir),
        metrics.clone(),
    )
    .await
    .unwrap();
    let first = tls.first_certificate(WAIT).await.unwrap().ensured.set;
    let clock = TestClock::new(start());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(tls.maintain(
        Duration::from_millis(50),
        {
            let clock = clock.clone();
            move || clock.now()
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let served = || std::fs::read_to_string(dir.join("tls.crt")).unwrap();
    let rounds = |outcome: &str| {
        let line =
            format!(r#"vmcp_normalizer_certificate_store_rounds_total{{outcome="{outcome}"}} "#);
        metrics
            .encode()
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix(&line).map(|n| n.parse::<u64>().unwrap()))
            .unwrap_or(0)
    };

    // The API fails for a while: counted, not fatal, files untouched.
    let failure = Fault::Status(apiserver::internal_error("etcdserver: request timed out"));
    cluster.api.fail("GET", &secret_path(), failure);
    wait_until("failed rounds", WAIT, || async { rounds("api") >= 2 }).await;
    assert_eq!(served(), first.tls_cert);
    cluster.api.clear_faults();

    // Near the leaf's expiry the next round renews it and serves it.
    clock.set(start() + 80 * DAY);
    wait_until("the renewed leaf in the files", WAIT, || async {
        served() != first.tls_cert
    })
    .await;
    let renewed = cluster.stored_set();
    assert_eq!(served(), renewed.tls_cert);
    assert_eq!(renewed.ca_bundle, first.ca_bundle);
    let issued = r#"vmcp_normalizer_certificate_issuances_total{reason="leaf_expiring"} 1"#;
    wait_until("the renewal counted", WAIT, || async {
        metrics.encode().unwrap().contains(issued)
    })
    .await;

    let _ = stop.send(());
    tokio::time::timeout(WAIT, task)
        .await
        .expect("maintenance stops when asked")
        .unwrap();
}

// ------------------------------------------------------------- the binary

/// An HTTPS client that trusts only `ca_pem` and reaches the Service's DNS
/// name at `addr`, so the name in the certificate is checked too.
fn service_client(ca_pem: &str, addr: SocketAddr) -> reqwest::Client {
    common::install_crypto_provider();
    let cas: Vec<reqwest::Certificate> = ders(ca_pem)
        .into_iter()
        .map(|der| reqwest::Certificate::from_der(&der).unwrap())
        .collect();
    reqwest::Client::builder()
        .tls_certs_only(cas)
        .resolve(&dns_names()[0], addr)
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// POST the fixture review over a new connection: the status and the DER of
/// the certificate the server presented.
async fn review_over_tls(ca_pem: &str, addr: SocketAddr) -> reqwest::Result<(u16, Vec<u8>)> {
    let url = format!("https://{}:{}/mutate", dns_names()[0], addr.port());
    let body = review(
        "uid-self-managed",
        "CREATE",
        &fixture("vmcp-configmap.yaml"),
        None,
    );
    let response = service_client(ca_pem, addr)
        .post(url)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .await?;
    let peer = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("peer certificate")
        .to_vec();
    Ok((response.status().as_u16(), peer))
}

// Multi-threaded: the test blocks a thread reading the child's output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_its_self_managed_certificate_and_follows_a_rotation() {
    let cluster = Cluster::start().await;
    let tls_dir = cluster.dir.path().join("tls");
    let cert = tls_dir.join("tls.crt");
    let key = tls_dir.join("tls.key");
    let home = tempfile::tempdir().unwrap();
    let mut process = Process::spawn(
        &[
            "serve",
            "--listen=127.0.0.1:0",
            "--admin-listen=127.0.0.1:0",
            "--log-format=json",
            "--self-managed-tls",
            &format!("--tls-secret={SECRET}"),
            &format!("--webhook-configuration={CONFIGURATION}"),
            &format!("--service-name={SERVICE}"),
            "--cert-check-interval=200ms",
            "--tls-poll-interval=100ms",
            &format!("--kubeconfig={}", cluster.kubeconfig.display()),
            &format!("--tls-cert={}", cert.display()),
            &format!("--tls-key={}", key.display()),
        ],
        &[
            ("POD_NAMESPACE", NAMESPACE.as_ref()),
            ("HOME", home.path().as_os_str()),
        ],
    );
    let issued = process.wait_for_log("issued a new serving certificate");
    assert_eq!(issued["reason"], "missing");
    let serving = process.wait_for_log("serving admission reviews");
    let addr: SocketAddr = serving["listen"].as_str().unwrap().parse().unwrap();
    let admin = serving["admin"].as_str().unwrap().to_owned();

    // A client that trusts only the CA from the Secret reaches the Service name.
    let first = cluster.stored_set();
    assert_eq!(
        cluster.ca_bundles(),
        [Some(first.ca_bundle.clone()), Some(first.ca_bundle.clone())]
    );
    let (status, peer) = review_over_tls(&first.ca_bundle, addr).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(peer, leaf_der(&first));

    // Another replica rotates the CA and stores the new set: this one serves
    // the new leaf and publishes the new bundle within a few rounds. Only a
    // client that trusts just the new CA is used, so success means the new
    // leaf is served.
    let rotate_now = Policy {
        ca_renew_before: Policy::default().ca_lifetime + DAY,
        ..Policy::default()
    };
    let rotated = issue(Some(&first), OffsetDateTime::now_utc(), &rotate_now);
    assert_eq!(ders(&rotated.ca_bundle)[1], current_ca(&first));
    cluster.store_set(&rotated);
    let new_ca = pem_of(&current_ca(&rotated));
    let deadline = Instant::now() + WAIT;
    loop {
        match review_over_tls(&new_ca, addr).await {
            Ok((200, peer)) if peer == leaf_der(&rotated) => break,
            other => assert!(
                Instant::now() < deadline,
                "the rotated certificate is not served: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_until(
        "the rotated bundle in the webhook configuration",
        WAIT,
        || async {
            cluster.ca_bundles()
                == [
                    Some(rotated.ca_bundle.clone()),
                    Some(rotated.ca_bundle.clone()),
                ]
        },
    )
    .await;
    // A client still holding only the old CA is refused (the old leaf is gone).
    assert!(review_over_tls(&first.ca_bundle, addr).await.is_err());

    let metrics = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"vmcp_normalizer_certificate_issuances_total{reason="missing"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"vmcp_normalizer_certificate_issuances_total{reason="ca_expiring"} 0"#),
        "this replica did not rotate: {metrics}"
    );
    assert!(metrics.contains(r#"vmcp_normalizer_certificate_store_rounds_total{outcome="ok"}"#));

    process.signal("TERM");
    let status = process.wait_for_exit();
    let output = process.output_so_far();
    assert!(status.success(), "{status:?}\n{output}");
}

fn pem_of(der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

#[test]
fn the_binary_refuses_self_managed_tls_without_api_access() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    let started = Instant::now();
    let mut process = Process::spawn(
        &[
            "serve",
            "--listen=127.0.0.1:0",
            "--admin-listen=127.0.0.1:0",
            "--self-managed-tls",
            "--tls-secret=s",
            "--webhook-configuration=w",
            "--service-name=svc",
            &format!("--tls-cert={}", cert.display()),
            &format!("--tls-key={}", key.display()),
        ],
        &[
            ("POD_NAMESPACE", "ns".as_ref()),
            ("HOME", home.path().as_os_str()),
        ],
    );
    let status = process.wait_for_exit();
    let output = process.output_so_far();
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(
        output.contains("needs access to the Kubernetes API, and none is configured"),
        "{output}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "fails fast");
    assert!(!cert.exists());
}
