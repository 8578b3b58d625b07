//! Put the items of every list at a declared path of a YAML text in order of
//! their key, moving whole items as text so every byte of every item stays.
//!
//! The same three steps as the top-level `backends` reorder, which is this
//! with the path `backends` and the key `name`: read the text as the
//! consumer does (libyaml), cut each list into items by lines (the layout),
//! and read the reassembled text again: it must read as the original but
//! for the order of those items, or nothing is returned.

use saphyr_parser::{Event, Parser};

use super::consumer_yaml::{self, Item, Reading, SetValue};
use super::layout::{self, Layout, Line};
use super::set_path::{Segment, SetSpec, SortKey};
use super::{Refusal, RefusalReason};
use crate::splice::ByteOffsets;

/// A text whose sets were reordered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reordered {
    pub text: String,
    /// How many items the reordered lists hold together.
    pub items: usize,
}

/// Reorder every list at `spec.path` of `text` by `spec.key`.
///
/// `Ok(None)`: nothing to do (no list there, none with two items out of
/// order). `Err`: the text is left as it is, for the reason given.
pub fn sort_sets(text: &str, spec: &SetSpec) -> Result<Option<Reordered>, Refusal> {
    let reading = consumer_yaml::read_sets(text, spec)?;
    let path = spec.path.to_string();
    let mut keys: Vec<Option<Vec<&str>>> = Vec::with_capacity(reading.sets().len());
    for set in reading.sets() {
        keys.push(match set {
            SetValue::Absent | SetValue::Null => None,
            SetValue::NotList => {
                return Err(unsupported(&format!("a {path} value that is not a list")));
            }
            SetValue::List(items) => {
                let keys = item_keys(items, &path, &spec.key)?;
                // Strictly increasing keys are the canonical order whatever
                // the text; only a list that may move is taken apart.
                (!keys.windows(2).all(|pair| pair[0] < pair[1])).then_some(keys)
            }
        });
    }
    if keys.iter().all(Option::is_none) {
        return Ok(None);
    }
    refuse_yaml_1_1_line_breaks(text)?;
    let lines = layout::lines(text);
    let places = key_places(text, spec, &lines, reading.sets().len())?;

    let mut orders: Vec<Vec<usize>> = Vec::with_capacity(keys.len());
    let mut moved: Vec<(Layout<'_>, Vec<usize>)> = Vec::new();
    for (set, keys) in keys.iter().enumerate() {
        let length = match &reading.sets()[set] {
            SetValue::List(items) => items.len(),
            _ => 0,
        };
        let identity: Vec<usize> = (0..length).collect();
        let Some(keys) = keys else {
            orders.push(identity);
            continue;
        };
        let layout = match &places {
            Places::TopLevel(key) => layout::top_level(text, &lines, key, length)?,
            Places::Document => layout::document(text, &lines, length)?,
            Places::Nested(found) => match found.get(set) {
                Some(Some((key_line, key_end))) => {
                    layout::under_key(text, &lines, *key_line, *key_end, length, &path)?
                }
                _ => return Err(unsupported(&format!("a {path} list not under a plain key"))),
            },
        };
        let mut order = identity.clone();
        // Go's `<` on strings compares bytes, and so does `str::cmp`; ties
        // (shared keys) fall back to the item's own text so the order is
        // still total.
        order.sort_by(|&a, &b| (keys[a], layout.item(a)).cmp(&(keys[b], layout.item(b))));
        if order == identity {
            orders.push(identity);
        } else {
            orders.push(order.clone());
            moved.push((layout, order));
        }
    }
    if moved.is_empty() {
        return Ok(None);
    }
    let items = moved.iter().map(|(_, order)| order.len()).sum();
    let reordered = layout::reassemble_all(text, &moved);
    prove(&reading, spec, &orders, &reordered)?;
    Ok(Some(Reordered {
        text: reordered,
        items,
    }))
}

/// Each item's sort key, as the string the consumer decodes.
fn item_keys<'i>(items: &'i [Item], path: &str, key: &SortKey) -> Result<Vec<&'i str>, Refusal> {
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            item.name.as_deref().ok_or_else(|| {
                let number = index + 1;
                unsupported(&match key {
                    SortKey::Field(field) => format!("{path} item {number} has no string {field}"),
                    SortKey::Item => format!("{path} item {number} that is not a string"),
                })
            })
        })
        .collect()
}

