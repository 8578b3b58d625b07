//! The vMCP config ConfigMap: sort its backend set, recompute its checksum.

use std::sync::LazyLock;

use serde_json::Value;

use super::Outcome;
use super::data::{DataRule, normalize_data};
use crate::recognize::is_vmcp_configmap;

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
    normalize_data(object, &VMCP_CONFIG)
}

static VMCP_CONFIG: LazyLock<DataRule> = LazyLock::new(DataRule::vmcp_config);

#[cfg(test)]
mod tests {
    use crate::recognize::{CONFIG_KEY, CONTENT_CHECKSUM_ANNOTATION, LAST_APPLIED_ANNOTATION};
    use json_patch::jsonptr::Pointer;
    use json_patch::jsonptr::PointerBuf;

    // The pointers the normalizer's patch writes for the vMCP ConfigMap,
    // as they were spelled by hand before they were built from tokens.
    /// `/data/config.yaml`, checked when compiled (a const pointer that does
    /// not parse fails the build).
    const CONFIG_POINTER: &Pointer = Pointer::from_static("/data/config.yaml");
    /// `/metadata/annotations/toolhive.stacklok.dev~1content-checksum`.
    const CHECKSUM_POINTER: &Pointer =
        Pointer::from_static("/metadata/annotations/toolhive.stacklok.dev~1content-checksum");
    /// `/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration`.
    const LAST_APPLIED_POINTER: &Pointer = Pointer::from_static(
        "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
    );

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
