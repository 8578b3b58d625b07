//! Eight bytes at a time: exact per-byte marks in a 64-bit word (the word
//! trick serde_json's reader uses). The YAML reader uses them where a byte
//! loop would stop at a different place on every line and the CPU would
//! mispredict its exit.

/// The low seven bits of every byte.
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
/// The high bit of every byte.
pub const HIGH: u64 = !LOW7;
/// One in every byte.
const ONES: u64 = 0x0101_0101_0101_0101;

/// Eight bytes from `at` as a little-endian word, when there are eight.
pub fn word_at(bytes: &[u8], at: usize) -> Option<u64> {
    let word: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(word))
}

/// The high bit of each byte of `word` that equals `byte`; exact per byte,
/// since only the low seven bits are added and no carry crosses a byte.
pub fn byte_marks(word: u64, byte: u8) -> u64 {
    let x = word ^ (ONES * u64::from(byte));
    !(((x & LOW7) + LOW7) | x) & HIGH
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn words_need_eight_bytes() {
        assert_eq!(
            word_at(b"abcdefgh!", 1),
            Some(u64::from_le_bytes(*b"bcdefgh!"))
        );
        assert_eq!(word_at(b"abcdefgh", 1), None);
    }

    proptest! {
        #[test]
        fn byte_marks_are_exact(word in any::<[u8; 8]>(), byte in any::<u8>()) {
            let marks = byte_marks(u64::from_le_bytes(word), byte);
            for (i, &b) in word.iter().enumerate() {
                prop_assert_eq!(marks >> (8 * i + 7) & 1 == 1, b == byte);
            }
            prop_assert_eq!(marks & LOW7, 0);
        }
    }
}