/// NEL, LS and PS are line breaks for YAML 1.1 readers (libyaml, yaml.v3)
/// and ordinary characters for YAML 1.2 readers. yaml.v3 never writes them
/// raw, so a text holding one was written by hand; it is left as it is rather
/// than reordered under one reading and read under another.
pub(super) fn refuse_yaml_1_1_line_breaks(text: &str) -> Result<(), Refusal> {
    match text
        .char_indices()
        .find(|(_, c)| matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}'))
    {
        None => Ok(()),
        Some((at, c)) => Err(unsupported(&format!(
            "U+{:04X} at byte {at}, a line break for YAML 1.1 readers but not for YAML 1.2 ones",
            u32::from(c)
        ))),
    }
}

/// Read the reordered text as the consumer would and check it is the
/// original but for the order of the items of each set.
pub(super) fn prove(
    original: &Reading,
    spec: &SetSpec,
    orders: &[Vec<usize>],
    reordered: &str,
) -> Result<(), Refusal> {
    let reading = consumer_yaml::read_sets(reordered, spec)
        .map_err(|refusal| proof_failed(&format!("it does not read back: {}", refusal.detail)))?;
    let path = spec.path.to_string();
    let several = spec.path.has_each();
    let label = |set: usize| {
        if several {
            format!("{path} #{}", set + 1)
        } else {
            path.clone()
        }
    };
    original
        .same_but_permuted(&reading, orders, &label)
        .map_err(|what| proof_failed(&what))
}

fn proof_failed(what: &str) -> Refusal {
    Refusal {
        reason: RefusalReason::ProofFailed,
        detail: format!("reordered config is not equal to the original: {what}"),
    }
}

pub(super) fn unsupported(what: &str) -> Refusal {
    Refusal {
        reason: RefusalReason::Unsupported,
        detail: format!("{what} is not reordered"),
    }
}

/// How the lists of a path are found in the text.
enum Places {
    /// Under one plain key at a line start.
    TopLevel(String),
    /// The document is the list.
    Document,
    /// For each value at the path, in document order: its key's line and
    /// the byte after its `:`, when the key is a plain one-line scalar.
    Nested(Vec<Option<(usize, usize)>>),
}

fn key_places(
    text: &str,
    spec: &SetSpec,
    lines: &[Line],
    expected: usize,
) -> Result<Places, Refusal> {
    if let Some(key) = spec.path.top_level_key() {
        return Ok(Places::TopLevel(key.to_owned()));
    }
    if spec.path.segments().is_empty() {
        return Ok(Places::Document);
    }
    let found = nested_keys(text, spec.path.segments())?;
    // The layout's reader (saphyr, YAML 1.2) must find what libyaml found.
    if found.len() != expected {
        return Err(unsupported(&format!(
            "{} (found {} times by one reader and {expected} by the other)",
            spec.path,
            found.len()
        )));
    }
    Ok(Places::Nested(
        found
            .into_iter()
            .map(|key| {
                let (start, end) = key?;
                let after = text[end..].trim_start_matches([' ', '\t']);
                let colon = text.len() - after.len();
                after
                    .starts_with(':')
                    .then(|| (layout::line_of(lines, start), colon + 1))
            })
            .collect(),
    ))
}

/// Frames of the event walk: how much of the path a container matched.
enum Frame {
    Map {
        matched: Option<usize>,
        awaiting_key: bool,
        /// The key just read, when it continues the path: its bytes.
        key: Option<(usize, usize)>,
    },
    Seq {
        matched: Option<usize>,
    },
}

