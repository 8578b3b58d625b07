//! Replace string values inside manifest text and keep every other byte.
//!
//! `kubectl` reads YAML the YAML 1.1 way (go-yaml): an object re-rendered
//! through a serializer can lose the quotes that kept `"yes"`, `"NO"` or
//! `"2026-01-01"` strings, and comments, key order and layout are gone too.
//! So only the values that change are rewritten, where they stand: each one
//! is located with saphyr-parser's event positions, a new scalar is rendered
//! in the style of the old one when that style can hold it, and everything
//! else is copied. This module only proposes the text; the caller reads it
//! back and keeps it only if it holds exactly the intended object.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

use saphyr_parser::{Event, Parser, ScalarStyle};

/// One step of a path from a document's root: a mapping key or a sequence
/// index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// A string to write at `path` of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    pub path: Vec<Step>,
    pub value: String,
}

/// The text's syntax, which decides how a new scalar is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Yaml,
    Json,
}

/// The splices of one document, and the document's bytes in the text (for
/// reading it back alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentPlan {
    pub range: Range<usize>,
    pub splices: Vec<Splice>,
    /// For a `kind: List` written in block style: the bytes of each item of
    /// the top-level `items` that holds a replacement, from the start of its
    /// `- ` line to the next item's. Such a slice reads alone as a sequence
    /// of that one item, so an item can be read back without the whole list.
    pub items: BTreeMap<usize, Range<usize>>,
}

/// One piece of text to put in place of `range` (bytes of the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splice {
    pub range: Range<usize>,
    pub text: String,
}

/// Why a value could not be located or rewritten in place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpliceError {
    #[error("the text cannot be scanned for positions: {0}")]
    Scan(String),
    #[error("{0} is not a scalar written in the text (an alias, or absent)")]
    NotFound(String),
    #[error("{0} is written more than once")]
    Duplicate(String),
    #[error("{0} carries an anchor or a tag, which are left alone")]
    Decorated(String),
    #[error("{0} is a block scalar whose header cannot be found")]
    BlockHeader(String),
}

/// Where each replacement of each document goes, and what is written there.
///
/// `documents` maps a document's position in `text` (counting every
/// document, empty ones included) to its replacements. The answer has one
/// entry per such document: its bytes and splices (sorted, not overlapping),
/// or why it cannot be edited. A failure to scan the whole text is the outer
/// error.
pub fn plan(
    text: &str,
    syntax: Syntax,
    documents: &BTreeMap<usize, Vec<Replacement>>,
) -> Result<BTreeMap<usize, Result<DocumentPlan, SpliceError>>, SpliceError> {
    plan_with_items(text, syntax, documents, &BTreeMap::new())
}

/// [`plan`], with the bytes of more List items in each plan's `items`:
/// `items` names, by document, items of its top-level `items` that are
/// wanted whole (their sets are reordered as text, see `cli::set_order`).
pub fn plan_with_items(
    text: &str,
    syntax: Syntax,
    documents: &BTreeMap<usize, Vec<Replacement>>,
    items: &BTreeMap<usize, BTreeSet<usize>>,
) -> Result<BTreeMap<usize, Result<DocumentPlan, SpliceError>>, SpliceError> {
    let no_items = BTreeSet::new();
    let tries: HashMap<usize, Node> = documents
        .iter()
        .map(|(&document, replacements)| {
            let wanted = items.get(&document).unwrap_or(&no_items);
            (document, Node::of(replacements, wanted))
        })
        .collect();
    let (found, ranges, mut items) = locate(text, &tries)?;
    let mut plans = BTreeMap::new();
    for (&document, replacements) in documents {
        let mut splices = Vec::new();
        let mut result = Ok(());
        for (index, replacement) in replacements.iter().enumerate() {
            let located = found.get(&(document, index));
            let rendered = match located {
                None => Err(SpliceError::NotFound(path_string(&replacement.path))),
                Some(Err(error)) => Err(error.clone()),
                Some(Ok(scalar)) => render_in_place(text, syntax, scalar, replacement),
            };
            match rendered {
                Ok(mut pieces) => splices.append(&mut pieces),
                Err(error) => {
                    result = Err(error);
                    break;
                }
            }
        }
        splices.sort_by_key(|splice| splice.range.start);
        let range = ranges.get(&document).cloned().unwrap_or(0..text.len());
        let items = items.remove(&document).unwrap_or_default();
        plans.insert(
            document,
            result.map(|()| DocumentPlan {
                range,
                splices,
                items,
            }),
        );
    }
    Ok(plans)
}

