//! The AdmissionReview `admission.k8s.io/v1` wire format: the part of a request
//! the webhook reads, and the one function that writes every answer.
//!
//! Our own serde types rather than `kube::core::admission`: kube-core sends
//! `patch` as an array of byte numbers (kube-rs#1781) where the API documents a
//! base64 string, and its typed objects drop fields on a round trip. Here the
//! object stays the exact `serde_json::Value` the apiserver sent.

use serde::Deserialize;
use serde_json::Value;

use super::{AdmissionError, Verdict, json_out};

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

/// The fields of `AdmissionReview.request` the webhook uses. Everything else,
/// `oldObject` included, is skipped while parsing and never looked at.
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

/// The webhook's answer, byte for byte: always `allowed: true`; `patch` (the
/// base64 of the RFC 6902 JSON) and `patchType: JSONPatch` together, and only
/// when the patch has operations, because the apiserver rejects a `patchType`
/// without a `patch`.
///
/// Written by hand in serde's field order (see [`json_out`]): the answer
/// carrying a whole config is the one this webhook sends most.
pub fn encode_response(uid: &str, verdict: &Verdict) -> Result<Vec<u8>, AdmissionError> {
    let patch = match verdict.patch.as_ref().filter(|patch| !patch.0.is_empty()) {
        Some(patch) => {
            let mut json = Vec::with_capacity(patch_size_hint(patch));
            json_out::write_patch(&mut json, patch).map_err(AdmissionError::Encode)?;
            Some(json)
        }
        None => None,
    };
    let mut out = Vec::with_capacity(
        256 + patch.as_ref().map_or(0, |json| json.len() / 3 * 4 + 4)
            + verdict.warnings.iter().map(|w| w.len() + 8).sum::<usize>(),
    );
    out.extend_from_slice(b"{\"apiVersion\":");
    json_out::write_str(&mut out, API_VERSION);
    out.extend_from_slice(b",\"kind\":");
    json_out::write_str(&mut out, KIND);
    out.extend_from_slice(b",\"response\":{\"uid\":");
    json_out::write_str(&mut out, uid);
    out.extend_from_slice(b",\"allowed\":true");
    if let Some(json) = &patch {
        out.extend_from_slice(b",\"patchType\":\"JSONPatch\",\"patch\":\"");
        json_out::write_base64(&mut out, json);
        out.push(b'"');
    }
    if !verdict.warnings.is_empty() {
        out.extend_from_slice(b",\"warnings\":[");
        for (index, warning) in verdict.warnings.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            json_out::write_str(&mut out, warning);
        }
        out.push(b']');
    }
    if !verdict.audit_annotations.is_empty() {
        out.extend_from_slice(b",\"auditAnnotations\":{");
        for (index, (key, value)) in verdict.audit_annotations.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            json_out::write_str(&mut out, key);
            out.push(b':');
            json_out::write_str(&mut out, value);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"}}");
    Ok(out)
}

/// Room for the patch JSON: its string values plus some escapes and framing.
fn patch_size_hint(patch: &json_patch::Patch) -> usize {
    patch
        .0
        .iter()
        .map(|operation| match operation {
            json_patch::PatchOperation::Replace(json_patch::ReplaceOperation {
                value: Value::String(value),
                path,
            }) => value.len() + value.len() / 8 + path.as_str().len() + 48,
            _ => 128,
        })
        .sum()
}