/// For every value at `segments`, in document order, the bytes of the
/// plain key it stands under (`None` for a key saphyr does not give as one
/// scalar).
fn nested_keys(text: &str, segments: &[Segment]) -> Result<Vec<Option<(usize, usize)>>, Refusal> {
    let mut offsets = ByteOffsets::new(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut found = Vec::new();
    let mut root_done = false;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|error| {
            unsupported(&format!(
                "a text the layout's reader cannot read (line {} column {}: {})",
                error.marker().line(),
                error.marker().col() + 1,
                error.info()
            ))
        })?;
        let starts_node = matches!(
            event,
            Event::Scalar(..)
                | Event::Alias(_)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
        );
        if starts_node {
            // Where this node stands: a key, a value under a key, an item.
            let (is_key, mut matched, key) = match stack.last_mut() {
                None if root_done => (false, None, None),
                None => (false, Some(0), None),
                Some(Frame::Map {
                    awaiting_key: true, ..
                }) => (true, None, None),
                Some(Frame::Map { matched, key, .. }) => {
                    (false, key.and(matched.map(|m| m + 1)), *key)
                }
                Some(Frame::Seq { matched }) => {
                    let next = matched
                        .filter(|&m| segments.get(m) == Some(&Segment::Each))
                        .map(|m| m + 1);
                    (false, next, None)
                }
            };
            if is_key && let Event::Scalar(value, ..) = &event {
                if let Some(Frame::Map { matched, key, .. }) = stack.last_mut() {
                    *key = match matched.and_then(|m| segments.get(m)) {
                        Some(Segment::Key(wanted)) if wanted.as_str() == value.as_ref() => Some((
                            offsets.byte(span.start.index()),
                            offsets.byte(span.end.index()),
                        )),
                        _ => None,
                    };
                }
            } else if is_key && let Some(Frame::Map { key, .. }) = stack.last_mut() {
                *key = None;
            }
            let tagged = match &event {
                Event::Scalar(_, _, _, tag)
                | Event::SequenceStart(_, tag)
                | Event::MappingStart(_, tag) => tag.is_some(),
                _ => false,
            };
            if !is_key && matched == Some(segments.len()) {
                found.push(key);
                matched = None;
            } else if tagged {
                // libyaml's reading leaves the path at a tag; so does this.
                matched = None;
            }
            match event {
                Event::SequenceStart(..) => stack.push(Frame::Seq { matched }),
                Event::MappingStart(..) => stack.push(Frame::Map {
                    matched,
                    awaiting_key: true,
                    key: None,
                }),
                _ => node_done(&mut stack, &mut root_done),
            }
            continue;
        }
        if matches!(event, Event::SequenceEnd | Event::MappingEnd) {
            stack.pop();
            node_done(&mut stack, &mut root_done);
        }
    }
    Ok(found)
}

