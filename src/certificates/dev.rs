//! Development certificates for running the server on one's own machine: a
//! throw-away CA and a serving certificate for `localhost`, `127.0.0.1` and
//! `::1`, made by the same authority code as the self-managed mode.
//!
//! The CA's private key is never written: it signs the one leaf and is
//! dropped, so nothing else can be issued under that CA.

use std::path::{Path, PathBuf};
use std::time::Duration;

use time::OffsetDateTime;

use super::authority::{self, AuthorityError, Policy};

/// The names the development certificate is valid for.
pub const DEV_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A year for both: long enough not to expire under a developer, short
/// enough that a forgotten set stops working.
fn dev_policy() -> Policy {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 60 * 60);
    Policy {
        ca_lifetime: YEAR,
        leaf_lifetime: YEAR,
        ..Policy::default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DevCertificatesError {
    #[error(transparent)]
    Authority(#[from] AuthorityError),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The files written, in the order a reader needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCertificateFiles {
    /// The CA, for clients (`curl --cacert`).
    pub ca_cert: PathBuf,
    /// The serving certificate (`serve --tls-cert`).
    pub tls_cert: PathBuf,
    /// Its private key, readable by its owner only (`serve --tls-key`).
    pub tls_key: PathBuf,
}

/// Write `ca.crt`, `tls.crt` and `tls.key` into `dir` (created if needed),
/// valid from `now`.
pub fn write_dev_certificates(
    dir: &Path,
    now: OffsetDateTime,
) -> Result<DevCertificateFiles, DevCertificatesError> {
    let names: Vec<String> = DEV_NAMES.iter().map(|&name| name.to_owned()).collect();
    let set = authority::issue(&names, now, &dev_policy())?;
    let files = DevCertificateFiles {
        ca_cert: dir.join("ca.crt"),
        tls_cert: dir.join("tls.crt"),
        tls_key: dir.join("tls.key"),
    };
    let failed = |path: &Path| {
        let path = path.to_owned();
        move |source| DevCertificatesError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(failed(dir))?;
    std::fs::write(&files.ca_cert, &set.ca_bundle).map_err(failed(&files.ca_cert))?;
    std::fs::write(&files.tls_cert, &set.tls_cert).map_err(failed(&files.tls_cert))?;
    write_private(&files.tls_key, &set.tls_key).map_err(failed(&files.tls_key))?;
    Ok(files)
}

/// The key file is readable by its owner only, from the moment it exists.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing file keeps its mode on open: narrow it too.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::tls::TlsFiles;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn writes_a_pair_the_server_loads_and_no_ca_key() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("certs").join("out");
        let files = write_dev_certificates(&out, OffsetDateTime::now_utc()).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["ca.crt", "tls.crt", "tls.key"]);
        let mode = std::fs::metadata(&files.tls_key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let ca = std::fs::read_to_string(&files.ca_cert).unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
        assert!(!ca.contains("PRIVATE KEY"));

        let loaded = TlsFiles {
            cert: files.tls_cert.clone(),
            key: files.tls_key.clone(),
        }
        .load()
        .expect("the server loads the pair");
        let year_from_now = OffsetDateTime::now_utc().unix_timestamp() + 364 * 24 * 60 * 60;
        assert!(loaded.not_after > year_from_now, "{}", loaded.not_after);
    }

    #[test]
    fn a_second_run_replaces_the_set() {
        let dir = tempfile::tempdir().unwrap();
        let first = write_dev_certificates(dir.path(), OffsetDateTime::now_utc()).unwrap();
        let before = std::fs::read_to_string(&first.tls_cert).unwrap();
        std::fs::set_permissions(&first.tls_key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let second = write_dev_certificates(dir.path(), OffsetDateTime::now_utc()).unwrap();
        assert_ne!(std::fs::read_to_string(&second.tls_cert).unwrap(), before);
        let mode = std::fs::metadata(&second.tls_key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
