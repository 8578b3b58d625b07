//! Reading a live cluster: the client configuration as kubectl finds it,
//! lists of any resource a page at a time, and API discovery (which
//! resource serves a kind).
//!
//! Pages (`limit` and `continue`) keep memory bounded by one page whatever
//! the cluster's size; each page is handed over as it arrives. Items are
//! kept as raw `serde_json::Value`s, so no field is lost to a typed round
//! trip before it is hashed. Every request has its own deadline: a hung API
//! server is an error, not a hang.
//!
//! RBAC: `list` on what is listed, in the namespace listed, or cluster-wide
//! for all namespaces. Nothing is written.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::Request;
use kube::core::params::ListParams;
use serde::Deserialize;
use serde_json::Value;

/// A collection to list: where the API server serves it and what its list
/// is called. Built-in ones have constructors; others come from discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// `v1`, `apps/v1`, `example.com/v1`.
    pub api_version: String,
    /// The kind of its objects (`ConfigMap`); its list is `ConfigMapList`.
    pub kind: String,
    /// The plural in the path (`configmaps`).
    pub plural: String,
    /// Namespaced, or cluster-scoped (listed whole whatever the scope).
    pub namespaced: bool,
}

impl Resource {
    pub fn new(api_version: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        Self {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
            namespaced,
        }
    }

    pub fn configmaps() -> Self {
        Self::new("v1", "ConfigMap", "configmaps", true)
    }

    pub fn deployments() -> Self {
        Self::new("apps/v1", "Deployment", "deployments", true)
    }

    pub fn replicasets() -> Self {
        Self::new("apps/v1", "ReplicaSet", "replicasets", true)
    }

    pub fn controllerrevisions() -> Self {
        Self::new("apps/v1", "ControllerRevision", "controllerrevisions", true)
    }

    /// The resource as RBAC and error messages name it: `configmaps`,
    /// `deployments.apps`.
    pub fn name(&self) -> String {
        match self.api_version.split_once('/') {
            Some((group, _)) => format!("{}.{group}", self.plural),
            None => self.plural.clone(),
        }
    }

    /// The `kind` of the list the API server answers with.
    fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The collection's path for `scope`.
    fn collection(&self, scope: &Scope) -> String {
        let prefix = api_prefix(&self.api_version);
        let plural = &self.plural;
        match scope {
            Scope::Namespace(namespace) if self.namespaced => {
                format!("{prefix}/namespaces/{namespace}/{plural}")
            }
            _ => format!("{prefix}/{plural}"),
        }
    }
}

/// `/api/v1` for the core group, `/apis/GROUP/VERSION` for the others.
fn api_prefix(api_version: &str) -> String {
    if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    }
}

/// One resource of an API group version, as discovery lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DiscoveredResource {
    /// The plural, or `plural/subresource` for a subresource.
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub namespaced: bool,
}

/// Where to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Namespace(String),
    AllNamespaces,
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Namespace(namespace) => write!(f, "in namespace {namespace}"),
            Scope::AllNamespaces => f.write_str("in all namespaces"),
        }
    }
}

/// What was being listed when a request failed, for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub resource: String,
    pub scope: String,
    /// The page that failed, from 1.
    pub page: usize,
}

impl std::fmt::Display for Listing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.page == 0 {
            // One request, not a list: a discovery document.
            return write!(f, "reading {}", self.resource);
        }
        write!(
            f,
            "listing {} {} (page {})",
            self.resource, self.scope, self.page
        )
    }
}

/// The cluster could not be read. Any of these means the scan is incomplete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    #[error("cannot load kubeconfig {path}: {source}")]
    KubeconfigFile {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("cannot load the kubeconfig (KUBECONFIG or ~/.kube/config): {0}")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    #[error("no cluster to read: {0}")]
    NoConfig(#[source] kube::config::InferConfigError),
    #[error("cannot build the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// 401 or 403: credentials missing or rejected, or no `list` permission.
    #[error("{listing}: not allowed (HTTP {code}): {message}")]
    Forbidden {
        listing: Listing,
        code: u16,
        message: String,
    },
    #[error("{listing}: not found (HTTP 404): {message}")]
    NotFound { listing: Listing, message: String },
    /// 410: the `continue` token expired (the list changed too long ago).
    #[error(
        "{listing}: the API server no longer serves this list's continuation (HTTP 410 Gone): {message}; run the audit again (or use a larger --chunk-size)"
    )]
    Expired { listing: Listing, message: String },
    #[error("{listing}: no answer from the API server within {timeout:?} (--request-timeout)")]
    Timeout { listing: Listing, timeout: Duration },
    /// Any other error status (5xx, 429, 400, ...).
    #[error("{listing}: the API server answered HTTP {code}: {message}")]
    Status {
        listing: Listing,
        code: u16,
        message: String,
    },
    /// No HTTP answer at all: connection refused or reset, TLS failure, ...
    #[error("{listing}: cannot reach the API server: {source}")]
    Connection {
        listing: Listing,
        #[source]
        source: kube::Error,
    },
    #[error("{listing}: the answer is not a {expected}: {detail}")]
    Invalid {
        listing: Listing,
        expected: String,
        detail: String,
    },
}

