//! An in-process stand-in for the Kubernetes API server, for hermetic tests.
//!
//! HTTPS on `127.0.0.1:0` with its own CA, bearer-token authentication, and an
//! in-memory object store keyed by API path
//! (`/api/v1/namespaces/ns/configmaps/name`,
//! `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/name`, ...).
//! Clients reach it through a kubeconfig file like any real cluster.
//!
//! It answers the way kube-apiserver does: `application/json` bodies, objects
//! as stored, and errors as `kind: Status` objects (`apiVersion: v1`,
//! `status: Failure`, `reason`, `code`, `details`, and the real message text).
//! Faults can be injected per method and path: any Status answer, an answer
//! that never comes, a delay, or another client's write landing just before
//! the request; for every request or only the next one.
//!
//! Served: GET of an object, of a collection (a list, in pages), of a
//! discovery document (`/api/v1`, `/apis/GROUP/VERSION`), POST to a
//! collection (create: 201, or 409 `AlreadyExists`), and PUT of an object (replace: 200; 404 when absent; 409
//! `Conflict` when `metadata.resourceVersion` is not the stored one), for
//! namespaced and cluster-scoped kinds alike. Other methods get the
//! apiserver's 405. To add a verb, add an arm to [`State::answer`]: the
//! request body is already read and the store, resource versions and Status
//! builders are there to use. DELETE of an object honours a `uid`
//! precondition (409 `Conflict` when it differs) and answers a `Success` Status.
//!
//! Mutating admission, as the apiserver does it for a create: every stored
//! MutatingWebhookConfiguration webhook whose rules, namespaceSelector and
//! objectSelector match is sent an `admission.k8s.io/v1` AdmissionReview
//! (`dryRun: true` for `?dryRun=All`) over HTTPS at its `clientConfig.url`,
//! trusting only its `caBundle`; its JSON patch is applied and its warnings
//! come back as `Warning` headers. An empty caBundle, a webhook that cannot
//! be reached or a bad answer is skipped under `failurePolicy: Ignore` (the
//! object goes on unchanged) and is a 500 under `Fail`. A dry-run create is
//! answered 201 with the admitted object and stores nothing.
//!
//! Shared by the tests (`mod common`) and the benchmark's standalone stand-in
//! (`examples/apiserver-standin.rs`, which includes this file by path).
#![allow(dead_code)] // each user needs a different part

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// The bearer token the stand-in accepts (any other gets 401).
pub const TOKEN: &str = "standin-token-0123456789";
/// The user the token stands for, as it appears in Forbidden messages.
pub const USER: &str = "system:serviceaccount:vmcp-normalizer:vmcp-normalizer";

/// Something to answer instead of the normal result.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this `Status` (its `code` is the HTTP status).
    Status(Value),
    /// Accept the request and never answer it.
    Hang,
    /// Answer normally, this much later.
    Delay(Duration),
    /// Store this object at its API path first, as if another client's
    /// write had landed just before this request; then answer normally (a
    /// PUT carrying the version it read then gets a real 409 `Conflict`, a
    /// POST of the same name a real 409 `AlreadyExists`).
    WriteFirst(Value),
}

/// One request as the stand-in received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The bearer token, when the request carried one.
    pub token: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// A running stand-in; stops (and drops every open connection) when dropped.
pub struct ApiServer {
    addr: SocketAddr,
    ca_pem: String,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ApiServer {
    /// Start on `127.0.0.1:0`.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("address")).await
    }

    pub async fn start_on(addr: SocketAddr) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (ca_pem, tls) = tls_config();
        let listener = TcpListener::bind(addr).await.expect("bind the stand-in");
        let addr = listener.local_addr().expect("stand-in address");
        let state = Arc::new(State::default());
        let task = tokio::spawn(serve(listener, TlsAcceptor::from(tls), state.clone()));
        Self {
            addr,
            ca_pem,
            state,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// PEM of the CA that signed the stand-in's serving certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A kubeconfig for this stand-in: its URL, its CA as
    /// `certificate-authority-data`, and the bearer token.
    pub fn kubeconfig(&self) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: standin
  cluster:
    server: {url}
    certificate-authority-data: {ca}
users:
- name: standin
  user:
    token: {TOKEN}
contexts:
- name: standin
  context:
    cluster: standin
    user: standin
    namespace: default
current-context: standin
",
            url = self.url()
        )
    }

    /// Write [`Self::kubeconfig`] to `dir/kubeconfig` and return the path.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig()).expect("write kubeconfig");
        path
    }

    /// Store `object` at its API path (from apiVersion, kind, namespace and
    /// name), stamped with a new `resourceVersion` (and a `uid` and
    /// `creationTimestamp` if it has none), as the apiserver would. Returns
    /// the path.
    pub fn insert(&self, object: Value) -> String {
        let path = object_path(&object).expect("apiVersion, kind and name of a known kind");
        self.put(&path, object);
        path
    }

    /// Store `object` at `path` as is but for the stamped metadata.
    pub fn put(&self, path: &str, mut object: Value) {
        self.state.stamp(&mut object);
        self.state.objects().insert(path.to_owned(), object);
    }

    pub fn remove(&self, path: &str) -> Option<Value> {
        self.state.objects().remove(path)
    }

    /// The object stored at `path`.
    pub fn object(&self, path: &str) -> Option<Value> {
        self.state.objects().get(path).cloned()
    }

    /// Answer every `method` request for `path` with `fault` until cleared.
    pub fn fail(&self, method: &str, path: &str, fault: Fault) {
        self.state.faults().insert(
            (method.to_owned(), path.to_owned()),
            (fault, Repeat::Always),
        );
    }

    /// Answer only the next `method` request for `path` with `fault`.
    pub fn fail_once(&self, method: &str, path: &str, fault: Fault) {
        self.state
            .faults()
            .insert((method.to_owned(), path.to_owned()), (fault, Repeat::Once));
    }

    pub fn clear_faults(&self) {
        self.state.faults().clear();
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests().clone()
    }

    /// How many `method` requests for `path` were received.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.state
            .requests()
            .iter()
            .filter(|request| request.method == method && request.path == path)
            .count()
    }
}

