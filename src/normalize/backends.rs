//! Put the items of the top-level `backends` sequence in name order, moving
//! whole items as text so every byte of every item stays as it was.
//!
//! This is exactly what the fixed ToolHive operator (v0.8.1, PR #3450) writes:
//! it sorts by `Name` with Go's `<` (a byte comparison) and yaml.v3 renders each
//! item the same wherever it stands. Names are read as vMCP reads them
//! (libyaml), and the result is only returned once libyaml reads it back equal
//! to the input but for the order of `backends`.

use super::Refusal;
use super::set_path::SetSpec;
use super::yaml_set::sort_sets;
#[cfg(test)]
use super::{RefusalReason, consumer_yaml, consumer_yaml::Reading, yaml_set};

pub use super::yaml_set::Reordered;

/// Reorder the top-level `backends` of `text`.
///
/// `Ok(None)`: nothing to do (no backends, fewer than two, or already in
/// order). `Err`: the document is left as it is, for the reason given.
pub fn sort_backends(text: &str) -> Result<Option<Reordered>, Refusal> {
    sort_sets(text, &BACKENDS)
}

static BACKENDS: std::sync::LazyLock<SetSpec> = std::sync::LazyLock::new(SetSpec::backends);

/// Read the reordered text as vMCP would and check it is the original but
/// for the order of the backends items.
#[cfg(test)]
fn prove(original: &Reading, order: &[usize], reordered: &str) -> Result<(), Refusal> {
    yaml_set::prove(original, &BACKENDS, &[order.to_vec()], reordered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(text: &str) -> String {
        sort_backends(text)
            .unwrap()
            .map_or_else(|| text.to_owned(), |r| r.text)
    }

    fn refusal(text: &str) -> Refusal {
        sort_backends(text).expect_err(text)
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
    fn names_compare_as_read_in_go_byte_order() {
        // "123" quoted is the string 123; upper case sorts before lower case;
        // an escape is compared as the character it reads as.
        let text = "backends:\n  - name: b\n  - name: \"123\"\n  - name: B\n  - name: '\u{e9}'\n  - name: \"\\xe8\"\n";
        assert_eq!(
            sorted(text),
            "backends:\n  - name: \"123\"\n  - name: B\n  - name: b\n  - name: \"\\xe8\"\n  - name: '\u{e9}'\n"
        );
    }

    #[test]
    fn duplicate_names_are_ordered_by_item_text() {
        let text = "backends:\n  - name: a\n    url: z\n  - name: a\n    url: b\n";
        assert_eq!(
            sorted(text),
            "backends:\n  - name: a\n    url: b\n  - name: a\n    url: z\n"
        );
        assert_eq!(sort_backends(&sorted(text)), Ok(None));
    }

    #[test]
    fn the_end_of_the_text_stays_where_it_was() {
        assert_eq!(
            sorted("backends:\n- name: b\n- name: a"),
            "backends:\n- name: a\n- name: b"
        );
        assert_eq!(
            sorted("backends:\r\n- name: b\r\n- name: a"),
            "backends:\r\n- name: a\r\n- name: b"
        );
    }

    #[test]
    fn blank_lines_between_items_stay_where_they_stand() {
        // Both orders of the same set give one text.
        let one = "backends:\n  - name: b\n\n  - name: a\n  - name: c\n\n\nz: 1\n";
        let other = "backends:\n  - name: c\n\n  - name: b\n  - name: a\n\n\nz: 1\n";
        let canonical = "backends:\n  - name: a\n\n  - name: b\n  - name: c\n\n\nz: 1\n";
        assert_eq!(sorted(one), canonical);
        assert_eq!(sorted(other), canonical);
    }

    #[test]
    fn comments_above_an_item_move_with_it_and_others_stay() {
        let text = "backends:\n  # the list\n\n  # about b\n  - name: b\n    # inside b\n    url: u\n\n  # stays\n\n  # about a\n  - name: a\n# after\nz: 1\n";
        assert_eq!(
            sorted(text),
            "backends:\n  # the list\n\n  # about a\n  - name: a\n\n  # stays\n\n  # about b\n  - name: b\n    # inside b\n    url: u\n# after\nz: 1\n"
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
    fn crlf_and_flow_items_move_whole() {
        assert_eq!(
            sorted("backends:\r\n  - name: b\r\n  - {name: a, url: u}\r\nz: 1\r\n"),
            "backends:\r\n  - {name: a, url: u}\r\n  - name: b\r\nz: 1\r\n"
        );
    }

    #[test]
    fn in_order_or_short_lists_are_left_alone() {
        for text in [
            "backends:\n  - name: a\n  - name: b\n",
            "backends:\n  - name: a\n",
            "backends: []\n",
            "backends: [{name: a}, {name: b}]\n",
            "backends:\nname: x\n",
            "name: x\n",
            "- a\n",
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
    fn what_cannot_be_read_or_located_is_refused() {
        use RefusalReason::*;
        for (text, reason, detail) in [
            (
                "backends: [{name: b}, {name: a}]\n",
                Unsupported,
                "on its key's line",
            ),
            (
                "backends:\n  - name: b\n  - url: a\n",
                Unsupported,
                "item 2 has no string name",
            ),
            (
                "backends:\n  - name: b\n  - name: 1\n",
                Unsupported,
                "item 2 has no string name",
            ),
            (
                "backends:\n  - b\n  - a\n",
                Unsupported,
                "item 1 has no string name",
            ),
            (
                "backends: &x\n  - name: b\n  - name: a\n",
                Unsupported,
                "on its key's line",
            ),
            (
                "backends:\n  - name: b\n  - name: a\n---\nx: 1\n",
                Unsupported,
                "more than one document",
            ),
            ("backends: {a: 1}\n", Unsupported, "not a list"),
            ("backends:\n  - name: [b\n", InvalidYaml, "line "),
            (
                "\"backends\":\n  - name: b\n  - name: a\n",
                Unsupported,
                "`backends:`",
            ),
            (
                "backends:\n  - name: b\n    note: \"x\n  - y\"\n  - name: a\n",
                Unsupported,
                "own `-` line",
            ),
            (
                "backends:\n  - name: \"b\u{2028}c\"\n  - name: a\n",
                Unsupported,
                "U+2028 at byte 22",
            ),
            (
                "backends:\n  - name: b\n  - name: a\u{85}\n",
                Unsupported,
                "U+0085",
            ),
        ] {
            let refusal = refusal(text);
            assert_eq!(refusal.reason, reason, "{text}: {refusal}");
            assert!(refusal.detail.contains(detail), "{text}: {refusal}");
        }
    }

    /// Inputs where moving the item text as laid out would change what vMCP
    /// reads: only the proof stands between them and a patch.
    #[test]
    fn the_proof_refuses_moves_that_change_meaning() {
        for (text, differs) in [
            // A clipped block scalar ending the text without a line break has
            // no final newline for libyaml; moved up, it would gain one.
            (
                "backends:\n- name: b\n- name: a\n  note: |\n    x",
                "backends[0] reads differently",
            ),
            // ... and the item that becomes last would lose its own.
            (
                "backends:\n- name: b\n  note: |\n    x\n- name: a",
                "backends[1] reads differently",
            ),
            // A kept block scalar's trailing blank line is content.
            (
                "backends:\n- name: b\n  note: |+\n    x\n\n- name: a\n",
                "backends[1] reads differently",
            ),
            // An alias to an anchor in another item would come before it.
            (
                "backends:\n- name: b\n  url: &u x\n- name: a\n  url: *u\n",
                "does not read back",
            ),
        ] {
            let refusal = refusal(text);
            assert_eq!(
                refusal.reason,
                RefusalReason::ProofFailed,
                "{text}: {refusal}"
            );
            assert!(refusal.detail.contains(differs), "{text}: {refusal}");
        }
    }

    #[test]
    fn the_proof_names_what_differs() {
        let original =
            consumer_yaml::read("backends:\n  - name: b\n    url: 'u'\n  - name: a\nx: 1\n")
                .unwrap();
        let good = "backends:\n  - name: a\n  - name: b\n    url: 'u'\nx: 1\n";
        assert_eq!(prove(&original, &[1, 0], good), Ok(()));
        for (reordered, differs) in [
            (
                good.replace("name: a", "name: c"),
                "backends[0] reads differently",
            ),
            (good.replace("'u'", "1"), "backends[1] reads differently"),
            (
                good.replace("x: 1", "x: [1]"),
                "what surrounds backends reads differently",
            ),
            (
                format!("{good}y: 2\n"),
                "what surrounds backends reads differently",
            ),
            (
                good.replace("  - name: a\n", ""),
                "backends has 1 items, not 2",
            ),
            (good.replace("x: 1", "x: [1"), "does not read back: line"),
        ] {
            let refusal = prove(&original, &[1, 0], &reordered).unwrap_err();
            assert_eq!(refusal.reason, RefusalReason::ProofFailed, "{reordered}");
            assert!(
                refusal.detail.contains(differs),
                "{reordered}: {}",
                refusal.detail
            );
        }
    }
}
