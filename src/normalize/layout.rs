//! Where the items of a block list (the top-level `backends`, or any list
//! declared a set) stand in the text.
//!
//! The list is taken apart by lines, the way a person reads it: each item
//! starts at a `-` line at the list's column and runs to its last line of
//! content. Comment lines at or left of the dash column directly above an
//! item go with it; every other blank or comment line between items stays
//! where it stands, so any order of the same set gives the same text.
//!
//! This is only a proposal: the caller proves the reassembled text reads as
//! the original but for the order of the items.

use std::ops::Range;

use super::Refusal;
use super::yaml_set::unsupported;

/// The backends list of one text, cut into items and what stands between.
#[derive(Debug)]
pub struct Layout<'t> {
    text: &'t str,
    /// Everything before the first item's text (the key line, the head of
    /// the list).
    head_end: usize,
    items: Vec<Item>,
    /// `separators[k]` follows the item in slot `k`; the last one is what
    /// follows the list up to the next top-level line.
    separators: Vec<Range<usize>>,
    /// The first byte after the last separator.
    tail_start: usize,
    /// The line break to give an item that had none (the last item of a
    /// text without a final line break, when it moves up).
    line_break: &'t str,
}

/// One item: its text from `start` to `content_end`, then its line break.
#[derive(Debug)]
struct Item {
    start: usize,
    content_end: usize,
    end: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct Line {
    start: usize,
    /// After the line's `\n`, or the end of the text.
    end: usize,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Blank,
    Comment { indent: usize },
    Content { indent: usize, entry: bool },
}

/// Lay out the top-level `backends` list of `text`, which a YAML reader found
/// to hold `expected` items.
#[cfg(test)]
pub fn backends(text: &str, expected: usize) -> Result<Layout<'_>, Refusal> {
    top_level(text, &lines(text), "backends", expected)
}

/// Lay out the list under the top-level key `key` (written plainly at a line
/// start), which a YAML reader found to hold `expected` items.
pub fn top_level<'t>(
    text: &'t str,
    lines: &[Line],
    key: &str,
    expected: usize,
) -> Result<Layout<'t>, Refusal> {
    let mut key_lines = lines.iter().enumerate().filter(|(_, line)| {
        text[line.start..line.end]
            .strip_prefix(key)
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
    });
    let (key_index, key_line) = match (key_lines.next(), key_lines.next()) {
        (Some(found), None) => found,
        _ => {
            return Err(unsupported(&format!(
                "a list whose key is not one `{key}:` at a line start"
            )));
        }
    };
    let key_end = key_line.start + key.len() + 1;
    under_key(text, lines, key_index, key_end, expected, key)
}

/// Lay out the list whose key ends at byte `key_end` of line `key_index`
/// (nested keys are found by the caller), `expected` items long; `label`
/// names the list in a refusal.
pub fn under_key<'t>(
    text: &'t str,
    lines: &[Line],
    key_index: usize,
    key_end: usize,
    expected: usize,
    label: &str,
) -> Result<Layout<'t>, Refusal> {
    let key_line = lines[key_index];
    let after_key = text[key_end..key_line.end].trim_start_matches([' ', '\t']);
    if !(after_key.trim_end().is_empty() || after_key.starts_with('#')) {
        return Err(unsupported(
            "a list written on its key's line (flow style, anchor or tag)",
        ));
    }
    let line_break = if text[..key_line.end].ends_with("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    cut(text, &lines[key_index + 1..], expected, label, line_break)
}

/// Lay out a text that is one block list.
pub fn document<'t>(text: &'t str, lines: &[Line], expected: usize) -> Result<Layout<'t>, Refusal> {
    let line_break = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let layout = cut(text, lines, expected, "the document's", line_break)?;
    // Nothing but blank and comment lines may stand before the first item
    // (a `---`, a directive or a tag is not moved around).
    if text[..layout.head_end].lines().any(|line| {
        let line = line.trim();
        !(line.is_empty() || line.starts_with('#'))
    }) {
        return Err(unsupported(
            "a list document with a marker or tag before its items",
        ));
    }
    Ok(layout)
}

