//! Put the sets a `format: object` rule declares in order in the manifest
//! text itself.
//!
//! The webhook replaces each such list with its items in order. Offline the
//! list is reordered where it stands instead: the object's bytes (its
//! document, or its item of a `kind: List`) go through the same machinery
//! that reorders a data key's sets (every item moved whole as its bytes,
//! with the comment lines directly above it, and the result read again),
//! and the reordered bytes replace them. `in_place` then reads the edited
//! document again and keeps it only if it equals the normalized object.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

use serde_json::value::RawValue;

use crate::manifest::Format;
use crate::normalize::{DataFormat, SetSpec, sort_sets_in_text};
use crate::splice::{self, DocumentPlan, Splice};

/// The declared sets of one object: its item in a `kind: List`, if it is
/// one, and the sets in the object (paths from the object's root).
#[derive(Debug, Clone, PartialEq)]
pub struct SetEdit {
    pub item: Option<usize>,
    pub sets: Vec<SetSpec>,
}

/// Fold `edits` into the plan of one document: each object's bytes, with
/// the plan's splices that fall inside them, become one splice of the same
/// bytes with the sets in order. The error says why an object's sets cannot
/// be reordered in its text.
pub fn reorder(
    text: &str,
    format: Format,
    mut plan: DocumentPlan,
    edits: &[SetEdit],
) -> Result<DocumentPlan, String> {
    for edit in edits {
        let region = region(text, format, &plan, edit.item)?;
        // Value replacements inside the object (a checksum annotation) are
        // made first, in the bytes that are then reordered.
        let (inside, outside): (Vec<Splice>, Vec<Splice>) =
            plan.splices.into_iter().partition(|splice| {
                region.start <= splice.range.start && splice.range.end <= region.end
            });
        if let Some(splice) = outside
            .iter()
            .find(|splice| splice.range.start < region.end && region.start < splice.range.end)
        {
            return Err(format!(
                "a value at bytes {}..{} straddles the object's bytes",
                splice.range.start, splice.range.end
            ));
        }
        let local: Vec<Splice> = inside
            .iter()
            .map(|splice| Splice {
                range: splice.range.start - region.start..splice.range.end - region.start,
                text: splice.text.clone(),
            })
            .collect();
        let object = splice::apply(&text[region.clone()], &local);
        let (sets, data_format) = match (format, edit.item) {
            (Format::Yaml, Some(_)) => (
                // The item is cut out with its `- `: a one-item sequence.
                edit.sets
                    .iter()
                    .map(|set| SetSpec {
                        path: set.path.in_each_item(),
                        key: set.key.clone(),
                    })
                    .collect(),
                DataFormat::Yaml,
            ),
            (Format::Yaml, None) => (edit.sets.clone(), DataFormat::Yaml),
            (Format::Json, _) => (edit.sets.clone(), DataFormat::Json),
        };
        let reordered = match sort_sets_in_text(&object, data_format, &sets) {
            Ok(Some((reordered, _))) => reordered,
            Ok(None) => {
                // The object's patch moves items the text's order keeps:
                // items with equal keys are ordered by their JSON value
                // there and by their text here.
                return Err(
                    "its sets as written are in order already (items with equal keys?)".to_owned(),
                );
            }
            Err(refusal) => {
                return Err(format!(
                    "its sets cannot be reordered in place ({}): {}",
                    refusal.reason, refusal.detail
                ));
            }
        };
        plan.splices = outside;
        plan.splices.push(Splice {
            range: region,
            text: reordered,
        });
        plan.splices.sort_by_key(|splice| splice.range.start);
    }
    Ok(plan)
}

/// The bytes of the object: the document, or its item of a `kind: List`
/// (YAML: from its `- ` line to the next item's; JSON: the element).
fn region(
    text: &str,
    format: Format,
    plan: &DocumentPlan,
    item: Option<usize>,
) -> Result<Range<usize>, String> {
    match (format, item) {
        (Format::Yaml, None) => Ok(plan.range.clone()),
        (Format::Yaml, Some(item)) => plan.items.get(&item).cloned().ok_or_else(|| {
            format!("item {item} of the List is not a block sequence item on its own `- ` line")
        }),
        (Format::Json, None) => {
            let document = &text[plan.range.clone()];
            let start = plan.range.start + (document.len() - document.trim_start().len());
            let end = plan.range.start + document.trim_end().len();
            Ok(start..end.max(start))
        }
        (Format::Json, Some(item)) => {
            let document = &text[plan.range.clone()];
            json_item(document, item)
                .map(|range| range.start + plan.range.start..range.end + plan.range.start)
                .ok_or_else(|| format!("item {item} of the List is not found in its text"))
        }
    }
}

