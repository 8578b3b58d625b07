//! The vMCP config ConfigMap: sort its backend set, recompute its checksum.

use std::borrow::Cow;

use json_patch::jsonptr::Pointer;
use json_patch::{Patch, PatchOperation, ReplaceOperation};
use serde_json::Value;

use super::backends::sort_backends;
use super::last_applied::{AppliedCopy, canonical_applied_copy};
use super::{Change, Normalized, Outcome, Refusal, RefusalReason};
use crate::checksum::content_checksum;
use crate::recognize::{
    CONFIG_KEY, CONTENT_CHECKSUM_ANNOTATION, LAST_APPLIED_ANNOTATION, at, is_vmcp_configmap,
};

/// Normalize a ConfigMap exactly as it arrives inside an AdmissionReview.
///
/// Non-vMCP objects pass through. For a vMCP config ConfigMap, the top-level
/// `backends` of `config.yaml` are put in name order (proven equal but for
/// that order), and so are those of its copy in kubectl's last-applied
/// annotation; `toolhive.stacklok.dev/content-checksum`, when present, is
/// recomputed over the result. Nothing is ever added.
pub fn normalize_configmap(object: &Value) -> Outcome {
    if !is_vmcp_configmap(object) {
        return Outcome::NotVmcp;
    }
    let Some(config) = at(object, &["data", CONFIG_KEY]).and_then(Value::as_str) else {
        return malformed(format!("data[{CONFIG_KEY:?}] is not a string"));
    };
    let reordered = match sort_backends(config) {
        Ok(reordered) => reordered,
        Err(refusal) => return Outcome::Refused(refusal),
    };

    let mut changes = Vec::new();
    let mut patch = Vec::new();
    if let Some(reordered) = reordered {
        changes.push(Change::BackendsReordered {
            key: CONFIG_KEY.to_owned(),
            items: reordered.items,
        });
        patch.push(replace(CONFIG_POINTER, Value::String(reordered.text)));
    }
    let mut copy_refused = None;
    match at(
        object,
        &["metadata", "annotations", LAST_APPLIED_ANNOTATION],
    ) {
        None => {}
        Some(Value::String(annotation)) => match canonical_applied_copy(annotation) {
            AppliedCopy::Canonical => {}
            AppliedCopy::Reordered { annotation, items } => {
                changes.push(Change::LastAppliedReordered { items });
                patch.push(replace(LAST_APPLIED_POINTER, Value::String(annotation)));
            }
            AppliedCopy::Refused(refusal) => copy_refused = Some(refusal),
        },
        Some(_) => {
            return malformed(format!(
                "annotation {LAST_APPLIED_ANNOTATION} is not a string"
            ));
        }
    }

    // The checksum covers the other annotations, the last-applied copy among
    // them, so it is computed over the object as the patch leaves it.
    match at(
        object,
        &["metadata", "annotations", CONTENT_CHECKSUM_ANNOTATION],
    ) {
        None => {}
        Some(Value::String(current)) => {
            let canonical = if patch.is_empty() {
                Cow::Borrowed(object)
            } else {
                let mut canonical = object.clone();
                if let Err(error) = json_patch::patch(&mut canonical, &patch) {
                    return malformed(error.to_string());
                }
                Cow::Owned(canonical)
            };
            match content_checksum(&canonical) {
                Ok(checksum) if checksum == *current => {}
                Ok(checksum) => {
                    patch.push(replace(CHECKSUM_POINTER, Value::String(checksum.clone())));
                    changes.push(Change::ContentChecksum {
                        from: current.clone(),
                        to: checksum,
                    });
                }
                Err(error) => return malformed(error.to_string()),
            }
        }
        Some(_) => {
            return malformed(format!(
                "annotation {CONTENT_CHECKSUM_ANNOTATION} is not a string"
            ));
        }
    }

    match (patch.is_empty(), copy_refused) {
        (true, None) => Outcome::Unchanged,
        (true, Some(refusal)) => Outcome::Refused(refusal),
        (false, copy_refused) => {
            changes.extend(copy_refused.map(Change::LastAppliedLeft));
            // Every operation replaces a string at a path read above, so the
            // patch applies to `object` by construction (and the tests apply it).
            Outcome::Normalized(Normalized {
                changes,
                patch: Patch(patch),
            })
        }
    }
}

/// `/data/config.yaml`, checked when compiled (a const pointer that does
/// not parse fails the build).
const CONFIG_POINTER: &Pointer = Pointer::from_static("/data/config.yaml");
/// `/metadata/annotations/toolhive.stacklok.dev~1content-checksum`.
const CHECKSUM_POINTER: &Pointer =
    Pointer::from_static("/metadata/annotations/toolhive.stacklok.dev~1content-checksum");
/// `/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration`.
const LAST_APPLIED_POINTER: &Pointer =
    Pointer::from_static("/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration");

/// A `replace` of a path that exists in the received object.
fn replace(path: &Pointer, value: Value) -> PatchOperation {
    PatchOperation::Replace(ReplaceOperation {
        path: path.to_buf(),
        value,
    })
}

fn malformed(detail: String) -> Outcome {
    Outcome::Refused(Refusal {
        reason: RefusalReason::MalformedObject,
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use json_patch::jsonptr::PointerBuf;

    #[test]
    fn the_const_pointers_name_the_keys_they_replace() {
        assert_eq!(
            CONFIG_POINTER.to_buf(),
            PointerBuf::from_tokens(["data", CONFIG_KEY])
        );
        assert_eq!(
            CHECKSUM_POINTER.to_buf(),
            PointerBuf::from_tokens(["metadata", "annotations", CONTENT_CHECKSUM_ANNOTATION])
        );
        assert_eq!(
            LAST_APPLIED_POINTER.to_buf(),
            PointerBuf::from_tokens(["metadata", "annotations", LAST_APPLIED_ANNOTATION])
        );
    }
}
