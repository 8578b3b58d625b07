//! Writing the response JSON by hand: the answer has a fixed shape, and its
//! largest part, the patch, is one long string (a whole `config.yaml`) that
//! serde_json escapes a byte at a time and whose base64 it would then scan
//! again. Every byte written here equals what serde_json writes (tested).

use json_patch::{PatchOperation, ReplaceOperation};
use serde_json::Value;

/// Append `text` as a JSON string, escaped exactly as serde_json escapes it.
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run = 0;
    // Most 16-byte blocks need no escape: a block's bytes are tested together
    // (the compiler turns this into a few vector instructions) and only the
    // marked ones are visited.
    for (block_index, block) in bytes.chunks(16).enumerate() {
        let mut marks = block.iter().enumerate().fold(0u32, |marks, (i, &b)| {
            marks | (u32::from(needs_escape(b)) << i)
        });
        while marks != 0 {
            let at = block_index * 16 + marks.trailing_zeros() as usize;
            out.extend_from_slice(&bytes[run..at]);
            write_escape(out, bytes[at]);
            run = at + 1;
            marks &= marks - 1;
        }
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
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
