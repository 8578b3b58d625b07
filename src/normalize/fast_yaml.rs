//! A fast reader for the plain block YAML that Go's yaml.v3 writes.
//!
//! The normalizer parses every config twice (once to read it, once to prove
//! the result), and a general YAML parser spends most of a request doing it.
//! yaml.v3's output uses a small, regular part of YAML: block mappings and
//! sequences, one-line plain and quoted scalars, literal block scalars, and
//! `[]`/`{}`. This reader handles exactly that part and produces the same
//! events and spans saphyr-parser produces for it. For anything else
//! (comments, anchors, tags, flow collections with content, escapes,
//! multi-line plain scalars, tabs, non-ASCII text, ...) it declines, and the
//! caller parses with saphyr-parser instead. Declining is always safe; the
//! differential tests hold the two readers to the same events.

use std::borrow::Cow;

use super::Refusal;
use super::yaml_event::{Event, ScalarStyle, Sink, Span};
use crate::words::{HIGH, byte_marks, word_at};

/// One line of the text.
#[derive(Debug, Clone, Copy)]
struct Line {
    /// Byte offset of the first character.
    start: usize,
    /// Byte offset of the line break (or the end of the text).
    end: usize,
    /// Leading spaces.
    indent: usize,
}

impl Line {
    fn content(&self) -> usize {
        self.start + self.indent
    }

    fn is_blank(&self) -> bool {
        self.content() == self.end
    }
}

/// Hand the events of `text` to `sink` in order: `Ok(true)` once all were
/// handed over, `Ok(false)` when the text is outside the part this reader
/// handles, `Err` when the sink stopped the reading. `Ok(false)` can come
/// after some events were handed over; the caller then starts again with
/// saphyr and a fresh sink.
///
/// Events are streamed rather than collected: a 1 MiB config has some 80,000
/// of them, and building a vector of them for each read cost more in page
/// faults than the reading itself.
pub fn read<'a>(text: &'a str, sink: &mut impl Sink<'a>) -> Result<bool, Refusal> {
    if !text.ends_with('\n') || !plain_ascii(text.as_bytes()) {
        return Ok(false);
    }
    let mut reader = Reader {
        text,
        lines: split_lines(text),
        may_comment: may_comment(text),
        at: 0,
        sink,
        stopped: None,
    };
    let read = reader.document().is_some();
    match reader.stopped {
        Some(refusal) => Err(refusal),
        None => Ok(read),
    }
}

/// The events of `text`, collected, or `None` when the reader declines.
#[cfg(test)]
pub fn events(text: &str) -> Option<Vec<(Event<'_>, Span)>> {
    let mut events = Vec::new();
    match read(text, &mut events) {
        Ok(true) => Some(events),
        Ok(false) => None,
        Err(refusal) => unreachable!("collecting never stops: {refusal}"),
    }
}

/// ASCII without tabs or carriage returns. Each chunk is checked without an
/// early exit so the compiler can vectorize the loop: this runs on every read.
fn plain_ascii(bytes: &[u8]) -> bool {
    bytes.chunks(64).all(|chunk| {
        chunk
            .iter()
            .fold(true, |ok, &b| ok & (b < 0x80) & (b != b'\t') & (b != b'\r'))
    })
}

/// The lines of a text that ends with a line break.
///
/// Line breaks are found 64 bytes at a time as a bit mask built without a
/// branch, so the only unpredictable exit per block is the last break in
/// it; a memchr call per line costs a call and its own exits per line.
fn split_lines(text: &str) -> Vec<Line> {
    let bytes = text.as_bytes();
    let mut lines = Vec::with_capacity(text.len() / 24 + 1);
    let mut start = 0;
    let mut line_ends_at = |end: usize| {
        // The rest of the text, not the line: the line break ends the run.
        let indent = leading_spaces(&bytes[start..]);
        lines.push(Line { start, end, indent });
        start = end + 1;
    };
    let mut blocks = bytes.chunks_exact(64);
    let mut block_start = 0;
    for block in &mut blocks {
        let mut breaks = break_mask(block);
        while breaks != 0 {
            line_ends_at(block_start + breaks.trailing_zeros() as usize);
            breaks &= breaks - 1;
        }
        block_start += 64;
    }
    for (at, &byte) in blocks.remainder().iter().enumerate() {
        if byte == b'\n' {
            line_ends_at(block_start + at);
        }
    }
    lines
}

