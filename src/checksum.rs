//! ToolHive's ConfigMap content checksum (`ComputeConfigMapChecksum` in the
//! operator's `checksum.go`), byte for byte.
//!
//! One SHA-256 over: every `data` key then its value, keys in byte order; then
//! every label key then value, in byte order; then every annotation except the
//! checksum itself, likewise. No separators, no lengths; lower-case hex.

use ring::digest::{Context, SHA256};
use serde_json::{Map, Value};

use crate::recognize::CONTENT_CHECKSUM_ANNOTATION;

/// A field the checksum covers holds something other than strings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} is not a map of strings (at key {key:?})")]
pub struct ChecksumError {
    pub field: &'static str,
    pub key: String,
}

/// The checksum of a ConfigMap as ToolHive computes it.
///
/// ```
/// use serde_json::json;
/// use vmcp_normalizer::checksum::content_checksum;
///
/// // The spec's minimal vector (toolhive-formats.md section 3).
/// let configmap = json!({
///     "data": {"config.yaml": "name: x\ngroupRef: g\n"},
///     "metadata": {"labels": {
///         "toolhive.stacklok.io/component": "vmcp-config",
///         "toolhive.stacklok.io/managed-by": "toolhive-operator",
///         "toolhive.stacklok.io/virtual-mcp-server": "x",
///     }},
/// });
/// assert_eq!(
///     content_checksum(&configmap).unwrap(),
///     "8988151c354a92203e9ff06e6c9ae409ab87ec51940323e401ede65f5e7b8db6"
/// );
/// ```
pub fn content_checksum(configmap: &Value) -> Result<String, ChecksumError> {
    content_checksum_without(configmap, CONTENT_CHECKSUM_ANNOTATION)
}

/// ToolHive's algorithm with the checksum kept under another annotation
/// (that annotation is the one left out of the hash).
pub fn content_checksum_without(
    configmap: &Value,
    checksum_annotation: &str,
) -> Result<String, ChecksumError> {
    let mut hasher = Context::new(&SHA256);
    hash_string_map(&mut hasher, configmap.get("data"), "data", None)?;
    let metadata = configmap.get("metadata");
    let labels = metadata.and_then(|m| m.get("labels"));
    hash_string_map(&mut hasher, labels, "metadata.labels", None)?;
    let annotations = metadata.and_then(|m| m.get("annotations"));
    hash_string_map(
        &mut hasher,
        annotations,
        "metadata.annotations",
        Some(checksum_annotation),
    )?;
    Ok(lower_hex(hasher.finish().as_ref()))
}

/// A plain SHA-256 of `bytes`, in lower-case hex (`sha256sum`'s digits).
pub fn sha256_hex(bytes: &[u8]) -> String {
    lower_hex(ring::digest::digest(&SHA256, bytes).as_ref())
}

/// Lower-case hex, as Go's `%x` writes a digest. A table and one push per
/// digit: the `hex` crate's iterator version cost more than the lookups
/// around it on every patched review.
fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(2 * bytes.len());
    for &byte in bytes {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    hex
}

/// Hash every key then its value of an optional map of strings, keys in
/// byte order (Go's `sort.Strings`), with `skipped` left out. `null` and absent count as empty, as
/// Go's nil map does.
fn hash_string_map(
    hasher: &mut Context,
    value: Option<&Value>,
    field: &'static str,
    skipped: Option<&str>,
) -> Result<(), ChecksumError> {
    let map: &Map<String, Value> = match value {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(ChecksumError {
                field,
                key: String::new(),
            });
        }
    };
    let mut hash = |key: &str, value: &Value| {
        let Some(value) = value.as_str() else {
            return Err(ChecksumError {
                field,
                key: key.to_owned(),
            });
        };
        if skipped != Some(key) {
            hasher.update(key.as_bytes());
            hasher.update(value.as_bytes());
        }
        Ok(())
    };
    // serde_json's map is a BTreeMap<String, _>: it iterates in byte order.
    // A dependency turning on serde_json's `preserve_order` would break that;
    // `maps_iterate_in_byte_order` below goes red then.
    map.iter().try_for_each(|(key, value)| hash(key, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vmcp_labels(name: &str) -> Value {
        json!({
            "toolhive.stacklok.io/component": "vmcp-config",
            "toolhive.stacklok.io/managed-by": "toolhive-operator",
            "toolhive.stacklok.io/virtual-mcp-server": name,
        })
    }

    #[test]
    fn spec_vector_minimal_config() {
        let configmap = json!({
            "data": {"config.yaml": "name: x\ngroupRef: g\n"},
            "metadata": {"labels": vmcp_labels("x")},
        });
        assert_eq!(
            content_checksum(&configmap).unwrap(),
            "8988151c354a92203e9ff06e6c9ae409ab87ec51940323e401ede65f5e7b8db6"
        );
    }

    #[test]
    fn the_checksum_annotation_itself_is_not_hashed_but_others_are() {
        let base = json!({"data": {"config.yaml": "a"}, "metadata": {"labels": vmcp_labels("x")}});
        let mut with_checksum = base.clone();
        with_checksum["metadata"]["annotations"] = json!({CONTENT_CHECKSUM_ANNOTATION: "stale"});
        let mut with_other = base.clone();
        with_other["metadata"]["annotations"] = json!({"team": "a"});
        let plain = content_checksum(&base).unwrap();
        assert_eq!(content_checksum(&with_checksum).unwrap(), plain);
        assert_ne!(content_checksum(&with_other).unwrap(), plain);
    }

    #[test]
    fn keys_are_hashed_in_byte_order_without_separators() {
        // "authserver-config.yaml" sorts before "config.yaml" and is hashed first.
        let configmap = json!({"data": {"config.yaml": "c", "authserver-config.yaml": "a"}});
        let expected = ring::digest::digest(&SHA256, b"authserver-config.yamlaconfig.yamlc");
        let expected: String = expected
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(content_checksum(&configmap).unwrap(), expected);
    }

    /// The checksum hashes a map in its iteration order, so that order must
    /// be Go's `sort.Strings`: UTF-8 bytes, whatever order the keys came in.
    /// (Tests build with every feature a normal build has, and more.)
    #[test]
    fn maps_iterate_in_byte_order() {
        let map: Value =
            serde_json::from_str(r#"{"😀": "", "Ａ": "", "é": "", "z": "", "a": "", "Z": ""}"#)
                .unwrap();
        let keys: Vec<&str> = map
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["Z", "a", "z", "é", "Ａ", "😀"]);
    }

    #[test]
    fn the_plain_checksum_is_sha256sum_of_the_bytes() {
        // `printf abc | sha256sum`
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hex_digits_are_lower_case_two_per_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let expected: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(lower_hex(&all), expected);
        assert_eq!(lower_hex(&[]), "");
    }

    #[test]
    fn non_string_values_are_errors() {
        let err = content_checksum(&json!({"data": {"config.yaml": 1}})).unwrap_err();
        assert_eq!(
            err,
            ChecksumError {
                field: "data",
                key: "config.yaml".into()
            }
        );
        assert!(content_checksum(&json!({"metadata": {"labels": ["x"]}})).is_err());
    }
}
