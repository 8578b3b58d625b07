//! The AdmissionReview `admission.k8s.io/v1` wire format: the part of a request
//! the webhook reads, and the one function that writes every answer.
//!
//! Our own serde types rather than `kube::core::admission`: kube-core sends
//! `patch` as an array of byte numbers (kube-rs#1781) where the API documents a
//! base64 string, writes a `status` into every answer and its audit annotations
//! in hash order, and its typed objects drop fields on a round trip. Here the
//! object stays the exact `serde_json::Value` the apiserver sent.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::{AdmissionError, Verdict};

/// The only AdmissionReview version this webhook speaks (and echoes).
pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    request: Option<AdmissionRequest>,
}

/// The fields of `AdmissionReview.request` the webhook uses. Everything else
/// is skipped while parsing and never looked at.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    pub uid: String,
    /// Kind of the object as the webhook registered it.
    pub kind: GroupVersionKind,
    /// Resource being written; with `matchPolicy: Equivalent` this is the
    /// registered version, which is what dispatch looks at.
    pub resource: GroupVersionResource,
    #[serde(default)]
    pub sub_resource: Option<String>,
    /// Empty on CREATE with `generateName`.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`; kept as a string so a future
    /// operation is passed through instead of rejected.
    pub operation: String,
    /// The object being written (absent on DELETE).
    #[serde(default)]
    pub object: Option<Value>,
    /// The stored object (UPDATE, DELETE), kept as its JSON text: only the
    /// order-churn detector reads it, and only on an UPDATE.
    #[serde(default)]
    pub old_object: Option<Box<RawValue>>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct GroupVersionResource {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub resource: String,
}

/// Read an HTTP body as an `admission.k8s.io/v1` AdmissionReview request.
pub fn parse_review(body: &[u8]) -> Result<AdmissionRequest, AdmissionError> {
    let review: ReviewIn = serde_json::from_slice(body).map_err(|error| {
        use serde_json::error::Category;
        match error.classify() {
            Category::Eof => AdmissionError::Truncated(error),
            Category::Syntax | Category::Io => AdmissionError::NotJson(error),
            Category::Data => AdmissionError::NotAReview(error),
        }
    })?;
    if review.api_version.as_deref() != Some(API_VERSION) {
        return Err(AdmissionError::ApiVersion(review.api_version));
    }
    if review.kind.as_deref() != Some(KIND) {
        return Err(AdmissionError::Kind(review.kind));
    }
    let request = review.request.ok_or(AdmissionError::NoRequest)?;
    if request.uid.is_empty() {
        return Err(AdmissionError::NoUid);
    }
    Ok(request)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

/// `AdmissionReview.response`, its fields in the order they are written.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    audit_annotations: &'a BTreeMap<&'static str, String>,
}

/// The webhook's answer, byte for byte: always `allowed: true`; `patch` (the
/// base64 of the RFC 6902 JSON) and `patchType: JSONPatch` together, and only
/// when the patch has operations, because the apiserver rejects a `patchType`
/// without a `patch`.
pub fn encode_response(uid: &str, verdict: &Verdict) -> Result<Vec<u8>, AdmissionError> {
    let patch = match verdict.patch.as_ref().filter(|patch| !patch.0.is_empty()) {
        Some(patch) => {
            let json = serde_json::to_vec(patch).map_err(AdmissionError::Encode)?;
            Some(base64::engine::general_purpose::STANDARD.encode(json))
        }
        None => None,
    };
    let review = ReviewOut {
        api_version: API_VERSION,
        kind: KIND,
        response: ResponseOut {
            uid,
            allowed: true,
            patch_type: patch.as_ref().map(|_| "JSONPatch"),
            patch,
            warnings: &verdict.warnings,
            audit_annotations: &verdict.audit_annotations,
        },
    };
    serde_json::to_vec(&review).map_err(AdmissionError::Encode)
}
