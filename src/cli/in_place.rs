//! Write one input's changes into its text, and keep only what is proven.
//!
//! The changed values are spliced into the text as read (see
//! `crate::splice`); the edited text is then read again with the reader that
//! read the input (libyaml through yaml_serde for YAML, serde_json for JSON)
//! and every edited document must equal the normalized object exactly. A
//! document whose edit cannot be placed or proven is written back as read.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::manifest::{Format, for_each_document};
use crate::splice::{self, Replacement, Splice, SpliceError, Syntax};

/// The changes of one document: its replacements and the object it must
/// read as once they are written.
#[derive(Debug)]
pub struct DocumentEdit {
    pub replacements: Vec<Replacement>,
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
pub fn write(
    text: &str,
    format: Format,
    json_ranges: &[std::ops::Range<usize>],
    edits: &BTreeMap<usize, DocumentEdit>,
) -> Written {
    let mut refused = BTreeMap::new();
    let mut placed: BTreeMap<usize, Vec<Splice>> = BTreeMap::new();
    for (document, result) in place(text, format, json_ranges, edits) {
        match result {
            Ok(splices) => {
                placed.insert(document, splices);
            }
            Err(error) => {
                refused.insert(
                    document,
                    format!("its new values cannot be written in place: {error}"),
                );
            }
        }
    }
    // Each round drops the documents that do not read back as intended; a
    // document's text cannot change how another reads, so one more round
    // proves the rest (the loop is bounded by the number of documents).
    while !placed.is_empty() {
        let edited = splice::apply(text, placed.values().flatten());
        let failures = prove(&edited, format, &placed, edits);
        if failures.is_empty() {
            return Written {
                text: Some(edited),
                refused,
            };
        }
        for (document, reason) in failures {
            placed.remove(&document);
            refused.insert(
                document,
                format!("the rewritten text does not read back as the normalized object: {reason}"),
            );
        }
    }
    Written {
        text: None,
        refused,
    }
}

type Placed = Vec<(usize, Result<Vec<Splice>, SpliceError>)>;

fn place(
    text: &str,
    format: Format,
    json_ranges: &[std::ops::Range<usize>],
    edits: &BTreeMap<usize, DocumentEdit>,
) -> Placed {
    match format {
        Format::Yaml => {
            let wanted = edits
                .iter()
                .map(|(&document, edit)| (document, edit.replacements.clone()))
                .collect();
            match splice::plan(text, Syntax::Yaml, &wanted) {
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
                let result = splice::plan(&text[range.clone()], Syntax::Json, &wanted)
                    .and_then(|mut plans| plans.remove(&0).unwrap_or(Ok(Vec::new())))
                    .map(|splices| {
                        splices
                            .into_iter()
                            .map(|splice| Splice {
                                range: splice.range.start + range.start
                                    ..splice.range.end + range.start,
                                text: splice.text,
                            })
                            .collect()
                    });
                (document, result)
            })
            .collect(),
    }
}

/// The edited documents that do not read as their expected object, with
/// the first difference. The whole stream is read, so a splice that
/// changed where documents start or end is caught too.
fn prove(
    edited: &str,
    format: Format,
    placed: &BTreeMap<usize, Vec<Splice>>,
    edits: &BTreeMap<usize, DocumentEdit>,
) -> BTreeMap<usize, String> {
    let mut failures = BTreeMap::new();
    let mut seen = 0;
    let read = for_each_document(edited, |document, value, _| {
        seen = document + 1;
        if !placed.contains_key(&document) {
            return;
        }
        if let Some(edit) = edits.get(&document)
            && value != edit.expected
        {
            failures.insert(document, "it reads as a different object".to_owned());
        }
    });
    let everything = |reason: String| {
        placed
            .keys()
            .map(|&document| (document, reason.clone()))
            .collect()
    };
    match read {
        Err(error) => everything(format!("it no longer reads: {error}")),
        Ok(read_as) if read_as != format => everything("it reads as another format".to_owned()),
        Ok(_) if placed.keys().any(|&document| document >= seen) => {
            everything("the text holds fewer documents".to_owned())
        }
        Ok(_) => failures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splice::Step;
    use serde_json::json;

    fn edit(path: &[&str], value: &str, expected: Value) -> DocumentEdit {
        DocumentEdit {
            replacements: vec![Replacement {
                path: path.iter().map(|k| Step::Key((*k).to_owned())).collect(),
                value: value.to_owned(),
            }],
            expected,
        }
    }

    #[test]
    fn a_proven_edit_is_written_and_the_rest_kept() {
        let text = "# c\na: 1\n---\nb: \"x\" # c\n";
        let edits = BTreeMap::from([(1, edit(&["b"], "y", json!({"b": "y"})))]);
        let written = write(text, Format::Yaml, &[], &edits);
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
        let written = write(text, Format::Yaml, &[], &edits);
        assert_eq!(written.text.as_deref(), Some("a: \"y\"\n---\nb: x\n"));
        assert!(
            written.refused[&1].contains("does not read back"),
            "{written:?}"
        );
    }

    #[test]
    fn json_documents_are_edited_in_their_own_bytes() {
        let text = "{\"a\": \"x\"}\n{\"a\": \"x\"}\n";
        let edits = BTreeMap::from([(1, edit(&["a"], "y\n", json!({"a": "y\n"})))]);
        let written = write(text, Format::Json, &[0..10, 10..text.len()], &edits);
        assert_eq!(
            written.text.as_deref(),
            Some("{\"a\": \"x\"}\n{\"a\": \"y\\n\"}\n")
        );
    }
}
