//! Put the items of the top-level `backends` sequence in name order, moving
//! whole items as text so every byte of every item stays as it was.
//!
//! This is exactly what the fixed ToolHive operator (v0.8.1, PR #3450) writes:
//! it sorts by `Name` with Go's `<` (a byte comparison) and yaml.v3 renders each
//! item the same wherever it stands. The result is only returned once a second
//! parse proves it equal to the input but for the order of `backends`.

use super::yaml_doc::{self, Backends, BackendsLayout, Document};
use super::yaml_event::{self, Event, ScalarStyle, Sink, Span, unsupported};
use super::{Refusal, RefusalReason};

/// A config whose backends were reordered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reordered {
    pub text: String,
    pub items: usize,
}

/// Reorder the top-level `backends` of `text`.
///
/// `Ok(None)`: nothing to do (no backends, fewer than two, or already in
/// order). `Err`: the document is left as it is, for the reason given.
pub fn sort_backends(text: &str) -> Result<Option<Reordered>, Refusal> {
    let document = yaml_doc::parse(text)?;
    let layout = match &document.backends {
        Backends::Absent | Backends::Null => return Ok(None),
        Backends::Flow { items } if *items < 2 => return Ok(None),
        Backends::Flow { .. } => return Err(unsupported("a flow-style backends list")),
        Backends::NotSequence => return Err(unsupported("a backends value that is not a list")),
        Backends::Block(layout) => layout,
    };
    let names = item_names(&document, layout)?;
    if names.len() < 2 {
        return Ok(None);
    }
    let region_end = trim_trailing_free_lines(text, &document, layout.item_starts[0], layout.end);
    refuse_comments(text, &document, layout.item_starts[0], region_end)?;

    let slices = item_slices(text, &layout.item_starts, region_end);
    let mut order: Vec<usize> = (0..slices.len()).collect();
    // Go's `<` on strings compares bytes, and so does `str::cmp`; ties (shared
    // names) fall back to the item's own bytes so the order is still total.
    order.sort_by(|&a, &b| (names[a], slices[a]).cmp(&(names[b], slices[b])));
    if order
        .iter()
        .enumerate()
        .all(|(position, &item)| position == item)
    {
        return Ok(None);
    }

    let reordered = reassemble(text, layout.item_starts[0], region_end, &slices, &order);
    prove(&document, layout, &order, &reordered)?;
    Ok(Some(Reordered {
        text: reordered,
        items: order.len(),
    }))
}

/// Each item's `name` scalar, checking every item is a mapping that has one.
fn item_names<'d>(
    document: &'d Document<'_>,
    layout: &BackendsLayout,
) -> Result<Vec<&'d str>, Refusal> {
    layout
        .item_events
        .iter()
        .enumerate()
        .map(|(index, events)| {
            document.item_name(events).ok_or_else(|| {
                unsupported(&format!(
                    "backends item {} without a scalar name",
                    index + 1
                ))
            })
        })
        .collect()
}

/// Blank and comment lines after the last item stay where they are, before
/// whatever follows the list (unless they are the content of a scalar).
fn trim_trailing_free_lines(
    text: &str,
    document: &Document<'_>,
    start: usize,
    mut end: usize,
) -> usize {
    while end > start {
        let line_begin = yaml_doc::line_start(text, end - 1);
        if !is_free_line(document, line_begin, &text[line_begin..end]) {
            break;
        }
        end = line_begin;
    }
    end
}

/// A comment among the items belongs to no item; moving items would move it
/// to a different place, so such a list is left alone.
fn refuse_comments(
    text: &str,
    document: &Document<'_>,
    start: usize,
    end: usize,
) -> Result<(), Refusal> {
    // Only a line whose first byte after its indentation is `#` can be a
    // comment line, and `#` is rare: visit those instead of every line.
    let region = &text.as_bytes()[start..end];
    for hash in memchr::memchr_iter(b'#', region) {
        let line_begin = memchr::memrchr(b'\n', &region[..hash]).map_or(0, |at| at + 1);
        if region[line_begin..hash].iter().any(|&b| b != b' ') {
            continue;
        }
        let line_end =
            memchr::memchr(b'\n', &region[hash..]).map_or(region.len(), |at| hash + at + 1);
        if is_free_line(
            document,
            start + line_begin,
            &text[start + line_begin..start + line_end],
        ) {
            return Err(unsupported("comments between backends items"));
        }
    }
    Ok(())
}

