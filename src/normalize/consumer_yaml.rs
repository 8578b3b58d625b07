//! `config.yaml` as vMCP reads it.
//!
//! vMCP decodes its config with gopkg.in/yaml.v3, a Go port of libyaml, which
//! follows YAML 1.1 where YAML 1.2 readers differ (line breaks, the end of a
//! block scalar at the end of the text). Every decision here (which items
//! there are, what their names are, whether a reordered text means the same)
//! is taken on libyaml's reading of the text, through yaml_serde.
//!
//! The reading is kept flat: every node written, in document order, as a
//! kind byte and its content (scalars resolved as yaml_serde resolves them,
//! tags kept, aliases expanded, mapping keys in their order). Two texts read
//! the same exactly when their flat readings are equal, and a flat reading
//! costs one buffer where a tree costs an allocation per node.

use std::fmt;
use std::ops::Range;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

use super::{Refusal, RefusalReason};

/// One document as libyaml reads it.
#[derive(Debug)]
pub struct Reading {
    flat: Vec<u8>,
    backends: Backends,
}

/// The top-level `backends` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backends {
    /// The root is not a mapping, or has no `backends` key.
    Absent,
    Null,
    NotList,
    List(Vec<Item>),
}

/// One item of the list: where it stands in the flat reading, and its
/// `name` when that is a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    flat: Range<usize>,
    pub name: Option<String>,
}

/// The text's one document as libyaml reads it.
pub fn read(text: &str) -> Result<Reading, Refusal> {
    let mut reading = Reading {
        flat: Vec::with_capacity(text.len()),
        backends: Backends::Absent,
    };
    let deserializer = yaml_serde::Deserializer::from_str(text);
    Node {
        reading: &mut reading,
        role: Role::Root,
    }
    .deserialize(deserializer)
    .map_err(refusal)?;
    Ok(reading)
}

fn refusal(error: yaml_serde::Error) -> Refusal {
    let detail = match error.location() {
        Some(at) => format!("line {} column {}: {error}", at.line(), at.column()),
        None => error.to_string(),
    };
    // yaml_serde reads one document; several are a shape this tool does not
    // reorder, not a broken config.
    let reason = if detail.contains("more than one document") {
        RefusalReason::Unsupported
    } else {
        RefusalReason::InvalidYaml
    };
    Refusal { reason, detail }
}

impl Reading {
    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    /// Check that `reordered` reads as `self` with only the items of the
    /// top-level `backends` list permuted: item `k` of `reordered` is item
    /// `order[k]` of `self`. The error names the first difference.
    pub fn same_but_backends(&self, reordered: &Reading, order: &[usize]) -> Result<(), String> {
        let (Backends::List(want), Backends::List(got)) = (&self.backends, &reordered.backends)
        else {
            return Err("backends is no longer a list".to_owned());
        };
        if got.len() != want.len() || order.len() != want.len() {
            return Err(format!(
                "backends has {} items, not {}",
                got.len(),
                want.len()
            ));
        }
        fn around<'r>(reading: &'r Reading, items: &[Item]) -> Option<(&'r [u8], &'r [u8])> {
            let (first, last) = (items.first()?, items.last()?);
            Some((
                &reading.flat[..first.flat.start],
                &reading.flat[last.flat.end..],
            ))
        }
        if around(self, want) != around(reordered, got) {
            return Err("what surrounds backends reads differently".to_owned());
        }
        for (slot, (&from, got)) in order.iter().zip(got).enumerate() {
            let want = want
                .get(from)
                .ok_or_else(|| format!("no backends item {from} to move"))?;
            if self.flat[want.flat.clone()] != reordered.flat[got.flat.clone()] {
                return Err(format!("backends[{slot}] reads differently"));
            }
        }
        Ok(())
    }
}

