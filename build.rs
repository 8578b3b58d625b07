//! The git revision the binary reports (`--version`, the startup log line,
//! `vmcp_normalizer_build_info`).
//!
//! `VMCP_NORMALIZER_REVISION` wins when set (image and release builds pass
//! it); otherwise `git rev-parse HEAD` of this checkout; otherwise, as in a
//! source tarball with no `.git`, "unknown". Nothing here fails a build.

use std::path::{Path, PathBuf};
use std::process::Command;

const ENV: &str = "VMCP_NORMALIZER_REVISION";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={ENV}");
    let revision = match std::env::var(ENV) {
        Ok(given) if !given.trim().is_empty() => given.trim().to_owned(),
        _ => git_revision().unwrap_or_else(|| "unknown".to_owned()),
    };
    println!("cargo:rustc-env={ENV}={revision}");
    println!("cargo:rustc-env={ENV}_SHORT={}", short(&revision));
}

/// HEAD of the repository whose top level is this package, and a rebuild
/// whenever HEAD moves. A tarball unpacked inside some other repository must
/// not report that repository's commit, hence the top-level check.
fn git_revision() -> Option<String> {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let toplevel = git(&manifest_dir, &["rev-parse", "--show-toplevel"])?;
    if !same_dir(Path::new(&toplevel), &manifest_dir) {
        return None;
    }
    let revision = git(&manifest_dir, &["rev-parse", "HEAD"])?;
    // HEAD itself (a checkout), the branch it points at (a commit) and
    // packed-refs (a branch packed by gc). Worktrees keep these apart, so
    // ask git where each one is.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(&manifest_dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&manifest_dir, &["rev-parse", "--git-path", &name]) {
            let path = manifest_dir.join(path);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    Some(revision)
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty()).then(|| text.to_owned())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// A commit hash cut to 7 characters, as `git log --oneline` shows it; any
/// other text as given.
fn short(revision: &str) -> &str {
    let hex = revision.len() >= 7 && revision.bytes().all(|b| b.is_ascii_hexdigit());
    if hex { &revision[..7] } else { revision }
}