/// The API path of a namespaced core object.
pub fn core_path(resource: &str, namespace: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/{resource}/{name}")
}

pub fn configmap_path(namespace: &str, name: &str) -> String {
    core_path("configmaps", namespace, name)
}

/// Kinds the stand-in knows: kind, plural resource, namespaced, and the
/// apiVersion its discovery document lists it under.
const KINDS: &[(&str, &str, bool, &str)] = &[
    ("ConfigMap", "configmaps", true, "v1"),
    ("Secret", "secrets", true, "v1"),
    ("Deployment", "deployments", true, "apps/v1"),
    ("ReplicaSet", "replicasets", true, "apps/v1"),
    ("StatefulSet", "statefulsets", true, "apps/v1"),
    ("DaemonSet", "daemonsets", true, "apps/v1"),
    // Where StatefulSets and DaemonSets keep their rollout history.
    ("ControllerRevision", "controllerrevisions", true, "apps/v1"),
    (
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        false,
        "admissionregistration.k8s.io/v1",
    ),
    ("Namespace", "namespaces", false, "v1"),
    // A custom resource, as a CRD would serve it.
    ("ListenerSet", "listenersets", true, "example.com/v1"),
];

/// Where the apiserver serves `object`: `/api/v1/...` for the core group,
/// `/apis/<group>/<version>/...` for the others.
pub fn object_path(object: &Value) -> Option<String> {
    let field = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
    let api_version = field("/apiVersion")?;
    let kind = field("/kind")?;
    let name = field("/metadata/name")?;
    let (_, resource, namespaced, _) = KINDS.iter().find(|(k, _, _, _)| *k == kind)?;
    let prefix = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    Some(if *namespaced {
        let namespace = field("/metadata/namespace")?;
        format!("{prefix}/namespaces/{namespace}/{resource}/{name}")
    } else {
        format!("{prefix}/{resource}/{name}")
    })
}

/// A request path split the way the apiserver routes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRef {
    /// API group; empty for the core group.
    pub group: String,
    pub resource: String,
    pub namespace: Option<String>,
    /// `None` for a collection.
    pub name: Option<String>,
}

impl ResourceRef {
    pub fn parse(path: &str) -> Option<Self> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (group, rest) = match segments.as_slice() {
            ["api", "v1", rest @ ..] => ("", rest),
            ["apis", group, _version, rest @ ..] => (*group, rest),
            _ => return None,
        };
        let (namespace, rest) = match rest {
            ["namespaces", namespace, rest @ ..] if !rest.is_empty() => (Some(*namespace), rest),
            rest => (None, rest),
        };
        let (resource, name) = match rest {
            [resource] => (*resource, None),
            [resource, name] => (*resource, Some(*name)),
            _ => return None,
        };
        Some(Self {
            group: group.to_owned(),
            resource: resource.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
        })
    }

    /// `configmaps` or `deployments.apps`, as messages name a resource.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// The `details` of a Status about this object.
    pub fn details(&self) -> Value {
        let mut details = json!({"name": self.name.clone().unwrap_or_default()});
        if !self.group.is_empty() {
            details["group"] = json!(self.group);
        }
        details["kind"] = json!(self.resource);
        details
    }
}

/// A `kind: Status` failure exactly as kube-apiserver writes it.
pub fn status(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    });
    if let Some(details) = details {
        status["details"] = details;
    }
    status["code"] = json!(code);
    status
}

/// `configmaps "x" not found` (404 NotFound).
pub fn not_found(object: &ResourceRef) -> Value {
    let name = object.name.as_deref().unwrap_or("");
    status(
        404,
        "NotFound",
        &format!("{} \"{name}\" not found", object.qualified_resource()),
        Some(object.details()),
    )
}

/// What RBAC answers when the user may not `verb` the object (403 Forbidden).
pub fn forbidden(verb: &str, object: &ResourceRef) -> Value {
    let name = object.name.as_deref().unwrap_or("");
    let scope = match &object.namespace {
        Some(namespace) => format!(" in the namespace \"{namespace}\""),
        None => " at the cluster scope".to_owned(),
    };
    status(
        403,
        "Forbidden",
        &format!(
            "{} \"{name}\" is forbidden: User \"{USER}\" cannot {verb} resource \"{}\" in API group \"{}\"{scope}",
            object.qualified_resource(),
            object.resource,
            object.group
        ),
        Some(object.details()),
    )
}

