//! Request data in log lines, cut to a fixed length: a client chooses the uid
//! and names it sends, and a 6 MB uid must not make a 6 MB log line.

use std::fmt;

/// The most bytes of one request-supplied field that go into a log line.
/// Kubernetes names are at most 253 bytes and uids 36, so real values pass
/// whole.
pub const MAX_LOGGED_FIELD_BYTES: usize = 256;

/// Written after a field that was cut.
const CUT_MARKER: &str = "…";

/// Displays at most [`MAX_LOGGED_FIELD_BYTES`] of a string (cut on a
/// character boundary, then [`CUT_MARKER`]); log it with `%capped(value)`.
#[derive(Debug, Clone, Copy)]
pub struct Capped<'a>(&'a str);

pub fn capped(value: &str) -> Capped<'_> {
    Capped(value)
}

impl fmt::Display for Capped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.0;
        if value.len() <= MAX_LOGGED_FIELD_BYTES {
            return f.write_str(value);
        }
        let mut end = MAX_LOGGED_FIELD_BYTES - CUT_MARKER.len();
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        f.write_str(&value[..end])?;
        f.write_str(CUT_MARKER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_fields_pass_whole() {
        let name = "n".repeat(MAX_LOGGED_FIELD_BYTES);
        assert_eq!(capped(&name).to_string(), name);
        assert_eq!(capped("").to_string(), "");
    }

    #[test]
    fn long_fields_are_cut_with_a_marker() {
        let uid = "u".repeat(6_000_000);
        let logged = capped(&uid).to_string();
        assert_eq!(logged.len(), MAX_LOGGED_FIELD_BYTES);
        assert!(logged.ends_with(CUT_MARKER));
        assert!(logged.starts_with("uuu"));
    }

    #[test]
    fn cut_falls_on_a_character_boundary() {
        // 'é' is two bytes, so byte 253 falls in the middle of one.
        let name = "é".repeat(200);
        let logged = capped(&name).to_string();
        assert!(logged.len() <= MAX_LOGGED_FIELD_BYTES, "{}", logged.len());
        assert!(logged.ends_with(CUT_MARKER));
        let kept = logged.strip_suffix(CUT_MARKER).unwrap();
        assert!(name.starts_with(kept));
        assert_eq!(kept.len(), MAX_LOGGED_FIELD_BYTES - CUT_MARKER.len() - 1);
    }
}
