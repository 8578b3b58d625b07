//! A YAML document read once into a comparable tree plus the byte layout of
//! its top-level `backends` sequence.
//!
//! The tree is what the proof compares; the layout is what the reorder cuts.
//! Both come from one pass over `saphyr-parser` events, so they cannot disagree.

use std::borrow::Cow;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Span};

use super::{Refusal, RefusalReason};

/// Deeper nesting than this is refused: the tree is built recursively and no
/// vMCP config comes close (the schema nests about eight levels).
const MAX_DEPTH: usize = 64;

/// The key whose sequence is a set.
pub const BACKENDS_KEY: &str = "backends";

/// A YAML node with everything that decides its meaning: scalar text and style
/// (a quoted `"123"` is a string, a plain `123` a number), sequence order, and
/// mapping entries in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node<'a> {
    Scalar(Cow<'a, str>, ScalarStyle),
    Sequence(Vec<Node<'a>>),
    Mapping(Vec<(Node<'a>, Node<'a>)>),
}

impl Node<'_> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar(value, _) => Some(value),
            _ => None,
        }
    }

    /// Value of the key `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Self> {
        match self {
            Node::Mapping(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Byte layout of the top-level `backends` block sequence.
#[derive(Debug, Clone)]
pub struct BackendsLayout {
    /// Index of the `backends` entry in the root mapping.
    pub entry: usize,
    /// Byte offset of the start of each item's line (the line of its `-`).
    pub item_starts: Vec<usize>,
    /// Byte offset where the sequence text ends (start of the line that holds
    /// the next token after the sequence).
    pub end: usize,
}

/// Where the top-level `backends` value stands.
#[derive(Debug, Clone)]
pub enum Backends {
    /// No top-level `backends` key.
    Absent,
    /// A block sequence, with its layout.
    Block(BackendsLayout),
    /// A flow sequence (`[...]`): its items cannot be moved as lines.
    Flow { items: usize },
    /// `backends:` with no value (YAML null).
    Null,
    /// Anything else: a mapping or a non-null scalar.
    NotSequence,
}

/// A parsed single-document YAML text.
#[derive(Debug)]
pub struct Document<'a> {
    pub root: Option<Node<'a>>,
    pub backends: Backends,
    /// Byte ranges of multi-line quoted and block scalars (from the start of
    /// their first line), with the least indentation a content line of that
    /// scalar has (a `#` line indented less is a comment, not content).
    pub multiline_scalars: Vec<(usize, usize, usize)>,
}

/// Parse `text`, refusing what the reorder cannot keep intact.
pub fn parse(text: &str) -> Result<Document<'_>, Refusal> {
    if text.contains('\r') {
        return Err(unsupported("CR line endings"));
    }
    let mut reader = Reader {
        text,
        offsets: CharOffsets::new(text),
        events: Parser::new_from_str(text),
        multiline_scalars: Vec::new(),
        backends: Backends::Absent,
    };
    let root = reader.document()?;
    Ok(Document {
        root,
        backends: reader.backends,
        multiline_scalars: reader.multiline_scalars,
    })
}

struct Reader<'a> {
    text: &'a str,
    offsets: CharOffsets,
    events: Parser<'a, saphyr_parser::StrInput<'a>>,
    multiline_scalars: Vec<(usize, usize, usize)>,
    backends: Backends,
}