/// Bit `i` set where `block[i]` is a line break: each word's byte marks
/// gathered into eight bits by one multiplication (every product term lands
/// on its own bit, so nothing carries).
fn break_mask(block: &[u8]) -> u64 {
    const GATHER: u64 = 0x0102_0408_1020_4080;
    let mut mask = 0;
    for (index, word) in block.chunks_exact(8).enumerate() {
        let word = word_at(word, 0).unwrap_or(0);
        let marks = byte_marks(word, b'\n') >> 7;
        mask |= (marks.wrapping_mul(GATHER) >> 56) << (8 * index);
    }
    mask
}

struct Reader<'a, 's, S> {
    text: &'a str,
    lines: Vec<Line>,
    /// Whether a ` #` stands anywhere in the text. yaml.v3 output almost
    /// never has one, and then no scalar needs to be checked for it.
    may_comment: bool,
    /// The current line.
    at: usize,
    sink: &'s mut S,
    /// Why the sink stopped the reading, if it did.
    stopped: Option<Refusal>,
}

impl<'a, S: Sink<'a>> Reader<'a, '_, S> {
    fn document(&mut self) -> Option<()> {
        self.push(Event::StreamStart, 0, 0)?;
        self.push(Event::DocumentStart(false), 0, 0)?;
        self.skip_blank();
        let first = *self.lines.get(self.at)?;
        let content = &self.text[first.content()..first.end];
        if content.starts_with("---") || content.starts_with("...") || content.starts_with('%') {
            return None;
        }
        self.block_node(first.indent)?;
        self.skip_blank();
        if self.at != self.lines.len() {
            return None;
        }
        let end = self.next_token();
        self.push(Event::DocumentEnd, end, end)?;
        self.push(Event::StreamEnd, end, end)
    }

    /// A mapping or sequence whose first line (the current one) is indented
    /// by `indent`.
    fn block_node(&mut self, indent: usize) -> Option<()> {
        let line = self.lines[self.at];
        if line.indent != indent {
            return None;
        }
        if self.is_entry(&line) {
            self.sequence(indent, false)
        } else {
            self.mapping(line.content())
        }
    }

    /// A block sequence whose dashes stand at column `indent`; `indentless`
    /// when it is a mapping value at its key's column.
    fn sequence(&mut self, indent: usize, indentless: bool) -> Option<()> {
        let first = self.lines[self.at];
        // saphyr places an indentless sequence at its first item's content.
        let start = if indentless {
            skip_spaces(self.text, first.content() + 1, first.end)
        } else {
            first.content()
        };
        self.push(Event::SequenceStart, start, start)?;
        loop {
            let line = self.lines[self.at];
            let text = self.line_text(&line);
            if text.len() < 2 {
                return None; // a dash alone on its line
            }
            let item = skip_spaces(self.text, line.content() + 1, line.end);
            if item == line.end
                || self.text[item..line.end].starts_with("- ")
                || &self.text[item..line.end] == "-"
            {
                return None;
            }
            if self.entry_key_end(item, line.end).is_some() {
                self.mapping(item)?;
            } else {
                self.inline_value(item, indent)?;
            }
            self.skip_blank();
            match self.lines.get(self.at) {
                Some(next) if next.indent == indent && self.is_entry(next) => continue,
                Some(next) if next.indent > indent => return None,
                _ => break,
            }
        }
        let end = self.next_token();
        self.push(Event::SequenceEnd, end, end)
    }

