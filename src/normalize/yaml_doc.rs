//! A YAML document read once into a comparable event list plus the byte
//! layout of its top-level `backends` sequence.
//!
//! The events are what the proof compares; the layout is what the reorder
//! cuts. Both come from one pass over the events, so they cannot disagree.

use std::borrow::Cow;
use std::ops::Range;

use super::Refusal;
use super::yaml_event::{self, Event, ScalarStyle, Sink, Span, unsupported};

/// The key whose sequence is a set.
pub const BACKENDS_KEY: &str = "backends";

/// Byte layout of the top-level `backends` block sequence, and where each
/// item's events are in [`Document::events`].
#[derive(Debug, Clone)]
pub struct BackendsLayout {
    /// Byte offset of the start of each item's line (the line of its `-`).
    pub item_starts: Vec<usize>,
    /// Each item's events.
    pub item_events: Vec<Range<usize>>,
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

/// A parsed single-document YAML text: its events (what the proof compares,
/// scalar styles included) and the layout of its top-level `backends`.
#[derive(Debug)]
pub struct Document<'a> {
    pub events: Vec<Event<'a>>,
    pub backends: Backends,
    /// Byte ranges of multi-line quoted and block scalars (from the start of
    /// their first line), with the least indentation a content line of that
    /// scalar has (a `#` line indented less is a comment, not content).
    pub multiline_scalars: Vec<(usize, usize, usize)>,
}

impl<'a> Document<'a> {
    /// The `name` scalar of the backends item whose events are `range`.
    pub fn item_name(&self, range: &Range<usize>) -> Option<&str> {
        let (Event::MappingStart, entries) = self.events.get(range.clone())?.split_first()? else {
            return None;
        };
        // Walk the item's own entries (keys at even positions), stepping over
        // nested collections.
        let mut depth = 0usize;
        let mut position = 0usize;
        let mut events = entries.iter();
        while let Some(event) = events.next() {
            if depth == 0 {
                match event {
                    Event::MappingEnd => return None,
                    Event::Scalar(key, _) if position.is_multiple_of(2) && key == "name" => {
                        return match events.next() {
                            Some(Event::Scalar(value, _)) => Some(value),
                            _ => None,
                        };
                    }
                    _ => {}
                }
            }
            match event {
                Event::SequenceStart | Event::MappingStart => depth += 1,
                Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
                _ => {}
            }
            if depth == 0 {
                position += 1;
            }
        }
        None
    }
}

/// Parse `text`, refusing what the reorder cannot keep intact.
pub fn parse(text: &str) -> Result<Document<'_>, Refusal> {
    let reader = yaml_event::read(text, || Reader::new(text))?;
    Ok(Document {
        events: reader.events,
        backends: reader.backends,
        multiline_scalars: reader.multiline_scalars,
    })
}

/// The start of a node, as the layout looks at it.
#[derive(Clone, Copy)]
enum Node<'v> {
    Scalar(&'v str, ScalarStyle),
    Sequence,
    Mapping,
}

/// What an open collection is, for the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Other,
    RootMapping,
    BlockBackends,
    FlowBackends,
}

#[derive(Debug)]
struct Frame {
    mapping: bool,
    role: Role,
    /// Nodes completed inside: in a mapping, keys and values alternate.
    children: usize,
}

/// Reads events one at a time, keeping a stack instead of recursing, so
/// nesting depth costs no native stack.
struct Reader<'a> {
    text: &'a str,
    events: Vec<Event<'a>>,
    stack: Vec<Frame>,
    /// Collections open inside a [`Role::Other`] collection. Only the root
    /// mapping and the backends sequence need a frame; below them events are
    /// just kept (most of a config, so they take the short way).
    nested: usize,
    documents: usize,
    next_is_backends: bool,
    backends: Backends,
    item_starts: Vec<usize>,
    item_first_events: Vec<usize>,
    multiline_scalars: Vec<(usize, usize, usize)>,
}

