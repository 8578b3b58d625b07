//! One HTTP connection (HTTP/1.1 or HTTP/2, over TLS or plain), served until
//! the client closes it, it has been idle too long, or shutdown begins. A
//! client that stops talking never holds a connection open.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tower::ServiceExt as _;

use super::Shutdown;

/// After asking a connection to close (HTTP/2: GOAWAY, then a PING the
/// client must answer), how long it may stay open with nothing in flight.
/// A client that never answers is then dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The requests in flight on one connection; a change wakes its timer.
#[derive(Debug, Default)]
struct Activity {
    in_flight: AtomicUsize,
    changed: Notify,
}

impl Activity {
    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_one();
        InFlight(self.clone())
    }

    fn is_quiet(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0
    }
}

/// One request being handled; dropped when its handler returns or is dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_one();
    }
}

/// Serve `router` on `io` until the client closes, `idle_timeout` passes with
/// no request in flight, or `stop` resolves. The last two close gracefully
/// (HTTP/1: after the current response; HTTP/2: GOAWAY), then drop the
/// connection once nothing has been in flight for [`CLOSE_GRACE`].
pub async fn serve<I>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    router: Router,
    idle_timeout: Duration,
    mut stop: Shutdown,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::default());
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let in_flight = activity.begin();
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await;
                drop(in_flight);
                response
            }
        })
    };
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        let quiet_for = if closing { CLOSE_GRACE } else { idle_timeout };
        let quiet = activity.is_quiet();
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection closed with an error");
                }
                return;
            }
            () = activity.changed.notified() => {}
            () = tokio::time::sleep(quiet_for), if quiet => {
                if closing {
                    tracing::debug!("connection did not close in time; dropping it");
                    return;
                }
                tracing::debug!("closing an idle connection");
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = stop.wait(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}
