//! Live reads of the vMCP config ConfigMap from the Kubernetes API server.
//!
//! A direct GET, never a cache: the operator writes the ConfigMap just before
//! the Deployment in the same reconcile, and a watch cache could still hold
//! the previous version. The answer is kept as a raw `serde_json::Value`, so no
//! field is lost to a typed round trip before it is hashed.
//!
//! RBAC: the webhook's ServiceAccount needs `get` on `configmaps` (core API
//! group), in every namespace a vMCP may live in; nothing else. The chart's
//! ClusterRole (`charts/vmcp-normalizer/templates/rbac.yaml`) grants exactly that.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::core::Request;
use kube::core::params::GetParams;
use serde_json::Value;
use tokio::time::Instant;

/// The most a lookup may take, however much of the admission budget is left.
pub const MAX_LOOKUP_TIME: Duration = Duration::from_secs(2);

/// A ConfigMap that could not be read; each variant has a stable metric label.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    #[error("ConfigMap not found")]
    NotFound,
    /// 401 or 403: our credentials are missing, rejected or lack `get`.
    #[error("not allowed to read the ConfigMap (HTTP {code}): {message}")]
    Forbidden { code: u16, message: String },
    #[error("no answer from the API server within {0:?}")]
    Timeout(Duration),
    /// 5xx or 429: the API server is there but cannot answer now.
    #[error("API server error (HTTP {code}): {message}")]
    ServerError { code: u16, message: String },
    /// No HTTP answer at all: connection refused or reset, TLS failure, ...
    #[error("cannot reach the API server: {0}")]
    Connection(#[source] kube::Error),
    /// Another HTTP error status, which a GET of a ConfigMap should not get.
    #[error("API server rejected the request (HTTP {code}): {message}")]
    Rejected { code: u16, message: String },
    #[error("the API server's answer is not the ConfigMap: {0}")]
    Invalid(String),
}

impl LookupError {
    /// Every [`LookupError::metric_label`], for the metrics to start at zero.
    pub const METRIC_LABELS: [&'static str; 6] = [
        "not_found",
        "forbidden",
        "timeout",
        "unavailable",
        "rejected",
        "invalid",
    ];

    /// Every [`LookupError::refusal_reason`].
    pub const REFUSAL_REASONS: [&'static str; 6] = [
        "lookup_not_found",
        "lookup_forbidden",
        "lookup_timeout",
        "lookup_unavailable",
        "lookup_rejected",
        "lookup_invalid",
    ];

    /// Stable, low-cardinality label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            LookupError::NotFound => "not_found",
            LookupError::Forbidden { .. } => "forbidden",
            LookupError::Timeout(_) => "timeout",
            LookupError::ServerError { .. } | LookupError::Connection(_) => "unavailable",
            LookupError::Rejected { .. } => "rejected",
            LookupError::Invalid(_) => "invalid",
        }
    }

    /// The admission refusal reason for this failure: `lookup_<metric label>`.
    pub fn refusal_reason(&self) -> &'static str {
        match self {
            LookupError::NotFound => "lookup_not_found",
            LookupError::Forbidden { .. } => "lookup_forbidden",
            LookupError::Timeout(_) => "lookup_timeout",
            LookupError::ServerError { .. } | LookupError::Connection(_) => "lookup_unavailable",
            LookupError::Rejected { .. } => "lookup_rejected",
            LookupError::Invalid(_) => "lookup_invalid",
        }
    }

    /// A few words for a warning line.
    pub fn describe(&self) -> &'static str {
        match self {
            LookupError::NotFound => "ConfigMap not found",
            LookupError::Forbidden { .. } => "not allowed to read ConfigMap",
            LookupError::Timeout(_) => "ConfigMap lookup timed out",
            LookupError::ServerError { .. } | LookupError::Connection(_) => {
                "API server unavailable"
            }
            LookupError::Rejected { .. } => "ConfigMap lookup rejected",
            LookupError::Invalid(_) => "unreadable ConfigMap",
        }
    }

    fn from_client(error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => {
                let code = status.code;
                let message = status.message;
                match code {
                    404 => LookupError::NotFound,
                    401 | 403 => LookupError::Forbidden { code, message },
                    429 | 500..=599 => LookupError::ServerError { code, message },
                    _ => LookupError::Rejected { code, message },
                }
            }
            // `request_text` decodes no JSON (an error body that is not a
            // `Status` still comes back as `Api`): the only answer it cannot
            // read is one that is not UTF-8.
            kube::Error::FromUtf8(error) => LookupError::Invalid(error.to_string()),
            other => LookupError::Connection(other),
        }
    }
}

