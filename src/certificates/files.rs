//! Hand the self-managed certificate to the server the way the kubelet hands
//! over a Secret volume: files in a fresh directory, published by swapping a
//! `..data` symlink in one rename. The server's reloader already follows that
//! layout, and it never sees a new certificate beside an old key.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, symlink};
use std::path::{Path, PathBuf};

use super::authority::CertificateSet;

/// The directory entries the server reads (`tls.crt`, `tls.key`, `ca.crt`).
const FILES: [&str; 3] = ["tls.crt", "tls.key", "ca.crt"];
const DATA_LINK: &str = "..data";

/// Write `set` into `dir` and publish it atomically. Returns `false` when the
/// files already hold exactly this set.
pub fn publish_files(dir: &Path, set: &CertificateSet) -> std::io::Result<bool> {
    let contents = [&set.tls_cert, &set.tls_key, &set.ca_bundle];
    let current = FILES.map(|name| std::fs::read_to_string(dir.join(name)).ok());
    if current
        .iter()
        .zip(contents)
        .all(|(now, want)| now.as_deref() == Some(want.as_str()))
    {
        return Ok(false);
    }

    let version = next_version(dir)?;
    let version_dir = dir.join(&version);
    std::fs::create_dir(&version_dir)?;
    for (name, text) in FILES.iter().zip(contents) {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(version_dir.join(name))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
    }

    // rename(2) over the old link is the atomic step.
    let staged = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&staged);
    symlink(&version, &staged)?;
    let previous = std::fs::read_link(dir.join(DATA_LINK)).ok();
    std::fs::rename(&staged, dir.join(DATA_LINK))?;

    for name in FILES {
        let link = dir.join(name);
        if std::fs::read_link(&link).ok() != Some(PathBuf::from(DATA_LINK).join(name)) {
            let _ = std::fs::remove_file(&link);
            symlink(Path::new(DATA_LINK).join(name), &link)?;
        }
    }
    if let Some(previous) = previous.filter(|p| *p != Path::new(&version)) {
        let _ = std::fs::remove_dir_all(dir.join(previous));
    }
    Ok(true)
}

/// A directory name not used yet, ordered by creation like the kubelet's.
fn next_version(dir: &Path) -> std::io::Result<String> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    for attempt in 0u32.. {
        let name = format!("..{stamp}_{attempt}");
        if !dir.join(&name).exists() {
            return Ok(name);
        }
    }
    Err(std::io::Error::other("no free version directory name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(tag: &str) -> CertificateSet {
        CertificateSet {
            tls_cert: format!("cert {tag}"),
            tls_key: format!("key {tag}"),
            ca_bundle: format!("ca {tag}"),
            ca_key: format!("ca key {tag}"),
        }
    }

    #[test]
    fn publishes_through_a_data_symlink_and_swaps_it() {
        let dir = tempfile::tempdir().unwrap();
        assert!(publish_files(dir.path(), &set("a")).unwrap());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("tls.crt")).unwrap(),
            "cert a"
        );
        assert_eq!(
            std::fs::read_link(dir.path().join("tls.key")).unwrap(),
            Path::new("..data/tls.key")
        );
        let first = std::fs::read_link(dir.path().join("..data")).unwrap();

        assert!(
            !publish_files(dir.path(), &set("a")).unwrap(),
            "same set: nothing written"
        );
        assert!(publish_files(dir.path(), &set("b")).unwrap());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("tls.key")).unwrap(),
            "key b"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("ca.crt")).unwrap(),
            "ca b"
        );
        assert!(
            !dir.path().join(first).exists(),
            "the old version is removed"
        );
        assert!(
            !dir.path().join("ca.key").exists(),
            "the CA key never leaves the Secret"
        );
    }
}