/// A node ended: its mapping now waits for the other of key and value.
fn node_done(stack: &mut [Frame], root_done: &mut bool) {
    match stack.last_mut() {
        Some(Frame::Map {
            awaiting_key, key, ..
        }) => {
            if !*awaiting_key {
                *key = None;
            }
            *awaiting_key = !*awaiting_key;
        }
        Some(Frame::Seq { .. }) => {}
        None => *root_done = true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(text: &str, spec: &SetSpec) -> String {
        sort_sets(text, spec)
            .unwrap()
            .map_or_else(|| text.to_owned(), |r| r.text)
    }

    const TOOLS: &str = "aggregation:\n    tools:\n        - workload: w2\n          filter:\n            - write\n            # about delete\n            - delete\n        - filter: []\n          workload: w0\n        - workload: w1\n          filter:\n          - b\n          - a\n          overrides: {}\n    conflictResolution: prefix\nbackends:\n    - name: b\n";

    #[test]
    fn every_list_at_a_nested_path_is_sorted_and_nothing_else() {
        assert_eq!(
            sorted(TOOLS, &SetSpec::of("aggregation.tools[*].filter", None)),
            "aggregation:\n    tools:\n        - workload: w2\n          filter:\n            # about delete\n            - delete\n            - write\n        - filter: []\n          workload: w0\n        - workload: w1\n          filter:\n          - a\n          - b\n          overrides: {}\n    conflictResolution: prefix\nbackends:\n    - name: b\n"
        );
        // A set of mappings at a nested path, keyed by a field.
        assert_eq!(
            sorted(TOOLS, &SetSpec::of("aggregation.tools", Some("workload"))),
            "aggregation:\n    tools:\n        - filter: []\n          workload: w0\n        - workload: w1\n          filter:\n          - b\n          - a\n          overrides: {}\n        - workload: w2\n          filter:\n            - write\n            # about delete\n            - delete\n    conflictResolution: prefix\nbackends:\n    - name: b\n"
        );
    }

    #[test]
    fn every_input_order_gives_one_text_and_a_second_run_changes_nothing() {
        let spec = SetSpec::of("a.b", Some("id"));
        let items = [
            "  - id: c\n    x: 1\n",
            "  - id: a\n",
            "  - {id: b, y: [1, 2]}\n",
        ];
        let mut outputs = std::collections::BTreeSet::new();
        for order in [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ] {
            let text = format!(
                "a:\n b:\n{}{}{} c: 1\nz: 2\n",
                items[order[0]], items[order[1]], items[order[2]]
            );
            let once = sorted(&text, &spec);
            assert_eq!(sort_sets(&once, &spec), Ok(None), "{once}");
            outputs.insert(once);
        }
        assert_eq!(
            outputs.into_iter().collect::<Vec<_>>(),
            ["a:\n b:\n  - id: a\n  - {id: b, y: [1, 2]}\n  - id: c\n    x: 1\n c: 1\nz: 2\n"]
        );
    }

    #[test]
    fn a_document_that_is_one_list_of_strings() {
        let spec = SetSpec::of(".", None);
        assert_eq!(
            sorted("# hosts\n\n- b\n- 'a'\n- c\n", &spec),
            "# hosts\n\n- 'a'\n- b\n- c\n"
        );
        let refusal = sort_sets("--- !t\n- b\n- a\n", &spec).unwrap_err();
        assert_eq!(refusal.reason, RefusalReason::Unsupported);
    }

    #[test]
    fn what_the_layout_cannot_cut_is_refused_with_a_reason() {
        use RefusalReason::*;
        for (text, path, key, reason, detail) in [
            (
                "a:\n  b: [y, x]\n",
                "a.b",
                None,
                Unsupported,
                "on its key's line",
            ),
            (
                "a:\n  b: &l\n    - y\n    - x\n",
                "a.b",
                None,
                Unsupported,
                "on its key's line",
            ),
            (
                "a:\n  b:\n    - y\n    - 1\n",
                "a.b",
                None,
                Unsupported,
                "item 2 that is not a string",
            ),
            (
                "a:\n  b:\n    - {k: y}\n    - {j: x}\n",
                "a.b",
                Some("k"),
                Unsupported,
                "item 2 has no string k",
            ),
            ("a:\n  b: {y: 1}\n", "a.b", None, Unsupported, "not a list"),
            (
                "a:\n  \"b\": [y,\n    x]\n",
                "a.b",
                None,
                Unsupported,
                "key's line",
            ),
            (
                "x: &t\n  b:\n    - y\n    - x\na: *t\n",
                "a.b",
                None,
                Unsupported,
                "found 0 times",
            ),
        ] {
            let refusal = sort_sets(text, &SetSpec::of(path, key)).unwrap_err();
            assert_eq!(refusal.reason, reason, "{text}: {refusal}");
            assert!(refusal.detail.contains(detail), "{text}: {refusal}");
        }
    }

    /// Moves at a nested path that would change what the consumer reads:
    /// only the proof stands between them and a patch.
    #[test]
    fn the_proof_refuses_nested_moves_that_change_meaning() {
        for (text, differs) in [
            // An alias to an anchor in another item would come before it.
            (
                "a:\n  b:\n    - {k: y, v: &v 1}\n    - {k: x, v: *v}\nz: 1\n",
                "does not read back",
            ),
            // A clipped block scalar ending the text without a line break.
            (
                "a:\n  b:\n    - k: y\n    - k: x\n      note: |\n        n",
                "a.b[0] reads differently",
            ),
            // A kept block scalar's trailing blank line is content.
            (
                "a:\n  b:\n    - k: y\n      note: |+\n        n\n\n    - k: x\n",
                "a.b[1] reads differently",
            ),
        ] {
            let refusal = sort_sets(text, &SetSpec::of("a.b", Some("k"))).unwrap_err();
            assert_eq!(
                refusal.reason,
                RefusalReason::ProofFailed,
                "{text}: {refusal}"
            );
            assert!(refusal.detail.contains(differs), "{text}: {refusal}");
        }
    }

    #[test]
    fn the_nested_proof_names_the_set_that_differs() {
        let spec = SetSpec::of("t[*].f", None);
        let text = "t:\n- f:\n  - b\n  - a\n- f:\n  - d\n  - c\n";
        let original = consumer_yaml::read_sets(text, &spec).unwrap();
        let good = "t:\n- f:\n  - a\n  - b\n- f:\n  - c\n  - d\n";
        let orders = [vec![1, 0], vec![1, 0]];
        assert_eq!(prove(&original, &spec, &orders, good), Ok(()));
        for (reordered, differs) in [
            (good.replace("- c", "- e"), "t[*].f #2[0] reads differently"),
            (good.replace("- a\n  - b", "- a"), "t[*].f #1 has 1 items"),
            (format!("{good}x: 1\n"), "what surrounds t[*].f #2"),
            (
                good.replace("- f:\n  - c\n  - d\n", ""),
                "found 1 times, not 2",
            ),
        ] {
            let refusal = prove(&original, &spec, &orders, &reordered).unwrap_err();
            assert!(
                refusal.detail.contains(differs),
                "{reordered}: {}",
                refusal.detail
            );
        }
    }
}