/// Reads ConfigMaps with one GET each, over a shared (pooled, keep-alive) client.
#[derive(Clone)]
pub struct ConfigMapLookup {
    client: kube::Client,
}

impl std::fmt::Debug for ConfigMapLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigMapLookup").finish_non_exhaustive()
    }
}

impl ConfigMapLookup {
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }

    /// A client for `config`, with timeouts fit for an admission path.
    pub fn from_config(mut config: kube::Config) -> Result<Self, ApiAccessError> {
        // Backstops only: every lookup also carries its own deadline.
        config.connect_timeout = Some(MAX_LOOKUP_TIME);
        config.read_timeout = Some(MAX_LOOKUP_TIME);
        config.write_timeout = Some(MAX_LOOKUP_TIME);
        // Count the read timeout from the request, not from when a pooled
        // connection went idle.
        config.reset_reader_on_write = true;
        // A retry (with backoff) would spend the admission budget; a failed
        // lookup costs only a checksum left as the operator wrote it.
        config.default_retry = false;
        let client = kube::Client::try_from(config).map_err(ApiAccessError::Client)?;
        Ok(Self::new(client))
    }

    /// GET `/api/v1/namespaces/{namespace}/configmaps/{name}`, abandoned at
    /// `deadline`. Names must be valid object names (checked by the caller:
    /// they go into the URL path).
    pub async fn get(
        &self,
        namespace: &str,
        name: &str,
        deadline: Instant,
    ) -> Result<Value, LookupError> {
        let started = Instant::now();
        let request = Request::new(format!("/api/v1/namespaces/{namespace}/configmaps"))
            .get(name, &GetParams::default())
            .map_err(|error| LookupError::Invalid(error.to_string()))?;
        let text = match tokio::time::timeout_at(deadline, self.client.request_text(request)).await
        {
            Ok(Ok(text)) => text,
            Ok(Err(error)) => return Err(LookupError::from_client(error)),
            Err(_) => return Err(LookupError::Timeout(started.elapsed())),
        };
        let object: Value =
            serde_json::from_str(&text).map_err(|error| LookupError::Invalid(error.to_string()))?;
        check_is_configmap(&object, namespace, name)?;
        Ok(object)
    }
}

/// The answer must be the ConfigMap asked for, not some other object or a
/// `Status` with a 200 (as a misbehaving proxy may send).
fn check_is_configmap(object: &Value, namespace: &str, name: &str) -> Result<(), LookupError> {
    let field = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
    let found = (
        field("/apiVersion"),
        field("/kind"),
        field("/metadata/namespace"),
        field("/metadata/name"),
    );
    if found == (Some("v1"), Some("ConfigMap"), Some(namespace), Some(name)) {
        Ok(())
    } else {
        Err(LookupError::Invalid(format!(
            "expected v1 ConfigMap {namespace}/{name}, got {} {} {}/{}",
            found.0.unwrap_or("?"),
            found.1.unwrap_or("?"),
            found.2.unwrap_or("?"),
            found.3.unwrap_or("?"),
        )))
    }
}

/// Where the API client configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiAccess {
    /// `--kubeconfig` (or `VMCP_NORMALIZER_KUBECONFIG`).
    KubeconfigFlag(PathBuf),
    /// The `KUBECONFIG` environment variable (a list of files, merged).
    KubeconfigEnv,
    /// The pod's ServiceAccount (the default inside a cluster).
    InCluster,
    /// `~/.kube/config`, for a local run.
    HomeKubeconfig,
}

