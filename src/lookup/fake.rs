//! An in-memory API server behind `kube::Client::new`, for tests that need
//! tokio's paused clock: the HTTPS stand-in in `tests/common` speaks over real
//! sockets, which need real time, so exact deadlines are tested here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::client::Body;

use super::ConfigMapLookup;

/// What the fake answers every GET with.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// This status and body, `after` the request arrives.
    Respond {
        after: Duration,
        status: u16,
        body: Vec<u8>,
    },
    /// Nothing, ever.
    Never,
}

impl Answer {
    /// `object` as a 200 answer, `after` the request.
    pub(crate) fn object(object: &serde_json::Value, after: Duration) -> Self {
        Answer::Respond {
            after,
            status: 200,
            body: serde_json::to_vec(object).expect("JSON"),
        }
    }
}

/// A lookup whose client talks to the fake, and the paths it was asked for.
pub(crate) fn lookup(answer: Answer) -> (ConfigMapLookup, Arc<Mutex<Vec<String>>>) {
    let paths = Arc::new(Mutex::new(Vec::new()));
    let seen = paths.clone();
    let service = tower::service_fn(move |request: http::Request<Body>| {
        seen.lock()
            .expect("not poisoned")
            .push(request.uri().path().to_owned());
        let answer = answer.clone();
        async move {
            match answer {
                Answer::Never => std::future::pending().await,
                Answer::Respond {
                    after,
                    status,
                    body,
                } => {
                    tokio::time::sleep(after).await;
                    http::Response::builder()
                        .status(status)
                        .body(Body::from(body))
                }
            }
        }
    });
    let client = kube::Client::new(service, "default");
    (ConfigMapLookup::new(client), paths)
}
