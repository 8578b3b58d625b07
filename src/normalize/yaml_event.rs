//! The YAML events the normalizer reads and compares, and the one way to read
//! them: the fast reader for yaml.v3's own output, saphyr-parser for the rest.
//!
//! An event keeps only what the proof compares (structure, scalar values and
//! their styles) and a byte span. saphyr's own event type also carries anchor
//! ids and tags, which the normalizer refuses, and a span of line, column and
//! character index per end; at 32 bytes instead of 136 per event, reading and
//! comparing a config costs a fraction of what it did.

use std::borrow::Cow;

use saphyr_parser::{Marker, Parser};

pub use saphyr_parser::ScalarStyle;

use super::fast_yaml;
use super::{Refusal, RefusalReason};

/// One YAML event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    StreamStart,
    StreamEnd,
    /// `true` when the document starts with an explicit `---`.
    DocumentStart(bool),
    DocumentEnd,
    SequenceStart,
    SequenceEnd,
    MappingStart,
    MappingEnd,
    /// A scalar's value (quotes removed, escapes and block lines resolved)
    /// and its style, so a quoted `"123"` never equals a plain `123`.
    Scalar(Cow<'a, str>, ScalarStyle),
}

/// Where an event stands in the text, in bytes: saphyr's span (the start and
/// end of the event's token) as byte offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// What consumes events, one at a time; an error stops the reading.
pub trait Sink<'a> {
    fn event(&mut self, event: Event<'a>, span: Span) -> Result<(), Refusal>;

    /// A scalar whose value is a slice of the text, the common case.
    ///
    /// Its parts come in registers. An [`Event`] handed over instead is
    /// built on the caller's stack field by field and copied from there in
    /// wider loads, which the CPU cannot forward from the narrower stores
    /// just made: a stall on every event, a third of the document reader's
    /// time before this method.
    fn scalar(&mut self, value: &'a str, style: ScalarStyle, span: Span) -> Result<(), Refusal> {
        self.event(Event::Scalar(Cow::Borrowed(value), style), span)
    }
}

/// Read `text`, handing its events to a sink made by `fresh`.
///
/// The fast reader goes first. When it declines, a fresh sink gets
/// saphyr-parser's events from the start; so it does when the sink stopped
/// the fast reading, because events handed over before a decline need not be
/// saphyr's (`a: one` is handed over before the reader sees that the next
/// line continues the scalar). The sink that saw the whole text is returned.
/// Anchors, aliases, tags and CR line endings are refused as
/// [`RefusalReason::Unsupported`]; text that is not YAML is
/// [`RefusalReason::InvalidYaml`].
pub fn read<'a, S: Sink<'a>>(text: &'a str, mut fresh: impl FnMut() -> S) -> Result<S, Refusal> {
    let mut sink = fresh();
    if let Ok(true) = fast_yaml::read(text, &mut sink) {
        return Ok(sink);
    }
    let mut sink = fresh();
    read_general(text, &mut sink)?;
    Ok(sink)
}

/// saphyr-parser's events for `text`, converted.
fn read_general<'a>(text: &'a str, sink: &mut impl Sink<'a>) -> Result<(), Refusal> {
    // The reorder cuts and joins lines at `\n`; a CR would end up alone.
    if memchr::memchr(b'\r', text.as_bytes()).is_some() {
        return Err(unsupported("CR line endings"));
    }
    let offsets = CharOffsets::new(text);
    for next in Parser::new_from_str(text) {
        let (event, span) = next.map_err(|error| Refusal {
            reason: RefusalReason::InvalidYaml,
            detail: format!(
                "line {} column {}: {}",
                error.marker().line(),
                error.marker().col() + 1,
                error.info()
            ),
        })?;
        let span = Span {
            start: offsets.byte(&span.start),
            end: offsets.byte(&span.end),
        };
        let Some(event) = convert(event)? else {
            continue;
        };
        sink.event(event, span)?;
    }
    Ok(())
}

