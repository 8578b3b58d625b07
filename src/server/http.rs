//! The webhook port's routes: `POST /mutate` and HTTP-level errors as JSON.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::duration::parse_go_duration;
use crate::admission::Admission;

/// A ConfigMap is at most 1 MiB and a review carries `object` and `oldObject`
/// (UPDATE), JSON-escaped: 8 MiB leaves ample room.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The apiserver's default webhook timeout, used when `?timeout=` is absent.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest `timeoutSeconds` a webhook configuration may set.
const MAX_TIMEOUT: Duration = Duration::from_secs(30);

pub fn webhook_router(admission: Admission) -> Router {
    Router::new()
        .route("/mutate", post(mutate).fallback(method_not_allowed))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(admission)
}

async fn mutate(
    State(admission): State<Admission>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !is_json(&headers) {
        return error_response(
            &admission,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json".to_owned(),
        );
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let message = match status {
                StatusCode::PAYLOAD_TOO_LARGE => {
                    format!("body is larger than {MAX_BODY_BYTES} bytes")
                }
                _ => rejection.body_text(),
            };
            return error_response(&admission, status, message);
        }
    };
    let budget = admission_budget(query.as_deref());
    match admission.review(&body, budget).await {
        Ok(review) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            review,
        )
            .into_response(),
        Err(error) if error.is_bad_request() => {
            error_response(&admission, StatusCode::BAD_REQUEST, error.to_string())
        }
        Err(error) => {
            tracing::error!(%error, "cannot answer an admission review");
            error_response(
                &admission,
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error".to_owned(),
            )
        }
    }
}

/// The time we give ourselves to answer: 90% of what the apiserver waits
/// (its `?timeout=`), leaving the rest for the trip back.
fn admission_budget(query: Option<&str>) -> Duration {
    let timeout = query
        .into_iter()
        .flat_map(|query| query.split('&'))
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "timeout")
        .and_then(|(_, value)| parse_go_duration(value).ok())
        .unwrap_or(DEFAULT_TIMEOUT)
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

async fn method_not_allowed(State(admission): State<Admission>) -> Response {
    let mut response = error_response(
        &admission,
        StatusCode::METHOD_NOT_ALLOWED,
        "use POST".to_owned(),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

async fn not_found(State(admission): State<Admission>) -> Response {
    error_response(
        &admission,
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
        webhook_router(Admission::new(Arc::new(Metrics::new())))
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
        assert_eq!(admission_budget(None), Duration::from_secs(9));
        assert_eq!(
            admission_budget(Some("timeout=10s")),
            Duration::from_secs(9)
        );
        assert_eq!(
            admission_budget(Some("a=b&timeout=1s")),
            Duration::from_millis(900)
        );
        assert_eq!(
            admission_budget(Some("timeout=5m")),
            Duration::from_secs(27)
        );
        assert_eq!(
            admission_budget(Some("timeout=soon")),
            Duration::from_secs(9)
        );
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
