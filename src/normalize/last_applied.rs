//! kubectl's client-side apply keeps the applied object, in the producer's
//! order, in the annotation `kubectl.kubernetes.io/last-applied-configuration`,
//! and ToolHive's checksum covers every annotation but its own. So the copy of
//! `config.yaml` inside that annotation is put in canonical form too, or the
//! checksum would still follow the producer's order.
//!
//! Only the JSON string holding the config is replaced; every other byte of
//! the annotation stays as kubectl wrote it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::backends::Reordered;
#[cfg(test)]
use super::backends::sort_backends;
use super::{Refusal, RefusalReason};
#[cfg(test)]
use crate::recognize::CONFIG_KEY;

/// What became of the copy of `config.yaml` in the annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppliedCopy {
    /// The annotation holds no copy of `config.yaml`, or it is canonical.
    Canonical,
    /// The annotation with its copy put in canonical form.
    Reordered { annotation: String, items: usize },
    /// Left as it is, for the reason given.
    Refused(Refusal),
}

/// The fields of an applied object this reads; the rest stays raw.
#[derive(Deserialize)]
struct Applied<'a> {
    #[serde(borrow, default)]
    data: Option<BTreeMap<Cow<'a, str>, &'a RawValue>>,
}

/// Put the copy of `config.yaml` in `annotation` (the last-applied JSON) in
/// canonical form, with the same reorder and proof as the live config.
#[cfg(test)]
pub fn canonical_applied_copy(annotation: &str) -> AppliedCopy {
    canonical_copy_of(annotation, CONFIG_KEY, &sort_backends)
}

/// A reorder of one data value's text.
pub type Reorder<'r> = dyn Fn(&str) -> Result<Option<Reordered>, Refusal> + 'r;

/// Put the copy of `data[key]` in `annotation` in canonical form with
/// `reorder`, the reorder the live value gets.
pub fn canonical_copy_of(annotation: &str, key: &str, reorder: &Reorder<'_>) -> AppliedCopy {
    match reorder_copy(annotation, key, reorder) {
        Ok(None) => AppliedCopy::Canonical,
        Ok(Some((annotation, items))) => AppliedCopy::Reordered { annotation, items },
        Err(refusal) => AppliedCopy::Refused(Refusal {
            reason: refusal.reason,
            detail: format!("its last-applied-configuration copy: {}", refusal.detail),
        }),
    }
}

fn reorder_copy(
    annotation: &str,
    key: &str,
    reorder: &Reorder<'_>,
) -> Result<Option<(String, usize)>, Refusal> {
    let applied: Applied<'_> = serde_json::from_str(annotation).map_err(|error| Refusal {
        reason: RefusalReason::MalformedObject,
        detail: format!("not an object in JSON: {error}"),
    })?;
    let Some(raw) = applied.data.as_ref().and_then(|data| data.get(key)) else {
        return Ok(None);
    };
    let config: String = serde_json::from_str(raw.get()).map_err(|_| Refusal {
        reason: RefusalReason::MalformedObject,
        detail: format!("data[{key:?}] is not a string"),
    })?;
    let Some(reordered) = reorder(&config)? else {
        return Ok(None);
    };

    // The raw value is a slice of `annotation`: its offset is where the
    // string stands. Checked rather than trusted.
    let start = (raw.get().as_ptr() as usize).wrapping_sub(annotation.as_ptr() as usize);
    let end = start + raw.get().len();
    if annotation.get(start..end) != Some(raw.get()) {
        return Err(proof_failed("the config string was not found in place"));
    }
    let string =
        serde_json::to_string(&reordered.text).map_err(|error| proof_failed(&error.to_string()))?;
    let edited = [&annotation[..start], &string, &annotation[end..]].concat();
    prove(annotation, &edited, key, &reordered.text)?;
    Ok(Some((edited, reordered.items)))
}