/// Cut `list` (the lines after the key line, to the end of the text) into
/// items at the column of its first entry.
fn cut<'t>(
    text: &'t str,
    list: &[Line],
    expected: usize,
    label: &str,
    line_break: &'t str,
) -> Result<Layout<'t>, Refusal> {
    let own_line = || {
        unsupported(&format!(
            "a {label} list whose items do not each start on their own `-` line"
        ))
    };
    let first = list
        .iter()
        .position(|line| matches!(line.kind, Kind::Content { .. }));
    let column = match first.map(|at| list[at].kind) {
        Some(Kind::Content {
            indent,
            entry: true,
        }) => indent,
        _ => return Err(own_line()),
    };
    let free = |line: &Line| match line.kind {
        Kind::Blank => true,
        Kind::Comment { indent } => indent <= column,
        Kind::Content { .. } => false,
    };
    let lead = |line: &Line| matches!(line.kind, Kind::Comment { indent } if indent <= column);

    // The list runs to the first line of content left of its column, or at
    // its column but not an entry.
    let list_end = list
        .iter()
        .position(|line| match line.kind {
            Kind::Content { indent, entry } => indent < column || (indent == column && !entry),
            _ => false,
        })
        .unwrap_or(list.len());
    let list = &list[..list_end];
    let starts: Vec<usize> = list
        .iter()
        .enumerate()
        .filter(|(_, line)| matches!(line.kind, Kind::Content { indent, entry: true } if indent == column))
        .map(|(at, _)| at)
        .collect();
    if starts.is_empty() || starts.len() != expected {
        return Err(own_line());
    }

    let mut items = Vec::with_capacity(starts.len());
    let mut separators = Vec::with_capacity(starts.len());
    // Comment lines directly above the first item are its own.
    let mut item_start = starts[0] - leading(&list[..starts[0]], lead);
    let head_end = list[item_start].start;
    for (number, &from) in starts.iter().enumerate() {
        let to = starts.get(number + 1).copied().unwrap_or(list.len());
        let region = &list[from..to];
        let body = region.len() - region.iter().rev().take_while(|line| free(line)).count();
        let last = region[body - 1];
        let content_end = last.start
            + text[last.start..last.end]
                .trim_end_matches(['\n', '\r'])
                .len();
        items.push(Item {
            start: list[item_start].start,
            content_end,
            end: last.end,
        });
        let next_item_start = if number + 1 < starts.len() {
            to - leading(&region[body..], lead)
        } else {
            to
        };
        let separator_end = list.get(next_item_start).map_or_else(
            || list.last().map_or(last.end, |line| line.end),
            |line| line.start,
        );
        separators.push(last.end..separator_end);
        item_start = next_item_start;
    }
    let tail_start = separators.last().map_or(head_end, |range| range.end);
    Ok(Layout {
        text,
        head_end,
        items,
        separators,
        tail_start,
        line_break,
    })
}

