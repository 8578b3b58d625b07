//! The few API calls the self-test makes, each with its own deadline, and
//! the answers sorted into what a user can act on.
//!
//! `kube::Client::send` rather than `request_text`: the API server returns a
//! webhook's warnings only as `Warning` headers, and they say why a webhook
//! that answered left the object alone.

use std::time::Duration;

use kube::client::Body;
use kube::core::Request;
use kube::core::params::{DeleteParams, GetParams, PostParams, Preconditions};
use serde_json::Value;

use super::probe::FIELD_MANAGER;

/// One request that did not give the object.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401 or 403: the credentials are rejected or lack the verb.
    #[error("HTTP {code}: {message}")]
    Forbidden { code: u16, message: String },
    #[error("{message}")]
    NotFound { message: String },
    #[error("{message}")]
    AlreadyExists { message: String },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// No HTTP answer (refused, reset, TLS), or 5xx/429.
    #[error("{0}")]
    Unreachable(String),
    /// Another error status.
    #[error("HTTP {code}: {message}")]
    Rejected { code: u16, message: String },
    #[error("the answer is not a Kubernetes object: {0}")]
    Invalid(String),
}

/// An object the API server answered with, and the warnings it sent along
/// (those of admission webhooks among them).
#[derive(Debug, Clone)]
pub struct Answer {
    pub object: Value,
    pub warnings: Vec<String>,
}

/// A client and the deadline of each request.
#[derive(Clone)]
pub struct Api {
    client: kube::Client,
    timeout: Duration,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

const WEBHOOK_CONFIGURATIONS: &str =
    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";

impl Api {
    /// A client for `config`; every request is abandoned after `timeout`.
    pub fn new(mut config: kube::Config, timeout: Duration) -> Result<Self, kube::Error> {
        config.connect_timeout = Some(timeout);
        config.read_timeout = Some(timeout);
        config.write_timeout = Some(timeout);
        // A failure is reported, not retried: the user reruns the test.
        config.default_retry = false;
        Ok(Self {
            client: kube::Client::try_from(config)?,
            timeout,
        })
    }

    pub async fn webhook_configuration(&self, name: &str) -> Result<Answer, ApiError> {
        let request = Request::new(WEBHOOK_CONFIGURATIONS).get(name, &GetParams::default());
        self.send(request).await
    }

    pub async fn namespace(&self, name: &str) -> Result<Answer, ApiError> {
        let request = Request::new("/api/v1/namespaces").get(name, &GetParams::default());
        self.send(request).await
    }

    /// POST `object` to `collection`; with `dry_run`, `?dryRun=All`: the API
    /// server admits, validates and answers, and stores nothing.
    pub async fn create(
        &self,
        collection: &str,
        object: &Value,
        dry_run: bool,
    ) -> Result<Answer, ApiError> {
        let params = PostParams {
            dry_run,
            field_manager: Some(FIELD_MANAGER.to_owned()),
        };
        let body = serde_json::to_vec(object).map_err(|e| ApiError::Invalid(e.to_string()))?;
        let request = Request::new(collection).create(&params, body);
        self.send(request).await
    }

    /// DELETE `collection/name`; with `uid`, only if the object there is
    /// still that one (so a same-named object made since is never touched).
    pub async fn delete(
        &self,
        collection: &str,
        name: &str,
        uid: Option<&str>,
    ) -> Result<(), ApiError> {
        let params = DeleteParams {
            preconditions: uid.map(|uid| Preconditions {
                uid: Some(uid.to_owned()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let request = Request::new(collection).delete(name, &params);
        self.send(request).await.map(drop)
    }

    async fn send(
        &self,
        request: Result<http::Request<Vec<u8>>, kube::core::request::Error>,
    ) -> Result<Answer, ApiError> {
        let request = request.map_err(|e| ApiError::Invalid(e.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .send(request.map(Body::from))
                .await
                .map_err(|e| ApiError::Unreachable(e.to_string()))?;
            let status = response.status().as_u16();
            let warnings = response
                .headers()
                .get_all(http::header::WARNING)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .map(warning_text)
                .collect();
            let body = response
                .into_body()
                .collect_bytes()
                .await
                .map_err(|e| ApiError::Unreachable(e.to_string()))?;
            Ok::<_, ApiError>((status, warnings, body.to_vec()))
        };
        let (status, warnings, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ApiError::Timeout(self.timeout))??;
        if !(200..300).contains(&status) {
            return Err(status_error(status, &body));
        }
        let object = serde_json::from_slice(&body).map_err(|e| ApiError::Invalid(e.to_string()))?;
        Ok(Answer { object, warnings })
    }
}

/// The text of a `Warning: 299 - "text"` header (RFC 7234), as kubectl shows it.
fn warning_text(header: &str) -> String {
    let text = header.strip_prefix("299 - ").unwrap_or(header).trim();
    let text = text
        .strip_prefix('"')
        .and_then(|text| text.strip_suffix('"'))
        .unwrap_or(text);
    text.replace("\\\"", "\"").replace("\\\\", "\\")
}

/// An error status, from the `Status` body the API server sends with it.
fn status_error(code: u16, body: &[u8]) -> ApiError {
    let status: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let message = status
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect());
    let reason = status.get("reason").and_then(Value::as_str);
    match (code, reason) {
        (401 | 403, _) => ApiError::Forbidden { code, message },
        (404, _) => ApiError::NotFound { message },
        (409, Some("AlreadyExists")) => ApiError::AlreadyExists { message },
        (429 | 500..=599, _) => ApiError::Unreachable(format!("HTTP {code}: {message}")),
        _ => ApiError::Rejected { code, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_headers_read_as_kubectl_shows_them() {
        assert_eq!(
            warning_text(r#"299 - "vmcp-normalizer: ConfigMap not found""#),
            "vmcp-normalizer: ConfigMap not found"
        );
        assert_eq!(warning_text(r#"299 - "say \"hi\"""#), r#"say "hi""#);
    }

    #[test]
    fn statuses_sort_into_what_a_user_can_act_on() {
        let body = |reason: &str| {
            format!(r#"{{"kind":"Status","message":"m","reason":"{reason}"}}"#).into_bytes()
        };
        assert!(matches!(
            status_error(403, &body("Forbidden")),
            ApiError::Forbidden { code: 403, .. }
        ));
        assert!(matches!(
            status_error(401, b"Unauthorized"),
            ApiError::Forbidden { code: 401, .. }
        ));
        assert!(matches!(
            status_error(404, &body("NotFound")),
            ApiError::NotFound { .. }
        ));
        assert!(matches!(
            status_error(409, &body("AlreadyExists")),
            ApiError::AlreadyExists { .. }
        ));
        assert!(matches!(
            status_error(409, &body("Conflict")),
            ApiError::Rejected { code: 409, .. }
        ));
        assert!(matches!(
            status_error(503, b"upstream"),
            ApiError::Unreachable(_)
        ));
        assert!(matches!(
            status_error(422, &body("Invalid")),
            ApiError::Rejected { code: 422, .. }
        ));
    }
}