impl ClusterError {
    fn from_client(listing: Listing, error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => {
                let code = status.code;
                let message = status.message;
                match code {
                    401 | 403 => ClusterError::Forbidden {
                        listing,
                        code,
                        message,
                    },
                    404 => ClusterError::NotFound { listing, message },
                    410 => ClusterError::Expired { listing, message },
                    _ => ClusterError::Status {
                        listing,
                        code,
                        message,
                    },
                }
            }
            kube::Error::FromUtf8(error) => ClusterError::Invalid {
                listing,
                expected: "UTF-8 text".to_owned(),
                detail: error.to_string(),
            },
            source => ClusterError::Connection { listing, source },
        }
    }
}

/// The client configuration, found as kubectl finds it: `--kubeconfig`,
/// else `KUBECONFIG` or `~/.kube/config`, else the in-cluster ServiceAccount
/// (not with `--context`, which names a kubeconfig context).
pub async fn load_config(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<kube::Config, ClusterError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    if let Some(path) = kubeconfig {
        let loaded = match Kubeconfig::read_from(path) {
            Ok(file) => kube::Config::from_custom_kubeconfig(file, &options).await,
            Err(error) => Err(error),
        };
        return loaded.map_err(|source| ClusterError::KubeconfigFile {
            path: path.to_owned(),
            source,
        });
    }
    if context.is_some() {
        return kube::Config::from_kubeconfig(&options)
            .await
            .map_err(ClusterError::Kubeconfig);
    }
    kube::Config::infer().await.map_err(ClusterError::NoConfig)
}

/// Lists collections page by page, each request under its own deadline.
#[derive(Clone)]
pub struct Lister {
    client: kube::Client,
    request_timeout: Duration,
    page_size: u32,
}

impl std::fmt::Debug for Lister {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lister")
            .field("request_timeout", &self.request_timeout)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

impl Lister {
    /// A client for `config`: `request_timeout` bounds every request
    /// (connect, each read and the whole answer); no retries, so a failure
    /// is reported at once.
    pub fn new(
        mut config: kube::Config,
        request_timeout: Duration,
        page_size: u32,
    ) -> Result<Self, ClusterError> {
        config.connect_timeout = Some(request_timeout);
        config.read_timeout = Some(request_timeout);
        config.write_timeout = Some(request_timeout);
        config.reset_reader_on_write = true;
        config.default_retry = false;
        let client = kube::Client::try_from(config).map_err(ClusterError::Client)?;
        Ok(Self {
            client,
            request_timeout,
            page_size: page_size.max(1),
        })
    }

    /// The pages of `resource` in `scope` matching the selectors.
    pub fn pages(&self, query: ListQuery) -> Pages<'_> {
        let scope = if query.resource.namespaced {
            query.scope.to_string()
        } else {
            "at the cluster scope".to_owned()
        };
        Pages {
            lister: self,
            path: query.resource.collection(&query.scope),
            listing: Listing {
                resource: query.resource.name(),
                scope,
                page: 0,
            },
            kind: query.resource.list_kind(),
            label_selector: query.label_selector,
            field_selector: query.field_selector,
            next: Some(None),
        }
    }

    /// The resources the API server serves under `api_version` (`GET
    /// /api/v1` or `/apis/GROUP/VERSION`, which every authenticated user may
    /// read), subresources left out; `None` when it serves no such version.
    pub async fn discover(
        &self,
        api_version: &str,
    ) -> Result<Option<Vec<DiscoveredResource>>, ClusterError> {
        #[derive(Deserialize)]
        struct ResourceList {
            kind: Option<String>,
            #[serde(default)]
            resources: Vec<DiscoveredResource>,
        }
        let path = api_prefix(api_version);
        let listing = Listing {
            resource: format!("the API discovery document {path}"),
            scope: String::new(),
            page: 0,
        };
        let invalid = |detail: String| ClusterError::Invalid {
            listing: listing.clone(),
            expected: "APIResourceList".to_owned(),
            detail,
        };
        let request = http::Request::get(&path)
            .body(Vec::new())
            .map_err(|error| invalid(error.to_string()))?;
        let text = match self.text(request, &listing).await {
            Ok(text) => text,
            Err(ClusterError::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(error),
        };
        let list: ResourceList =
            serde_json::from_str(&text).map_err(|error| invalid(error.to_string()))?;
        if list.kind.as_deref() != Some("APIResourceList") {
            return Err(invalid(format!(
                "kind {}",
                list.kind.as_deref().unwrap_or("(none)")
            )));
        }
        Ok(Some(
            list.resources
                .into_iter()
                .filter(|resource| !resource.name.contains('/'))
                .collect(),
        ))
    }

    /// One request's answer under the deadline, as text.
    async fn text(
        &self,
        request: http::Request<Vec<u8>>,
        listing: &Listing,
    ) -> Result<String, ClusterError> {
        let timeout = self.request_timeout;
        match tokio::time::timeout(timeout, self.client.request_text(request)).await {
            Ok(Ok(text)) => Ok(text),
            Ok(Err(error)) => Err(ClusterError::from_client(listing.clone(), error)),
            Err(_) => Err(ClusterError::Timeout {
                listing: listing.clone(),
                timeout,
            }),
        }
    }
}

/// What to list.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub resource: Resource,
    pub scope: Scope,
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
}