/// The text with the items of several lists (in text order, none inside
/// another) put in the orders given.
pub fn reassemble_all(text: &str, lists: &[(Layout<'_>, Vec<usize>)]) -> String {
    let mut out = String::with_capacity(text.len() + 2 * lists.len());
    let mut cursor = 0;
    for (layout, order) in lists {
        out.push_str(&text[cursor..layout.head_end]);
        layout.push_items(order, &mut out);
        cursor = layout.tail_start;
    }
    out.push_str(&text[cursor..]);
    out
}

impl<'t> Layout<'t> {
    /// Item `index`'s text without its final line break: what ties between
    /// equal names are broken on.
    pub fn item(&self, index: usize) -> &'t str {
        let item = &self.items[index];
        &self.text[item.start..item.content_end]
    }

    /// The text with the items in `order`, item `order[k]` in slot `k`, and
    /// the separators between slots where they stood.
    #[cfg(test)]
    pub fn reassemble(&self, order: &[usize]) -> String {
        let text = self.text;
        let mut out = String::with_capacity(text.len() + 2);
        out.push_str(&text[..self.head_end]);
        self.push_items(order, &mut out);
        out.push_str(&text[self.tail_start..]);
        out
    }

    fn push_items(&self, order: &[usize], out: &mut String) {
        let text = self.text;
        let last_slot = order.len().saturating_sub(1);
        // A text that ended without a line break still does.
        let ends_open = self
            .items
            .last()
            .is_some_and(|item| item.content_end == item.end);
        for (slot, &index) in order.iter().enumerate() {
            let item = &self.items[index];
            out.push_str(&text[item.start..item.content_end]);
            if !(slot == last_slot && ends_open) {
                match &text[item.content_end..item.end] {
                    "" => out.push_str(self.line_break),
                    own => out.push_str(own),
                }
            }
            out.push_str(&text[self.separators[slot].clone()]);
        }
    }
}

/// The index of the line holding byte `at`.
pub fn line_of(lines: &[Line], at: usize) -> usize {
    lines
        .partition_point(|line| line.end <= at)
        .min(lines.len().saturating_sub(1))
}

/// How many of `lines`' last lines are `lead` lines.
fn leading(lines: &[Line], lead: impl Fn(&Line) -> bool) -> usize {
    lines.iter().rev().take_while(|line| lead(line)).count()
}

/// The text's lines, each classified. `\n` ends a line; a `\r` before it is
/// whitespace to the classification.
pub fn lines(text: &str) -> Vec<Line> {
    let mut lines = Vec::with_capacity(text.len() / 32 + 1);
    let mut start = 0;
    while start < text.len() {
        let end = text[start..]
            .find('\n')
            .map_or(text.len(), |at| start + at + 1);
        lines.push(Line {
            start,
            end,
            kind: classify(&text[start..end]),
        });
        start = end;
    }
    lines
}

fn classify(line: &str) -> Kind {
    let content = line.trim_start_matches(' ');
    let indent = line.len() - content.len();
    let rest = content.trim_start_matches(['\t', '\r', '\n']);
    if rest.is_empty() || rest.trim_start_matches([' ', '\t', '\r', '\n']).is_empty() {
        return Kind::Blank;
    }
    if content.starts_with('#') {
        return Kind::Comment { indent };
    }
    let entry = content
        .strip_prefix('-')
        .is_some_and(|after| after.is_empty() || after.starts_with([' ', '\t', '\r', '\n']));
    Kind::Content { indent, entry }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reassembled(text: &str, expected: usize, order: &[usize]) -> String {
        backends(text, expected).unwrap().reassemble(order)
    }

    #[test]
    fn the_identity_order_gives_the_text_back() {
        for (text, items) in [
            ("backends:\n    - name: a\n    - name: b\nz: 1\n", 2),
            (
                "x: 1\nbackends: # c\n\n  # a\n  - name: a\n\n  # b\n  - name: b\n\n# end\n...\n",
                2,
            ),
            ("backends:\r\n- a\r\n-\r\n  - b\r\n- c", 3),
            ("backends:\n- a\n  # deep\n\n- b\n\n", 2),
        ] {
            let identity: Vec<usize> = (0..items).collect();
            assert_eq!(reassembled(text, items, &identity), text);
        }
    }

    #[test]
    fn items_keep_their_lead_comments_and_slots_keep_their_separators() {
        let text =
            "backends:\n  # a\n  - a\n\n  # loose\n\n  - b\n    # deep\n\n  # c\n  - c\nz: 1\n";
        assert_eq!(
            reassembled(text, 3, &[2, 0, 1]),
            "backends:\n  # c\n  - c\n\n  # loose\n\n  # a\n  - a\n\n  - b\n    # deep\nz: 1\n"
        );
    }

    #[test]
    fn lines_are_classified_by_their_first_character() {
        assert_eq!(classify("  \t\r\n"), Kind::Blank);
        assert_eq!(classify("  # x\n"), Kind::Comment { indent: 2 });
        assert_eq!(
            classify("  - x\n"),
            Kind::Content {
                indent: 2,
                entry: true
            }
        );
        assert_eq!(
            classify("  -\r\n"),
            Kind::Content {
                indent: 2,
                entry: true
            }
        );
        assert_eq!(
            classify("  -x\n"),
            Kind::Content {
                indent: 2,
                entry: false
            }
        );
        assert_eq!(
            classify("\t- x\n"),
            Kind::Content {
                indent: 0,
                entry: false
            }
        );
    }

    #[test]
    fn a_list_that_is_not_laid_out_one_item_per_line_is_refused() {
        for (text, expected) in [
            ("backends:\n  - a\n  - b\n", 3),
            ("backends:\n  !!seq\n  - a\n", 1),
            ("backends: [a]\n", 1),
            ("x:\n  backends:\n  - a\n", 1),
            ("backends:\n- a\nbackends:\n- b\n", 1),
            ("backends:\n", 0),
        ] {
            assert!(backends(text, expected).is_err(), "{text}");
        }
    }
}
