//! The webhook server: HTTPS admission endpoint with hot-reloaded
//! certificates, a plain-HTTP admin port, and graceful shutdown.
//!
//! Library-first: [`Server::new`] loads the certificate (failing fast), and
//! [`Server::run`] serves already-bound listeners until a shutdown future
//! resolves, so tests drive the real server on `127.0.0.1:0` without signals.

pub mod admin;
pub mod args;
pub mod connection;
pub mod duration;
pub mod http;
pub mod limits;
pub mod reload;
pub mod rules_reload;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::admission::Admission;
use crate::metrics::Metrics;
use admin::Health;
use reload::{ReloadOptions, Reloader};
use tls::{CertResolver, TlsError, TlsFiles};

pub use args::{LogFormat, ServeArgs, run_serve};

/// Everything about how the server runs, apart from its listeners.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub tls: TlsFiles,
    pub reload: ReloadOptions,
    /// The rules file to reload (`serve --rules`), and the fingerprint of
    /// the contents the admission's rules came from.
    pub rules: Option<(std::path::PathBuf, [u8; 32])>,
    /// A client that has not finished its TLS handshake by then is dropped.
    pub handshake_timeout: Duration,
    /// An HTTP/1 client must send a request's headers within this time (on
    /// both ports), counted from when the server starts waiting for them.
    pub header_read_timeout: Duration,
    /// The longest a review may take from its headers to its answer, body
    /// included; the apiserver's `?timeout=` shortens it.
    pub request_timeout: Duration,
    /// A connection (on either port) with no request in flight for this long
    /// is closed.
    pub idle_timeout: Duration,
    /// Connections open at once on each port; more are closed on accept.
    pub max_connections: usize,
    /// Reviews handled at once; more are answered 503.
    pub max_in_flight: usize,
    /// Body bytes of large reviews buffered at once; more are answered 503.
    pub max_body_buffer: usize,
    /// Streams one HTTP/2 client may open at once on a connection.
    pub http2_max_streams: u32,
    /// How often an HTTP/2 connection is PINGed; one not answered within
    /// [`HTTP2_KEEP_ALIVE_TIMEOUT`] is closed.
    pub http2_keep_alive_interval: Duration,
    /// How long in-flight requests may take to finish once shutdown begins.
    pub drain_timeout: Duration,
}

/// How long an HTTP/2 client has to answer a keep-alive PING.
pub const HTTP2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long admin requests (all instant) may take to finish at shutdown.
const ADMIN_DRAIN: Duration = Duration::from_secs(2);

