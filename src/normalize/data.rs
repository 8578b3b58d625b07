//! One data key of a ConfigMap declared to hold sets: reorder them, do the
//! same in kubectl's last-applied copy, and recompute the declared checksum.
//!
//! The vMCP config ConfigMap is this with the key `config.yaml` (YAML), the
//! set `backends` by `name` and ToolHive's content checksum.

use std::borrow::Cow;
use std::cell::RefCell;

use json_patch::jsonptr::PointerBuf;
use json_patch::{Patch, PatchOperation, ReplaceOperation};
use serde_json::Value;

use super::json_set::sort_json_sets;
use super::last_applied::{AppliedCopy, canonical_copy_of};
use super::object_set::sort_object_sets;
use super::set_path::SetSpec;
use super::yaml_set::{Reordered, sort_sets};
use super::{Change, Normalized, Outcome, Refusal, RefusalReason};
use crate::checksum::{content_checksum_without, sha256_hex};
use crate::recognize::{CONTENT_CHECKSUM_ANNOTATION, LAST_APPLIED_ANNOTATION, at};

/// How a data key's text is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFormat {
    /// As Go's yaml.v3 writes it (read as libyaml reads it).
    Yaml,
    /// As Go's encoding/json writes it, compact or indented.
    Json,
}

/// Which checksum an annotation holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    /// ToolHive's `ComputeConfigMapChecksum`: data, labels and annotations.
    ToolhiveContent,
    /// SHA-256 of the data key's bytes, lower-case hex.
    Sha256,
}

/// A checksum annotation to keep equal to the canonical content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumRule {
    pub annotation: String,
    pub algorithm: ChecksumAlgorithm,
}

/// What to do with one data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRule {
    pub key: String,
    pub format: DataFormat,
    /// Applied in order, each to the result of the one before.
    pub sets: Vec<SetSpec>,
    pub checksum: Option<ChecksumRule>,
}

/// One set that moved: its index in [`DataRule::sets`], and its items.
type Moved = (usize, usize);

impl DataRule {
    /// vMCP's `config.yaml`: what the preset declares.
    pub fn vmcp_config() -> Self {
        Self {
            key: crate::recognize::CONFIG_KEY.to_owned(),
            format: DataFormat::Yaml,
            sets: vec![SetSpec::backends()],
            checksum: Some(ChecksumRule {
                annotation: CONTENT_CHECKSUM_ANNOTATION.to_owned(),
                algorithm: ChecksumAlgorithm::ToolhiveContent,
            }),
        }
    }

    /// Every declared set of `text` in order; `Ok(None)` when none moved.
    fn reorder(&self, text: &str) -> Result<Option<(String, Vec<Moved>)>, Refusal> {
        sort_sets_in_text(text, self.format, &self.sets)
    }

    fn change(&self, set: usize, items: usize, in_copy: bool) -> Change {
        let spec = &self.sets[set];
        match (spec == &SetSpec::backends(), in_copy) {
            (true, false) => Change::BackendsReordered {
                key: self.key.clone(),
                items,
            },
            (true, true) => Change::LastAppliedReordered { items },
            (false, _) => Change::SetReordered {
                place: if in_copy {
                    format!("the last-applied-configuration copy of {}", self.key)
                } else {
                    self.key.clone()
                },
                path: spec.path.to_string(),
                by: spec.key.to_string(),
                items,
            },
        }
    }
}

/// Put every set of `sets` in `text` in order, each in the result of the
/// one before, every item moved whole as its bytes and the result proven
/// (see `yaml_set`, `json_set`); `Ok(None)` when none moved. Each moved set
/// is given as its index in `sets` and how many items it holds.
pub fn sort_sets_in_text(
    text: &str,
    format: DataFormat,
    sets: &[SetSpec],
) -> Result<Option<(String, Vec<Moved>)>, Refusal> {
    let mut current: Cow<'_, str> = Cow::Borrowed(text);
    let mut moved = Vec::new();
    for (index, spec) in sets.iter().enumerate() {
        let reordered = match format {
            DataFormat::Yaml => sort_sets(&current, spec)?,
            DataFormat::Json => sort_json_sets(&current, spec)?,
        };
        if let Some(Reordered { text, items }) = reordered {
            moved.push((index, items));
            current = Cow::Owned(text);
        }
    }
    Ok((!moved.is_empty()).then(|| (current.into_owned(), moved)))
}