/// The edited annotation must read as the original with only the config
/// string replaced.
fn prove(original: &str, edited: &str, key: &str, config: &str) -> Result<(), Refusal> {
    let read = |text: &str| serde_json::from_str::<Value>(text).ok();
    let mut expected = read(original).ok_or_else(|| proof_failed("the original does not read"))?;
    if let Some(slot) = expected.get_mut("data").and_then(|data| data.get_mut(key)) {
        *slot = Value::String(config.to_owned());
    }
    match read(edited) {
        Some(got) if got == expected => Ok(()),
        _ => Err(proof_failed(
            "the edited JSON does not read as the original",
        )),
    }
}

fn proof_failed(what: &str) -> Refusal {
    Refusal {
        reason: RefusalReason::ProofFailed,
        detail: what.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNSORTED: &str = "backends:\n- name: b\n- name: a\n";
    const SORTED: &str = "backends:\n- name: a\n- name: b\n";

    fn applied(config: &str) -> String {
        // As kubectl writes it: compact JSON, keys sorted, a final newline.
        format!(
            "{{\"apiVersion\":\"v1\",\"data\":{{\"config.yaml\":{},\"z\":\"<&>\"}},\"kind\":\"ConfigMap\",\"metadata\":{{\"annotations\":{{}},\"name\":\"x\"}}}}\n",
            serde_json::to_string(config).unwrap()
        )
    }

    #[test]
    fn only_the_config_string_changes() {
        let AppliedCopy::Reordered { annotation, items } =
            canonical_applied_copy(&applied(UNSORTED))
        else {
            panic!("expected a reorder");
        };
        assert_eq!(items, 2);
        assert_eq!(annotation, applied(SORTED));
        assert_eq!(canonical_applied_copy(&annotation), AppliedCopy::Canonical);
    }

    #[test]
    fn formatting_around_the_string_is_kept_byte_for_byte() {
        let indented = format!(
            "{{\n  \"data\" : {{ \"other\": \"\\u003c\",\n    \"config.yaml\":   {}  }}, \"x\": [1,2]\n}}",
            serde_json::to_string(UNSORTED).unwrap()
        );
        let AppliedCopy::Reordered { annotation, .. } = canonical_applied_copy(&indented) else {
            panic!("expected a reorder");
        };
        assert_eq!(
            annotation,
            indented.replace(
                &serde_json::to_string(UNSORTED).unwrap(),
                &serde_json::to_string(SORTED).unwrap()
            )
        );
    }

    #[test]
    fn no_copy_or_a_canonical_one_is_left_alone() {
        for annotation in [
            applied(SORTED),
            "{\"kind\":\"ConfigMap\"}".to_owned(),
            "{\"data\":{\"other\":\"x\"}}".to_owned(),
            "{\"data\":null}".to_owned(),
        ] {
            assert_eq!(
                canonical_applied_copy(&annotation),
                AppliedCopy::Canonical,
                "{annotation}"
            );
        }
    }

    #[test]
    fn a_copy_that_cannot_be_read_or_proven_is_refused_with_a_reason() {
        for (annotation, reason) in [
            ("{\"data\":".to_owned(), RefusalReason::MalformedObject),
            ("[1]".to_owned(), RefusalReason::MalformedObject),
            (
                "{\"data\":{\"config.yaml\":7}}".to_owned(),
                RefusalReason::MalformedObject,
            ),
            (
                applied("backends: [{name: b}, {name: a}]\n"),
                RefusalReason::Unsupported,
            ),
            (
                applied("backends:\n- name: b\n- name: a\n  note: |\n    x"),
                RefusalReason::ProofFailed,
            ),
        ] {
            match canonical_applied_copy(&annotation) {
                AppliedCopy::Refused(refusal) => {
                    assert_eq!(refusal.reason, reason, "{annotation}: {refusal}");
                    assert!(
                        refusal
                            .detail
                            .starts_with("its last-applied-configuration copy: ")
                    );
                }
                other => panic!("{annotation}: {other:?}"),
            }
        }
    }
}