/// A blank or comment line that is not the content of a multi-line scalar.
fn is_free_line(document: &Document<'_>, line_begin: usize, line: &str) -> bool {
    let content = line.trim_start_matches(' ');
    let blank = content.trim_end().is_empty();
    if !(blank || content.starts_with('#')) {
        return false;
    }
    // Inside a block scalar a blank line is content, and so is a `#` line
    // indented at least as deep as the scalar's content.
    let indent = line.len() - content.len();
    !document
        .multiline_scalars
        .iter()
        .any(|&(from, to, min_indent)| {
            from <= line_begin && line_begin < to && (blank || indent >= min_indent)
        })
}

/// The text of each item: from its line to the next item's line (or the end).
fn item_slices<'t>(text: &'t str, starts: &[usize], end: usize) -> Vec<&'t str> {
    starts
        .iter()
        .enumerate()
        .map(|(i, &from)| &text[from..starts.get(i + 1).copied().unwrap_or(end)])
        .collect()
}

fn reassemble(text: &str, start: usize, end: usize, slices: &[&str], order: &[usize]) -> String {
    let mut out = String::with_capacity(text.len() + 1);
    out.push_str(&text[..start]);
    for &item in order {
        out.push_str(slices[item]);
        // The last item of a document without a final newline may move up.
        if !slices[item].ends_with('\n') {
            out.push('\n');
        }
    }
    if !text[..end].ends_with('\n') {
        out.pop();
    }
    out.push_str(&text[end..]);
    out
}

/// Parse the result and check its events are the original's with only the
/// backends items permuted by `order`: same scalars, same styles, same
/// structure, everything else in place.
fn prove(
    original: &Document<'_>,
    layout: &BackendsLayout,
    order: &[usize],
    reordered: &str,
) -> Result<(), Refusal> {
    let (Some(first), Some(last)) = (layout.item_events.first(), layout.item_events.last()) else {
        return Err(proof_failed("no backends items"));
    };
    if order.len() != layout.item_events.len() {
        return Err(proof_failed("the permutation does not cover the items"));
    }
    let events = &original.events;
    let expected = events[..first.start]
        .iter()
        .chain(
            order
                .iter()
                .flat_map(|&item| &events[layout.item_events[item].clone()]),
        )
        .chain(&events[last.end..]);
    let mut proof = yaml_event::read(reordered, || Expected(expected.clone())).map_err(
        |refusal| match refusal.reason {
            RefusalReason::ProofFailed => refusal,
            _ => proof_failed(&format!("it does not read back: {}", refusal.detail)),
        },
    )?;
    match proof.0.next() {
        None => Ok(()),
        Some(_) => Err(proof_failed("it ends early")),
    }
}

/// The events a text must read as, checked one at a time.
struct Expected<I>(I);

impl<'a, 'e, I> Sink<'a> for Expected<I>
where
    I: Iterator<Item = &'e Event<'e>>,
    'a: 'e,
{
    fn event(&mut self, got: Event<'a>, _: Span) -> Result<(), Refusal> {
        match self.0.next() {
            Some(want) if got == *want => Ok(()),
            Some(want) => Err(proof_failed(&format!("{got:?} where {want:?} was"))),
            None => Err(proof_failed("it has more content")),
        }
    }

    fn scalar(&mut self, got: &'a str, style: ScalarStyle, _: Span) -> Result<(), Refusal> {
        match self.0.next() {
            Some(Event::Scalar(want, want_style)) if *want_style == style && got == want => Ok(()),
            Some(want) => Err(proof_failed(&format!(
                "{:?} where {want:?} was",
                Event::Scalar(got.into(), style)
            ))),
            None => Err(proof_failed("it has more content")),
        }
    }
}