    /// A block mapping whose first key starts at byte `first_key` of the
    /// current line; later keys stand at the same column.
    fn mapping(&mut self, first_key: usize) -> Option<()> {
        let column = first_key - self.lines[self.at].start;
        self.push(Event::MappingStart, first_key, first_key)?;
        let mut key_at = first_key;
        loop {
            let line = self.lines[self.at];
            let colon = self.entry_key_end(key_at, line.end)?;
            let key = &self.text[key_at..colon];
            if !self.plain_ok(key) || key.ends_with(' ') {
                return None;
            }
            self.push_scalar(Cow::Borrowed(key), ScalarStyle::Plain, key_at, colon)?;
            let value = skip_spaces(self.text, colon + 1, line.end);
            if value < line.end {
                self.inline_value(value, column)?;
            } else {
                self.at += 1;
                self.skip_blank();
                match self.lines.get(self.at) {
                    Some(next) if next.indent > column => self.block_node(next.indent)?,
                    Some(next) if next.indent == column && self.is_entry(next) => {
                        self.sequence(column, true)?
                    }
                    _ => self.push_scalar(Cow::Borrowed(""), ScalarStyle::Plain, colon, colon)?,
                }
            }
            self.skip_blank();
            match self.lines.get(self.at) {
                Some(next) if next.indent == column && !self.is_entry(next) => {
                    key_at = next.content()
                }
                Some(next) if next.indent >= column => return None,
                _ => break,
            }
        }
        let end = self.next_token();
        self.push(Event::MappingEnd, end, end)
    }

    /// The value that starts at byte `at` of the current line, inside a
    /// collection indented by `parent`. Leaves the current line behind it.
    fn inline_value(&mut self, at: usize, parent: usize) -> Option<()> {
        let line = self.lines[self.at];
        let value = self.text[at..line.end].trim_end_matches(' ');
        let end = at + value.len();
        match value.as_bytes()[0] {
            b'[' | b'{' => {
                let (open, close) = match value {
                    "[]" => (Event::SequenceStart, Event::SequenceEnd),
                    "{}" => (Event::MappingStart, Event::MappingEnd),
                    _ => return None,
                };
                self.push(open, at, at + 1)?;
                self.push(close, at + 1, at + 2)?;
            }
            b'|' => return self.literal(value, parent),
            b'"' => {
                let inner = value.strip_prefix('"')?.strip_suffix('"')?;
                if inner.bytes().any(|b| b == b'"' || b == b'\\') {
                    return None;
                }
                // saphyr's span of a quoted scalar (either kind) runs on over
                // trailing spaces to the line break.
                let inner = Cow::Borrowed(inner);
                self.push_scalar(inner, ScalarStyle::DoubleQuoted, at, line.end)?;
            }
            b'\'' => {
                let inner = value.strip_prefix('\'')?.strip_suffix('\'')?;
                if !quotes_paired(inner) {
                    return None;
                }
                // Every quote inside comes doubled (checked above).
                let unquoted = if inner.as_bytes().contains(&b'\'') {
                    Cow::Owned(inner.replace("''", "'"))
                } else {
                    Cow::Borrowed(inner)
                };
                self.push_scalar(unquoted, ScalarStyle::SingleQuoted, at, line.end)?;
            }
            _ => {
                if !self.plain_ok(value) || has_pair(value, b':', b' ') || value.ends_with(':') {
                    return None;
                }
                self.push_scalar(Cow::Borrowed(value), ScalarStyle::Plain, at, end)?;
            }
        }
        self.at += 1;
        Some(())
    }

    /// A literal block scalar (`|`, `|-`, `|+`) whose content is indented
    /// deeper than `parent`.
    fn literal(&mut self, header: &str, parent: usize) -> Option<()> {
        let chomp = match header {
            "|" => Chomp::Clip,
            "|-" => Chomp::Strip,
            "|+" => Chomp::Keep,
            _ => return None, // indentation indicators, folded scalars, comments
        };
        self.at += 1;
        let first = *self.lines.get(self.at)?;
        if first.is_blank() || first.indent <= parent {
            return None; // empty or leading-blank scalars: leave them to saphyr
        }
        let indent = first.indent;
        let mut value = String::new();
        let mut trailing_blanks = 0;
        while let Some(line) = self.lines.get(self.at) {
            if line.is_blank() {
                if line.end - line.start > indent {
                    return None;
                }
                trailing_blanks += 1;
            } else if line.indent >= indent {
                for _ in 0..trailing_blanks {
                    value.push('\n');
                }
                trailing_blanks = 0;
                value.push_str(&self.text[line.start + indent..line.end]);
                value.push('\n');
            } else {
                break;
            }
            self.at += 1;
        }
        match chomp {
            Chomp::Clip => {}
            Chomp::Strip => {
                value.pop();
            }
            Chomp::Keep => value.extend(std::iter::repeat_n('\n', trailing_blanks)),
        }
        // Trailing blank lines were read; the next token follows them.
        let end = self.next_token();
        self.push_scalar(
            Cow::Owned(value),
            ScalarStyle::Literal,
            first.start + indent,
            end,
        )
    }