/// The event the normalizer compares, `None` for saphyr's internal `Nothing`.
fn convert(event: saphyr_parser::Event<'_>) -> Result<Option<Event<'_>>, Refusal> {
    use saphyr_parser::Event as E;
    let plain = |anchor: usize, tagged: bool| {
        if anchor != 0 {
            Err(unsupported("anchors"))
        } else if tagged {
            Err(unsupported("tags"))
        } else {
            Ok(())
        }
    };
    Ok(Some(match event {
        E::Nothing => return Ok(None),
        E::StreamStart => Event::StreamStart,
        E::StreamEnd => Event::StreamEnd,
        E::DocumentStart(explicit) => Event::DocumentStart(explicit),
        E::DocumentEnd => Event::DocumentEnd,
        E::Alias(_) => return Err(unsupported("aliases")),
        E::Scalar(value, style, anchor, tag) => {
            plain(anchor, tag.is_some())?;
            Event::Scalar(value, style)
        }
        E::SequenceStart(anchor, tag) => {
            plain(anchor, tag.is_some())?;
            Event::SequenceStart
        }
        E::SequenceEnd => Event::SequenceEnd,
        E::MappingStart(anchor, tag) => {
            plain(anchor, tag.is_some())?;
            Event::MappingStart
        }
        E::MappingEnd => Event::MappingEnd,
    }))
}

pub fn unsupported(what: &str) -> Refusal {
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

/// Collects every event, for tests.
#[cfg(test)]
impl<'a> Sink<'a> for Vec<(Event<'a>, Span)> {
    fn event(&mut self, event: Event<'a>, span: Span) -> Result<(), Refusal> {
        self.push((event, span));
        Ok(())
    }
}

/// saphyr's events for `text`, converted, for tests.
#[cfg(test)]
pub fn general_events(text: &str) -> Result<Vec<(Event<'_>, Span)>, Refusal> {
    let mut events = Vec::new();
    read_general(text, &mut events)?;
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_small() {
        // The point of this type: a config has one event per dozen bytes.
        assert!(std::mem::size_of::<Event<'_>>() <= 32);
    }

    #[test]
    fn saphyr_positions_become_byte_offsets() {
        let text = "é: [a]\n";
        let events = general_events(text).unwrap();
        let sequence = events
            .iter()
            .find(|(e, _)| *e == Event::SequenceStart)
            .unwrap()
            .1;
        assert_eq!(&text[sequence.start..], "[a]\n");
    }

    #[test]
    fn what_the_normalizer_refuses_is_refused_while_converting() {
        for (text, detail) in [
            ("a: &x 1\nb: *x\n", "anchors"),
            ("a: !!str 1\n", "tags"),
            ("a: !t [1]\n", "tags"),
            ("a: 1\r\n", "CR line endings"),
        ] {
            let refusal = general_events(text).expect_err(text);
            assert_eq!(refusal.reason, RefusalReason::Unsupported, "{text}");
            assert!(
                refusal.detail.ends_with(detail),
                "{text}: {}",
                refusal.detail
            );
        }
        assert_eq!(
            general_events("a: [\n").unwrap_err().reason,
            RefusalReason::InvalidYaml
        );
    }

    /// Stops at the first scalar that is not `expected`.
    struct Expecting(&'static str);

    impl<'a> Sink<'a> for Expecting {
        fn event(&mut self, event: Event<'a>, _: Span) -> Result<(), Refusal> {
            match event {
                Event::Scalar(value, _) if value != "a" && value != self.0 => Err(Refusal {
                    reason: RefusalReason::ProofFailed,
                    detail: format!("{value:?}"),
                }),
                _ => Ok(()),
            }
        }
    }

    #[test]
    fn saphyr_has_the_last_word_when_a_sink_stops_the_fast_reader() {
        // The fast reader hands over `one` before it sees the continuation
        // line; saphyr reads the scalar as `one two`.
        let text = "a: one\n  two\n";
        assert!(read(text, || Expecting("one two")).is_ok());
        let refusal = read(text, || Expecting("three")).map(|_| ()).unwrap_err();
        assert_eq!(refusal.detail, "\"one two\"");
    }

    #[test]
    fn a_fresh_sink_follows_a_declined_fast_read() {
        // A comment comes after some events: the fast reader has already
        // handed them over when it declines, and they must not be seen twice.
        let text = "a: 1\nb: 2 # note\n";
        let mut sinks = 0;
        let events = read(text, || {
            sinks += 1;
            Vec::new()
        })
        .unwrap();
        assert_eq!(sinks, 2);
        assert_eq!(events, general_events(text).unwrap());
    }
}
