//! The pure core: recognise vMCP objects and put them in canonical form.
//!
//! Everything here is a function over `serde_json::Value`: no I/O, no clock, and
//! idempotent (`normalize(normalize(x)) == normalize(x)`).

use serde_json::Value;

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

/// A canonical object and how to get there from the received one.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The normalized object.
    pub object: Value,
    /// What changed, in the order it was done (for warnings, logs, metrics).
    pub changes: Vec<Change>,
    /// RFC 6902 patch from the received object to `object`; never empty here.
    pub patch: json_patch::Patch,
}

/// One change the normalizer made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The top-level `backends` items of `data[key]` were put in name order.
    BackendsReordered { key: String, items: usize },
    /// `toolhive.stacklok.dev/content-checksum` recomputed.
    ContentChecksum { from: String, to: String },
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

impl Outcome {
    /// The patch to send, if any.
    pub fn patch(&self) -> Option<&json_patch::Patch> {
        match self {
            Outcome::Normalized(n) => Some(&n.patch),
            _ => None,
        }
    }
}

/// Normalize a ConfigMap exactly as it arrives inside an AdmissionReview.
pub fn normalize_configmap(_object: &Value) -> Outcome {
    Outcome::NotVmcp
}