impl<'a> Reader<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), Refusal> {
        match self.events.next_event() {
            Some(Ok(event)) => Ok(event),
            Some(Err(error)) => Err(Refusal {
                reason: RefusalReason::InvalidYaml,
                detail: format!(
                    "line {} column {}: {}",
                    error.marker().line(),
                    error.marker().col() + 1,
                    error.info()
                ),
            }),
            None => Err(Refusal {
                reason: RefusalReason::InvalidYaml,
                detail: "unexpected end of the event stream".into(),
            }),
        }
    }

    fn document(&mut self) -> Result<Option<Node<'a>>, Refusal> {
        let mut root = None;
        let mut documents = 0;
        loop {
            match self.next()? {
                (Event::StreamStart, _) | (Event::DocumentEnd, _) => {}
                (Event::StreamEnd, _) => return Ok(root),
                (Event::DocumentStart(_), _) => {
                    documents += 1;
                    if documents > 1 {
                        return Err(unsupported("more than one YAML document"));
                    }
                    let (event, span) = self.next()?;
                    root = Some(self.node(event, span, 0)?);
                }
                (event, _) => {
                    return Err(unsupported(&format!("unexpected event {event:?}")));
                }
            }
        }
    }

    fn node(&mut self, event: Event<'a>, span: Span, depth: usize) -> Result<Node<'a>, Refusal> {
        if depth > MAX_DEPTH {
            return Err(unsupported(&format!(
                "nesting deeper than {MAX_DEPTH} levels"
            )));
        }
        match event {
            Event::Alias(_) => Err(unsupported("aliases")),
            Event::Scalar(_, _, anchor, _)
            | Event::SequenceStart(anchor, _)
            | Event::MappingStart(anchor, _)
                if anchor != 0 =>
            {
                Err(unsupported("anchors"))
            }
            Event::Scalar(_, _, _, Some(_))
            | Event::SequenceStart(_, Some(_))
            | Event::MappingStart(_, Some(_)) => Err(unsupported("tags")),
            Event::Scalar(value, style, _, None) => {
                if style != ScalarStyle::Plain && span.start.line() != span.end.line() {
                    // Block scalar spans start at the first content line, whose
                    // column is the content indentation; quoted ones span exactly.
                    let min_indent = match style {
                        ScalarStyle::Literal | ScalarStyle::Folded => span.start.col(),
                        _ => 0,
                    };
                    self.multiline_scalars.push((
                        line_start(self.text, self.offsets.byte(&span.start)),
                        self.offsets.byte(&span.end),
                        min_indent,
                    ));
                }
                Ok(Node::Scalar(value, style))
            }
            Event::SequenceStart(..) => {
                let mut items = Vec::new();
                loop {
                    match self.next()? {
                        (Event::SequenceEnd, _) => return Ok(Node::Sequence(items)),
                        (event, span) => items.push(self.node(event, span, depth + 1)?),
                    }
                }
            }
            Event::MappingStart(..) => {
                let mut entries = Vec::new();
                loop {
                    let (event, key_span) = self.next()?;
                    if event == Event::MappingEnd {
                        return Ok(Node::Mapping(entries));
                    }
                    let key = self.node(event, key_span, depth + 1)?;
                    let (event, value_span) = self.next()?;
                    let is_backends = depth == 0 && key.as_str() == Some(BACKENDS_KEY);
                    if is_backends && !matches!(self.backends, Backends::Absent) {
                        return Err(unsupported("duplicate top-level backends key"));
                    }
                    let value = if is_backends {
                        self.backends_value(event, value_span, entries.len(), depth + 1)?
                    } else {
                        self.node(event, value_span, depth + 1)?
                    };
                    entries.push((key, value));
                }
            }
            other => Err(unsupported(&format!("unexpected event {other:?}"))),
        }
    }

    /// Read the top-level `backends` value, noting where each item starts.
    fn backends_value(
        &mut self,
        event: Event<'a>,
        span: Span,
        entry: usize,
        depth: usize,
    ) -> Result<Node<'a>, Refusal> {
        let Event::SequenceStart(0, None) = event else {
            let node = self.node(event, span, depth)?;
            self.backends = match &node {
                Node::Scalar(value, ScalarStyle::Plain)
                    if matches!(value.as_ref(), "" | "~" | "null" | "Null" | "NULL") =>
                {
                    Backends::Null
                }
                _ => Backends::NotSequence,
            };
            return Ok(node);
        };
        let start = self.offsets.byte(&span.start);
        if self.text.as_bytes().get(start) == Some(&b'[') {
            let node = self.node(event, span, depth)?;
            let items = match &node {
                Node::Sequence(items) => items.len(),
                _ => 0,
            };
            self.backends = Backends::Flow { items };
            return Ok(node);
        }
        let mut items = Vec::new();
        let mut item_starts = Vec::new();
        loop {
            let (event, span) = self.next()?;
            if event == Event::SequenceEnd {
                // The next token starts a line, or the input has ended.
                let next = self.offsets.byte(&span.start);
                let end = if next >= self.text.len() {
                    self.text.len()
                } else {
                    line_start(self.text, next)
                };
                self.backends = Backends::Block(BackendsLayout {
                    entry,
                    item_starts,
                    end,
                });
                return Ok(Node::Sequence(items));
            }
            item_starts.push(self.item_line_start(self.offsets.byte(&span.start))?);
            items.push(self.node(event, span, depth + 1)?);
        }
    }

    /// The start of the line holding the `-` that introduces the item whose
    /// content starts at `content`. Only spaces may stand before that `-`.
    fn item_line_start(&self, content: usize) -> Result<usize, Refusal> {
        let bytes = self.text.as_bytes();
        let before = &bytes[..content.min(bytes.len())];
        let dash = before
            .iter()
            .rposition(|b| !matches!(b, b' ' | b'\n'))
            .filter(|&i| before[i] == b'-')
            .ok_or_else(|| unsupported("a backends item that does not start with `- `"))?;
        let start = line_start(self.text, dash);
        if bytes[start..dash].iter().all(|&b| b == b' ') {
            Ok(start)
        } else {
            Err(unsupported(
                "a backends item that does not start its own line",
            ))
        }
    }
}

