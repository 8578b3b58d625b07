//! The pure core: recognise vMCP objects and put them in canonical form.
//!
//! Everything here is a function over `serde_json::Value`: no I/O, no clock, and
//! idempotent (`normalize(normalize(x)) == normalize(x)`).

use std::fmt;

use serde_json::Value;

mod backends;
mod configmap;
mod consumer_yaml;
mod data;
mod deployment;
mod json_set;
mod last_applied;
mod layout;
mod object_set;
mod set_path;
mod yaml_set;

pub use backends::{Reordered, sort_backends};
pub use configmap::normalize_configmap;
pub use data::{
    ChecksumAlgorithm, ChecksumRule, DataFormat, DataRule, normalize_data, normalize_object_sets,
    sort_sets_in_text,
};
pub use deployment::{
    ChecksumSource, ChecksumSync, ConfigMapName, Follow, Unsynced, UnsyncedReason,
    canonical_checksum_for, canonical_content_checksum, checksum_source, checksum_source_of,
    is_dns_subdomain, sync_checksum_of, sync_runconfig_checksum, sync_to_canonical_checksum,
    sync_to_checksum_of,
};
pub use set_path::{PathError, Segment, SetPath, SetSpec, SortKey};

/// What happened to one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Not a vMCP object: passed through untouched.
    NotVmcp,
    /// A vMCP object that is already canonical: nothing to do.
    Unchanged,
    /// A vMCP object put in canonical form.
    Normalized(Normalized),
    /// A vMCP object left exactly as received, with the reason.
    Refused(Refusal),
}

/// How to put a received object in canonical form.
///
/// The canonical object itself is not built: the webhook sends only the patch.
/// [`Normalized::apply_to`] builds it for those who need it.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// What changed, in the order it was done (for warnings, logs, metrics).
    pub changes: Vec<Change>,
    /// RFC 6902 patch from the received object to the canonical one; never
    /// empty. It only replaces values at paths the normalizer read.
    pub patch: json_patch::Patch,
}

impl Normalized {
    /// The canonical object: `received` (the object this was computed from)
    /// with the patch applied.
    pub fn apply_to(&self, received: &Value) -> Result<Value, json_patch::PatchError> {
        let mut object = received.clone();
        json_patch::patch(&mut object, &self.patch)?;
        Ok(object)
    }
}

/// What the normalizer did to one part of an object it patched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The top-level `backends` items of `data[key]` were put in name order.
    BackendsReordered { key: String, items: usize },
    /// The same, in the copy of `config.yaml` inside kubectl's
    /// last-applied-configuration annotation.
    LastAppliedReordered { items: usize },
    /// That copy was left as it is, for the reason given (the rest of the
    /// object was still patched).
    LastAppliedLeft(Refusal),
    /// `toolhive.stacklok.dev/content-checksum` recomputed.
    ContentChecksum { from: String, to: String },
    /// The items of a declared set (any but vMCP's `backends`) put in
    /// order of their key, in `place` (a data key, the last-applied copy of
    /// one, or the object itself).
    SetReordered {
        place: String,
        path: String,
        by: String,
        items: usize,
    },
    /// A declared checksum annotation (any but ToolHive's
    /// `content-checksum`) recomputed.
    Checksum {
        annotation: String,
        from: String,
        to: String,
    },
}

/// Why a recognised vMCP object was left unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: RefusalReason,
    /// Human detail (position, key), for logs and warnings.
    pub detail: String,
}

/// Low-cardinality refusal reasons, usable as metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalReason {
    InvalidYaml,
    Unsupported,
    ProofFailed,
    MalformedObject,
}

/// Normalize any Kubernetes object: the kinds this tool knows are dispatched to
/// their normalizer, everything else is [`Outcome::NotVmcp`].
///
/// Deployments need the live ConfigMap and are handled by the webhook's
/// lookup, not here.
pub fn normalize_object(object: &Value) -> Outcome {
    let field = |name: &str| object.get(name).and_then(Value::as_str);
    match (field("apiVersion"), field("kind")) {
        (Some("v1") | None, Some("ConfigMap")) => normalize_configmap(object),
        _ => Outcome::NotVmcp,
    }
}

impl Outcome {
    /// The patch to send, if any.
    pub fn patch(&self) -> Option<&json_patch::Patch> {
        match self {
            Outcome::Normalized(n) => Some(&n.patch),
            _ => None,
        }
    }
}

impl RefusalReason {
    pub const ALL: [RefusalReason; 4] = [
        RefusalReason::InvalidYaml,
        RefusalReason::Unsupported,
        RefusalReason::ProofFailed,
        RefusalReason::MalformedObject,
    ];

    /// A stable snake_case label for metrics and audit annotations.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::InvalidYaml => "invalid_yaml",
            RefusalReason::Unsupported => "unsupported",
            RefusalReason::ProofFailed => "proof_failed",
            RefusalReason::MalformedObject => "malformed_object",
        }
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "left unchanged ({}): {}", self.reason, self.detail)
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::BackendsReordered { key, items } => {
                write!(f, "sorted {items} backends by name in {key}")
            }
            Change::LastAppliedReordered { items } => {
                write!(
                    f,
                    "sorted {items} backends by name in the last-applied-configuration copy"
                )
            }
            Change::LastAppliedLeft(refusal) => write!(f, "{refusal}"),
            Change::ContentChecksum { from, to } => {
                write!(f, "content-checksum {} -> {}", short(from), short(to))
            }
            Change::SetReordered {
                place,
                path,
                by,
                items,
            } => write!(f, "sorted {items} items of {path} by {by} in {place}"),
            Change::Checksum {
                annotation,
                from,
                to,
            } => write!(f, "{annotation} {} -> {}", short(from), short(to)),
        }
    }
}

/// The first 12 characters of a checksum, enough to tell them apart in a
/// warning that must stay under 120 characters.
fn short(checksum: &str) -> &str {
    checksum.get(..12).unwrap_or(checksum)
}