/// The bytes of element `item` of the top-level `items` of a JSON document.
fn json_item(document: &str, item: usize) -> Option<Range<usize>> {
    let object: BTreeMap<Cow<'_, str>, &RawValue> = serde_json::from_str(document).ok()?;
    let items: Vec<&RawValue> = serde_json::from_str(object.get("items")?.get()).ok()?;
    let raw = items.get(item)?.get();
    // A raw value is a slice of `document`: where it starts, checked.
    let start = (raw.as_ptr() as usize).wrapping_sub(document.as_ptr() as usize);
    let end = start.wrapping_add(raw.len());
    (document.get(start..end) == Some(raw)).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::{SetPath, SortKey};

    fn listeners() -> Vec<SetSpec> {
        vec![SetSpec {
            path: SetPath::parse("spec.listeners").unwrap(),
            key: SortKey::Field("name".to_owned()),
        }]
    }

    fn plan(range: Range<usize>, items: BTreeMap<usize, Range<usize>>) -> DocumentPlan {
        DocumentPlan {
            range,
            splices: Vec::new(),
            items,
        }
    }

    fn reordered(text: &str, format: Format, plan: DocumentPlan, item: Option<usize>) -> String {
        let edit = SetEdit {
            item,
            sets: listeners(),
        };
        let plan = reorder(text, format, plan, &[edit]).unwrap();
        splice::apply(text, &plan.splices)
    }

    #[test]
    fn a_document_is_reordered_in_its_own_bytes() {
        let first = "a: 1\n";
        let second = "---\nspec:\n  listeners:\n  # b's\n  - name: b\n  - name: a\n";
        let text = format!("{first}{second}");
        assert_eq!(
            reordered(
                &text,
                Format::Yaml,
                plan(first.len()..text.len(), BTreeMap::new()),
                None
            ),
            "a: 1\n---\nspec:\n  listeners:\n  - name: a\n  # b's\n  - name: b\n"
        );
    }

    #[test]
    fn a_list_item_is_reordered_alone_and_a_value_inside_it_kept() {
        let item = "- kind: X\n  spec:\n    listeners:\n      - name: b\n      - name: a\n";
        let text = format!("kind: List\nitems:\n- kind: Y\n{item}");
        let start = text.len() - item.len();
        let mut plan = plan(0..text.len(), BTreeMap::from([(1, start..text.len())]));
        // A value replaced inside the item is made in the reordered bytes.
        plan.splices.push(Splice {
            range: start + 8..start + 9,
            text: "Z".to_owned(),
        });
        assert_eq!(
            reordered(&text, Format::Yaml, plan.clone(), Some(1)),
            "kind: List\nitems:\n- kind: Y\n- kind: Z\n  spec:\n    listeners:\n      - name: a\n      - name: b\n"
        );
        // An item that is not on its own lines (a flow List) is not found.
        plan.items.clear();
        let error = reorder(
            &text,
            Format::Yaml,
            plan,
            &[SetEdit {
                item: Some(1),
                sets: listeners(),
            }],
        )
        .unwrap_err();
        assert!(error.contains("item 1 of the List"), "{error}");
    }

    #[test]
    fn json_elements_and_documents_are_found() {
        let text = "{\"items\": [{\"a\": 1}, {\"spec\": {\"listeners\": [{\"name\": \"b\"}, {\"name\": \"a\"}]}}]}\n";
        assert_eq!(
            reordered(
                text,
                Format::Json,
                plan(0..text.len(), BTreeMap::new()),
                Some(1)
            ),
            text.replace("\"b\"}, {\"name\": \"a\"", "\"a\"}, {\"name\": \"b\"")
        );
        let text = " {\"spec\": {\"listeners\": [\"x\", {\"name\": \"a\"}]}}\n";
        let error = reorder(
            text,
            Format::Json,
            plan(0..text.len(), BTreeMap::new()),
            &[SetEdit {
                item: None,
                sets: listeners(),
            }],
        )
        .unwrap_err();
        assert!(error.contains("item 1 has no string name"), "{error}");
        assert_eq!(json_item("{\"items\": [1, 22]}", 1), Some(14..16));
        assert_eq!(json_item("{\"items\": [1]}", 1), None);
    }

    #[test]
    fn what_cannot_be_reordered_says_why() {
        let text = "spec:\n  listeners: [{name: b}, {name: a}]\n";
        let error = reorder(
            text,
            Format::Yaml,
            plan(0..text.len(), BTreeMap::new()),
            &[SetEdit {
                item: None,
                sets: listeners(),
            }],
        )
        .unwrap_err();
        assert!(error.contains("written on its key's line"), "{error}");
        let in_order = "spec:\n  listeners:\n  - name: a\n  - name: b\n";
        let error = reorder(
            in_order,
            Format::Yaml,
            plan(0..in_order.len(), BTreeMap::new()),
            &[SetEdit {
                item: None,
                sets: listeners(),
            }],
        )
        .unwrap_err();
        assert!(error.contains("in order already"), "{error}");
    }
}