// Kind bytes of the flat reading. Lengths are 4 bytes, little-endian.
const NULL: u8 = b'~';
const TRUE: u8 = b'T';
const FALSE: u8 = b'F';
const INT: u8 = b'i';
const UINT: u8 = b'u';
const FLOAT: u8 = b'f';
const STRING: u8 = b's';
const TAG: u8 = b'!';
const SEQUENCE: u8 = b'[';
const SEQUENCE_END: u8 = b']';
const MAPPING: u8 = b'{';
const MAPPING_END: u8 = b'}';

/// What a node is to the reorder: the root mapping, the backends list, one
/// of its items, or anything else.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Root,
    Backends,
    Item,
    Other,
}

/// A node being read into `reading.flat`.
struct Node<'r> {
    reading: &'r mut Reading,
    role: Role,
}

impl Node<'_> {
    fn push_bytes(&mut self, kind: u8, bytes: &[u8]) {
        let flat = &mut self.reading.flat;
        flat.push(kind);
        // A config is at most 1 MiB; longer strings cannot occur.
        flat.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
        flat.extend_from_slice(bytes);
    }

    fn push_number(&mut self, kind: u8, bits: u64) {
        self.reading.flat.push(kind);
        self.reading.flat.extend_from_slice(&bits.to_le_bytes());
    }

    fn child(&mut self, role: Role) -> Node<'_> {
        Node {
            reading: self.reading,
            role,
        }
    }

    /// The items of the backends list, when this node is that list.
    fn items(&mut self, listing: bool) -> Option<&mut Vec<Item>> {
        match &mut self.reading.backends {
            Backends::List(items) if listing => Some(items),
            _ => None,
        }
    }

    /// A scalar, mapping or tagged node where the backends list would be.
    fn not_a_list(&mut self) {
        if self.role == Role::Backends {
            self.reading.backends = Backends::NotList;
        }
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        if self.role == Role::Backends {
            self.reading.backends = Backends::Null;
        }
        self.reading.flat.push(NULL);
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit::<E>()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_bool<E>(mut self, value: bool) -> Result<(), E> {
        self.not_a_list();
        self.reading.flat.push(if value { TRUE } else { FALSE });
        Ok(())
    }

    fn visit_i64<E>(mut self, value: i64) -> Result<(), E> {
        self.not_a_list();
        self.push_number(INT, value.cast_unsigned());
        Ok(())
    }

    fn visit_u64<E>(mut self, value: u64) -> Result<(), E> {
        self.not_a_list();
        self.push_number(UINT, value);
        Ok(())
    }

    fn visit_f64<E>(mut self, value: f64) -> Result<(), E> {
        self.not_a_list();
        // YAML has one NaN.
        let bits = if value.is_nan() {
            f64::NAN.to_bits()
        } else {
            value.to_bits()
        };
        self.push_number(FLOAT, bits);
        Ok(())
    }

    fn visit_str<E>(mut self, value: &str) -> Result<(), E> {
        self.not_a_list();
        self.push_bytes(STRING, value.as_bytes());
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut sequence: A) -> Result<(), A::Error> {
        let listing = self.role == Role::Backends;
        if listing {
            self.reading.backends = Backends::List(Vec::new());
        }
        let role = if listing { Role::Item } else { Role::Other };
        self.reading.flat.push(SEQUENCE);
        loop {
            // The item is listed before it is read, so its `name` has a
            // place to go.
            let start = self.reading.flat.len();
            if let Some(items) = self.items(listing) {
                items.push(Item {
                    flat: start..start,
                    name: None,
                });
            }
            let more = sequence.next_element_seed(self.child(role))?.is_some();
            let end = self.reading.flat.len();
            if let Some(items) = self.items(listing) {
                match (more, items.last_mut()) {
                    (true, Some(item)) => item.flat.end = end,
                    _ => drop(items.pop()),
                }
            }
            if !more {
                break;
            }
        }
        self.reading.flat.push(SEQUENCE_END);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.not_a_list();
        self.reading.flat.push(MAPPING);
        let mut keys: Vec<Range<usize>> = Vec::new();
        loop {
            let key_start = self.reading.flat.len();
            if map.next_key_seed(self.child(Role::Other))?.is_none() {
                break;
            }
            let key = key_start..self.reading.flat.len();
            let key_bytes = &self.reading.flat[key.clone()];
            let role = match self.role {
                Role::Root if is_string(key_bytes, "backends") => Role::Backends,
                _ => Role::Other,
            };
            let is_name = self.role == Role::Item && is_string(key_bytes, "name");
            keys.push(key);
            let value_start = self.reading.flat.len();
            map.next_value_seed(self.child(role))?;
            if is_name {
                let name = string_at(&self.reading.flat[value_start..]).map(str::to_owned);
                if let Some(item) = self.items(true).and_then(|items| items.last_mut()) {
                    item.name = name;
                }
            }
        }
        // yaml.v3 refuses a key defined twice; so does this reading.
        let flat = &self.reading.flat;
        keys.sort_unstable_by(|a, b| flat[a.clone()].cmp(&flat[b.clone()]));
        if keys
            .windows(2)
            .any(|pair| flat[pair[0].clone()] == flat[pair[1].clone()])
        {
            return Err(de::Error::custom("a mapping key is defined twice"));
        }
        self.reading.flat.push(MAPPING_END);
        Ok(())
    }

    fn visit_enum<A: EnumAccess<'de>>(mut self, data: A) -> Result<(), A::Error> {
        // yaml_serde hands a tagged node over as an enum named by its tag.
        self.not_a_list();
        let (tag, content): (String, _) = data.variant()?;
        self.push_bytes(TAG, tag.as_bytes());
        let role = if self.role == Role::Item {
            Role::Item
        } else {
            Role::Other
        };
        content.newtype_variant_seed(self.child(role))
    }
}