/// `secrets "x" already exists` (409 AlreadyExists), for a create.
pub fn already_exists(object: &ResourceRef) -> Value {
    let name = object.name.as_deref().unwrap_or("");
    status(
        409,
        "AlreadyExists",
        &format!("{} \"{name}\" already exists", object.qualified_resource()),
        Some(object.details()),
    )
}

/// The optimistic-concurrency failure of an update at a stale
/// `resourceVersion` (409 Conflict).
pub fn conflict(object: &ResourceRef) -> Value {
    let name = object.name.as_deref().unwrap_or("");
    status(
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            object.qualified_resource()
        ),
        Some(object.details()),
    )
}

/// 400 BadRequest with the apiserver's `message`.
pub fn bad_request(message: &str) -> Value {
    status(400, "BadRequest", message, None)
}

/// A 500 InternalError with its cause, as when etcd is unhappy.
pub fn internal_error(cause: &str) -> Value {
    status(
        500,
        "InternalError",
        &format!("Internal error occurred: {cause}"),
        Some(json!({"causes": [{"message": cause}]})),
    )
}

/// A fault for GETs of `path`: the 403 Forbidden RBAC answers when the user
/// has no `get` on the resource.
pub fn forbidden_get(path: &str) -> Fault {
    let object = ResourceRef::parse(path).expect("an API object path");
    Fault::Status(forbidden("get", &object))
}

/// Whether an injected fault stays until cleared or answers one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    Always,
    Once,
}

#[derive(Default)]
struct State {
    objects: Mutex<BTreeMap<String, Value>>,
    faults: Mutex<BTreeMap<(String, String), (Fault, Repeat)>>,
    /// Faults for the pages after the first of a list (see [`ApiServer::fail_continued`]).
    continued_faults: Mutex<BTreeMap<String, (Fault, Repeat)>>,
    requests: Mutex<Vec<RecordedRequest>>,
    resource_version: AtomicU64,
}

/// A poisoned lock only means another test thread panicked; the data is
/// still what it was.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl State {
    fn objects(&self) -> MutexGuard<'_, BTreeMap<String, Value>> {
        lock(&self.objects)
    }

    fn faults(&self) -> MutexGuard<'_, BTreeMap<(String, String), (Fault, Repeat)>> {
        lock(&self.faults)
    }

    fn requests(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        lock(&self.requests)
    }

    /// A new resourceVersion, and the fields the apiserver sets on create.
    fn stamp(&self, object: &mut Value) {
        let version = self.resource_version.fetch_add(1, Ordering::Relaxed) + 1000;
        let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
            return;
        };
        metadata.insert("resourceVersion".into(), json!(version.to_string()));
        metadata
            .entry("uid")
            .or_insert_with(|| json!(format!("00000000-0000-4000-8000-{version:012}")));
        metadata
            .entry("creationTimestamp")
            .or_insert_with(|| json!("2026-11-25T06:00:00Z"));
    }

    async fn handle(&self, request: Request<Body>) -> Response {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
            .await
            .unwrap_or_default();
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::to_owned);
        let recorded = RecordedRequest {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            token: token.clone(),
            content_type: parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
            body: body.to_vec(),
        };
        self.requests().push(recorded);

        if token.as_deref() != Some(TOKEN) {
            return json_response(&status(401, "Unauthorized", "Unauthorized", None));
        }
        let fault = {
            let mut faults = self.faults();
            let key = (parts.method.to_string(), parts.uri.path().to_owned());
            match faults.get(&key) {
                Some((_, Repeat::Once)) => faults.remove(&key).map(|(fault, _)| fault),
                Some((fault, Repeat::Always)) => Some(fault.clone()),
                None => None,
            }
        };
        match fault {
            Some(Fault::Status(status)) => return json_response(&status),
            Some(Fault::Hang) => std::future::pending::<()>().await,
            Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
            Some(Fault::WriteFirst(mut object)) => {
                let path = object_path(&object).unwrap_or_else(|| parts.uri.path().to_owned());
                self.stamp(&mut object);
                self.objects().insert(path, object);
            }
            None => {}
        }
        if parts.method == Method::GET
            && let Some(response) = discovery(parts.uri.path())
        {
            return response;
        }
        if parts.method == Method::GET
            && let Some(response) = self.list(parts.uri.path(), parts.uri.query()).await
        {
            return response;
        }
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok());
        // A create goes through mutating admission first, as in the apiserver.
        if parts.method == Method::POST {
            return self
                .create_admitted(parts.uri.path(), parts.uri.query(), content_type, &body)
                .await;
        }
        self.answer(&parts.method, parts.uri.path(), content_type, &body)
    }

    /// The normal answer to a request.
    fn answer(
        &self,
        method: &Method,
        path: &str,
        content_type: Option<&str>,
        body: &Bytes,
    ) -> Response {
        let Some(object) = ResourceRef::parse(path) else {
            return json_response(&status(
                404,
                "NotFound",
                "the server could not find the requested resource",
                Some(json!({})),
            ));
        };
        match (method, &object.name) {
            (&Method::GET, Some(_)) => match self.objects().get(path) {
                Some(stored) => json_response_with(StatusCode::OK, stored),
                None => json_response(&not_found(&object)),
            },
            (&Method::POST, None) => match decode_body(content_type, body) {
                Ok(body) => self.create(path, object, body),
                Err(status) => json_response(&status),
            },
            (&Method::PUT, Some(_)) => match decode_body(content_type, body) {
                Ok(body) => self.replace(path, &object, body),
                Err(status) => json_response(&status),
            },
            (&Method::DELETE, Some(_)) => self.delete(path, &object, body),
            _ => json_response(&status(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
                Some(json!({})),
            )),
        }
    }
}

