//! Write one input's changes into its text, and keep only what is proven.
//!
//! The changed values are spliced into the text as read (see
//! `crate::splice`); each edited document is then read again, alone, with
//! the reader that read the input (libyaml through yaml_serde for YAML,
//! serde_json for JSON) and must equal the normalized object exactly. A
//! document whose edit cannot be placed or proven is written back as read.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde_json::Value;

use super::set_order::{self, SetEdit};
use crate::manifest::{Format, for_each_document};
use crate::splice::{self, DocumentPlan, Replacement, Splice, SpliceError, Syntax};

/// The changes of one document: its replacements, the objects whose
/// declared sets are put in order, and the object it must read as once
/// they are written.
#[derive(Debug)]
pub struct DocumentEdit {
    pub replacements: Vec<Replacement>,
    pub sets: Vec<SetEdit>,
    pub expected: Value,
}

/// The text to write, and the documents left as read with the reason.
#[derive(Debug)]
pub struct Written {
    pub text: Option<String>,
    pub refused: BTreeMap<usize, String>,
}

/// Write `edits` (by document position) into `text`.
///
/// `json_ranges` are the bytes of each JSON document (saphyr reads one JSON
/// document at a time, not a stream of them).
///
/// A document in `sparse` has stubs for some List items in its `expected`
/// (see `manifest::for_each_document_sparse`): proven item by item, only the
/// edited items are compared; proven whole, it is compared with `whole(document)`.
pub fn write(
    text: &str,
    format: Format,
    json_ranges: &[Range<usize>],
    edits: &BTreeMap<usize, DocumentEdit>,
    sparse: &BTreeSet<usize>,
    whole: &dyn Fn(usize) -> Result<Value, String>,
) -> Written {
    let mut refused = BTreeMap::new();
    let mut proven: BTreeMap<usize, Vec<Splice>> = BTreeMap::new();
    for (document, result) in place(text, format, json_ranges, edits) {
        let Some(edit) = edits.get(&document) else {
            continue;
        };
        match result
            .map_err(|error| format!("its new values cannot be written in place: {error}"))
            .and_then(|plan| match edit.sets.as_slice() {
                [] => Ok(plan),
                sets => set_order::reorder(text, format, plan, sets),
            })
            .and_then(|plan| {
                if sparse.contains(&document) && !by_item(&plan) {
                    prove(text, &plan, &whole(document)?)
                } else {
                    prove(text, &plan, &edit.expected)
                }
                .map(|()| plan.splices)
            }) {
            Ok(splices) => {
                proven.insert(document, splices);
            }
            Err(reason) => {
                refused.insert(document, reason);
            }
        }
    }
    let text = (!proven.is_empty()).then(|| splice::apply(text, proven.values().flatten()));
    Written { text, refused }
}

fn place(
    text: &str,
    format: Format,
    json_ranges: &[Range<usize>],
    edits: &BTreeMap<usize, DocumentEdit>,
) -> Vec<(usize, Result<DocumentPlan, SpliceError>)> {
    match format {
        Format::Yaml => {
            let wanted = edits
                .iter()
                .map(|(&document, edit)| (document, edit.replacements.clone()))
                .collect();
            // The List items whose sets are reordered are wanted whole.
            let items = edits
                .iter()
                .map(|(&document, edit)| {
                    let items = edit.sets.iter().filter_map(|set| set.item).collect();
                    (document, items)
                })
                .collect();
            match splice::plan_with_items(text, Syntax::Yaml, &wanted, &items) {
                Ok(plans) => plans.into_iter().collect(),
                Err(error) => edits
                    .keys()
                    .map(|&document| (document, Err(error.clone())))
                    .collect(),
            }
        }
        Format::Json => edits
            .iter()
            .map(|(&document, edit)| {
                let Some(range) = json_ranges.get(document) else {
                    let error = SpliceError::NotFound(format!("document {document}"));
                    return (document, Err(error));
                };
                let wanted = BTreeMap::from([(0, edit.replacements.clone())]);
                let shift = |r: Range<usize>| r.start + range.start..r.end + range.start;
                let result = splice::plan(&text[range.clone()], Syntax::Json, &wanted)
                    .and_then(|mut plans| {
                        plans.remove(&0).unwrap_or_else(|| {
                            Err(SpliceError::NotFound("the document".to_owned()))
                        })
                    })
                    .map(|plan| DocumentPlan {
                        range: range.clone(),
                        items: BTreeMap::new(),
                        splices: plan
                            .splices
                            .into_iter()
                            .map(|splice| Splice {
                                range: shift(splice.range),
                                text: splice.text,
                            })
                            .collect(),
                    });
                (document, result)
            })
            .collect(),
    }
}

/// Read the edited document alone, with the reader that read the input, and
/// check that it is one document equal to `expected`; in a `kind: List`
/// written in block style, read each edited item alone instead (its `- `
/// lines are a one-item sequence), so a 10,000-item dump is not read twice.
///
/// Only bytes of scalars inside the document (or item) change, and what is
/// written there never starts a line at column 0 (a document marker, a new
/// item of a column-0 list), so what is around it reads as before.
fn prove(text: &str, plan: &DocumentPlan, expected: &Value) -> Result<(), String> {
    if !by_item(plan) {
        return match read_alone(text, &plan.range, &plan.splices)? {
            value if value == *expected => Ok(()),
            _ => Err("the rewritten text does not read back as the normalized object".to_owned()),
        };
    }
    for (&item, range) in &plan.items {
        let want = expected
            .get("items")
            .and_then(|items| items.get(item))
            .ok_or_else(|| format!("item {item} is not in the normalized list"))?;
        match read_alone(text, range, &plan.splices)? {
            Value::Array(read) if read.len() == 1 && read[0] == *want => {}
            _ => {
                return Err(format!(
                    "item {item}, rewritten, does not read back as the normalized object"
                ));
            }
        }
    }
    Ok(())
}