/// Normalize `data[rule.key]` of a ConfigMap that a rule matched.
///
/// The sets are put in order (each proven equal but for that order), and so
/// are those of its copy in kubectl's last-applied annotation; the checksum
/// annotation, when present, is recomputed over the result. Nothing is
/// ever added.
pub fn normalize_data(object: &Value, rule: &DataRule) -> Outcome {
    let key = rule.key.as_str();
    let Some(config) = at(object, &["data", key]).and_then(Value::as_str) else {
        return malformed(format!("data[{key:?}] is not a string"));
    };
    let reordered = match rule.reorder(config) {
        Ok(reordered) => reordered,
        Err(refusal) => return Outcome::Refused(refusal),
    };

    let mut changes = Vec::new();
    let mut patch = Vec::new();
    if let Some((text, moved)) = reordered {
        changes.extend(
            moved
                .iter()
                .map(|&(set, items)| rule.change(set, items, false)),
        );
        patch.push(replace(
            PointerBuf::from_tokens(["data", key]),
            Value::String(text),
        ));
    }
    let mut copy_refused = None;
    match at(
        object,
        &["metadata", "annotations", LAST_APPLIED_ANNOTATION],
    ) {
        None => {}
        Some(Value::String(annotation)) => {
            // Which sets of the copy moved, noted by the reorder it is given.
            let copy_moved = RefCell::new(Vec::new());
            let reorder = |text: &str| {
                Ok(rule.reorder(text)?.map(|(text, moved)| {
                    let items = moved.iter().map(|&(_, items)| items).sum();
                    *copy_moved.borrow_mut() = moved;
                    Reordered { text, items }
                }))
            };
            let copy = canonical_copy_of(annotation, key, &reorder);
            let copy_moved = copy_moved.into_inner();
            match copy {
                AppliedCopy::Canonical => {}
                AppliedCopy::Reordered { annotation, .. } => {
                    changes.extend(
                        copy_moved
                            .iter()
                            .map(|&(set, items)| rule.change(set, items, true)),
                    );
                    patch.push(replace(
                        PointerBuf::from_tokens([
                            "metadata",
                            "annotations",
                            LAST_APPLIED_ANNOTATION,
                        ]),
                        Value::String(annotation),
                    ));
                }
                AppliedCopy::Refused(refusal) => copy_refused = Some(refusal),
            }
        }
        Some(_) => {
            return malformed(format!(
                "annotation {LAST_APPLIED_ANNOTATION} is not a string"
            ));
        }
    }

    // The checksum covers the other annotations, the last-applied copy among
    // them, so it is computed over the object as the patch leaves it.
    if let Some(checksum) = &rule.checksum {
        let annotation = checksum.annotation.as_str();
        match at(object, &["metadata", "annotations", annotation]) {
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
                let computed = match checksum.algorithm {
                    ChecksumAlgorithm::ToolhiveContent => {
                        content_checksum_without(&canonical, annotation)
                            .map_err(|error| error.to_string())
                    }
                    ChecksumAlgorithm::Sha256 => at(&canonical, &["data", key])
                        .and_then(Value::as_str)
                        .map(|text| sha256_hex(text.as_bytes()))
                        .ok_or_else(|| format!("data[{key:?}] is not a string")),
                };
                match computed {
                    Ok(computed) if computed == *current => {}
                    Ok(computed) => {
                        patch.push(replace(
                            PointerBuf::from_tokens(["metadata", "annotations", annotation]),
                            Value::String(computed.clone()),
                        ));
                        changes.push(if annotation == CONTENT_CHECKSUM_ANNOTATION {
                            Change::ContentChecksum {
                                from: current.clone(),
                                to: computed,
                            }
                        } else {
                            Change::Checksum {
                                annotation: annotation.to_owned(),
                                from: current.clone(),
                                to: computed,
                            }
                        });
                    }
                    Err(error) => return malformed(error),
                }
            }
            Some(_) => return malformed(format!("annotation {annotation} is not a string")),
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

/// Normalize the sets in an object's own fields.
pub fn normalize_object_sets(object: &Value, sets: &[SetSpec]) -> Outcome {
    let mut changes = Vec::new();
    let mut patch = Vec::new();
    let mut current = Cow::Borrowed(object);
    for spec in sets {
        let sorted = match sort_object_sets(&current, spec) {
            Ok(sorted) => sorted,
            Err(refusal) => return Outcome::Refused(refusal),
        };
        if sorted.is_empty() {
            continue;
        }
        let mut next = current.into_owned();
        let mut items = 0;
        for list in sorted {
            items += list.items.len();
            let operation = replace(list.pointer, Value::Array(list.items));
            if let Err(error) = json_patch::patch(&mut next, std::slice::from_ref(&operation)) {
                return malformed(error.to_string());
            }
            patch.push(operation);
        }
        changes.push(Change::SetReordered {
            place: "the object".to_owned(),
            path: spec.path.to_string(),
            by: spec.key.to_string(),
            items,
        });
        current = Cow::Owned(next);
    }
    if patch.is_empty() {
        Outcome::Unchanged
    } else {
        Outcome::Normalized(Normalized {
            changes,
            patch: Patch(patch),
        })
    }
}

/// A `replace` of a path that exists in the received object.
fn replace(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Replace(ReplaceOperation { path, value })
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
    use crate::normalize::SetPath;
    use serde_json::json;

    fn json_hosts() -> DataRule {
        DataRule {
            key: "hosts.json".to_owned(),
            format: DataFormat::Json,
            sets: vec![SetSpec {
                path: SetPath::parse("allowed").unwrap(),
                key: SortKey::Item,
            }],
            checksum: Some(ChecksumRule {
                annotation: "example.com/hosts-sha256".to_owned(),
                algorithm: ChecksumAlgorithm::Sha256,
            }),
        }
    }

    use crate::normalize::SortKey;

    #[test]
    fn a_json_key_is_sorted_and_its_plain_checksum_follows() {
        let object = json!({
            "data": {"hosts.json": "{\"allowed\":[\"b\",\"a\"]}"},
            "metadata": {"annotations": {"example.com/hosts-sha256": "stale"}},
        });
        let Outcome::Normalized(normalized) = normalize_data(&object, &json_hosts()) else {
            panic!("expected a patch");
        };
        let canonical = normalized.apply_to(&object).unwrap();
        let text = "{\"allowed\":[\"a\",\"b\"]}";
        assert_eq!(canonical["data"]["hosts.json"], text);
        assert_eq!(
            canonical["metadata"]["annotations"]["example.com/hosts-sha256"],
            sha256_hex(text.as_bytes())
        );
        assert_eq!(
            normalized
                .changes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "sorted 2 items of allowed by value in hosts.json",
                format!(
                    "example.com/hosts-sha256 stale -> {}",
                    &sha256_hex(text.as_bytes())[..12]
                )
                .as_str()
            ]
        );
        assert_eq!(
            normalize_data(&canonical, &json_hosts()),
            Outcome::Unchanged
        );
    }

    #[test]
    fn the_last_applied_copy_of_any_declared_key_is_sorted_too() {
        let applied = json!({"data": {"hosts.json": "[\"b\",\"a\"]"}}).to_string();
        let mut rule = json_hosts();
        rule.sets[0].path = SetPath::root();
        rule.checksum = None;
        let object = json!({
            "data": {"hosts.json": "[\"a\",\"b\"]"},
            "metadata": {"annotations": {LAST_APPLIED_ANNOTATION: applied}},
        });
        let Outcome::Normalized(normalized) = normalize_data(&object, &rule) else {
            panic!("expected a patch");
        };
        assert_eq!(
            normalized.changes[0].to_string(),
            "sorted 2 items of . by value in the last-applied-configuration copy of hosts.json"
        );
        let canonical = normalized.apply_to(&object).unwrap();
        assert_eq!(
            canonical["metadata"]["annotations"][LAST_APPLIED_ANNOTATION],
            json!({"data": {"hosts.json": "[\"a\",\"b\"]"}}).to_string()
        );
    }

    #[test]
    fn sets_in_the_object_itself_are_replaced_in_order() {
        let object =
            json!({"kind": "Gateway", "spec": {"listeners": [{"name": "b"}, {"name": "a"}]}});
        let set = SetSpec {
            path: SetPath::parse("spec.listeners").unwrap(),
            key: SortKey::Field("name".to_owned()),
        };
        let Outcome::Normalized(normalized) =
            normalize_object_sets(&object, std::slice::from_ref(&set))
        else {
            panic!("expected a patch");
        };
        let canonical = normalized.apply_to(&object).unwrap();
        assert_eq!(
            canonical["spec"]["listeners"],
            json!([{"name": "a"}, {"name": "b"}])
        );
        assert_eq!(
            normalize_object_sets(&canonical, &[set]),
            Outcome::Unchanged
        );
    }
}
