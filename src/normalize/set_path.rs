//! Where a set stands in a document, and what its items are sorted by.
//!
//! A path is written as dotted keys with `[*]` for "every item of this
//! list": `backends`, `aggregation.tools[*].filter`, `spec.items`. The empty
//! path `.` is the document itself (a JSON or YAML text that is one list).

use std::fmt;

/// One step of a [`SetPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// The value of this key of a mapping.
    Key(String),
    /// Every item of a list.
    Each,
}

/// The path of a list declared a set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SetPath {
    segments: Vec<Segment>,
}

/// What the items of a set are compared by, as bytes (Go's `<` on strings).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SortKey {
    /// The string value of this field of each item (a mapping).
    Field(String),
    /// The item itself, a string.
    Item,
}

/// A list declared a set: where it is and what orders it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SetSpec {
    pub path: SetPath,
    pub key: SortKey,
}

#[cfg(test)]
impl SetSpec {
    /// The set at `path`, ordered by the field `key`, or by the item itself
    /// without one (the unit tests' shorthand).
    pub(crate) fn of(path: &str, key: Option<&str>) -> Self {
        SetSpec {
            path: SetPath::parse(path).unwrap(),
            key: key.map_or(SortKey::Item, |field| SortKey::Field(field.to_owned())),
        }
    }
}

/// A path that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("empty key at character {0} (write `.` alone for the document itself)")]
    EmptyKey(usize),
    #[error("`[` at character {0} is not `[*]` (only every item of a list can be named)")]
    BadIndex(usize),
    #[error("the path ends with `[*]`: name the list itself, not its items")]
    EndsWithEach,
}

impl SetPath {
    /// Parse `a.b[*].c`. Keys may hold any character but `.` and `[`.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        if text == "." {
            return Ok(Self::root());
        }
        let mut segments = Vec::new();
        let mut key = String::new();
        let mut chars = text.char_indices().peekable();
        let mut after_each = false;
        while let Some((at, c)) = chars.next() {
            match c {
                '.' => {
                    if key.is_empty() && !after_each {
                        return Err(PathError::EmptyKey(at));
                    }
                    if !key.is_empty() {
                        segments.push(Segment::Key(std::mem::take(&mut key)));
                    }
                    after_each = false;
                    if chars.peek().is_none() {
                        return Err(PathError::EmptyKey(at + 1));
                    }
                }
                '[' => {
                    let rest: String = chars.by_ref().take(2).map(|(_, c)| c).collect();
                    if rest != "*]" {
                        return Err(PathError::BadIndex(at));
                    }
                    if key.is_empty() && !after_each {
                        return Err(PathError::EmptyKey(at));
                    }
                    if !key.is_empty() {
                        segments.push(Segment::Key(std::mem::take(&mut key)));
                    }
                    segments.push(Segment::Each);
                    after_each = true;
                }
                c => {
                    if after_each {
                        // `a[*]b` means nothing: a key after `[*]` needs its dot.
                        return Err(PathError::EmptyKey(at));
                    }
                    key.push(c);
                }
            }
        }
        if !key.is_empty() {
            segments.push(Segment::Key(key));
        } else if segments.is_empty() {
            return Err(PathError::EmptyKey(0));
        }
        if segments.last() == Some(&Segment::Each) {
            return Err(PathError::EndsWithEach);
        }
        Ok(Self { segments })
    }

    /// The document itself.
    pub fn root() -> Self {
        Self {
            segments: Vec::new(),
        }
    }

    /// One key of the top-level mapping.
    pub fn key(key: &str) -> Self {
        Self {
            segments: vec![Segment::Key(key.to_owned())],
        }
    }

    /// This path in every item of a list: how a path of an object reads
    /// in a `kind: List` item cut out alone (a one-item sequence).
    pub fn in_each_item(&self) -> Self {
        let mut segments = Vec::with_capacity(self.segments.len() + 1);
        segments.push(Segment::Each);
        segments.extend(self.segments.iter().cloned());
        Self { segments }
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The key of a top-level mapping this path names, when it is just that.
    pub fn top_level_key(&self) -> Option<&str> {
        match self.segments.as_slice() {
            [Segment::Key(key)] => Some(key),
            _ => None,
        }
    }

    /// Whether the path passes through items of a list (so it may name
    /// several lists in one document).
    pub fn has_each(&self) -> bool {
        self.segments.contains(&Segment::Each)
    }
}

impl fmt::Display for SetPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str(".");
        }
        for (index, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Key(key) if index == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Each => f.write_str("[*]")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for SortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SortKey::Field(field) => f.write_str(field),
            SortKey::Item => f.write_str("value"),
        }
    }
}

impl SetSpec {
    /// vMCP's `backends`, by `name`: the set the preset declares.
    pub fn backends() -> Self {
        Self {
            path: SetPath::key("backends"),
            key: SortKey::Field("name".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_and_print_back() {
        for text in [
            "backends",
            "aggregation.tools[*].filter",
            "spec.items",
            ".",
            "a[*].b[*].c",
        ] {
            assert_eq!(SetPath::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            SetPath::parse("aggregation.tools[*].filter")
                .unwrap()
                .segments(),
            [
                Segment::Key("aggregation".into()),
                Segment::Key("tools".into()),
                Segment::Each,
                Segment::Key("filter".into())
            ]
        );
        assert_eq!(
            SetPath::parse("backends").unwrap(),
            SetSpec::backends().path
        );
    }

    #[test]
    fn a_path_in_each_item_starts_with_every_item() {
        let path = SetPath::parse("spec.listeners").unwrap().in_each_item();
        assert_eq!(path.to_string(), "[*].spec.listeners");
        assert_eq!(path.segments()[0], Segment::Each);
        assert_eq!(
            path.segments()[1..],
            *SetPath::parse("spec.listeners").unwrap().segments()
        );
    }

    #[test]
    fn paths_that_name_nothing_are_refused() {
        for (text, error) in [
            ("", PathError::EmptyKey(0)),
            ("a..b", PathError::EmptyKey(2)),
            ("a.", PathError::EmptyKey(2)),
            (".a", PathError::EmptyKey(0)),
            ("a[0].b", PathError::BadIndex(1)),
            ("a[*]", PathError::EndsWithEach),
            ("a[*]b", PathError::EmptyKey(4)),
            ("[*].a", PathError::EmptyKey(0)),
        ] {
            assert_eq!(SetPath::parse(text), Err(error), "{text}");
        }
    }
}