/// Whether a flat node is the string `text`.
fn is_string(flat: &[u8], text: &str) -> bool {
    string_at(flat) == Some(text)
}

/// The string at the start of `flat`, if the node there is one.
fn string_at(flat: &[u8]) -> Option<&str> {
    let (&kind, rest) = flat.split_first()?;
    let (length, rest) = rest.split_first_chunk::<4>()?;
    let length = usize::try_from(u32::from_le_bytes(*length)).ok()?;
    match kind {
        STRING => std::str::from_utf8(rest.get(..length)?).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<Option<String>> {
        match read(text).unwrap().backends {
            Backends::List(items) => items.into_iter().map(|item| item.name).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_line_breaks_of_yaml_1_1_are_read_as_libyaml_reads_them() {
        // U+2028 is a line break for libyaml, so `y` starts a line of its own
        // and is no key; a YAML 1.2 reader reads the value `x\u{2028}y`.
        assert_eq!(
            read("a: x\u{2028}y\n").unwrap_err().reason,
            RefusalReason::InvalidYaml
        );
        // A clipped block scalar at the end of the text without a line break
        // has no final newline for libyaml (saphyr would add one).
        let with = read("a: |\n  x\n").unwrap();
        let without = read("a: |\n  x").unwrap();
        assert_ne!(with.flat, without.flat);
        assert_eq!(without.flat, read("a: \"x\"").unwrap().flat);
    }

    #[test]
    fn names_are_the_strings_libyaml_decodes() {
        assert_eq!(
            names(
                "backends:\n- name: \"\\xe9\\u2028\"\n- name: 'it''s'\n- name: 12\n- {url: x}\n- !t {name: t}\n"
            ),
            vec![
                Some("\u{e9}\u{2028}".to_owned()),
                Some("it's".to_owned()),
                None,
                None,
                Some("t".to_owned())
            ]
        );
        assert_eq!(names("backends: []\n"), Vec::<Option<String>>::new());
    }

    #[test]
    fn what_backends_is() {
        for (text, backends) in [
            ("- a\n", Backends::Absent),
            ("x: 1\n", Backends::Absent),
            ("backends:\n", Backends::Null),
            ("backends: {a: 1}\n", Backends::NotList),
            ("backends: 3\n", Backends::NotList),
            ("backends: !t [a]\n", Backends::NotList),
            ("x: {backends: [a]}\n", Backends::Absent),
        ] {
            assert_eq!(read(text).unwrap().backends, backends, "{text}");
        }
    }

    #[test]
    fn several_documents_are_unsupported_and_broken_text_is_invalid() {
        assert_eq!(
            read("a: 1\n---\nb: 2\n").unwrap_err().reason,
            RefusalReason::Unsupported
        );
        for text in [
            "a: [1\n",
            "a: 1\na: 2\n",
            "backends:\n- name: a\n  name: b\n",
        ] {
            let invalid = read(text).unwrap_err();
            assert_eq!(invalid.reason, RefusalReason::InvalidYaml, "{text}");
            assert!(invalid.detail.starts_with("line "), "{}", invalid.detail);
        }
    }

    #[test]
    fn only_the_backends_items_may_move() {
        let original = read("x: 1\nbackends: [{name: b}, {name: a}]\ny: {p: 1, q: 2}\n").unwrap();
        let swapped = read("x: 1\nbackends: [{name: a}, {name: b}]\ny: {p: 1, q: 2}\n").unwrap();
        assert_eq!(original.same_but_backends(&swapped, &[1, 0]), Ok(()));
        assert_eq!(
            original.same_but_backends(&swapped, &[0, 1]),
            Err("backends[0] reads differently".to_owned())
        );
        for (text, differs) in [
            // a key order inside a map, a quoted number, a tag, top-level order
            (
                "x: 1\nbackends: [{name: a}, {name: b}]\ny: {q: 2, p: 1}\n",
                "what surrounds",
            ),
            (
                "x: '1'\nbackends: [{name: a}, {name: b}]\ny: {p: 1, q: 2}\n",
                "what surrounds",
            ),
            (
                "x: !t 1\nbackends: [{name: a}, {name: b}]\ny: {p: 1, q: 2}\n",
                "what surrounds",
            ),
            (
                "backends: [{name: a}, {name: b}]\nx: 1\ny: {p: 1, q: 2}\n",
                "what surrounds",
            ),
            (
                "x: 1\nbackends: [{name: a}, {name: 'b'}, {}]\ny: {p: 1, q: 2}\n",
                "3 items",
            ),
            (
                "x: 1\nbackends: [{name: a}, {name: b, u: 1}]\ny: {p: 1, q: 2}\n",
                "backends[1]",
            ),
            (
                "x: 1\nbackends: {name: a}\ny: {p: 1, q: 2}\n",
                "no longer a list",
            ),
        ] {
            let error = original
                .same_but_backends(&read(text).unwrap(), &[1, 0])
                .unwrap_err();
            assert!(error.contains(differs), "{text}: {error}");
        }
    }

    #[test]
    fn scalars_read_as_their_resolved_values() {
        let flat = |text: &str| read(text).unwrap().flat;
        // The same value written two ways reads the same ...
        assert_eq!(flat("a: 0x10\n"), flat("a: 16\n"));
        assert_eq!(flat("a: .nan\n"), flat("a: .NaN\n"));
        assert_eq!(flat("a: &x [1]\nb: *x\n"), flat("a: [1]\nb: [1]\n"));
        // ... and different values or types do not.
        assert_ne!(flat("a: 16\n"), flat("a: '16'\n"));
        assert_ne!(flat("a: true\n"), flat("a: 'true'\n"));
        assert_ne!(flat("a: ~\n"), flat("a: ''\n"));
        assert_ne!(flat("a: [1]\n"), flat("a: {1: ~}\n"));
        assert_ne!(flat("a: !x 1\n"), flat("a: 1\n"));
    }
}
