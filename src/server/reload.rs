//! Certificate hot reload.
//!
//! The kubelet updates a mounted Secret by writing a new timestamped directory
//! and atomically swapping the `..data` symlink; `tls.crt` itself is a symlink
//! through `..data` and is never written in place. A watch on the file would
//! follow the old inode and miss the swap, so we watch the *directory* that
//! holds the files and, as a safety net, poll a SHA-256 of both files' contents.
//! Either trigger re-reads both files; a pair that does not parse or does not
//! match keeps the old certificate in service.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::Shutdown;
use super::tls::{CertResolver, TlsFiles};
use crate::metrics::Metrics;

/// Quiet time after the last file event before re-reading, so that a writer
/// replacing the cert and then the key is seen as one change.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// Upper bound on that wait when events keep coming.
const MAX_DEBOUNCE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadOptions {
    /// How often to compare the files' hash even without a file event.
    pub poll_interval: Duration,
    /// Watch the certificate directories for changes (the poll stays on).
    pub watch: bool,
}

impl Default for ReloadOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(30),
            watch: true,
        }
    }
}

/// What one look at the files found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadResult {
    /// Same contents as last time (or the same failure as last time).
    Unchanged,
    /// A new valid pair is now served.
    Reloaded,
    /// New contents that cannot be served; the previous pair stays.
    Rejected,
}

/// The last state of the files we acted on, so an unchanged bad pair is
/// logged and counted once, not on every poll.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Contents([u8; 32]),
    Unreadable(String),
}

pub struct Reloader {
    files: TlsFiles,
    resolver: Arc<CertResolver>,
    metrics: Arc<Metrics>,
    seen: Seen,
}

impl Reloader {
    /// `served` is the fingerprint of the pair the resolver holds now.
    pub fn new(
        files: TlsFiles,
        resolver: Arc<CertResolver>,
        metrics: Arc<Metrics>,
        served: [u8; 32],
    ) -> Self {
        Self {
            files,
            resolver,
            metrics,
            seen: Seen::Contents(served),
        }
    }

    /// Re-read both files and serve them if they changed and are valid.
    pub fn check(&mut self) -> ReloadResult {
        let pem = match self.files.read() {
            Ok(pem) => pem,
            Err(error) => {
                let seen = Seen::Unreadable(error.to_string());
                if seen == self.seen {
                    return ReloadResult::Unchanged;
                }
                self.seen = seen;
                return self.rejected(&error);
            }
        };
        let fingerprint = pem.fingerprint();
        if self.seen == Seen::Contents(fingerprint) {
            return ReloadResult::Unchanged;
        }
        self.seen = Seen::Contents(fingerprint);
        match self.files.parse(&pem) {
            Ok(cert) => {
                self.resolver.store(cert.certified_key);
                self.metrics.certificate_reload(true);
                self.metrics.certificate_not_after.set(cert.not_after);
                tracing::info!(
                    cert = %self.files.cert.display(),
                    not_after = cert.not_after,
                    "serving certificate reloaded"
                );
                ReloadResult::Reloaded
            }
            Err(error) => self.rejected(&error),
        }
    }

    fn rejected(&self, error: &super::tls::TlsError) -> ReloadResult {
        self.metrics.certificate_reload(false);
        tracing::error!(%error, "new certificate not loaded; still serving the previous one");
        ReloadResult::Rejected
    }

    /// Watch and poll until shutdown.
    pub async fn run(mut self, options: ReloadOptions, shutdown: Shutdown) {
        let paths = [self.files.cert.clone(), self.files.key.clone()];
        watch_and_poll(&paths, "certificate", options, shutdown, || {
            self.check();
        })
        .await;
    }
}