impl ServerOptions {
    pub fn new(tls: TlsFiles) -> Self {
        Self {
            tls,
            reload: ReloadOptions::default(),
            rules: None,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections: 1000,
            max_in_flight: 64,
            max_body_buffer: 16 * 1024 * 1024,
            http2_max_streams: 16,
            http2_keep_alive_interval: Duration::from_secs(20),
            drain_timeout: Duration::from_secs(20),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The Kubernetes API client for ConfigMap lookups cannot be set up.
    #[error(transparent)]
    ApiAccess(#[from] crate::lookup::ApiAccessError),
    /// `--self-managed-tls` cannot set up or obtain its certificate.
    #[error("self-managed TLS: {0}")]
    SelfManagedTls(#[from] crate::certificates::self_managed::SelfManagedError),
    /// `--rules` names a file that cannot be read or used.
    #[error(transparent)]
    Rules(#[from] rules_reload::RulesFileError),
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("admin server failed: {0}")]
    Admin(#[source] std::io::Error),
    #[error("cannot set up logging: {0}")]
    Logging(String),
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Resolves once shutdown has begun (or its sender is gone).
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}

/// A webhook server whose certificate has been loaded and validated.
pub struct Server {
    options: ServerOptions,
    admission: Admission,
    health: Arc<Health>,
    resolver: Arc<CertResolver>,
    tls_config: Arc<rustls::ServerConfig>,
    served_fingerprint: [u8; 32],
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Load and validate the certificate and key: call this before binding,
    /// so a bad pair stops the process before it ever looks ready.
    pub fn new(options: ServerOptions, admission: Admission) -> Result<Self, ServeError> {
        let cert = options.tls.load()?;
        admission
            .metrics()
            .certificate_not_after
            .set(cert.not_after);
        let resolver = Arc::new(CertResolver::new(cert.certified_key));
        let tls_config = tls::server_config(resolver.clone())?;
        Ok(Self {
            options,
            admission,
            health: Arc::new(Health::default()),
            resolver,
            tls_config,
            served_fingerprint: cert.fingerprint,
        })
    }

    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.admission.metrics().clone()
    }

    /// Serve admission reviews on `listener` (TLS) and the admin endpoints on
    /// `admin_listener` (plain HTTP) until `shutdown` resolves; then become
    /// unready, stop accepting, and let in-flight requests finish within the
    /// drain timeout.
    pub async fn run(
        self,
        listener: TcpListener,
        admin_listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        let metrics = self.metrics();
        let (stop_tx, stop_rx) = watch::channel(false);
        let (admin_stop_tx, admin_stop_rx) = watch::channel(false);

        let reloader = Reloader::new(
            self.options.tls.clone(),
            self.resolver.clone(),
            metrics.clone(),
            self.served_fingerprint,
        );
        let reload_task =
            tokio::spawn(reloader.run(self.options.reload, Shutdown(stop_rx.clone())));
        let rules_task = self.options.rules.clone().map(|(path, served)| {
            let reloader = rules_reload::RulesReloader::new(
                path,
                self.admission.rules_cell(),
                metrics.clone(),
                served,
            );
            tokio::spawn(reloader.run(self.options.reload, Shutdown(stop_rx.clone())))
        });

        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.options.header_read_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(self.options.http2_max_streams)
            .keep_alive_interval(self.options.http2_keep_alive_interval)
            .keep_alive_timeout(HTTP2_KEEP_ALIVE_TIMEOUT);
        let limits =
            limits::RequestLimits::new(self.options.max_in_flight, self.options.max_body_buffer);
        let connections = Arc::new(Connections {
            builder,
            acceptor: TlsAcceptor::from(self.tls_config.clone()),
            router: http::webhook_router(
                self.admission.clone(),
                limits,
                self.options.request_timeout,
            ),
            admin_router: admin::admin_router(self.health.clone(), metrics.clone()),
            handshake_timeout: self.options.handshake_timeout,
            idle_timeout: self.options.idle_timeout,
        });

        // The admin port outlives the drain, so probes see "not ready" while
        // in-flight reviews finish.
        let admin_addr = local_addr(&admin_listener);
        let max_connections = self.options.max_connections;
        let admin_task = {
            let connections = connections.clone();
            let metrics = metrics.clone();
            let admin_stop = Shutdown(admin_stop_rx);
            tokio::spawn(async move {
                let mut stopping = admin_stop.clone();
                let port = Port::new(PORT_LABELS[1], max_connections, metrics);
                let tasks = accept_until(admin_listener, port, stopping.wait(), |stream| {
                    let connections = connections.clone();
                    let stop = admin_stop.clone();
                    async move { connections.serve_admin(stream, stop).await }
                })
                .await;
                drain(tasks, ADMIN_DRAIN).await;
            })
        };

        self.health.set_ready(true);
        tracing::info!(
            listen = %local_addr(&listener),
            admin = %admin_addr,
            "serving admission reviews"
        );

        let port = Port::new(PORT_LABELS[0], max_connections, metrics);
        let tasks = accept_until(listener, port, shutdown, |stream| {
            let connections = connections.clone();
            let stop = Shutdown(stop_rx.clone());
            async move { connections.serve_webhook(stream, stop).await }
        })
        .await;

        tracing::info!(drain_timeout = ?self.options.drain_timeout, "shutting down: draining in-flight requests");
        self.health.set_ready(false);
        let _ = stop_tx.send(true);
        if drain(tasks, self.options.drain_timeout).await {
            tracing::info!("all connections drained");
        } else {
            tracing::warn!("drain timeout reached; closed the remaining connections");
        }
        let _ = admin_stop_tx.send(true);
        let admin_result = admin_task.await;
        let _ = reload_task.await;
        if let Some(rules_task) = rules_task {
            let _ = rules_task.await;
        }
        admin_result.map_err(|join_error| ServeError::Admin(std::io::Error::other(join_error)))
    }
}

/// The `port` label of each listening port.
pub const PORT_LABELS: [&str; 2] = ["webhook", "admin"];

/// One listening port: its name (the metric label) and its connection budget.
struct Port {
    name: &'static str,
    open: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl Port {
    fn new(name: &'static str, max_connections: usize, metrics: Arc<Metrics>) -> Self {
        let open = Arc::new(Semaphore::new(max_connections.min(Semaphore::MAX_PERMITS)));
        Self {
            name,
            open,
            metrics,
        }
    }
}

/// Accept connections on `listener` until `shutdown` resolves, each served by
/// `serve` on a task of its own, and close those beyond the port's budget at
/// once; then stop listening. Returns the tasks, so the ones still open after
/// a drain can be closed rather than outlive `run`.
async fn accept_until<F, Fut>(
    listener: TcpListener,
    port: Port,
    shutdown: impl Future<Output = ()>,
    serve: F,
) -> JoinSet<()>
where
    F: Fn(TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => match port.open.clone().try_acquire_owned() {
                    Ok(open) => {
                        let serving = serve(stream);
                        tasks.spawn(async move {
                            serving.await;
                            drop(open);
                        });
                    }
                    Err(_) => port.metrics.connection_refused(port.name),
                },
                Err(error) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    tasks
}

/// Let connection tasks finish within `limit`, then close those left. True
/// when all finished by themselves.
async fn drain(mut tasks: JoinSet<()>, limit: Duration) -> bool {
    let all_done = async { while tasks.join_next().await.is_some() {} };
    let drained = tokio::time::timeout(limit, all_done).await.is_ok();
    if !drained {
        tracing::debug!(
            connections = tasks.len(),
            "closing connections after the drain"
        );
        tasks.shutdown().await;
    }
    drained
}

fn local_addr(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map_or_else(|_| "unknown".to_owned(), |addr| addr.to_string())
}

/// What every connection task needs, shared.
struct Connections {
    builder: auto::Builder<TokioExecutor>,
    acceptor: TlsAcceptor,
    router: axum::Router,
    admin_router: axum::Router,
    handshake_timeout: Duration,
    idle_timeout: Duration,
}

impl Connections {
    /// One webhook connection: TLS handshake (bounded, and abandoned on
    /// shutdown), then HTTP/1.1 or HTTP/2.
    async fn serve_webhook(&self, stream: TcpStream, mut stop: Shutdown) {
        let _ = stream.set_nodelay(true);
        let handshake = tokio::time::timeout(self.handshake_timeout, self.acceptor.accept(stream));
        let tls = tokio::select! {
            () = stop.wait() => return,
            handshake = handshake => match handshake {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::debug!(%error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!("TLS handshake timed out");
                    return;
                }
            },
        };
        connection::serve(
            &self.builder,
            tls,
            self.router.clone(),
            self.idle_timeout,
            stop,
        )
        .await;
    }

    /// One admin connection: plain HTTP, with the same header and idle limits.
    async fn serve_admin(&self, stream: TcpStream, stop: Shutdown) {
        connection::serve(
            &self.builder,
            stream,
            self.admin_router.clone(),
            self.idle_timeout,
            stop,
        )
        .await;
    }
}