impl State {
    /// POST to a collection: store the object under its name, as created.
    fn create(&self, collection: &str, mut object: ResourceRef, mut body: Value) -> Response {
        let Some(name) = body.pointer("/metadata/name").and_then(Value::as_str) else {
            return json_response(&status(
                422,
                "Invalid",
                "metadata.name: Required value: name or generateName is required",
                None,
            ));
        };
        object.name = Some(name.to_owned());
        let path = format!("{collection}/{name}");
        let metadata = &mut body["metadata"];
        if metadata
            .get("resourceVersion")
            .is_some_and(|v| !v.is_null())
        {
            return json_response(&bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        if let Some(namespace) = &object.namespace {
            match metadata.get("namespace").and_then(Value::as_str) {
                None => metadata["namespace"] = json!(namespace),
                Some(given) if given == namespace => {}
                Some(_) => {
                    return json_response(&bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
            }
        }
        let mut objects = self.objects();
        if objects.contains_key(&path) {
            return json_response(&already_exists(&object));
        }
        self.stamp(&mut body);
        objects.insert(path, body.clone());
        json_response_with(StatusCode::CREATED, &body)
    }

    /// PUT of an object: replace it if the client read the stored version.
    fn replace(&self, path: &str, object: &ResourceRef, mut body: Value) -> Response {
        let name = object.name.as_deref().unwrap_or("");
        let given = body.pointer("/metadata/name").and_then(Value::as_str);
        if given != Some(name) {
            return json_response(&bad_request(&format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                given.unwrap_or("")
            )));
        }
        let mut objects = self.objects();
        let Some(stored) = objects.get(path) else {
            return json_response(&not_found(object));
        };
        let version = |object: &Value| {
            object
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        // No resourceVersion is an unconditional update, which the apiserver
        // allows; a different one is a stale read.
        if let Some(read) = version(&body)
            && Some(&read) != version(stored).as_ref()
        {
            return json_response(&conflict(object));
        }
        // Fields the server owns survive a replace.
        for field in ["uid", "creationTimestamp", "namespace"] {
            if let Some(value) = stored["metadata"].get(field) {
                body["metadata"][field] = value.clone();
            }
        }
        self.stamp(&mut body);
        objects.insert(path.to_owned(), body.clone());
        json_response_with(StatusCode::OK, &body)
    }
}

// ---- Lists: GET of a collection, a page at a time -------------------------
//
// As kube-apiserver answers them: `kind: ConfigMapList` (the kind's name plus
// `List`), `metadata.resourceVersion`, and with `limit`, pages ordered by
// namespace and name, `metadata.continue` (base64 JSON naming the last key,
// as the apiserver's tokens do) and `remainingItemCount`. Items carry no
// `apiVersion` or `kind`, as in a real list. `labelSelector` (`k=v`, `k==v`,
// `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, comma-separated) and
// `fieldSelector` (`metadata.name`, `metadata.namespace`) filter. The stand-in's own faults apply to every
// page; [`ApiServer::fail_continued`] to the pages after the first.

impl ApiServer {
    /// Answer requests for list `path` that carry a `continue` token (page 2
    /// on) with `fault`: always, or only the next one.
    pub fn fail_continued(&self, path: &str, fault: Fault, once: bool) {
        let repeat = if once { Repeat::Once } else { Repeat::Always };
        lock(&self.state.continued_faults).insert(path.to_owned(), (fault, repeat));
    }

    /// The query parameters of every GET of list `path`, in order.
    pub fn list_queries(&self, path: &str) -> Vec<BTreeMap<String, String>> {
        self.requests()
            .iter()
            .filter(|request| request.method == "GET" && request.path == path)
            .map(|request| query_pairs(request.query.as_deref()))
            .collect()
    }
}

/// 410 Gone for a `continue` token the apiserver no longer serves, with
/// its real message.
pub fn expired() -> Value {
    status(
        410,
        "Expired",
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
        None,
    )
}

/// `a=1&b=x%2Cy` as a map, percent-decoded.
pub fn query_pairs(query: Option<&str>) -> BTreeMap<String, String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `labels` satisfy a label selector: equality-based (`k=v`,
/// `k==v`, `k!=v`) and set-based (`k in (a,b)`, `k notin (a,b)`, `k`, `!k`)
/// requirements, comma-separated.
fn labels_match(selector: &str, labels: Option<&Value>) -> bool {
    let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
    requirements(selector).iter().all(|requirement| {
        let set = |operator: &str| {
            let (key, values) = requirement.split_once(&format!(" {operator} "))?;
            let values = values.trim().strip_prefix('(')?.strip_suffix(')')?;
            Some((
                key.trim(),
                values.split(',').map(str::trim).collect::<Vec<_>>(),
            ))
        };
        if let Some((key, values)) = set("notin") {
            !label(key).is_some_and(|value| values.contains(&value))
        } else if let Some((key, values)) = set("in") {
            label(key).is_some_and(|value| values.contains(&value))
        } else if let Some((key, value)) = requirement.split_once("!=") {
            label(key.trim()) != Some(value.trim())
        } else if let Some((key, value)) = requirement
            .split_once("==")
            .or_else(|| requirement.split_once('='))
        {
            label(key.trim()) == Some(value.trim())
        } else if let Some(key) = requirement.strip_prefix('!') {
            label(key.trim()).is_none()
        } else {
            label(requirement).is_some()
        }
    })
}

/// A selector's requirements: split at the commas outside parentheses.
fn requirements(selector: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (at, byte) in selector.bytes().enumerate() {
        match byte {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => {
                out.push(selector[start..at].trim());
                start = at + 1;
            }
            _ => {}
        }
    }
    out.push(selector[start..].trim());
    out.retain(|requirement| !requirement.is_empty());
    out
}

/// The discovery document of a group version the stand-in serves (`GET
/// /api/v1`, `/apis/GROUP/VERSION`), as kube-apiserver writes it (with a
/// subresource, as real ones have); `None` for any other path (a group
/// version it does not serve then gets the usual 404).
fn discovery(path: &str) -> Option<Response> {
    let group_version = match path.trim_end_matches('/').split('/').collect::<Vec<_>>()[..] {
        ["", "api", version] => version.to_owned(),
        ["", "apis", group, version] => format!("{group}/{version}"),
        _ => return None,
    };
    let resources: Vec<Value> = KINDS
        .iter()
        .filter(|(_, _, _, served)| *served == group_version)
        .flat_map(|(kind, plural, namespaced, _)| {
            [
                json!({"name": plural, "singularName": kind.to_lowercase(),
                       "namespaced": namespaced, "kind": kind,
                       "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}),
                json!({"name": format!("{plural}/status"), "singularName": "",
                       "namespaced": namespaced, "kind": kind,
                       "verbs": ["get", "patch", "update"]}),
            ]
        })
        .collect();
    if resources.is_empty() {
        return None;
    }
    Some(json_response_with(
        StatusCode::OK,
        &json!({"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": group_version, "resources": resources}),
    ))
}

impl State {
    /// A GET of a collection this stand-in stores, answered as a list;
    /// `None` for anything else.
    async fn list(&self, path: &str, query: Option<&str>) -> Option<Response> {
        let collection = ResourceRef::parse(path).filter(|r| r.name.is_none())?;
        let (kind, _, _, _) = KINDS
            .iter()
            .find(|(_, plural, _, _)| *plural == collection.resource)?;
        let params = query_pairs(query);
        let token = params.get("continue").filter(|token| !token.is_empty());
        if token.is_some() {
            let fault = {
                let mut faults = lock(&self.continued_faults);
                match faults.get(path) {
                    Some((_, Repeat::Once)) => faults.remove(path).map(|(fault, _)| fault),
                    Some((fault, Repeat::Always)) => Some(fault.clone()),
                    None => None,
                }
            };
            match fault {
                Some(Fault::Status(status)) => return Some(json_response(&status)),
                Some(Fault::Hang) => std::future::pending::<()>().await,
                Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
                Some(Fault::WriteFirst(_)) | None => {}
            }
        }
        let start = match token.map(|token| decode_continue(token)) {
            None => None,
            Some(Some(start)) => Some(start),
            Some(None) => {
                return Some(json_response(&bad_request(
                    "continue key is not valid: illegal base64 data",
                )));
            }
        };
        let field_selector = params
            .get("fieldSelector")
            .map(String::as_str)
            .unwrap_or("");
        let mut fields = Vec::new();
        for requirement in field_selector.split(',').filter(|r| !r.is_empty()) {
            match requirement.split_once('=') {
                Some((field @ ("metadata.name" | "metadata.namespace"), value)) => {
                    fields.push((field, value.trim_start_matches('=')));
                }
                _ => {
                    return Some(json_response(&bad_request(&format!(
                        "\"{requirement}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                    ))));
                }
            }
        }
        let labels = params
            .get("labelSelector")
            .map(String::as_str)
            .unwrap_or("");
        let limit = params
            .get("limit")
            .and_then(|limit| limit.parse::<usize>().ok())
            .filter(|&limit| limit > 0);
        let resource_version = (self.resource_version.load(Ordering::Relaxed) + 999).to_string();

        let objects = self.objects();
        let matching: Vec<(&String, &Value)> = objects
            .iter()
            .filter(|(key, object)| {
                let Some(stored) = ResourceRef::parse(key) else {
                    return false;
                };
                stored.group == collection.group
                    && stored.resource == collection.resource
                    && (collection.namespace.is_none() || stored.namespace == collection.namespace)
                    && start.as_deref().is_none_or(|start| key.as_str() > start)
                    && labels_match(labels, object.pointer("/metadata/labels"))
                    && fields.iter().all(|(field, value)| {
                        let key = field.trim_start_matches("metadata.");
                        object["metadata"][key].as_str() == Some(*value)
                    })
            })
            .collect();
        let page = &matching[..limit.map_or(matching.len(), |l| l.min(matching.len()))];
        let remaining = matching.len() - page.len();
        let last = page.last().map(|(key, _)| (*key).clone());
        let items: Vec<Value> = page
            .iter()
            .map(|(_, object)| {
                let mut item = (*object).clone();
                if let Some(item) = item.as_object_mut() {
                    item.remove("apiVersion");
                    item.remove("kind");
                }
                item
            })
            .collect();
        drop(objects);
        let mut metadata = json!({"resourceVersion": resource_version});
        if remaining > 0
            && let Some(last) = last
        {
            metadata["continue"] = json!(encode_continue(&resource_version, &last));
            metadata["remainingItemCount"] = json!(remaining);
        }
        let api_version = if collection.group.is_empty() {
            "v1".to_owned()
        } else {
            format!("{}/v1", collection.group)
        };
        Some(json_response_with(
            StatusCode::OK,
            &json!({
                "kind": format!("{kind}List"),
                "apiVersion": api_version,
                "metadata": metadata,
                "items": items,
            }),
        ))
    }
}

/// The apiserver's continue token: base64 of
/// `{"v":"meta.k8s.io/v1","rv":N,"start":"<key>\u0000"}`.
fn encode_continue(resource_version: &str, last_key: &str) -> String {
    let token = json!({
        "v": "meta.k8s.io/v1",
        "rv": resource_version.parse::<u64>().unwrap_or(0),
        "start": format!("{last_key}\u{0}"),
    });
    base64::engine::general_purpose::URL_SAFE.encode(token.to_string())
}

/// The last key a token names, or `None` if it is not one of ours.
fn decode_continue(token: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .ok()?;
    let token: Value = serde_json::from_slice(&bytes).ok()?;
    let start = token.get("start")?.as_str()?;
    Some(start.trim_end_matches('\u{0}').to_owned())
}

/// A write's body as JSON, or the Status the apiserver answers instead.
fn decode_body(content_type: Option<&str>, body: &Bytes) -> Result<Value, Value> {
    let media_type = content_type
        .and_then(|value| value.split(';').next())
        .map(str::trim);
    if media_type != Some("application/json") {
        return Err(status(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
            None,
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(object) if object.get("metadata").is_some_and(Value::is_object) => Ok(object),
        Ok(_) => Err(bad_request("the object has no metadata")),
        Err(error) => Err(bad_request(&format!(
            "couldn't get version/kind; json parse error: {error}"
        ))),
    }
}

/// A Status answer, with its `code` as the HTTP status.
fn json_response(status: &Value) -> Response {
    let code = status["code"]
        .as_u64()
        .and_then(|code| u16::try_from(code).ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response_with(code, status)
}

fn json_response_with(code: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        code,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

/// Accept loop; every connection task is aborted with it.
async fn serve(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<State>) {
    let router = axum::Router::new().fallback(move |request: Request<Body>| {
        let state = state.clone();
        async move { state.handle(request).await }
    });
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let acceptor = acceptor.clone();
                let router = router.clone();
                connections.spawn(async move {
                    let _ = stream.set_nodelay(true);
                    let Ok(tls) = acceptor.accept(stream).await else { return };
                    let service = TowerToHyperService::new(router);
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        }
    }
}

/// A fresh CA and a serving certificate for 127.0.0.1 and localhost.
fn tls_config() -> (String, Arc<rustls::ServerConfig>) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kube-apiserver stand-in CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("serving key");
    let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("serving params");
    let cert = params
        .signed_by(&key, &issuer)
        .expect("serving certificate");

    let chain = vec![CertificateDer::from(cert.der().to_vec())];
    let key = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).expect("key PEM");
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("serving certificate and key");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (ca_cert.pem(), Arc::new(config))
}

// ------------------------------------------------- DELETE and admission

impl State {
    /// DELETE of an object, with the `uid` precondition of DeleteOptions.
    fn delete(&self, path: &str, object: &ResourceRef, body: &Bytes) -> Response {
        let options: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let mut objects = self.objects();
        let Some(stored) = objects.get(path) else {
            return json_response(&not_found(object));
        };
        let stored_uid = stored
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if let Some(uid) = options
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            && uid != stored_uid
        {
            return json_response(&status(
                409,
                "Conflict",
                &format!(
                    "Operation cannot be fulfilled on {} \"{}\": Precondition failed: UID in precondition: {uid}, UID in object meta: {stored_uid}",
                    object.qualified_resource(),
                    object.name.as_deref().unwrap_or("")
                ),
                Some(object.details()),
            ));
        }
        objects.remove(path);
        let mut details = object.details();
        details["uid"] = json!(stored_uid);
        json_response_with(
            StatusCode::OK,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                    "status": "Success", "details": details}),
        )
    }

    /// POST to a collection: mutating admission, then create, or with
    /// `?dryRun=All` the answer a create would give, storing nothing.
    async fn create_admitted(
        &self,
        path: &str,
        query: Option<&str>,
        content_type: Option<&str>,
        body: &Bytes,
    ) -> Response {
        let Some(collection) = ResourceRef::parse(path).filter(|r| r.name.is_none()) else {
            return self.answer(&Method::POST, path, content_type, body);
        };
        let mut object = match decode_body(content_type, body) {
            Ok(object) => object,
            Err(status) => return json_response(&status),
        };
        let dry_run = match query_value(query, "dryRun") {
            None => false,
            Some("All") => true,
            Some(other) => {
                return json_response(&bad_request(&format!(
                    "dryRun: Unsupported value: \"{other}\": supported values: \"All\""
                )));
            }
        };
        // The apiserver sets the namespace from the URL before admission.
        if let Some(namespace) = &collection.namespace
            && object.pointer("/metadata/namespace").is_none()
        {
            object["metadata"]["namespace"] = json!(namespace);
        }
        let (object, warnings) = match self.admit(path, &collection, object, dry_run).await {
            Ok(admitted) => admitted,
            Err(status) => return json_response(&status),
        };
        let mut response = if dry_run {
            self.dry_run_create(path, collection, object)
        } else {
            self.create(path, collection, object)
        };
        for warning in warnings {
            let escaped = warning.replace('\\', "\\\\").replace('"', "\\\"");
            if let Ok(value) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
                response.headers_mut().append(header::WARNING, value);
            }
        }
        response
    }

    /// What a create answers, without storing: 409 for a taken name, else
    /// the object with the fields a create sets (but no resourceVersion).
    fn dry_run_create(&self, collection: &str, object: ResourceRef, mut body: Value) -> Response {
        let Some(name) = body.pointer("/metadata/name").and_then(Value::as_str) else {
            return json_response(&status(
                422,
                "Invalid",
                "metadata.name: Required value: name or generateName is required",
                None,
            ));
        };
        let path = format!("{collection}/{name}");
        if self.objects().contains_key(&path) {
            let mut taken = object;
            taken.name = Some(name.to_owned());
            return json_response(&already_exists(&taken));
        }
        self.stamp(&mut body);
        if let Some(metadata) = body["metadata"].as_object_mut() {
            metadata.remove("resourceVersion");
        }
        json_response_with(StatusCode::CREATED, &body)
    }

    /// Call every matching webhook in turn (configurations in name order, as
    /// the apiserver does); the admitted object and the warnings.
    async fn admit(
        &self,
        path: &str,
        collection: &ResourceRef,
        mut object: Value,
        dry_run: bool,
    ) -> Result<(Value, Vec<String>), Value> {
        let configurations: Vec<Value> = self
            .objects()
            .iter()
            .filter(|(key, _)| key.starts_with(WEBHOOK_CONFIGURATIONS))
            .map(|(_, configuration)| configuration.clone())
            .collect();
        let namespace_labels = collection
            .namespace
            .as_deref()
            .map(|namespace| self.namespace_labels(namespace));
        let mut warnings = Vec::new();
        for configuration in &configurations {
            let webhooks = configuration["webhooks"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for webhook in &webhooks {
                if !rules_match(webhook, path, &collection.resource)
                    || namespace_labels
                        .as_ref()
                        .is_some_and(|labels| !selects(&webhook["namespaceSelector"], labels))
                    || !selects(&webhook["objectSelector"], &object["metadata"]["labels"])
                {
                    continue;
                }
                match call_webhook(webhook, path, &object, dry_run).await {
                    Ok(Admitted::Allowed {
                        patch,
                        warnings: more,
                    }) => {
                        warnings.extend(more);
                        if let Some(patch) = patch
                            && let Err(error) = json_patch::patch(&mut object, &patch)
                        {
                            return Err(internal_error(&format!(
                                "the patch of webhook {} does not apply: {error}",
                                webhook["name"]
                            )));
                        }
                    }
                    Ok(Admitted::Denied(message)) => {
                        return Err(status(
                            400,
                            "BadRequest",
                            &format!(
                                "admission webhook {} denied the request: {message}",
                                webhook["name"]
                            ),
                            None,
                        ));
                    }
                    // failurePolicy defaults to Fail in admissionregistration/v1.
                    Err(error) if webhook["failurePolicy"] == "Ignore" => {
                        let _ = error; // the apiserver only logs it
                    }
                    Err(error) => {
                        return Err(internal_error(&format!(
                            "failed calling webhook {}: {error}",
                            webhook["name"]
                        )));
                    }
                }
            }
        }
        Ok((object, warnings))
    }

    /// A namespace's labels, with the one the apiserver always sets.
    fn namespace_labels(&self, namespace: &str) -> Value {
        let mut labels = self
            .objects()
            .get(&format!("/api/v1/namespaces/{namespace}"))
            .and_then(|stored| stored.pointer("/metadata/labels").cloned())
            .unwrap_or_else(|| json!({}));
        labels["kubernetes.io/metadata.name"] = json!(namespace);
        labels
    }
}

const WEBHOOK_CONFIGURATIONS: &str =
    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/";

/// The value of `name` in a query string (no percent-decoding: the values
/// the stand-in reads never need it).
fn query_value<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// (group, version) of an API path: `/api/v1/...` or `/apis/g/v/...`.
fn group_version(path: &str) -> (String, String) {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api", version, ..] => (String::new(), (*version).to_owned()),
        ["apis", group, version, ..] => ((*group).to_owned(), (*version).to_owned()),
        _ => (String::new(), String::new()),
    }
}

/// Whether a webhook's rules cover CREATE of `resource` at `path`.
fn rules_match(webhook: &Value, path: &str, resource: &str) -> bool {
    let (group, version) = group_version(path);
    let has = |rule: &Value, field: &str, want: &str| {
        rule[field].as_array().is_some_and(|items| {
            items
                .iter()
                .any(|item| item == "*" || item.as_str() == Some(want))
        })
    };
    webhook["rules"].as_array().is_some_and(|rules| {
        rules.iter().any(|rule| {
            has(rule, "operations", "CREATE")
                && has(rule, "apiGroups", &group)
                && has(rule, "apiVersions", &version)
                && has(rule, "resources", resource)
        })
    })
}

/// A label selector against a `metadata.labels` map, as the apiserver reads it.
fn selects(selector: &Value, labels: &Value) -> bool {
    let label = |key: &str| labels.get(key).and_then(Value::as_str);
    let match_labels = selector["matchLabels"].as_object();
    if match_labels.is_some_and(|wanted| {
        wanted
            .iter()
            .any(|(key, value)| label(key) != value.as_str())
    }) {
        return false;
    }
    let expressions = selector["matchExpressions"].as_array();
    expressions.into_iter().flatten().all(|expression| {
        let key = expression["key"].as_str().unwrap_or("");
        let values = expression["values"].as_array();
        let listed = |value: &str| values.is_some_and(|values| values.iter().any(|v| v == value));
        match expression["operator"].as_str() {
            Some("In") => label(key).is_some_and(listed),
            Some("NotIn") => !label(key).is_some_and(listed),
            Some("Exists") => label(key).is_some(),
            Some("DoesNotExist") => label(key).is_none(),
            _ => false,
        }
    })
}

/// A webhook's verdict.
enum Admitted {
    Allowed {
        patch: Option<json_patch::Patch>,
        warnings: Vec<String>,
    },
    Denied(String),
}

/// Send `object` to the webhook as the apiserver does; an error is a call
/// that failed (and falls under the failurePolicy).
async fn call_webhook(
    webhook: &Value,
    path: &str,
    object: &Value,
    dry_run: bool,
) -> Result<Admitted, String> {
    use base64::engine::general_purpose::STANDARD;
    let ca_bundle = webhook["clientConfig"]["caBundle"].as_str().unwrap_or("");
    if ca_bundle.is_empty() {
        // The apiserver then trusts the system roots, which did not sign
        // a test certificate.
        return Err(
            "tls: failed to verify certificate: x509: certificate signed by unknown authority"
                .to_owned(),
        );
    }
    let Some(url) = webhook["clientConfig"]["url"].as_str() else {
        return Err("the stand-in calls webhooks by clientConfig.url only".to_owned());
    };
    let ca_pem = STANDARD.decode(ca_bundle).map_err(|e| e.to_string())?;
    let ca = reqwest::Certificate::from_pem(&ca_pem).map_err(|e| e.to_string())?;
    let timeout = Duration::from_secs(webhook["timeoutSeconds"].as_u64().unwrap_or(10));
    let mut client = reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(timeout);
    // `localhost` is the test certificate's name; reach it on IPv4 loopback.
    if let Some(port) = url
        .strip_prefix("https://localhost:")
        .and_then(|rest| rest.split(['/', '?']).next())
        .and_then(|port| port.parse::<u16>().ok())
    {
        client = client.resolve("localhost", SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let client = client.build().map_err(|e| e.to_string())?;

    let (group, version) = group_version(path);
    let resource = ResourceRef::parse(path)
        .map(|r| r.resource)
        .unwrap_or_default();
    let kind = json!({"group": group, "version": version, "kind": object["kind"]});
    let gvr = json!({"group": group, "version": version, "resource": resource});
    let mut options = json!({"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"});
    if dry_run {
        options["dryRun"] = json!(["All"]);
    }
    let uid = format!(
        "5f0c8a7e-0000-4000-8000-{:012}",
        REVIEWS.fetch_add(1, Ordering::Relaxed)
    );
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": kind,
            "resource": gvr,
            "requestKind": kind,
            "requestResource": gvr,
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"],
            "operation": "CREATE",
            "userInfo": {"username": USER, "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": object,
            "oldObject": null,
            "dryRun": dry_run,
            "options": options,
        }
    });
    let separator = if url.contains('?') { '&' } else { '?' };
    let response = client
        .post(format!("{url}{separator}timeout={}s", timeout.as_secs()))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&review).map_err(|e| e.to_string())?)
        .send()
        .await
        .map_err(|e| format!("Post \"{url}\": {e}"))?;
    if !response.status().is_success() {
        return Err(format!(
            "the server responded with HTTP {}",
            response.status()
        ));
    }
    let answer: Value = response.json().await.map_err(|e| e.to_string())?;
    let response = &answer["response"];
    if response["uid"] != uid.as_str() {
        return Err(format!(
            "expected response.uid={uid:?}, got {}",
            response["uid"]
        ));
    }
    let warnings = response["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if response["allowed"] != true {
        let message = response["status"]["message"].as_str().unwrap_or("");
        return Ok(Admitted::Denied(message.to_owned()));
    }
    let patch = match response["patch"].as_str() {
        None => None,
        Some(patch) => {
            if response["patchType"] != "JSONPatch" {
                return Err("patch without patchType JSONPatch".to_owned());
            }
            let bytes = STANDARD.decode(patch).map_err(|e| e.to_string())?;
            Some(serde_json::from_slice(&bytes).map_err(|e| e.to_string())?)
        }
    };
    Ok(Admitted::Allowed { patch, warnings })
}

/// Review uids, unique within the process.
static REVIEWS: AtomicU64 = AtomicU64::new(1);
