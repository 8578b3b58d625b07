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

use super::set_path::{Segment, SetSpec, SortKey};
use super::{Refusal, RefusalReason};

/// One document as libyaml reads it, with the lists at one declared path.
#[derive(Debug)]
pub struct Reading {
    flat: Vec<u8>,
    /// Every value found at the path, in document order (several when the
    /// path passes through `[*]`).
    sets: Vec<SetValue>,
}

/// One value found at a declared path (for the preset, the top-level
/// `backends`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetValue {
    /// Nothing at the path: the root is not a mapping, or has no such key
    /// (the readings list only what they found; the tests name this case).
    #[cfg_attr(not(test), allow(dead_code))]
    Absent,
    Null,
    NotList,
    List(Vec<Item>),
}

/// The preset's name for a [`SetValue`]: the value of `backends`.
#[cfg(test)]
pub type Backends = SetValue;

/// One item of a set: where it stands in the flat reading, and its sort key
/// when that is a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    flat: Range<usize>,
    pub name: Option<String>,
}

/// The text's one document as libyaml reads it, looking for `backends`.
#[cfg(test)]
pub fn read(text: &str) -> Result<Reading, Refusal> {
    read_sets(text, &BACKENDS)
}

#[cfg(test)]
static BACKENDS: std::sync::LazyLock<SetSpec> = std::sync::LazyLock::new(SetSpec::backends);