/// Byte offset of the start of the line that contains `offset`.
pub fn line_start(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1)
}

fn unsupported(what: &str) -> Refusal {
    Refusal {
        reason: RefusalReason::Unsupported,
        detail: format!("config uses {what}"),
    }
}

/// saphyr reports character indices; slicing needs bytes.
enum CharOffsets {
    Ascii,
    Table(Vec<usize>),
}

impl CharOffsets {
    fn new(text: &str) -> Self {
        if text.is_ascii() {
            CharOffsets::Ascii
        } else {
            let mut table: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
            table.push(text.len());
            CharOffsets::Table(table)
        }
    }

    fn byte(&self, marker: &Marker) -> usize {
        match self {
            CharOffsets::Ascii => marker.index(),
            CharOffsets::Table(table) => table
                .get(marker.index())
                .copied()
                .unwrap_or_else(|| table.last().copied().unwrap_or(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(text: &str) -> BackendsLayout {
        match parse(text).map(|d| d.backends) {
            Ok(Backends::Block(layout)) => layout,
            other => panic!("expected a block sequence, got {other:?}"),
        }
    }

    #[test]
    fn finds_items_in_operator_style() {
        let text = "name: x\nbackends:\n    - name: b\n      url: u\n    - name: a\nnext: 1\n";
        let l = layout(text);
        assert_eq!(l.item_starts, vec![18, 45]);
        assert_eq!(&text[l.end..], "next: 1\n");
    }

    #[test]
    fn finds_items_at_column_zero_and_dash_on_its_own_line() {
        let text = "backends:\n- name: b\n-\n  name: a\n";
        let l = layout(text);
        assert_eq!(l.item_starts, vec![10, 20]);
        assert_eq!(l.end, text.len());
    }

    #[test]
    fn byte_offsets_survive_non_ascii() {
        let text = "name: ü\nbackends:\n  - name: é\n  - name: a\n";
        let l = layout(text);
        assert_eq!(&text[l.item_starts[0]..l.item_starts[1]], "  - name: é\n");
    }

    #[test]
    fn refuses_what_cannot_move() {
        for (text, reason) in [
            ("a: &x 1\nb: *x\n", RefusalReason::Unsupported),
            ("a: !!str 1\n", RefusalReason::Unsupported),
            ("a: 1\n---\nb: 2\n", RefusalReason::Unsupported),
            ("a: 1\r\n", RefusalReason::Unsupported),
            ("backends: [\n", RefusalReason::InvalidYaml),
            (
                "backends:\n  - a\nbackends: []\n",
                RefusalReason::Unsupported,
            ),
        ] {
            let refusal = parse(text).expect_err(text);
            assert_eq!(refusal.reason, reason, "{text}: {}", refusal.detail);
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(
            parse(&nested(100)).unwrap_err().reason,
            RefusalReason::Unsupported
        );
        // saphyr has its own limit further down; either way, an answer, not a crash.
        assert!(parse(&nested(100_000)).is_err());
    }

    #[test]
    fn nested_backends_keys_are_not_the_set() {
        let doc = parse("outgoingAuth:\n  backends:\n    - a\n").unwrap();
        assert!(matches!(doc.backends, Backends::Absent));
    }
}