impl std::fmt::Display for ApiAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiAccess::KubeconfigFlag(path) => write!(f, "kubeconfig {}", path.display()),
            ApiAccess::KubeconfigEnv => f.write_str("kubeconfig from KUBECONFIG"),
            ApiAccess::InCluster => f.write_str("in-cluster service account"),
            ApiAccess::HomeKubeconfig => f.write_str("kubeconfig ~/.kube/config"),
        }
    }
}

/// The API client configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiAccessError {
    #[error("cannot load the {access}: {source}")]
    Kubeconfig {
        access: ApiAccess,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("cannot build the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

/// What [`client_config`] found.
#[derive(Debug)]
pub enum ClientConfig {
    Found {
        config: Box<kube::Config>,
        access: ApiAccess,
    },
    /// No configuration anywhere (a local run without a cluster), and why.
    Absent { why: String },
}

/// The client configuration to use, tried in this order:
/// 1. `kubeconfig` (the `--kubeconfig` flag) and 2. `KUBECONFIG`: given on
///    purpose, so failing to load them is an error;
/// 3. the in-cluster ServiceAccount; 4. `~/.kube/config`.
pub async fn client_config(kubeconfig: Option<&Path>) -> Result<ClientConfig, ApiAccessError> {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let options = KubeConfigOptions::default();
    let found = |config, access| ClientConfig::Found {
        config: Box::new(config),
        access,
    };
    if let Some(path) = kubeconfig {
        let access = ApiAccess::KubeconfigFlag(path.to_owned());
        let loaded = match Kubeconfig::read_from(path) {
            Ok(file) => kube::Config::from_custom_kubeconfig(file, &options).await,
            Err(error) => Err(error),
        };
        return match loaded {
            Ok(config) => Ok(found(config, access)),
            Err(source) => Err(ApiAccessError::Kubeconfig { access, source }),
        };
    }
    if std::env::var_os("KUBECONFIG").is_some_and(|value| !value.is_empty()) {
        let access = ApiAccess::KubeconfigEnv;
        return match kube::Config::from_kubeconfig(&options).await {
            Ok(config) => Ok(found(config, access)),
            Err(source) => Err(ApiAccessError::Kubeconfig { access, source }),
        };
    }
    let in_cluster = match kube::Config::incluster() {
        Ok(config) => return Ok(found(config, ApiAccess::InCluster)),
        Err(error) => error,
    };
    Ok(match kube::Config::from_kubeconfig(&options).await {
        Ok(config) => found(config, ApiAccess::HomeKubeconfig),
        Err(home) => ClientConfig::Absent {
            why: format!("not in a cluster ({in_cluster}) and no kubeconfig ({home})"),
        },
    })
}

#[cfg(test)]
pub(crate) mod fake;

#[cfg(test)]
mod tests {
    use super::fake::{self, Answer};
    use super::*;
    use serde_json::json;

    fn configmap(namespace: &str, name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"namespace": namespace, "name": name}, "data": {}})
    }

    fn answer(status: u16, body: &[u8]) -> Answer {
        Answer::Respond {
            after: Duration::ZERO,
            status,
            body: body.to_vec(),
        }
    }

    /// One GET of `ns/cm` against the fake, with a second to spare.
    async fn get(answer: Answer) -> Result<Value, LookupError> {
        let (lookup, _) = fake::lookup(answer);
        let deadline = Instant::now() + Duration::from_secs(1);
        lookup.get("ns", "cm", deadline).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_lookup_is_abandoned_exactly_at_its_deadline() {
        let (lookup, paths) = fake::lookup(Answer::Never);
        let started = Instant::now();
        let error = lookup
            .get("ns", "cm", started + Duration::from_millis(300))
            .await
            .unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_millis(300));
        assert!(
            matches!(error, LookupError::Timeout(waited) if waited == Duration::from_millis(300)),
            "{error:?}"
        );
        assert_eq!(
            *paths.lock().unwrap(),
            ["/api/v1/namespaces/ns/configmaps/cm"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_just_before_the_deadline_is_used() {
        let object = configmap("ns", "cm");
        let (lookup, _) = fake::lookup(Answer::object(&object, Duration::from_millis(299)));
        let started = Instant::now();
        let got = lookup
            .get("ns", "cm", started + Duration::from_millis(300))
            .await
            .unwrap();
        assert_eq!(got, object);
        assert_eq!(started.elapsed(), Duration::from_millis(299));
    }

    #[tokio::test]
    async fn answers_that_are_not_the_configmap_are_invalid() {
        for (body, why) in [
            (&b"\xff\xfe not UTF-8"[..], "not UTF-8"),
            (b"<html>proxy login</html>", "not JSON"),
            (
                br#"{"apiVersion": "v1", "kind": "Status", "status": "Success"}"#,
                "a Status",
            ),
        ] {
            let error = get(answer(200, body)).await.unwrap_err();
            assert_eq!(error.metric_label(), "invalid", "{why}: {error}");
        }
    }

    #[tokio::test]
    async fn error_statuses_map_to_their_labels_even_without_a_status_body() {
        let not_found = serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Status",
            "status": "Failure", "reason": "NotFound", "code": 404,
            "message": "configmaps \"cm\" not found"}))
        .unwrap();
        for (status, body, label) in [
            (404, &not_found[..], "not_found"),
            (503, b"upstream connect error", "unavailable"),
            (403, b"Forbidden", "forbidden"),
            (405, b"", "rejected"),
        ] {
            let error = get(answer(status, body)).await.unwrap_err();
            assert_eq!(error.metric_label(), label, "{status}: {error}");
        }
        assert!(
            get(answer(
                200,
                &serde_json::to_vec(&configmap("ns", "cm")).unwrap()
            ))
            .await
            .is_ok()
        );
    }

    #[tokio::test]
    async fn a_name_that_cannot_be_a_url_path_is_refused_before_any_request() {
        let (lookup, paths) = fake::lookup(Answer::Never);
        let deadline = Instant::now() + Duration::from_secs(1);
        let error = lookup.get("ns", "not a name", deadline).await.unwrap_err();
        assert_eq!(error.metric_label(), "invalid", "{error}");
        assert!(paths.lock().unwrap().is_empty());
    }

    #[test]
    fn labels_are_stable() {
        let status = |code: u16| {
            let mut status = kube::core::Status::failure("m", "r");
            status.code = code;
            LookupError::from_client(kube::Error::Api(status.boxed()))
        };
        let cases = [
            (status(404), "not_found", "lookup_not_found"),
            (status(403), "forbidden", "lookup_forbidden"),
            (status(401), "forbidden", "lookup_forbidden"),
            (status(500), "unavailable", "lookup_unavailable"),
            (status(503), "unavailable", "lookup_unavailable"),
            (status(429), "unavailable", "lookup_unavailable"),
            (status(400), "rejected", "lookup_rejected"),
            (
                LookupError::Timeout(Duration::from_secs(2)),
                "timeout",
                "lookup_timeout",
            ),
            (
                LookupError::Invalid("x".into()),
                "invalid",
                "lookup_invalid",
            ),
        ];
        for (error, label, reason) in cases {
            assert_eq!(error.metric_label(), label, "{error}");
            assert_eq!(error.refusal_reason(), reason, "{error}");
            assert_eq!(reason, format!("lookup_{label}"));
            assert!(error.describe().len() < 40);
        }
    }

    #[test]
    fn only_the_configmap_asked_for_is_accepted() {
        let configmap = json!({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"namespace": "ns", "name": "cm"}});
        assert!(check_is_configmap(&configmap, "ns", "cm").is_ok());
        assert!(check_is_configmap(&configmap, "ns", "other").is_err());
        assert!(check_is_configmap(&configmap, "other", "cm").is_err());
        let status = json!({"apiVersion": "v1", "kind": "Status", "status": "Success"});
        let error = check_is_configmap(&status, "ns", "cm").unwrap_err();
        assert_eq!(error.metric_label(), "invalid");
        assert!(error.to_string().contains("v1 Status"), "{error}");
    }
}
