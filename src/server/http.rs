//! The webhook port's routes: `POST /mutate` and HTTP-level errors as JSON.

use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody as _};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::time::Instant;

use super::duration::parse_go_duration;
use super::limits::{BodyError, RequestLimits, Shed, read_body};
use crate::admission::Admission;

pub use super::limits::MAX_BODY_BYTES;

/// The apiserver's default webhook timeout, used when `?timeout=` is absent.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest `timeoutSeconds` a webhook configuration may set.
const MAX_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
struct Webhook {
    admission: Admission,
    limits: RequestLimits,
    /// The longest `?timeout=` taken at its word.
    request_timeout: Duration,
}

pub fn webhook_router(
    admission: Admission,
    limits: RequestLimits,
    request_timeout: Duration,
) -> Router {
    Router::new()
        .route("/mutate", post(mutate).fallback(method_not_allowed))
        .fallback(not_found)
        .with_state(Webhook {
            admission,
            limits,
            request_timeout,
        })
}

/// One review: admitted within the budgets or answered 503 at once; body and
/// answer by one deadline inside the apiserver's timeout, however slowly the
/// client sends.
async fn mutate(
    State(webhook): State<Webhook>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let received = Instant::now();
    let budget = admission_budget(query.as_deref(), webhook.request_timeout);
    let deadline = received + budget;
    let admission = &webhook.admission;
    if !is_json(&headers) {
        return error_response(
            admission,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json".to_owned(),
        );
    }
    // HTTP/1 and HTTP/2 both hold a body to its declared length.
    let declared = body
        .size_hint()
        .exact()
        .map(|length| usize::try_from(length).unwrap_or(usize::MAX));
    if declared.is_some_and(|length| length > MAX_BODY_BYTES) {
        return too_large(admission);
    }
    let admitted = match webhook.limits.admit(declared) {
        Ok(admitted) => admitted,
        Err(shed) => return overloaded(admission, shed),
    };
    let body = match read_body(body, admitted.body_limit, deadline).await {
        Ok(body) => body,
        Err(BodyError::TooLarge(_)) => return too_large(admission),
        Err(error @ BodyError::TimedOut) => {
            return error_response(admission, StatusCode::REQUEST_TIMEOUT, error.to_string());
        }
        Err(error @ BodyError::Read(_)) => {
            return error_response(admission, StatusCode::BAD_REQUEST, error.to_string());
        }
    };
    let answer = admission.review_since(&body, received, budget).await;
    drop(body);
    drop(admitted);
    match answer {
        Ok(review) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            review,
        )
            .into_response(),
        Err(error) if error.is_bad_request() => {
            error_response(admission, StatusCode::BAD_REQUEST, error.to_string())
        }
        Err(error) => {
            tracing::error!(%error, "cannot answer an admission review");
            error_response(
                admission,
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error".to_owned(),
            )
        }
    }
}

fn too_large(admission: &Admission) -> Response {
    error_response(
        admission,
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("body is larger than {MAX_BODY_BYTES} bytes"),
    )
}

/// 503 at once, counted by the budget that is spent.
fn overloaded(admission: &Admission, shed: Shed) -> Response {
    admission.metrics().request_shed(shed.as_str());
    error_response(
        admission,
        StatusCode::SERVICE_UNAVAILABLE,
        format!("overloaded ({} limit reached); try again", shed.as_str()),
    )
}

/// The time we give ourselves to read and answer a review: 90% of what the
/// apiserver waits (its `?timeout=`, at most `request_timeout`), leaving the
/// rest for the trip back.
fn admission_budget(query: Option<&str>, request_timeout: Duration) -> Duration {
    let timeout = query
        .into_iter()
        .flat_map(|query| query.split('&'))
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "timeout")
        .and_then(|(_, value)| parse_go_duration(value).ok())
        .unwrap_or(DEFAULT_TIMEOUT)
        .min(request_timeout)
        .min(MAX_TIMEOUT);
    timeout.mul_f64(0.9)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case("application/json"))
}

async fn method_not_allowed(State(webhook): State<Webhook>) -> Response {
    let mut response = error_response(
        &webhook.admission,
        StatusCode::METHOD_NOT_ALLOWED,
        "use POST".to_owned(),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

async fn not_found(State(webhook): State<Webhook>) -> Response {
    error_response(
        &webhook.admission,
        StatusCode::NOT_FOUND,
        "no such endpoint; admission reviews go to POST /mutate".to_owned(),
    )
}

/// `{"code": 400, "message": "..."}`, counted by status.
fn error_response(admission: &Admission, status: StatusCode, message: String) -> Response {
    admission.metrics().http_rejection(status);
    tracing::debug!(status = status.as_u16(), %message, "request rejected");
    let body = serde_json::json!({ "code": status.as_u16(), "message": message });
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    use crate::metrics::Metrics;

    fn router() -> Router {
        webhook_router(
            Admission::new(Arc::new(Metrics::new())),
            RequestLimits::new(4, 2 * MAX_BODY_BYTES),
            Duration::from_secs(30),
        )
    }

    async fn send(request: Request<Body>) -> (StatusCode, serde_json::Value) {
        let response = router().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap_or_default())
    }

    #[test]
    fn budget_follows_the_apiserver_timeout() {
        let cap = Duration::from_secs(30);
        assert_eq!(admission_budget(None, cap), Duration::from_secs(9));
        assert_eq!(
            admission_budget(Some("timeout=10s"), cap),
            Duration::from_secs(9)
        );
        assert_eq!(
            admission_budget(Some("a=b&timeout=1s"), cap),
            Duration::from_millis(900)
        );
        assert_eq!(
            admission_budget(Some("timeout=5m"), cap),
            Duration::from_secs(27)
        );
        assert_eq!(
            admission_budget(Some("timeout=soon"), cap),
            Duration::from_secs(9)
        );
        // The server's own cap wins over a longer ?timeout=.
        let cap = Duration::from_secs(3);
        assert_eq!(
            admission_budget(Some("timeout=30s"), cap),
            Duration::from_millis(2700)
        );
        assert_eq!(admission_budget(None, cap), Duration::from_millis(2700));
    }

    #[tokio::test]
    async fn http_errors_are_json() {
        let post = |content_type: &str, body: &'static str| {
            Request::post("/mutate")
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(body))
                .unwrap()
        };
        let (status, body) = send(post("text/plain", "{}")).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(body["code"], 415);

        let (status, body) = send(post("application/json; charset=utf-8", "{")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("truncated body")
        );

        let get = Request::get("/mutate").body(Body::empty()).unwrap();
        let response = router().oneshot(get).await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "POST");

        let (status, _) = send(Request::get("/nope").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn oversized_body_is_413() {
        let body = vec![b' '; MAX_BODY_BYTES + 1];
        let request = Request::post("/mutate")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        let (status, body) = send(request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["code"], 413);
    }
}
