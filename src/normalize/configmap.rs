//! The vMCP config ConfigMap: sort its backend set, recompute its checksum.

use json_patch::jsonptr::Pointer;
use json_patch::{Patch, PatchOperation, ReplaceOperation};
use serde_json::Value;

use super::backends::sort_backends;
use super::{Change, Normalized, Outcome, Refusal, RefusalReason};
use crate::checksum::content_checksum_with;
use crate::recognize::{CONFIG_KEY, CONTENT_CHECKSUM_ANNOTATION, at, is_vmcp_configmap};

/// Normalize a ConfigMap exactly as it arrives inside an AdmissionReview.
///
/// Non-vMCP objects pass through. For a vMCP config ConfigMap, the top-level
/// `backends` of `config.yaml` are put in name order (proven equal but for
/// that order), and `toolhive.stacklok.dev/content-checksum`, when present, is
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

    // The checksum is computed over the reordered text before that text
    // moves into the patch.
    let new_checksum = match at(
        object,
        &["metadata", "annotations", CONTENT_CHECKSUM_ANNOTATION],
    ) {
        None => None,
        Some(Value::String(current)) => {
            let candidate = reordered.as_ref().map(|r| (CONFIG_KEY, r.text.as_str()));
            match content_checksum_with(object, candidate) {
                Ok(checksum) if checksum == *current => None,
                Ok(checksum) => Some((current, checksum)),
                Err(error) => return malformed(error.to_string()),
            }
        }
        Some(_) => {
            return malformed(format!(
                "annotation {CONTENT_CHECKSUM_ANNOTATION} is not a string"
            ));
        }
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
    if let Some((current, checksum)) = new_checksum {
        patch.push(replace(CHECKSUM_POINTER, Value::String(checksum.clone())));
        changes.push(Change::ContentChecksum {
            from: current.clone(),
            to: checksum,
        });
    }

    if patch.is_empty() {
        return Outcome::Unchanged;
    }
    // Both operations replace a string at a path read above, so the patch
    // applies to `object` by construction (and the tests apply it).
    Outcome::Normalized(Normalized {
        changes,
        patch: Patch(patch),
    })
}

/// `/data/config.yaml`, checked when compiled (a const pointer that does
/// not parse fails the build).
const CONFIG_POINTER: &Pointer = Pointer::from_static("/data/config.yaml");
/// `/metadata/annotations/toolhive.stacklok.dev~1content-checksum`.
const CHECKSUM_POINTER: &Pointer =
    Pointer::from_static("/metadata/annotations/toolhive.stacklok.dev~1content-checksum");

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
    }
}