    /// The byte of the `:` that ends a plain key starting at `from`, when the
    /// text there is a `key: value` or `key:` entry.
    fn entry_key_end(&self, from: usize, end: usize) -> Option<usize> {
        let bytes = self.text.as_bytes();
        // One byte test, not a char decode and fourteen comparisons: this
        // runs on every line.
        if from < end
            && matches!(
                bytes[from],
                b'"' | b'\''
                    | b'['
                    | b'{'
                    | b'|'
                    | b'>'
                    | b'&'
                    | b'*'
                    | b'!'
                    | b'?'
                    | b'#'
                    | b'%'
                    | b'@'
                    | b'`'
            )
        {
            return None;
        }
        key_colon(bytes, from, end)
    }

    /// One-line plain text this reader reads the way saphyr does: no
    /// indicator in front, no comment, nothing that could start another
    /// token.
    fn plain_ok(&self, text: &str) -> bool {
        plain_start(text) && !(self.may_comment && has_pair(text, b' ', b'#'))
    }

    fn skip_blank(&mut self) {
        while self.lines.get(self.at).is_some_and(Line::is_blank) {
            self.at += 1;
        }
    }

    /// Where the next token starts: the current line's content, or the end.
    fn next_token(&self) -> usize {
        match self.lines.get(self.at) {
            Some(line) => line.content(),
            None => self.text.len(),
        }
    }

    /// A sequence entry line: `- ...` or a lone `-` (byte tests: the line
    /// ends at a line break, so the byte after a lone `-` is one).
    fn is_entry(&self, line: &Line) -> bool {
        let bytes = self.text.as_bytes();
        let content = line.content();
        bytes.get(content) == Some(&b'-')
            && (content + 1 == line.end || bytes.get(content + 1) == Some(&b' '))
    }

    fn line_text(&self, line: &Line) -> &'a str {
        &self.text[line.content()..line.end]
    }

    /// Hand one event over; `None` once the sink stopped the reading.
    fn push(&mut self, event: Event<'a>, start: usize, end: usize) -> Option<()> {
        let handed = self.sink.event(event, Span { start, end });
        self.handed(handed)
    }

    fn push_scalar(
        &mut self,
        value: Cow<'a, str>,
        style: ScalarStyle,
        start: usize,
        end: usize,
    ) -> Option<()> {
        let span = Span { start, end };
        let handed = match value {
            Cow::Borrowed(value) => self.sink.scalar(value, style, span),
            owned => self.sink.event(Event::Scalar(owned, style), span),
        };
        self.handed(handed)
    }

    /// `None` once the sink stopped the reading, keeping its reason.
    fn handed(&mut self, handed: Result<(), Refusal>) -> Option<()> {
        match handed {
            Ok(()) => Some(()),
            Err(refusal) => {
                self.stopped = Some(refusal);
                None
            }
        }
    }
}

/// The first byte from `from` (up to `end`) that is not a space.
fn skip_spaces(text: &str, from: usize, end: usize) -> usize {
    from + text.as_bytes()[from..end]
        .iter()
        .take_while(|&&b| b == b' ')
        .count()
}

#[derive(Debug, Clone, Copy)]
enum Chomp {
    Clip,
    Strip,
    Keep,
}

// Keys, indentation and line lengths vary from line to line; these look at
// eight bytes at a time (crate::words), and most lines need one word.

/// How many spaces `bytes` starts with.
fn leading_spaces(bytes: &[u8]) -> usize {
    let mut count = 0;
    while let Some(word) = word_at(bytes, count) {
        let others = !byte_marks(word, b' ') & HIGH;
        if others != 0 {
            return count + others.trailing_zeros() as usize / 8;
        }
        count += 8;
    }
    count + bytes[count..].iter().take_while(|&&b| b == b' ').count()
}

