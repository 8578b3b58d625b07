//! Writing the response JSON by hand: the answer has a fixed shape, and its
//! largest part, the patch, is one long string (a whole `config.yaml`) that
//! serde_json escapes a byte at a time and whose base64 it would then scan
//! again. Every byte written here equals what serde_json writes (tested).

use json_patch::{PatchOperation, ReplaceOperation};
use serde_json::Value;

use crate::words::{HIGH, LOW7, ONES, byte_marks, word_at};

/// Append `text` as a JSON string, escaped exactly as serde_json escapes it.
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Bytes from `run` on are still to be copied as they are.
    let mut run = 0;
    // Eight bytes at a time: one word test finds the bytes to escape (the
    // word trick serde_json's reader uses), and most words have none.
    let mut words = bytes.chunks_exact(8);
    let mut word_start = 0;
    for word in &mut words {
        let mut marks = escape_marks(word_at(word, 0).unwrap_or(0));
        while marks != 0 {
            let at = word_start + marks.trailing_zeros() as usize / 8;
            out.extend_from_slice(&bytes[run..at]);
            write_escape(out, bytes[at]);
            run = at + 1;
            marks &= marks - 1;
        }
        word_start += 8;
    }
    for (at, &byte) in words.remainder().iter().enumerate() {
        if needs_escape(byte) {
            let at = word_start + at;
            out.extend_from_slice(&bytes[run..at]);
            write_escape(out, byte);
            run = at + 1;
        }
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// The high bit of each byte of `word` (little-endian) that needs an escape:
/// below 0x20, a quote or a backslash. Exact per byte: no carry crosses a
/// byte, because only the low seven bits are added.
fn escape_marks(word: u64) -> u64 {
    // High bit set where the byte is 0x20 or more (or not ASCII).
    let printable = (((word & LOW7) + ONES * 0x60) | word) & HIGH;
    (!printable & HIGH) | byte_marks(word, b'"') | byte_marks(word, b'\\')
}

/// Append the standard base64 of `bytes`; base64 needs no JSON escaping.
pub fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    base64_simd::STANDARD.encode_append(bytes, out);
}

fn write_escape(out: &mut Vec<u8>, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match byte {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        _ => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(byte >> 4)],
            HEX[usize::from(byte & 0xf)],
        ]),
    }
}

/// Append the RFC 6902 JSON of `operations`. `replace` with a string value,
/// the only operation this webhook emits, is written here; anything else goes
/// through serde_json.
pub fn write_patch(
    out: &mut Vec<u8>,
    operations: &[PatchOperation],
) -> Result<(), serde_json::Error> {
    out.push(b'[');
    for (index, operation) in operations.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        match operation {
            PatchOperation::Replace(ReplaceOperation {
                path,
                value: Value::String(value),
            }) => {
                out.extend_from_slice(br#"{"op":"replace","path":"#);
                write_str(out, path.as_str());
                out.extend_from_slice(br#","value":"#);
                write_str(out, value);
                out.push(b'}');
            }
            other => serde_json::to_writer(&mut *out, other)?,
        }
    }
    out.push(b']');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use json_patch::jsonptr::PointerBuf;
    use json_patch::{AddOperation, Patch, RemoveOperation};
    use proptest::prelude::*;
    use serde_json::json;

    fn str_json(text: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    fn patch_json(patch: &Patch) -> String {
        let mut out = Vec::new();
        write_patch(&mut out, patch).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_escape_matches_serde_json() {
        let all: String = (0u8..0x80).map(char::from).collect();
        for text in [
            "",
            "plain",
            &all,
            "name: a\n  url: \"x\"\\\n",
            "é ü 日本 \u{2028} \u{7f}",
            "exactly sixteen!",
            "fifteen bytes!\n",
        ] {
            assert_eq!(
                str_json(text),
                serde_json::to_string(text).unwrap(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn patches_match_serde_json() {
        let patch = Patch(vec![
            PatchOperation::Replace(ReplaceOperation {
                path: PointerBuf::from_tokens(["data", "config.yaml"]),
                value: json!("backends:\n    - name: a\n"),
            }),
            PatchOperation::Replace(ReplaceOperation {
                path: PointerBuf::from_tokens(["metadata", "annotations", "a/b~c"]),
                value: json!({"not": ["a", "string"]}),
            }),
            PatchOperation::Add(AddOperation {
                path: PointerBuf::from_tokens(["x"]),
                value: json!(1),
            }),
            PatchOperation::Remove(RemoveOperation {
                path: PointerBuf::from_tokens(["y"]),
            }),
        ]);
        assert_eq!(patch_json(&patch), serde_json::to_string(&patch).unwrap());
        assert_eq!(patch_json(&Patch(vec![])), "[]");
    }

    proptest! {
        #[test]
        fn any_text_is_escaped_like_serde_json(text in any::<String>()) {
            prop_assert_eq!(str_json(&text), serde_json::to_string(&text).unwrap());
        }

        #[test]
        fn the_word_marks_are_exact(word in any::<[u8; 8]>()) {
            let marks = escape_marks(u64::from_le_bytes(word));
            for (i, &byte) in word.iter().enumerate() {
                prop_assert_eq!(marks >> (8 * i + 7) & 1 == 1, needs_escape(byte), "byte {}", i);
            }
            prop_assert_eq!(marks & !0x8080_8080_8080_8080, 0);
        }

        #[test]
        fn base64_is_the_standard_encoding(bytes in any::<Vec<u8>>(), before in "[a-z]{0,3}") {
            use base64::Engine;
            let mut out = before.clone().into_bytes();
            write_base64(&mut out, &bytes);
            let expected = format!("{before}{}", base64::engine::general_purpose::STANDARD.encode(&bytes));
            prop_assert_eq!(String::from_utf8(out).unwrap(), expected);
        }

        #[test]
        fn control_heavy_text_is_escaped_like_serde_json(
            text in proptest::collection::vec(
                prop_oneof![Just('\n'), Just('"'), Just('\\'), Just('\u{1}'), Just('a'), Just('é')],
                0..80,
            ).prop_map(|chars| chars.into_iter().collect::<String>())
        ) {
            prop_assert_eq!(str_json(&text), serde_json::to_string(&text).unwrap());
        }
    }
}
