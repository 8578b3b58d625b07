//! What one request may hold of the server: a slot among the requests in
//! flight, its body's bytes out of a shared budget, and time until a deadline.
//!
//! A request that does not fit is never queued: it is answered 503 at once
//! (the apiserver then applies `failurePolicy: Ignore` and the write goes
//! through unnormalized), so memory stays bounded and no write waits on us.

use std::sync::Arc;

use axum::body::{Body, HttpBody as _};
use http_body_util::BodyExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// A ConfigMap is at most 1 MiB and a review carries `object` and `oldObject`
/// (UPDATE), JSON-escaped: 8 MiB leaves ample room.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Bodies up to this size take no share of the byte budget: the in-flight
/// limit already bounds them (64 x 64 KiB = 4 MiB by default), and uploads
/// that stall with the budget in hand then never crowd out the reviews of
/// ordinary vMCP objects, which are a few KiB.
pub const SMALL_BODY_BYTES: usize = 64 * 1024;

/// Which budget a shed request did not fit in (the metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    InFlight,
    BodyBytes,
}

impl Shed {
    pub const ALL: [Shed; 2] = [Shed::InFlight, Shed::BodyBytes];

    pub fn as_str(self) -> &'static str {
        match self {
            Shed::InFlight => "in_flight",
            Shed::BodyBytes => "body_bytes",
        }
    }
}

/// The shared budgets of the webhook port.
#[derive(Debug, Clone)]
pub struct RequestLimits {
    in_flight: Arc<Semaphore>,
    body_bytes: Arc<Semaphore>,
}

/// What an admitted request holds until it is answered.
#[derive(Debug)]
pub struct Admitted {
    _slot: OwnedSemaphorePermit,
    _bytes: Option<OwnedSemaphorePermit>,
    /// The most body bytes this request may send.
    pub body_limit: usize,
}

impl RequestLimits {
    pub fn new(max_in_flight: usize, max_body_buffer: usize) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(max_in_flight.min(Semaphore::MAX_PERMITS))),
            body_bytes: Arc::new(Semaphore::new(max_body_buffer.min(Semaphore::MAX_PERMITS))),
        }
    }

    /// Take a slot and, for a large body, its declared length out of the byte
    /// budget (the most a body may be when it declares none), or say which
    /// budget is spent. Never waits.
    pub fn admit(&self, content_length: Option<usize>) -> Result<Admitted, Shed> {
        let slot = self
            .in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| Shed::InFlight)?;
        let body_limit = content_length.unwrap_or(MAX_BODY_BYTES).min(MAX_BODY_BYTES);
        let bytes = if body_limit > SMALL_BODY_BYTES {
            // At most MAX_BODY_BYTES, so it fits a u32.
            let permits = u32::try_from(body_limit).map_err(|_| Shed::BodyBytes)?;
            let bytes = self
                .body_bytes
                .clone()
                .try_acquire_many_owned(permits)
                .map_err(|_| Shed::BodyBytes)?;
            Some(bytes)
        } else {
            None
        };
        Ok(Admitted {
            _slot: slot,
            _bytes: bytes,
            body_limit,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the body did not arrive in time")]
    TimedOut,
    #[error("cannot read the body: {0}")]
    Read(#[source] axum::Error),
}

/// Read a whole body of at most `limit` bytes by `deadline`, however slowly
/// the client sends it.
pub async fn read_body(
    mut body: Body,
    limit: usize,
    deadline: Instant,
) -> Result<Vec<u8>, BodyError> {
    // The declared length (already counted in the budget), allocated once:
    // growing by doubling would hold up to twice the body while it copies.
    let declared = usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX);
    let mut buffer = Vec::with_capacity(declared.min(limit));
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(BodyError::Read)?;
            if let Some(data) = frame.data_ref() {
                if buffer.len() + data.len() > limit {
                    return Err(BodyError::TooLarge(limit));
                }
                buffer.extend_from_slice(data);
            }
        }
        Ok(())
    };
    match tokio::time::timeout_at(deadline, read).await {
        Ok(result) => result.map(|()| buffer),
        Err(_) => Err(BodyError::TimedOut),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn small_bodies_take_a_slot_and_large_ones_bytes_too() {
        let limits = RequestLimits::new(2, MAX_BODY_BYTES + 100);
        let small = limits.admit(Some(SMALL_BODY_BYTES)).unwrap();
        assert_eq!(small.body_limit, SMALL_BODY_BYTES);
        // No length: the most a body may be.
        let unknown = limits.admit(None).unwrap();
        assert_eq!(unknown.body_limit, MAX_BODY_BYTES);
        assert_eq!(limits.admit(Some(10)).unwrap_err(), Shed::InFlight);
        drop(small);
        assert_eq!(
            limits.admit(Some(SMALL_BODY_BYTES + 101)).unwrap_err(),
            Shed::BodyBytes
        );
        // The slot of the shed request was given back.
        let fits = limits.admit(Some(SMALL_BODY_BYTES + 100));
        assert!(fits.is_err(), "bytes still held by the unknown-length body");
        drop(unknown);
        let fits = limits.admit(Some(SMALL_BODY_BYTES + 100)).unwrap();
        assert_eq!(fits.body_limit, SMALL_BODY_BYTES + 100);
    }

    #[test]
    fn declared_lengths_above_the_maximum_are_capped() {
        let limits = RequestLimits::new(1, usize::MAX);
        assert_eq!(
            limits.admit(Some(usize::MAX)).unwrap().body_limit,
            MAX_BODY_BYTES
        );
    }

    #[tokio::test]
    async fn body_is_read_whole_within_its_limit() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let body = read_body(Body::from("{\"a\":1}"), 7, deadline)
            .await
            .unwrap();
        assert_eq!(body, b"{\"a\":1}");
        let error = read_body(Body::from("{\"a\":1}"), 6, deadline)
            .await
            .unwrap_err();
        assert!(matches!(error, BodyError::TooLarge(6)), "{error}");
    }

    /// A body that sends its first bytes and then nothing more.
    struct Stalled(Option<&'static str>);

    impl axum::body::HttpBody for Stalled {
        type Data = axum::body::Bytes;
        type Error = axum::Error;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
            match self.0.take() {
                Some(first) => {
                    std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(first.into()))))
                }
                None => std::task::Poll::Pending,
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stalls_is_cut_at_the_deadline() {
        let deadline = Instant::now() + Duration::from_millis(200);
        let body = Body::new(Stalled(Some("{\"a\"")));
        let error = read_body(body, 100, deadline).await.unwrap_err();
        assert!(matches!(error, BodyError::TimedOut), "{error}");
        assert_eq!(Instant::now(), deadline);
    }
}