/// The first `:` in `bytes[from..end]` that is followed by a space or by
/// `end` (where a line breaks).
fn key_colon(bytes: &[u8], from: usize, end: usize) -> Option<usize> {
    let ends_key = |i: usize| i + 1 == end || bytes.get(i + 1) == Some(&b' ');
    let mut at = from;
    while at < end {
        let Some(word) = word_at(bytes, at) else {
            break;
        };
        let mut colons = byte_marks(word, b':');
        while colons != 0 {
            let i = at + colons.trailing_zeros() as usize / 8;
            if i >= end {
                return None;
            }
            if ends_key(i) {
                return Some(i);
            }
            colons &= colons - 1;
        }
        at += 8;
    }
    (at..end).find(|&i| bytes[i] == b':' && ends_key(i))
}

/// The bytes that cannot start plain text, as a table: one load instead of
/// a chain of comparisons on every key and value.
const INDICATORS: [bool; 256] = {
    let mut table = [false; 256];
    let indicators = b"[]{},#&*!|>'\"%@`";
    let mut i = 0;
    while i < indicators.len() {
        table[indicators[i] as usize] = true;
        i += 1;
    }
    table
};

/// Whether plain text may start the way `text` does: not empty and no
/// indicator in front.
fn plain_start(text: &str) -> bool {
    let Some(&first) = text.as_bytes().first() else {
        return false;
    };
    let indicator = INDICATORS[usize::from(first)];
    let dash_like =
        matches!(first, b'-' | b'?' | b':') && text.as_bytes().get(1).is_none_or(|&b| b == b' ');
    !indicator && !dash_like
}

/// Whether a ` #` stands anywhere in `text`.
fn may_comment(text: &str) -> bool {
    let bytes = text.as_bytes();
    memchr::memchr_iter(b'#', bytes).any(|at| at > 0 && bytes[at - 1] == b' ')
}

/// Whether `first` is directly followed by `second` somewhere in `text`
/// (a byte scan without an early exit, which the compiler vectorizes: much
/// cheaper than a substring search on short scalars).
fn has_pair(text: &str, first: u8, second: u8) -> bool {
    let bytes = text.as_bytes();
    bytes
        .iter()
        .zip(bytes.iter().skip(1))
        .fold(false, |found, (&a, &b)| {
            found | ((a == first) & (b == second))
        })
}