/// The text's one document as libyaml reads it, noting every list at
/// `spec.path` and each item's sort key.
pub fn read_sets(text: &str, spec: &SetSpec) -> Result<Reading, Refusal> {
    let mut reading = Reading {
        flat: Vec::with_capacity(text.len()),
        sets: Vec::new(),
    };
    let deserializer = yaml_serde::Deserializer::from_str(text);
    Node {
        reading: &mut reading,
        spec,
        at: At::Path(0),
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
    /// The first value at the path (the only one for a path without `[*]`).
    #[cfg(test)]
    pub fn backends(&self) -> &SetValue {
        self.sets.first().unwrap_or(&SetValue::Absent)
    }

    /// Every value at the path, in document order.
    pub fn sets(&self) -> &[SetValue] {
        &self.sets
    }

    /// Check that `reordered` reads as `self` with only the items of the
    /// top-level `backends` list permuted: item `k` of `reordered` is item
    /// `order[k]` of `self`. The error names the first difference.
    #[cfg(test)]
    pub fn same_but_backends(&self, reordered: &Reading, order: &[usize]) -> Result<(), String> {
        self.same_but_permuted(reordered, &[order.to_vec()], &|_| "backends".to_owned())
    }

    /// Check that `reordered` reads as `self` with only the items of each
    /// set permuted: in set `s`, item `k` of `reordered` is item
    /// `orders[s][k]` of `self`. `label` names set `s` in the error.
    pub fn same_but_permuted(
        &self,
        reordered: &Reading,
        orders: &[Vec<usize>],
        label: &dyn Fn(usize) -> String,
    ) -> Result<(), String> {
        if reordered.sets.len() != self.sets.len() || orders.len() != self.sets.len() {
            return Err(format!(
                "{} is found {} times, not {}",
                label(0),
                reordered.sets.len(),
                self.sets.len()
            ));
        }
        let mut pairs = Vec::new();
        for (set, ((want, got), order)) in self
            .sets
            .iter()
            .zip(&reordered.sets)
            .zip(orders)
            .enumerate()
        {
            match (want, got) {
                (SetValue::List(want), SetValue::List(got)) => {
                    if got.len() != want.len() || order.len() != want.len() {
                        return Err(format!(
                            "{} has {} items, not {}",
                            label(set),
                            got.len(),
                            want.len()
                        ));
                    }
                    pairs.push((set, want, got, order));
                }
                (SetValue::List(_), _) => {
                    return Err(format!("{} is no longer a list", label(set)));
                }
                // Not a list: read within what surrounds the sets.
                _ => {}
            }
        }
        // What surrounds the items: every stretch between one item's place
        // and the next, in both readings.
        let (mut from_want, mut from_got) = (0, 0);
        let mut last = 0;
        for &(set, want, got, _) in &pairs {
            for (want, got) in want.iter().zip(got.iter()) {
                if self.flat[from_want..want.flat.start] != reordered.flat[from_got..got.flat.start]
                {
                    return Err(format!("what surrounds {} reads differently", label(set)));
                }
                (from_want, from_got) = (want.flat.end, got.flat.end);
            }
            last = set;
        }
        if self.flat[from_want..] != reordered.flat[from_got..] {
            return Err(format!("what surrounds {} reads differently", label(last)));
        }
        for &(set, want, got, order) in &pairs {
            for (slot, (&from, got)) in order.iter().zip(got).enumerate() {
                let want = want
                    .get(from)
                    .ok_or_else(|| format!("no {} item {from} to move", label(set)))?;
                if self.flat[want.flat.clone()] != reordered.flat[got.flat.clone()] {
                    return Err(format!("{}[{slot}] reads differently", label(set)));
                }
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

/// Where a node stands relative to the declared path.
#[derive(Clone, Copy, PartialEq, Eq)]
enum At {
    /// On the path, with this many segments matched (all of them: the node
    /// is a set).
    Path(usize),
    /// An item of a set.
    Item,
    /// Anywhere else.
    Other,
}

/// A node being read into `reading.flat`.
struct Node<'r, 's> {
    reading: &'r mut Reading,
    spec: &'s SetSpec,
    at: At,
}

impl<'s> Node<'_, 's> {
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

    fn child(&mut self, at: At) -> Node<'_, 's> {
        Node {
            reading: self.reading,
            spec: self.spec,
            at,
        }
    }

    /// Whether this node is where a set must be.
    fn is_set(&self) -> bool {
        self.at == At::Path(self.spec.path.segments().len())
    }

    /// The segment still to match, when on the path.
    fn next_segment(&self) -> Option<&'s Segment> {
        match self.at {
            At::Path(matched) => self.spec.path.segments().get(matched),
            _ => None,
        }
    }

    /// The item being read (the last one of the last set).
    fn current_item(&mut self) -> Option<&mut Item> {
        match self.reading.sets.last_mut() {
            Some(SetValue::List(items)) => items.last_mut(),
            _ => None,
        }
    }

    /// A scalar, mapping or tagged node where a set would be.
    fn not_a_list(&mut self) {
        if self.is_set() {
            self.reading.sets.push(SetValue::NotList);
        }
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        if self.is_set() {
            self.reading.sets.push(SetValue::Null);
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
        if self.at == At::Item
            && self.spec.key == SortKey::Item
            && let Some(item) = self.current_item()
        {
            item.name = Some(value.to_owned());
        }
        self.push_bytes(STRING, value.as_bytes());
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut sequence: A) -> Result<(), A::Error> {
        let listing = self.is_set();
        if listing {
            self.reading.sets.push(SetValue::List(Vec::new()));
        }
        let at = match self.next_segment() {
            _ if listing => At::Item,
            Some(Segment::Each) => match self.at {
                At::Path(matched) => At::Path(matched + 1),
                _ => At::Other,
            },
            _ => At::Other,
        };
        self.reading.flat.push(SEQUENCE);
        // Sets at this path cannot stand inside one of its items (they are
        // all at one depth), so the set being listed stays the last one.
        let set = self.reading.sets.len().wrapping_sub(1);
        loop {
            // The item is listed before it is read, so its key has a place
            // to go.
            let start = self.reading.flat.len();
            if listing && let Some(SetValue::List(items)) = self.reading.sets.get_mut(set) {
                items.push(Item {
                    flat: start..start,
                    name: None,
                });
            }
            let more = sequence.next_element_seed(self.child(at))?.is_some();
            let end = self.reading.flat.len();
            if listing && let Some(SetValue::List(items)) = self.reading.sets.get_mut(set) {
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
        let next = self.next_segment().filter(|_| !self.is_set());
        loop {
            let key_start = self.reading.flat.len();
            if map.next_key_seed(self.child(At::Other))?.is_none() {
                break;
            }
            let key = key_start..self.reading.flat.len();
            let key_bytes = &self.reading.flat[key.clone()];
            let at = match (next, self.at) {
                (Some(Segment::Key(wanted)), At::Path(matched)) if is_string(key_bytes, wanted) => {
                    At::Path(matched + 1)
                }
                _ => At::Other,
            };
            let is_key = self.at == At::Item
                && matches!(&self.spec.key, SortKey::Field(field) if is_string(key_bytes, field));
            keys.push(key);
            let value_start = self.reading.flat.len();
            map.next_value_seed(self.child(at))?;
            if is_key {
                let name = string_at(&self.reading.flat[value_start..]).map(str::to_owned);
                if let Some(item) = self.current_item() {
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
        // A tag on an item keeps it an item; anywhere else on the path it
        // leaves the path (the layout could not find a tagged list's items).
        let at = if self.at == At::Item {
            At::Item
        } else {
            At::Other
        };
        content.newtype_variant_seed(self.child(at))
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
        match read(text).unwrap().backends().clone() {
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
            assert_eq!(read(text).unwrap().backends(), &backends, "{text}");
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