/// `text` with the splices applied (sorted by start, not overlapping).
pub fn apply<'s>(text: &str, splices: impl IntoIterator<Item = &'s Splice>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for splice in splices {
        out.push_str(&text[at..splice.range.start]);
        out.push_str(&splice.text);
        at = splice.range.end;
    }
    out.push_str(&text[at..]);
    out
}

/// The paths wanted in one document, as a tree, so the walk below only
/// looks at keys on the way to one of them.
#[derive(Debug, Default)]
struct Node {
    children: HashMap<Step, Node>,
    /// Index of the replacement that ends here.
    target: Option<usize>,
}

impl Node {
    fn of(replacements: &[Replacement], items: &BTreeSet<usize>) -> Node {
        let mut root = Node::default();
        for &item in items {
            root.children
                .entry(Step::Key("items".to_owned()))
                .or_default()
                .children
                .entry(Step::Index(item))
                .or_default();
        }
        for (index, replacement) in replacements.iter().enumerate() {
            let mut node = &mut root;
            for step in &replacement.path {
                node = node.children.entry(step.clone()).or_default();
            }
            node.target = Some(index);
        }
        root
    }
}

/// A located scalar: its span in bytes and how it was written.
#[derive(Debug, Clone)]
struct Located {
    start: usize,
    /// saphyr's end: exact for plain and block scalars; quoted ones are
    /// measured again from `start` (saphyr's end can run past the quote).
    end: usize,
    style: ScalarStyle,
    path: String,
}

#[derive(Debug)]
enum Container {
    Map {
        key: Option<Step>,
        awaiting_key: bool,
    },
    Seq {
        next: usize,
        block: bool,
    },
}

#[derive(Debug)]
struct Frame<'n> {
    container: Container,
    /// Where this node sits in the tree of wanted paths, if on it.
    node: Option<&'n Node>,
    /// This container is a mapping key (a complex key), not a value.
    is_key: bool,
}

type Found = HashMap<(usize, usize), Result<Located, SpliceError>>;
type Located3 = (
    Found,
    HashMap<usize, Range<usize>>,
    HashMap<usize, BTreeMap<usize, Range<usize>>>,
);