/// Inside single quotes, a quote only appears doubled (`''`).
fn quotes_paired(inner: &str) -> bool {
    let mut run = 0usize;
    for byte in inner.bytes() {
        if byte == b'\'' {
            run += 1;
        } else if !run.is_multiple_of(2) {
            return false;
        } else {
            run = 0;
        }
    }
    run.is_multiple_of(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::yaml_event::general_events;

    /// saphyr's events for `text` (without positions).
    fn saphyr(text: &str) -> Vec<Event<'_>> {
        general_events(text)
            .expect("saphyr parses it")
            .into_iter()
            .map(|(e, _)| e)
            .collect()
    }

    fn fast(text: &str) -> Vec<Event<'_>> {
        events(text)
            .expect("the fast reader takes it")
            .into_iter()
            .map(|(e, _)| e)
            .collect()
    }

    #[test]
    fn the_fixture_config_is_read_like_saphyr_reads_it() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/vmcp-configmap.yaml"
        );
        let object: serde_json::Value =
            yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let config = object["data"]["config.yaml"].as_str().unwrap();
        assert_eq!(fast(config), saphyr(config));
    }

    #[test]
    fn yaml_v3_constructs_are_read_like_saphyr_reads_them() {
        for text in [
            "a: 1\nb: x y\nc: http://h:80/p#f\n",
            "a:\nb: []\nc: {}\nd: ''\ne: 'it''s'\nf: \"123\"\ng: \"\"\n",
            "a:\n    b:\n        c: d\n    e: f\ng: h\n",
            "s:\n    - name: a\n      url: u\n      metadata:\n        k: v\n    - name: b\n",
            "s:\n- a\n- b\nt: 1\n",
            "- a\n- b: c\n  d: e\n-   f: g\n",
            "l: |\n    one\n\n    two\n      indented\nm: |-\n    x\n\nn: |+\n    y\n\n\no: 1\n",
            "items:\n    - |\n      text\n    - x\n",
            "key with spaces: value with spaces  \n",
            "a: -5\nb: x:y\nc: ':'\nd: a,b\n",
        ] {
            assert_eq!(fast(text), saphyr(text), "{text}");
        }
    }

    #[test]
    fn quoted_scalars_span_trailing_spaces_as_saphyr_does() {
        // Found by `near_entries_are_read_like_saphyr_or_declined`.
        for text in [
            "a: '' \nb: 'x'   \nc: \"y\"  \nd: \"z\"\n",
            "- 'x'  \n- \"y\" \n",
        ] {
            assert_eq!(events(text), general_events(text).ok(), "{text:?}");
        }
    }

    #[test]
    fn single_quotes_inside_single_quotes_come_in_pairs() {
        for (inner, paired) in [
            ("", true),
            ("it''s", true),
            ("''''", true),
            ("a''b''c", true),
            ("it's", false),
            ("'''", false),
            ("'", false),
            ("a''", true),
        ] {
            assert_eq!(quotes_paired(inner), paired, "{inner:?}");
        }
    }

    #[test]
    fn pairs_are_found_anywhere_but_not_across_gaps() {
        assert!(has_pair("a #b", b' ', b'#'));
        assert!(has_pair(" #", b' ', b'#'));
        assert!(!has_pair("a# b", b' ', b'#'));
        assert!(!has_pair("#", b' ', b'#'));
        assert!(!has_pair("", b' ', b'#'));
        assert!(has_pair("x: y", b':', b' '));
    }

    mod words {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn word_scans_agree_with_byte_scans(text in "[ a:]{0,40}\n[ a:]{0,20}", from in 0usize..70) {
                let bytes = text.as_bytes();
                let from = from.min(bytes.len());
                prop_assert_eq!(
                    leading_spaces(&bytes[from..]),
                    bytes[from..].iter().take_while(|&&b| b == b' ').count()
                );
                let end = bytes[from..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| from + i);
                let line = &bytes[from..end];
                let expected = (0..line.len())
                    .find(|&i| line[i] == b':' && line.get(i + 1).is_none_or(|&b| b == b' '))
                    .map(|i| from + i);
                prop_assert_eq!(key_colon(bytes, from, end), expected);
            }

            #[test]
            fn lines_are_split_at_every_break(text in "[ a\n]{0,200}") {
                let text = format!("{text}\n");
                let lines = split_lines(&text);
                let ends: Vec<usize> = text.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| i).collect();
                prop_assert_eq!(lines.iter().map(|l| l.end).collect::<Vec<_>>(), ends);
                for (index, line) in lines.iter().enumerate() {
                    let start = if index == 0 { 0 } else { lines[index - 1].end + 1 };
                    prop_assert_eq!(line.start, start);
                    prop_assert_eq!(line.indent, text[start..].bytes().take_while(|&b| b == b' ').count());
                }
            }

            #[test]
            fn break_masks_are_exact(block in prop::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 64)) {
                let mask = break_mask(&block);
                for (i, &byte) in block.iter().enumerate() {
                    prop_assert_eq!(mask >> i & 1 == 1, byte == b'\n', "byte {}", i);
                }
            }

            #[test]
            fn pair_scan_agrees_with_a_byte_scan(text in "[ a:#]{0,40}") {
                let bytes = text.as_bytes();
                for (first, second) in [(b':', b' '), (b' ', b'#')] {
                    let expected = bytes.windows(2).any(|pair| pair == [first, second]);
                    prop_assert_eq!(has_pair(&text, first, second), expected);
                }
            }
        }
    }

    #[test]
    fn positions_the_normalizer_relies_on() {
        let text = "name: x\nbackends:\n    - name: b\n      note: |\n        line\n\n    - name: a\nnext: 1\n";
        let events = events(text).unwrap();
        let find = |wanted: &Event<'_>| {
            events
                .iter()
                .find(|(e, _)| e == wanted)
                .map(|(_, s)| *s)
                .unwrap()
        };
        let sequence = find(&Event::SequenceStart);
        assert_eq!(&text[sequence.start..sequence.start + 8], "- name: ");
        let note = find(&Event::Scalar(
            Cow::Borrowed("line\n"),
            ScalarStyle::Literal,
        ));
        assert_eq!(&text[note.start..note.start + 5], "line\n");
        assert_eq!(
            &text[note.end..note.end + 7],
            "- name:",
            "a block scalar ends where the next token starts"
        );
        let end = find(&Event::SequenceEnd);
        assert_eq!(&text[end.start..], "next: 1\n");
    }

    #[test]
    fn declines_what_it_does_not_handle() {
        for text in [
            "a: 1 # comment\n",
            "# comment\na: 1\n",
            "a: &x 1\n",
            "a: *x\n",
            "a: !t 1\n",
            "a: [1]\n",
            "a: {b: 1}\n",
            "a: \"esc\\n\"\n",
            "a: >\n    folded\n",
            "a: |2\n    x\n",
            "a: plain\n    continued\n",
            "---\na: 1\n",
            "a: 1\n---\nb: 2\n",
            "a: 1",
            "a:\t1\n",
            "a: ü\n",
            "\"q\": 1\n",
            "? a\n: b\n",
            "- - a\n",
            "-\n  a: 1\n",
            "a: b: c\n",
            "scalar\n",
            "",
        ] {
            assert!(events(text).is_none(), "{text:?}");
        }
    }

    #[test]
    fn invalid_indentation_is_declined_not_misread() {
        for text in [
            "a: 1\n  b: 2\n",
            "a:\n    b: 1\n  c: 2\n",
            "s:\n    - a\n  - b\n",
            "- a\nb: 1\n",
        ] {
            assert!(events(text).is_none(), "{text:?}");
        }
    }

    mod differential {
        use super::*;
        use proptest::prelude::*;

        /// A YAML value as yaml.v3 would hold it.
        #[derive(Debug, Clone)]
        enum Node {
            Scalar(String),
            Literal(String, &'static str),
            EmptySeq,
            EmptyMap,
            Map(Vec<(String, Node)>),
            Seq(Vec<Node>),
        }

        fn scalar() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-z][a-z0-9._/-]{0,12}",
                "[a-z]{1,5}://[a-z.]{1,10}:[0-9]{2,4}/[a-z#]{0,6}",
                "[0-9]{1,4}".prop_map(|n| format!("\"{n}\"")),
                "[a-z ]{0,6}'[a-z]{0,3}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
                Just("''".to_owned()),
                Just("\"\"".to_owned()),
                Just("'{workload}_'".to_owned()),
                Just("-5".to_owned()),
            ]
        }

        fn node() -> impl Strategy<Value = Node> {
            let leaf = prop_oneof![
                4 => scalar().prop_map(Node::Scalar),
                // yaml.v3 writes a literal only for text with a first line.
                1 => ("[a-z][a-z #]{0,7}", prop::collection::vec("[a-z #]{0,8}", 0..3), prop::sample::select(vec!["|", "|-", "|+"]))
                    .prop_map(|(first, rest, chomp)| Node::Literal(std::iter::once(first).chain(rest).collect::<Vec<_>>().join("\n"), chomp)),
                1 => Just(Node::EmptySeq),
                1 => Just(Node::EmptyMap),
            ];
            leaf.prop_recursive(4, 40, 5, |inner| {
                prop_oneof![
                    prop::collection::vec(("[a-z][a-zA-Z0-9_./-]{0,10}", inner.clone()), 1..5)
                        .prop_map(|entries| {
                            let mut seen = std::collections::BTreeSet::new();
                            Node::Map(
                                entries
                                    .into_iter()
                                    .filter(|(k, _)| seen.insert(k.clone()))
                                    .collect(),
                            )
                        }),
                    // The vMCP schema has no list directly inside a list.
                    prop::collection::vec(inner, 1..4).prop_map(|items| {
                        Node::Seq(
                            items
                                .into_iter()
                                .map(|item| match item {
                                    Node::Seq(_) => Node::Map(vec![("nested".to_owned(), item)]),
                                    other => other,
                                })
                                .collect(),
                        )
                    }),
                ]
            })
        }

        /// Write `node` as the value of a key (or item) in yaml.v3's style
        /// (`step` 4, sequences indented under their key) or, with
        /// `indentless`, hand-written style (sequences at their key's column).
        fn value(out: &mut String, node: &Node, indent: usize, indentless: bool) {
            match node {
                Node::Scalar(text) => out.push_str(&format!(" {text}\n")),
                Node::EmptySeq => out.push_str(" []\n"),
                Node::EmptyMap => out.push_str(" {}\n"),
                Node::Literal(text, chomp) => {
                    out.push_str(&format!(" {chomp}\n"));
                    for line in text.split('\n') {
                        let line = line.trim_end();
                        if line.trim().is_empty() {
                            out.push('\n');
                        } else {
                            out.push_str(&format!(
                                "{}{}\n",
                                " ".repeat(indent + 4),
                                line.trim_start_matches(' ')
                            ));
                        }
                    }
                }
                Node::Map(entries) => {
                    out.push('\n');
                    block(out, node, indent + 4, indentless);
                    let _ = entries;
                }
                Node::Seq(_) => {
                    out.push('\n');
                    block(
                        out,
                        node,
                        if indentless { indent } else { indent + 4 },
                        indentless,
                    );
                }
            }
        }

        fn block(out: &mut String, node: &Node, indent: usize, indentless: bool) {
            match node {
                Node::Map(entries) => {
                    for (i, (key, child)) in entries.iter().enumerate() {
                        let pad = if i == 0 && out.ends_with("- ") {
                            0
                        } else {
                            indent
                        };
                        out.push_str(&format!("{}{key}:", " ".repeat(pad)));
                        value(out, child, indent, indentless);
                    }
                }
                Node::Seq(items) => {
                    for item in items {
                        out.push_str(&format!("{}-", " ".repeat(indent)));
                        match item {
                            Node::Map(_) => {
                                out.push(' ');
                                block(out, item, indent + 2, indentless);
                            }
                            Node::Seq(_) => {
                                // yaml.v3 writes a nested list on the next line.
                                out.push('\n');
                                block(out, item, indent + 2, indentless);
                            }
                            other => value(out, other, indent, indentless),
                        }
                    }
                }
                _ => {}
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Lines that look like entries but may not be: whatever the
            /// reader accepts, it reads as saphyr does. (The lines after them
            /// put eight bytes past each line, as in a real config, so the
            /// word-at-a-time scans run rather than their byte tails.)
            #[test]
            fn near_entries_are_read_like_saphyr_or_declined(
                lines in prop::collection::vec(
                    ("[a-z#?:-][a-z #:-]{0,4}", prop::sample::select(vec![":", ": ", " : ", ":  "]), "[a-z #:'\"?,-]{0,10}"),
                    1..4,
                ),
                indent in prop::sample::select(vec![0usize, 2]),
            ) {
                let mut text = String::from("top:\n");
                for (key, colon, value) in &lines {
                    text.push_str(&format!("{}{key}{colon}{value}\n", " ".repeat(indent + 2)));
                }
                text.push_str("after: some plain text\nlast: more plain text\n");
                match (events(&text), general_events(&text)) {
                    (Some(fast), Ok(expected)) => prop_assert_eq!(fast, expected, "{}", text),
                    (Some(_), Err(_)) => prop_assert!(false, "accepted what saphyr rejects:\n{}", text),
                    (None, _) => {}
                }
            }

            #[test]
            fn fast_and_saphyr_agree(root in prop::collection::vec(("[a-z][a-z0-9]{0,6}", node()), 1..6), indentless in any::<bool>()) {
                let mut seen = std::collections::BTreeSet::new();
                let root = Node::Map(root.into_iter().filter(|(k, _)| seen.insert(k.clone())).collect());
                let mut text = String::new();
                block(&mut text, &root, 0, indentless);
                let Ok(expected) = general_events(&text) else {
                    // The generator wrote something saphyr rejects; the fast
                    // reader must not accept it either.
                    prop_assert!(events(&text).is_none(), "{}", text);
                    return Ok(());
                };
                let Some(fast) = events(&text) else {
                    // Declining is allowed, but the generator only writes
                    // what the fast reader is meant to take.
                    return Err(TestCaseError::fail(format!("declined:\n{text}")));
                };
                prop_assert_eq!(fast, expected, "{}", text);
            }
        }
    }
}