fn proof_failed(what: &str) -> Refusal {
    Refusal {
        reason: RefusalReason::ProofFailed,
        detail: format!("reordered config is not equal to the original: {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(text: &str) -> String {
        sort_backends(text)
            .unwrap()
            .map_or_else(|| text.to_owned(), |r| r.text)
    }

    fn refusal(text: &str) -> RefusalReason {
        sort_backends(text).expect_err(text).reason
    }

    #[test]
    fn operator_style_items_move_whole() {
        let text = "name: x\nbackends:\n    - name: b\n      url: u\n    - name: a\n      metadata:\n        k: v\nincomingAuth:\n    type: anonymous\n";
        assert_eq!(
            sorted(text),
            "name: x\nbackends:\n    - name: a\n      metadata:\n        k: v\n    - name: b\n      url: u\nincomingAuth:\n    type: anonymous\n"
        );
    }

    #[test]
    fn hand_written_style_at_column_zero() {
        let text = "backends:\n- name: b\n  url: u\n- name: a\nz: 1\n";
        assert_eq!(
            sorted(text),
            "backends:\n- name: a\n- name: b\n  url: u\nz: 1\n"
        );
    }

    #[test]
    fn names_compare_as_parsed_bytes() {
        // "123" quoted is the string 123; upper case sorts before lower case.
        let text = "backends:\n  - name: b\n  - name: \"123\"\n  - name: B\n  - name: 'é'\n";
        assert_eq!(
            sorted(text),
            "backends:\n  - name: \"123\"\n  - name: B\n  - name: b\n  - name: 'é'\n"
        );
    }

    #[test]
    fn duplicate_names_are_ordered_by_item_bytes() {
        let text = "backends:\n  - name: a\n    url: z\n  - name: a\n    url: b\n";
        assert_eq!(
            sorted(text),
            "backends:\n  - name: a\n    url: b\n  - name: a\n    url: z\n"
        );
    }

    #[test]
    fn last_item_without_final_newline() {
        assert_eq!(
            sorted("backends:\n- name: b\n- name: a"),
            "backends:\n- name: a\n- name: b"
        );
    }

    #[test]
    fn trailing_blank_and_comment_lines_stay_put() {
        let text = "backends:\n  - name: b\n  - name: a\n\n# about z\nz: 1\n";
        assert_eq!(
            sorted(text),
            "backends:\n  - name: a\n  - name: b\n\n# about z\nz: 1\n"
        );
    }

    #[test]
    fn hash_lines_inside_block_scalars_are_content() {
        let text =
            "backends:\n  - name: b\n    note: |\n      # heading\n      text\n  - name: a\n";
        assert_eq!(
            sorted(text),
            "backends:\n  - name: a\n  - name: b\n    note: |\n      # heading\n      text\n"
        );
    }

    #[test]
    fn a_hash_inside_a_line_is_not_a_comment_line() {
        let text = "backends:\n  - name: b\n    url: http://h/sse#b\n  - name: a\n    note: x #1\n";
        assert_eq!(
            sorted(text),
            "backends:\n  - name: a\n    note: x #1\n  - name: b\n    url: http://h/sse#b\n"
        );
    }

    #[test]
    fn what_only_saphyr_reads_is_reordered_too() {
        // The fast reader hands over `note: one` before it sees the
        // continuation line and declines; the proof must not stop on that.
        let text = "backends:\n  - name: b\n    note: one\n      two\n  - name: a\n";
        assert_eq!(
            sorted(text),
            "backends:\n  - name: a\n  - name: b\n    note: one\n      two\n"
        );
    }

    #[test]
    fn in_order_or_short_lists_are_left_alone() {
        for text in [
            "backends:\n  - name: a\n  - name: b\n",
            "backends:\n  - name: a\n",
            "backends: []\n",
            "backends: [{name: a}]\n",
            "backends:\nname: x\n",
            "name: x\n",
            "",
        ] {
            assert_eq!(sort_backends(text), Ok(None), "{text}");
        }
    }

    #[test]
    fn only_the_top_level_set_is_reordered() {
        for text in [
            "aggregation:\n  conflictResolutionConfig:\n    priorityOrder:\n      - b\n      - a\n",
            "compositeTools:\n  - name: t\n    steps:\n      - id: b\n      - id: a\n",
            "outgoingAuth:\n  backends:\n    b: {type: x}\n    a: {type: y}\n",
            "metadata:\n  note: |\n    backends:\n      - name: b\n      - name: a\n",
        ] {
            assert_eq!(sort_backends(text), Ok(None), "{text}");
        }
    }

    #[test]
    fn what_cannot_be_moved_intact_is_refused() {
        use RefusalReason::*;
        for (text, reason) in [
            ("backends: [{name: b}, {name: a}]\n", Unsupported),
            (
                "backends:\n  - name: b\n  # about a\n  - name: a\n",
                Unsupported,
            ),
            ("backends:\n  - name: b\n  - url: a\n", Unsupported),
            ("backends:\n  - b\n  - a\n", Unsupported),
            ("backends:\n  - name: b\n  - &x {name: a}\n", Unsupported),
            (
                "backends:\n  - name: b\n  - name: a\n---\nx: 1\n",
                Unsupported,
            ),
            ("backends:\n  - name: b\r\n  - name: a\r\n", Unsupported),
            ("backends: {a: 1}\n", Unsupported),
            ("backends:\n  - name: [b\n", InvalidYaml),
        ] {
            assert_eq!(refusal(text), reason, "{text}");
        }
    }

    #[test]
    fn the_proof_rejects_a_wrong_reassembly() {
        let text = "backends:\n  - name: b\n  - name: a\n";
        let document = yaml_doc::parse(text).unwrap();
        let Backends::Block(layout) = &document.backends else {
            panic!()
        };
        // Claiming the identity order for a swapped text must fail, and so must
        // a text that lost a key.
        assert!(
            prove(
                &document,
                layout,
                &[0, 1],
                "backends:\n  - name: a\n  - name: b\n"
            )
            .is_err()
        );
        assert!(
            prove(
                &document,
                layout,
                &[1, 0],
                "backends:\n  - name: a\n  - name: b\nx: 1\n"
            )
            .is_err()
        );
        assert!(
            prove(
                &document,
                layout,
                &[1, 0],
                "backends:\n  - name: a\n  - name: b\n"
            )
            .is_ok()
        );
    }

    #[test]
    fn the_proof_names_what_differs() {
        let text =
            "backends:\n  - name: b\n    url: 'u'\n    note: |\n      n\n  - name: a\nx: 1\n";
        let document = yaml_doc::parse(text).unwrap();
        let Backends::Block(layout) = &document.backends else {
            panic!()
        };
        let good =
            "backends:\n  - name: a\n  - name: b\n    url: 'u'\n    note: |\n      n\nx: 1\n";
        assert_eq!(prove(&document, layout, &[1, 0], good), Ok(()));
        for (reordered, differs) in [
            // a scalar's value, its style, a block scalar's text
            (
                good.replace("name: a", "name: c"),
                "Scalar(\"c\", Plain) where Scalar(\"a\", Plain)",
            ),
            (
                good.replace("'u'", "u"),
                "Scalar(\"u\", Plain) where Scalar(\"u\", SingleQuoted)",
            ),
            (
                good.replace("      n\n", "      m\n"),
                "Scalar(\"m\\n\", Literal)",
            ),
            // structure, length
            (
                good.replace("x: 1", "x: [1]"),
                "SequenceStart where Scalar(\"1\", Plain)",
            ),
            (
                format!("{good}y: 2\n"),
                "Scalar(\"y\", Plain) where MappingEnd",
            ),
            (
                good.replace("x: 1\n", ""),
                "MappingEnd where Scalar(\"x\", Plain)",
            ),
        ] {
            let refusal = prove(&document, layout, &[1, 0], &reordered).unwrap_err();
            assert_eq!(refusal.reason, RefusalReason::ProofFailed, "{reordered}");
            assert!(
                refusal.detail.contains(differs),
                "{reordered}: {}",
                refusal.detail
            );
        }
    }
}