/// A list being read, one page per [`Pages::next`].
#[derive(Debug)]
pub struct Pages<'l> {
    lister: &'l Lister,
    path: String,
    listing: Listing,
    kind: String,
    label_selector: Option<String>,
    field_selector: Option<String>,
    /// `Some(token)` while a page is left to read (`None` for the first).
    next: Option<Option<String>>,
}

/// One page of a list as the API server writes it.
#[derive(Deserialize)]
struct Page {
    kind: Option<String>,
    #[serde(default)]
    metadata: PageMetadata,
    #[serde(default)]
    items: Option<Vec<Value>>,
}

#[derive(Default, Deserialize)]
struct PageMetadata {
    #[serde(rename = "continue")]
    continue_token: Option<String>,
}

impl Pages<'_> {
    /// The next page's items, or `None` once the list is read whole.
    pub async fn next(&mut self) -> Result<Option<Vec<Value>>, ClusterError> {
        let Some(token) = self.next.take() else {
            return Ok(None);
        };
        self.listing.page += 1;
        let params = ListParams {
            label_selector: self.label_selector.clone(),
            field_selector: self.field_selector.clone(),
            limit: Some(self.lister.page_size),
            continue_token: token,
            ..ListParams::default()
        };
        let invalid = |listing: &Listing, detail: String| ClusterError::Invalid {
            listing: listing.clone(),
            expected: self.kind.clone(),
            detail,
        };
        let request = Request::new(&self.path)
            .list(&params)
            .map_err(|error| invalid(&self.listing, error.to_string()))?;
        let text = self.lister.text(request, &self.listing).await?;
        let page: Page = serde_json::from_str(&text)
            .map_err(|error| invalid(&self.listing, error.to_string()))?;
        drop(text);
        if page.kind.as_deref() != Some(self.kind.as_str()) {
            return Err(invalid(
                &self.listing,
                format!("kind {}", page.kind.as_deref().unwrap_or("(none)")),
            ));
        }
        self.next = page
            .metadata
            .continue_token
            .filter(|token| !token.is_empty())
            .map(Some);
        Ok(Some(page.items.unwrap_or_default()))
    }

    /// How many pages were asked for so far.
    pub fn pages_read(&self) -> usize {
        self.listing.page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collections_are_the_apiservers_paths() {
        let namespace = Scope::Namespace("team-a".to_owned());
        assert_eq!(
            Resource::configmaps().collection(&namespace),
            "/api/v1/namespaces/team-a/configmaps"
        );
        assert_eq!(
            Resource::deployments().collection(&namespace),
            "/apis/apps/v1/namespaces/team-a/deployments"
        );
        assert_eq!(
            Resource::configmaps().collection(&Scope::AllNamespaces),
            "/api/v1/configmaps"
        );
        assert_eq!(
            Resource::deployments().collection(&Scope::AllNamespaces),
            "/apis/apps/v1/deployments"
        );
        // A cluster-scoped kind is listed whole whatever the scope.
        let cluster_scoped = Resource::new("example.com/v1", "Gateway", "gateways", false);
        assert_eq!(
            cluster_scoped.collection(&namespace),
            "/apis/example.com/v1/gateways"
        );
        assert_eq!(cluster_scoped.name(), "gateways.example.com");
        assert_eq!(Resource::deployments().name(), "deployments.apps");
        assert_eq!(Resource::configmaps().name(), "configmaps");
    }

    #[test]
    fn statuses_map_to_their_errors() {
        let listing = Listing {
            resource: "configmaps".to_owned(),
            scope: "in all namespaces".to_owned(),
            page: 2,
        };
        let error = |code: u16| {
            let mut status = kube::core::Status::failure("the message", "Reason");
            status.code = code;
            ClusterError::from_client(listing.clone(), kube::Error::Api(status.boxed()))
        };
        assert!(matches!(
            error(401),
            ClusterError::Forbidden { code: 401, .. }
        ));
        assert!(matches!(
            error(403),
            ClusterError::Forbidden { code: 403, .. }
        ));
        assert!(matches!(error(404), ClusterError::NotFound { .. }));
        assert!(matches!(error(410), ClusterError::Expired { .. }));
        assert!(matches!(error(500), ClusterError::Status { code: 500, .. }));
        let message = error(410).to_string();
        assert!(
            message.starts_with("listing configmaps in all namespaces (page 2): "),
            "{message}"
        );
        assert!(message.contains("the message"), "{message}");
    }
}