/// Whether `plan` is proven item by item: a block List whose every splice
/// falls inside an item.
fn by_item(plan: &DocumentPlan) -> bool {
    !plan.items.is_empty()
        && plan.splices.iter().all(|splice| {
            plan.items
                .values()
                .any(|range| range.start <= splice.range.start && splice.range.end <= range.end)
        })
}

/// `text[range]` with the splices that fall inside it, read as one document.
fn read_alone(text: &str, range: &Range<usize>, splices: &[Splice]) -> Result<Value, String> {
    let local: Vec<Splice> = splices
        .iter()
        .filter(|splice| range.start <= splice.range.start && splice.range.end <= range.end)
        .map(|splice| Splice {
            range: splice.range.start - range.start..splice.range.end - range.start,
            text: splice.text.clone(),
        })
        .collect();
    let edited = splice::apply(&text[range.clone()], &local);
    let mut documents = Vec::new();
    for_each_document(&edited, |_, value, _| documents.push(value))
        .map_err(|error| format!("the rewritten text no longer reads: {error}"))?;
    match <[Value; 1]>::try_from(documents) {
        Ok([value]) => Ok(value),
        Err(documents) => Err(format!(
            "the rewritten text reads as {} documents",
            documents.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splice::Step;
    use serde_json::json;

    fn no_whole(_: usize) -> Result<Value, String> {
        panic!("no document here is sparse")
    }

    fn edit(path: &[&str], value: &str, expected: Value) -> DocumentEdit {
        DocumentEdit {
            replacements: vec![Replacement {
                path: path.iter().map(|k| Step::Key((*k).to_owned())).collect(),
                value: value.to_owned(),
            }],
            sets: Vec::new(),
            expected,
        }
    }

    #[test]
    fn a_proven_edit_is_written_and_the_rest_kept() {
        let text = "# c\na: 1\n---\nb: \"x\" # c\n";
        let edits = BTreeMap::from([(1, edit(&["b"], "y", json!({"b": "y"})))]);
        let written = write(text, Format::Yaml, &[], &edits, &BTreeSet::new(), &no_whole);
        assert_eq!(
            written.text.as_deref(),
            Some("# c\na: 1\n---\nb: \"y\" # c\n")
        );
        assert!(written.refused.is_empty());
    }

    /// The safety net: an edit whose text would read as anything but the
    /// expected object is never written.
    #[test]
    fn an_edit_that_does_not_read_back_is_refused() {
        let text = "a: x\n---\nb: x\n";
        let edits = BTreeMap::from([
            (0, edit(&["a"], "y", json!({"a": "y"}))),
            (1, edit(&["b"], "y", json!({"b": "something else"}))),
        ]);
        let written = write(text, Format::Yaml, &[], &edits, &BTreeSet::new(), &no_whole);
        assert_eq!(written.text.as_deref(), Some("a: \"y\"\n---\nb: x\n"));
        assert!(
            written.refused[&1].contains("does not read back"),
            "{written:?}"
        );
    }

    #[test]
    fn list_items_are_proven_alone() {
        let text = "items:\n- a: x\n  b: 1\n# between\n- a: x\nkind: List\n";
        let path = |item| {
            vec![
                Step::Key("items".into()),
                Step::Index(item),
                Step::Key("a".into()),
            ]
        };
        let expected = json!({"items": [{"a": "x", "b": 1}, {"a": "y"}], "kind": "List"});
        let edits = BTreeMap::from([(
            0,
            DocumentEdit {
                replacements: vec![Replacement {
                    path: path(1),
                    value: "y".into(),
                }],
                sets: Vec::new(),
                expected: expected.clone(),
            },
        )]);
        let plans = place(text, Format::Yaml, &[], &edits);
        let plan = plans[0].1.as_ref().unwrap();
        assert_eq!(&text[plan.items[&1].clone()], "- a: x\n");
        let written = write(text, Format::Yaml, &[], &edits, &BTreeSet::new(), &no_whole);
        assert_eq!(
            written.text.as_deref(),
            Some("items:\n- a: x\n  b: 1\n# between\n- a: \"y\"\nkind: List\n")
        );
        // The item is what is compared: a wrong expectation of it is refused.
        let mut wrong = edits;
        wrong.get_mut(&0).unwrap().expected["items"][1]["a"] = json!("z");
        let written = write(text, Format::Yaml, &[], &wrong, &BTreeSet::new(), &no_whole);
        assert!(written.refused[&0].contains("item 1"), "{written:?}");
    }

    #[test]
    fn json_documents_are_edited_in_their_own_bytes() {
        let text = "{\"a\": \"x\"}\n{\"a\": \"x\"}\n";
        let edits = BTreeMap::from([(1, edit(&["a"], "y\n", json!({"a": "y\n"})))]);
        let written = write(
            text,
            Format::Json,
            &[0..10, 10..text.len()],
            &edits,
            &BTreeSet::new(),
            &no_whole,
        );
        assert_eq!(
            written.text.as_deref(),
            Some("{\"a\": \"x\"}\n{\"a\": \"y\\n\"}\n")
        );
    }
}