/// Call `check` whenever a file of `paths` may have changed (a watch on
/// their directories, debounced) and every poll interval, until shutdown.
/// `what` names the files in the log line when they cannot be watched.
pub(super) async fn watch_and_poll(
    paths: &[PathBuf],
    what: &str,
    options: ReloadOptions,
    mut shutdown: Shutdown,
    mut check: impl FnMut(),
) {
    let (events_tx, mut events) = mpsc::channel::<()>(1);
    // Kept alive for the whole loop: dropping the watcher stops it.
    let _watcher = if options.watch {
        let paths: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        match watch_files(&paths, events_tx) {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                tracing::warn!(%error, "cannot watch the {what} files' directory; relying on polling");
                None
            }
        }
    } else {
        None
    };
    let mut poll = tokio::time::interval(options.poll_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    poll.tick().await; // the first tick is immediate; the files were just loaded
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = poll.tick() => {}
            Some(()) = events.recv() => debounce(&mut events).await,
        }
        check();
    }
}

/// Wait until file events stop for a moment (or [`MAX_DEBOUNCE`]).
pub(super) async fn debounce(events: &mut mpsc::Receiver<()>) {
    let give_up = tokio::time::Instant::now() + MAX_DEBOUNCE;
    while tokio::time::Instant::now() < give_up {
        match tokio::time::timeout(DEBOUNCE, events.recv()).await {
            Ok(Some(())) => continue,
            Ok(None) | Err(_) => break,
        }
    }
}

/// The directories holding the files (usually one).
fn directories(files: &[&Path]) -> BTreeSet<PathBuf> {
    files
        .iter()
        .map(|file| match file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => Path::new(".").to_owned(),
        })
        .collect()
}

/// Watch the directories of `files` (a mounted Secret or ConfigMap swaps a
/// `..data` link there); each change sends on `events`.
pub(super) fn watch_files(
    files: &[&Path],
    events: mpsc::Sender<()>,
) -> notify::Result<notify::RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let relevant = match &event {
            // Our own reads open and close the files: not a change.
            Ok(event) => match event.kind {
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
                EventKind::Access(_) => false,
                _ => true,
            },
            Err(_) => true,
        };
        if relevant {
            // A full channel already means "look again": coalesce.
            let _ = events.try_send(());
        }
    })?;
    for dir in directories(files) {
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    }
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::tls::tests::self_signed;

    fn write(files: &TlsFiles, cert: &str, key: &str) {
        std::fs::write(&files.cert, cert).unwrap();
        std::fs::write(&files.key, key).unwrap();
    }

    /// The poll looks every few seconds for the server's whole life: each
    /// change of the files is acted on (served or refused, logged, counted)
    /// once, and every look in between is a hash comparison and nothing more.
    #[test]
    fn each_change_is_acted_on_once() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            cert: dir.path().join("tls.crt"),
            key: dir.path().join("tls.key"),
        };
        let (first_cert, first_key) = self_signed();
        let (second_cert, second_key) = self_signed();
        write(&files, &first_cert, &first_key);
        let served = files.load().unwrap();
        let resolver = Arc::new(CertResolver::new(served.certified_key));
        let metrics = Arc::new(Metrics::new());
        let mut reloader = Reloader::new(
            files.clone(),
            resolver.clone(),
            metrics.clone(),
            served.fingerprint,
        );
        let unchanged = |reloader: &mut Reloader| {
            let before = resolver.current();
            assert_eq!(reloader.check(), ReloadResult::Unchanged);
            assert!(Arc::ptr_eq(&before, &resolver.current()), "re-stored");
        };

        unchanged(&mut reloader);
        write(&files, &second_cert, &second_key);
        assert_eq!(reloader.check(), ReloadResult::Reloaded);
        unchanged(&mut reloader);
        unchanged(&mut reloader);

        // A pair that does not match, then a key that cannot be read: each
        // refused once, the second pair still served.
        write(&files, &first_cert, &second_key);
        assert_eq!(reloader.check(), ReloadResult::Rejected);
        unchanged(&mut reloader);
        std::fs::remove_file(&files.key).unwrap();
        assert_eq!(reloader.check(), ReloadResult::Rejected);
        unchanged(&mut reloader);

        let text = metrics.encode().unwrap();
        for line in [
            r#"vmcp_normalizer_certificate_reloads_total{outcome="ok"} 1"#,
            r#"vmcp_normalizer_certificate_reloads_total{outcome="failed"} 2"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
    }
}