impl<'a> Sink<'a> for Reader<'a> {
    fn scalar(&mut self, value: &'a str, style: ScalarStyle, span: Span) -> Result<(), Refusal> {
        if self.below_frames() {
            self.note_multiline(style, span);
        } else {
            self.node_start(Node::Scalar(value, style), span)?;
        }
        self.events.push(Event::Scalar(Cow::Borrowed(value), style));
        Ok(())
    }

    fn event(&mut self, event: Event<'a>, span: Span) -> Result<(), Refusal> {
        if self.below_frames() {
            match &event {
                Event::Scalar(_, style) => self.note_multiline(*style, span),
                Event::SequenceStart | Event::MappingStart => self.nested += 1,
                Event::SequenceEnd | Event::MappingEnd if self.nested > 0 => self.nested -= 1,
                Event::SequenceEnd | Event::MappingEnd => self.collection_end(span),
                _ => {}
            }
            self.events.push(event);
            return Ok(());
        }
        match &event {
            Event::Scalar(value, style) => self.node_start(Node::Scalar(value, *style), span)?,
            Event::SequenceStart => self.node_start(Node::Sequence, span)?,
            Event::MappingStart => self.node_start(Node::Mapping, span)?,
            Event::SequenceEnd | Event::MappingEnd => self.collection_end(span),
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(unsupported("more than one YAML document"));
                }
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
        self.events.push(event);
        Ok(())
    }
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Self {
        Reader {
            text,
            // About one event per 12 bytes of operator output: growing the
            // vector from empty cost more than filling it.
            events: Vec::with_capacity(text.len() / 12 + 8),
            // Room for what an operator config holds, so none of these
            // grows (a reallocation each time) while it is read.
            stack: Vec::with_capacity(8),
            nested: 0,
            documents: 0,
            next_is_backends: false,
            backends: Backends::Absent,
            item_starts: Vec::with_capacity(16),
            item_first_events: Vec::with_capacity(16),
            multiline_scalars: Vec::new(),
        }
    }

    /// Whether the current event stands below the frames the layout needs.
    fn below_frames(&self) -> bool {
        self.nested > 0 || self.stack.last().is_some_and(|f| f.role == Role::Other)
    }

    fn node_start(&mut self, node: Node<'_>, span: Span) -> Result<(), Refusal> {
        let is_backends_value = std::mem::take(&mut self.next_is_backends);
        match self.stack.last() {
            Some(Frame {
                mapping: true,
                role: Role::RootMapping,
                children,
            }) if children % 2 == 0 => {
                if matches!(node, Node::Scalar(key, _) if key == BACKENDS_KEY) {
                    if !matches!(self.backends, Backends::Absent) {
                        return Err(unsupported("duplicate top-level backends key"));
                    }
                    self.next_is_backends = true;
                }
            }
            Some(Frame {
                role: Role::BlockBackends,
                ..
            }) => {
                let start = self.item_line_start(span.start)?;
                self.item_starts.push(start);
                self.item_first_events.push(self.events.len());
            }
            _ => {}
        }
        let role = match node {
            Node::Mapping if self.stack.is_empty() => Role::RootMapping,
            Node::Sequence if is_backends_value => {
                if self.text.as_bytes().get(span.start) == Some(&b'[') {
                    Role::FlowBackends
                } else {
                    Role::BlockBackends
                }
            }
            _ => Role::Other,
        };
        match node {
            Node::Scalar(value, style) => {
                if is_backends_value {
                    let null = style == ScalarStyle::Plain
                        && matches!(value, "" | "~" | "null" | "Null" | "NULL");
                    self.backends = if null {
                        Backends::Null
                    } else {
                        Backends::NotSequence
                    };
                }
                self.note_multiline(style, span);
                self.completed();
            }
            Node::Mapping => {
                if is_backends_value {
                    self.backends = Backends::NotSequence;
                }
                self.stack.push(Frame {
                    mapping: true,
                    role,
                    children: 0,
                });
            }
            Node::Sequence => self.stack.push(Frame {
                mapping: false,
                role,
                children: 0,
            }),
        }
        Ok(())
    }

    fn collection_end(&mut self, span: Span) {
        let Some(frame) = self.stack.pop() else {
            return;
        };
        match frame.role {
            Role::BlockBackends => {
                // The next token starts a line, or the input has ended.
                let end = if span.start >= self.text.len() {
                    self.text.len()
                } else {
                    line_start(self.text, span.start)
                };
                let firsts = std::mem::take(&mut self.item_first_events);
                let item_events = firsts
                    .iter()
                    .enumerate()
                    .map(|(i, &first)| {
                        first..firsts.get(i + 1).copied().unwrap_or(self.events.len())
                    })
                    .collect();
                self.backends = Backends::Block(BackendsLayout {
                    item_starts: std::mem::take(&mut self.item_starts),
                    item_events,
                    end,
                });
            }
            Role::FlowBackends => {
                self.backends = Backends::Flow {
                    items: frame.children,
                }
            }
            Role::Other | Role::RootMapping => {}
        }
        self.completed();
    }

    /// A node ended: count it in its parent.
    fn completed(&mut self) {
        if let Some(parent) = self.stack.last_mut() {
            parent.children += 1;
        }
    }

    fn note_multiline(&mut self, style: ScalarStyle, span: Span) {
        if style == ScalarStyle::Plain {
            return;
        }
        let Some(spanned) = self.text.as_bytes().get(span.start..span.end) else {
            return;
        };
        if memchr::memchr(b'\n', spanned).is_none() {
            return;
        }
        let first_line = line_start(self.text, span.start);
        // Block scalar spans start at the first content line, after its
        // indentation (spaces, so bytes count as columns); quoted ones span
        // exactly.
        let min_indent = match style {
            ScalarStyle::Literal | ScalarStyle::Folded => span.start - first_line,
            _ => 0,
        };
        self.multiline_scalars
            .push((first_line, span.end, min_indent));
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
    memchr::memrchr(b'\n', &text.as_bytes()[..offset]).map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::RefusalReason;

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
    fn deep_nesting_is_an_answer_not_a_crash() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let text = nested(200);
        let deep = parse(&text);
        assert!(
            deep.is_ok(),
            "the reader keeps a stack, it does not recurse: {deep:?}"
        );
        // saphyr refuses very deep input itself.
        assert_eq!(
            parse(&nested(100_000)).unwrap_err().reason,
            RefusalReason::InvalidYaml
        );
    }

    #[test]
    fn item_names_are_the_items_own_name_key() {
        let text =
            "backends:\n  - url: {name: x}\n    tags: [name]\n    name: \"123\"\n  - other: 1\n";
        let doc = parse(text).unwrap();
        let Backends::Block(layout) = &doc.backends else {
            panic!("{:?}", doc.backends)
        };
        assert_eq!(doc.item_name(&layout.item_events[0]), Some("123"));
        assert_eq!(doc.item_name(&layout.item_events[1]), None);
    }

    #[test]
    fn flow_and_scalar_backends_are_told_apart() {
        assert!(matches!(
            parse("backends: [a, b, c]\n").unwrap().backends,
            Backends::Flow { items: 3 }
        ));
        assert!(matches!(
            parse("backends:\nx: 1\n").unwrap().backends,
            Backends::Null
        ));
        assert!(matches!(
            parse("backends: {a: 1}\n").unwrap().backends,
            Backends::NotSequence
        ));
        assert!(matches!(
            parse("backends: x\n").unwrap().backends,
            Backends::NotSequence
        ));
    }

    #[test]
    fn nested_backends_keys_are_not_the_set() {
        let doc = parse("outgoingAuth:\n  backends:\n    - a\n").unwrap();
        assert!(matches!(doc.backends, Backends::Absent));
    }
}