/// Walk the events of `text` and locate every wanted scalar.
/// Every wanted scalar, and the bytes of each document that has one (from
/// its first token, `---` included, to where its end is seen).
fn locate(text: &str, tries: &HashMap<usize, Node>) -> Result<Located3, SpliceError> {
    let mut found: Found = HashMap::new();
    let mut ranges = HashMap::new();
    let mut items: HashMap<usize, BTreeMap<usize, Range<usize>>> = HashMap::new();
    // The list item being read whose bytes are wanted: (item, start).
    let mut open_item: Option<(usize, usize)> = None;
    let mut offsets = ByteOffsets::new(text);
    let mut document: Option<usize> = None;
    let mut root: Option<&Node> = None;
    let mut stack: Vec<Frame<'_>> = Vec::new();
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| {
            SpliceError::Scan(format!(
                "line {} column {}: {}",
                e.marker().line(),
                e.marker().col() + 1,
                e.info()
            ))
        })?;
        // At the top-level `items` of a wanted document, in block style: an
        // item starting or the list ending closes the open item, and a
        // wanted item opens.
        if stack.len() == 2 && is_items_sequence(&stack) {
            let starts_value = !matches!(event, Event::SequenceEnd);
            let line_start = line_start(text, offsets.byte(span.start.index()));
            if let (Some((item, start)), Some(document)) = (open_item.take(), document) {
                items
                    .entry(document)
                    .or_default()
                    .insert(item, start..line_start);
            }
            if starts_value
                && let Some(Frame {
                    container: Container::Seq { next, .. },
                    ..
                }) = stack.last()
                && value_node(&stack, root).is_some()
            {
                open_item = Some((*next, line_start));
            }
        }
        match event {
            Event::DocumentStart(_) => {
                let next = document.map_or(0, |d| d + 1);
                document = Some(next);
                root = tries.get(&next);
                if root.is_some() {
                    let start = offsets.byte(span.start.index());
                    ranges.insert(next, start..text.len());
                }
                stack.clear();
            }
            Event::DocumentEnd => {
                // An implicit end's span covers the next `---`: the document
                // ends where that span starts.
                if let Some(range) = document.and_then(|d| ranges.get_mut(&d)) {
                    range.end = offsets.byte(span.start.index());
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                if let Some(Frame {
                    container: Container::Map { key, awaiting_key },
                    node,
                    ..
                }) = stack.last_mut()
                    && *awaiting_key
                {
                    *awaiting_key = false;
                    *key = node.map(|_| Step::Key(value.into_owned()));
                    continue;
                }
                if let (Some(document), Some(target)) =
                    (document, value_node(&stack, root).and_then(|n| n.target))
                {
                    let path = path_string(&current_path(&stack));
                    let located = if anchor != 0 || tag.is_some() {
                        Err(SpliceError::Decorated(path))
                    } else {
                        Ok(Located {
                            start: offsets.byte(span.start.index()),
                            end: offsets.byte(span.end.index()),
                            style,
                            path,
                        })
                    };
                    let slot = found.entry((document, target));
                    match slot {
                        std::collections::hash_map::Entry::Vacant(vacant) => {
                            vacant.insert(located);
                        }
                        std::collections::hash_map::Entry::Occupied(mut occupied) => {
                            let path = path_string(&current_path(&stack));
                            *occupied.get_mut() = Err(SpliceError::Duplicate(path));
                        }
                    }
                }
                value_done(&mut stack);
            }
            Event::Alias(_) => {
                if let Some(Frame {
                    container: Container::Map { key, awaiting_key },
                    ..
                }) = stack.last_mut()
                    && *awaiting_key
                {
                    *awaiting_key = false;
                    *key = None;
                    continue;
                }
                value_done(&mut stack);
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_key = matches!(
                    stack.last(),
                    Some(Frame {
                        container: Container::Map {
                            awaiting_key: true,
                            ..
                        },
                        ..
                    })
                );
                let node = if is_key {
                    None
                } else {
                    value_node(&stack, root)
                };
                let container = if matches!(event, Event::MappingStart(..)) {
                    Container::Map {
                        key: None,
                        awaiting_key: true,
                    }
                } else {
                    Container::Seq {
                        next: 0,
                        block: span.start.index() == span.end.index(),
                    }
                };
                stack.push(Frame {
                    container,
                    node,
                    is_key,
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let ended = stack.pop();
                if ended.is_some_and(|frame| frame.is_key) {
                    if let Some(Frame {
                        container: Container::Map { key, awaiting_key },
                        ..
                    }) = stack.last_mut()
                    {
                        *awaiting_key = false;
                        *key = None;
                    }
                } else {
                    value_done(&mut stack);
                }
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }
    Ok((found, ranges, items))
}

/// The tree node of the value about to be read at the top of `stack`.
fn value_node<'n>(stack: &[Frame<'n>], root: Option<&'n Node>) -> Option<&'n Node> {
    let Some(top) = stack.last() else {
        return root;
    };
    let node = top.node?;
    match &top.container {
        Container::Map { key: Some(key), .. } => node.children.get(key),
        Container::Map { key: None, .. } => None,
        Container::Seq { next, .. } => node.children.get(&Step::Index(*next)),
    }
}

fn value_done(stack: &mut [Frame<'_>]) {
    match stack.last_mut().map(|frame| &mut frame.container) {
        Some(Container::Map { awaiting_key, .. }) => *awaiting_key = true,
        Some(Container::Seq { next, .. }) => *next += 1,
        None => {}
    }
}

/// The stack is [root mapping, its `items` block sequence], on the tree of
/// wanted paths.
fn is_items_sequence(stack: &[Frame<'_>]) -> bool {
    matches!(
        stack,
        [
            Frame {
                container: Container::Map {
                    key: Some(Step::Key(key)),
                    awaiting_key: false,
                },
                is_key: false,
                ..
            },
            Frame {
                container: Container::Seq { block: true, .. },
                node: Some(_),
                is_key: false,
            },
        ] if key == "items"
    )
}

fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

fn current_path(stack: &[Frame<'_>]) -> Vec<Step> {
    stack
        .iter()
        .filter_map(|frame| match &frame.container {
            Container::Map { key, .. } => key.clone(),
            Container::Seq { next, .. } => Some(Step::Index(*next)),
        })
        .collect()
}

fn path_string(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) => {
                out.push('/');
                out.push_str(key);
            }
            Step::Index(index) => {
                out.push('/');
                out.push_str(&index.to_string());
            }
        }
    }
    out
}

/// saphyr counts positions in characters; splices need bytes. Positions
/// are asked in increasing order, so one forward cursor does.
pub(crate) struct ByteOffsets<'t> {
    text: &'t str,
    ascii: bool,
    chars: usize,
    bytes: usize,
}

impl<'t> ByteOffsets<'t> {
    pub(crate) fn new(text: &'t str) -> Self {
        Self {
            text,
            ascii: text.is_ascii(),
            chars: 0,
            bytes: 0,
        }
    }

    pub(crate) fn byte(&mut self, char_index: usize) -> usize {
        if self.ascii {
            return char_index.min(self.text.len());
        }
        if char_index < self.chars {
            self.chars = 0;
            self.bytes = 0;
        }
        let mut rest = self.text[self.bytes..].chars();
        while self.chars < char_index {
            let Some(c) = rest.next() else { break };
            self.chars += 1;
            self.bytes += c.len_utf8();
        }
        self.bytes
    }
}

/// The splices that write `replacement` over the scalar found at `scalar`.
fn render_in_place(
    text: &str,
    syntax: Syntax,
    scalar: &Located,
    replacement: &Replacement,
) -> Result<Vec<Splice>, SpliceError> {
    let value = replacement.value.as_str();
    let whole = |range: Range<usize>, text: String| Ok(vec![Splice { range, text }]);
    if syntax == Syntax::Json {
        let end = quoted_end(text, scalar.start, b'"').unwrap_or(scalar.end);
        return whole(scalar.start..end, json_string(value));
    }
    match scalar.style {
        ScalarStyle::Plain => {
            let new = if is_plain_checksum(value) {
                value.to_owned()
            } else {
                double_quoted(value)
            };
            whole(scalar.start..scalar.end, new)
        }
        ScalarStyle::SingleQuoted => {
            let end = quoted_end(text, scalar.start, b'\'').unwrap_or(scalar.end);
            let new = if value.chars().all(|c| c != '\n' && printable(c)) {
                format!("'{}'", value.replace('\'', "''"))
            } else {
                double_quoted(value)
            };
            whole(scalar.start..end, new)
        }
        ScalarStyle::DoubleQuoted => {
            let end = quoted_end(text, scalar.start, b'"').unwrap_or(scalar.end);
            whole(scalar.start..end, double_quoted(value))
        }
        ScalarStyle::Literal | ScalarStyle::Folded => block_in_place(text, scalar, value),
    }
}

/// A block scalar: its header (`|`, `>-`, ...) and its content lines are
/// rewritten; a comment on the header line and any blank lines after the
/// content stay. The new value is a literal block at the old content's
/// indentation when it can be one, else a double-quoted string in place of
/// the header (and no content lines).
fn block_in_place(text: &str, scalar: &Located, value: &str) -> Result<Vec<Splice>, SpliceError> {
    let header_error = || SpliceError::BlockHeader(scalar.path.clone());
    // The content starts on the line after the header; blank lines may come
    // first, so the header line is the last non-blank line above.
    let first_line_start = text[..scalar.start].rfind('\n').map_or(0, |i| i + 1);
    let indentation = &text[first_line_start..scalar.start];
    let mut header_line_end = first_line_start;
    let header_line_start = loop {
        let Some(line_end) = header_line_end.checked_sub(1) else {
            return Err(header_error());
        };
        let start = text[..line_end].rfind('\n').map_or(0, |i| i + 1);
        if !text[start..line_end].trim().is_empty() {
            break start;
        }
        header_line_end = start;
    };
    // Without its `\n` (the loop above stopped at a line that has one).
    let header_line = &text[header_line_start..header_line_end - 1];
    let (header_offset, header_len) = block_header(header_line).ok_or_else(header_error)?;
    let header = header_line_start + header_offset..header_line_start + header_offset + header_len;
    let has_indentation_digit = text[header.clone()].bytes().any(|b| b.is_ascii_digit());

    // The content runs to its last non-blank line and that line's break;
    // blank lines after it stay in the text.
    let content_start = header_line_end;
    let content = &text[content_start..scalar.end.max(content_start)];
    let mut content_end = content_start + content.trim_end().len();
    if text[content_end..].starts_with("\r\n") {
        content_end += 2;
    } else if text[content_end..].starts_with('\n') {
        content_end += 1;
    }
    let line_break = if header_line.ends_with('\r') {
        "\r\n"
    } else {
        "\n"
    };

    let spaces_only = !indentation.is_empty() && indentation.bytes().all(|b| b == b' ');
    let literal = (spaces_only && !has_indentation_digit)
        .then(|| literal_block(value, indentation, line_break))
        .flatten();
    Ok(match literal {
        Some((new_header, lines)) => vec![
            Splice {
                range: header,
                text: new_header.to_owned(),
            },
            Splice {
                range: content_start..content_end,
                text: lines,
            },
        ],
        None => vec![
            Splice {
                range: header,
                text: double_quoted(value),
            },
            Splice {
                range: content_start..content_end,
                text: String::new(),
            },
        ],
    })
}

/// The block scalar header of a line such as `  key: |-  # note`: its
/// offset and length. The first `|` or `>` after a blank (or at the line
/// start) followed by indicators and then a blank, a comment or the end.
fn block_header(line: &str) -> Option<(usize, usize)> {
    let bytes = line.as_bytes();
    for (at, &byte) in bytes.iter().enumerate() {
        if byte != b'|' && byte != b'>' {
            continue;
        }
        if at > 0 && !matches!(bytes[at - 1], b' ' | b'\t') {
            continue;
        }
        let indicators = bytes[at + 1..]
            .iter()
            .take_while(|b| matches!(b, b'+' | b'-' | b'1'..=b'9'))
            .count();
        let after = at + 1 + indicators;
        if after == bytes.len() || matches!(bytes[after], b' ' | b'\t' | b'\r') {
            return Some((at, 1 + indicators));
        }
    }
    None
}

/// A literal block for `value` at `indentation`: the header and the content
/// lines, or `None` when a literal block cannot hold the value exactly
/// (only `|` and `|-` are written).
fn literal_block(
    value: &str,
    indentation: &str,
    line_break: &str,
) -> Option<(&'static str, String)> {
    let header = if let Some(body) = value.strip_suffix('\n') {
        if body.ends_with('\n') {
            return None;
        }
        "|"
    } else {
        "|-"
    };
    let body = value.strip_suffix('\n').unwrap_or(value);
    // A first line starting with a blank would need an indentation
    // indicator; characters YAML 1.1 reads as line breaks, carriage returns
    // and non-printables cannot stand raw.
    if body.is_empty()
        || body.starts_with([' ', '\t', '\n'])
        || !body.chars().all(|c| c == '\n' || c == '\t' || printable(c))
    {
        return None;
    }
    let mut lines = String::with_capacity(value.len() + value.len() / 8);
    for line in body.split('\n') {
        if !line.is_empty() {
            lines.push_str(indentation);
            lines.push_str(line);
        }
        lines.push_str(line_break);
    }
    Some((header, lines))
}

/// Characters YAML 1.1 (libyaml) takes raw inside a scalar without reading
/// them as a line break: no C0/C1 controls, no NEL, LS, PS, no BOM.
fn printable(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{2027}' | '\u{202a}'..='\u{d7ff}' | '\u{e000}'..='\u{fefe}' | '\u{ff00}'..='\u{fffd}' | '\u{10000}'..)
}

/// A lower-case hex string with a letter no number syntax uses (`a`, `c`,
/// `d`, `f`: `b`, `e` and `x` can make it a number for go-yaml), so it reads
/// as a string plain: the shape of every checksum this tool writes.
fn is_plain_checksum(value: &str) -> bool {
    value.len() >= 2
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && value
            .bytes()
            .any(|b| matches!(b, b'a' | b'c' | b'd' | b'f'))
}

/// A YAML double-quoted string, one line; everything not printable raw is
/// escaped.
fn double_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if printable(c) => out.push(c),
            c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

fn json_string(value: &str) -> String {
    // A str always serializes; the fallback is never taken.
    serde_json::to_string(value).unwrap_or_else(|_| double_quoted(value))
}

/// The byte after the closing quote of the quoted scalar opening at `start`.
fn quoted_end(text: &str, start: usize, quote: u8) -> Option<usize> {
    let bytes = text.as_bytes();
    if bytes.get(start) != Some(&quote) {
        return None;
    }
    let mut at = start + 1;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' if quote == b'"' => at += 2,
            b if b == quote => {
                if quote == b'\'' && bytes.get(at + 1) == Some(&b'\'') {
                    at += 2;
                } else {
                    return Some(at + 1);
                }
            }
            _ => at += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_path(keys: &[&str]) -> Vec<Step> {
        keys.iter().map(|k| Step::Key((*k).to_owned())).collect()
    }

    fn edit(text: &str, syntax: Syntax, document: usize, path: Vec<Step>, value: &str) -> String {
        let documents = BTreeMap::from([(
            document,
            vec![Replacement {
                path,
                value: value.to_owned(),
            }],
        )]);
        let plans = plan(text, syntax, &documents).unwrap();
        let plan = plans[&document].as_ref().unwrap();
        assert!(
            plan.splices
                .iter()
                .all(|s| plan.range.start <= s.range.start && s.range.end <= plan.range.end)
        );
        apply(text, &plan.splices)
    }

    #[test]
    fn plain_quoted_and_block_scalars_are_replaced_in_their_style() {
        let text = "# head\na: old # keep\nb: \"x\\\"y\" # keep\nc: 'it''s' # keep\nd: |  # keep\n    one\n    two\n\n# tail\ne: f\n";
        assert_eq!(
            edit(text, Syntax::Yaml, 0, key_path(&["a"]), "abc123"),
            text.replace("a: old", "a: abc123")
        );
        assert_eq!(
            edit(text, Syntax::Yaml, 0, key_path(&["a"]), "yes"),
            text.replace("a: old", "a: \"yes\"")
        );
        assert_eq!(
            edit(text, Syntax::Yaml, 0, key_path(&["b"]), "z"),
            text.replace("\"x\\\"y\"", "\"z\"")
        );
        assert_eq!(
            edit(text, Syntax::Yaml, 0, key_path(&["c"]), "o'k"),
            text.replace("'it''s'", "'o''k'")
        );
        assert_eq!(
            edit(text, Syntax::Yaml, 0, key_path(&["d"]), "x\n  y\n"),
            text.replace("    one\n    two\n", "    x\n      y\n")
        );
        assert_eq!(
            edit(text, Syntax::Yaml, 0, key_path(&["d"]), "x"),
            text.replace("|  # keep\n    one\n    two\n", "|-  # keep\n    x\n")
        );
        assert_eq!(
            edit(text, Syntax::Yaml, 0, key_path(&["d"]), " lead\n"),
            text.replace("|  # keep\n    one\n    two\n", "\" lead\\n\"  # keep\n")
        );
    }

    #[test]
    fn a_block_header_alone_on_its_line_and_crlf_lines_are_rewritten() {
        let text = "a:\n  - |\n    x\n  - y\n";
        let path = vec![Step::Key("a".into()), Step::Index(0)];
        assert_eq!(
            edit(text, Syntax::Yaml, 0, path.clone(), "z\nw"),
            "a:\n  - |-\n    z\n    w\n  - y\n"
        );
        let crlf = text.replace('\n', "\r\n");
        assert_eq!(
            edit(&crlf, Syntax::Yaml, 0, path, "z\n"),
            "a:\r\n  - |\r\n    z\r\n  - y\r\n"
        );
    }

    #[test]
    fn documents_lists_and_unicode_are_found() {
        let text = "a: é\n---\nkind: List\nitems:\n- k: \"ü\"\n- k: v\n";
        let path = vec![
            Step::Key("items".into()),
            Step::Index(1),
            Step::Key("k".into()),
        ];
        assert_eq!(
            edit(text, Syntax::Yaml, 1, path, "w"),
            text.replace("k: v", "k: \"w\"")
        );
    }

    #[test]
    fn each_document_is_located_alone() {
        let text = "# c\na: 1\n---\nb: 2\n...\n--- # x\nc: 3\n";
        let wanted = |d| {
            (
                d,
                vec![Replacement {
                    path: key_path(&["a"]),
                    value: "v".into(),
                }],
            )
        };
        let plans = plan(
            text,
            Syntax::Yaml,
            &BTreeMap::from([wanted(0), wanted(1), wanted(2)]),
        )
        .unwrap();
        let range = |d: usize| match &plans[&d] {
            Ok(plan) => plan.range.clone(),
            Err(_) => ranges_of(text, Syntax::Yaml, d),
        };
        assert_eq!(&text[range(0)], "a: 1\n");
        assert_eq!(&text[range(1)], "---\nb: 2\n");
        assert_eq!(&text[range(2)], "--- # x\nc: 3\n");
    }

    /// The range of a document whose wanted key is absent (the plan is an
    /// error, so ask for a key that is there).
    fn ranges_of(text: &str, syntax: Syntax, document: usize) -> Range<usize> {
        let key = ["a", "b", "c"][document];
        let wanted = BTreeMap::from([(
            document,
            vec![Replacement {
                path: key_path(&[key]),
                value: "v".into(),
            }],
        )]);
        plan(text, syntax, &wanted).unwrap()[&document]
            .as_ref()
            .unwrap()
            .range
            .clone()
    }

    #[test]
    fn json_is_written_as_json() {
        let text = "{\"a\": {\"b\":\"x\\\"\" , \"c\": 1}}";
        let path = key_path(&["a", "b"]);
        assert_eq!(
            edit(text, Syntax::Json, 0, path, "y\u{2028}"),
            "{\"a\": {\"b\":\"y\u{2028}\" , \"c\": 1}}"
        );
    }

    #[test]
    fn what_cannot_be_placed_says_why() {
        let documents = |path| {
            BTreeMap::from([(
                0,
                vec![Replacement {
                    path,
                    value: "v".into(),
                }],
            )])
        };
        let text = "a: &x b\nc: *x\nd: e\nd: f\n";
        let plans = plan(text, Syntax::Yaml, &documents(key_path(&["a"]))).unwrap();
        assert!(matches!(plans[&0], Err(SpliceError::Decorated(_))));
        let plans = plan(text, Syntax::Yaml, &documents(key_path(&["c"]))).unwrap();
        assert!(matches!(plans[&0], Err(SpliceError::NotFound(_))));
        let plans = plan(text, Syntax::Yaml, &documents(key_path(&["d"]))).unwrap();
        assert!(matches!(plans[&0], Err(SpliceError::Duplicate(_))));
        assert!(plan("a: [", Syntax::Yaml, &documents(key_path(&["a"]))).is_err());
    }

    #[test]
    fn checksums_stay_plain_only_when_no_reader_takes_them_for_numbers() {
        assert!(is_plain_checksum("32cf106c9df1f5bf"));
        assert!(!is_plain_checksum("1234e5"));
        assert!(!is_plain_checksum("0b1"));
        assert!(!is_plain_checksum("12345"));
        assert!(!is_plain_checksum("yes"));
    }

    #[test]
    fn double_quoted_escapes_what_yaml_1_1_would_read_otherwise() {
        assert_eq!(
            double_quoted("a\"\\\n\t\u{85}\u{2028}\u{1}é"),
            "\"a\\\"\\\\\\n\\t\\u0085\\u2028\\u0001é\""
        );
    }
}
