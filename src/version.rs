//! What this build is: the crate version and the git revision it was built
//! from (set by `build.rs`; "unknown" for a build from a tarball).

/// The crate version, e.g. `0.1.0`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The full git commit the binary was built from, or "unknown".
pub const REVISION: &str = env!("VMCP_NORMALIZER_REVISION");

/// What `--version` prints after the program name: `0.1.0 (abc1234)`.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("VMCP_NORMALIZER_REVISION_SHORT"),
    ")"
);
