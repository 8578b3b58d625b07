//! Kubernetes manifests as `kubectl` reads and prints them: YAML streams of
//! one or more documents, or JSON, either possibly a `kind: List`.

use std::ops::Range;

use serde::Deserialize;
use serde_json::Value;

/// How a manifest is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

/// The documents of one manifest file or stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub format: Format,
    pub documents: Vec<Value>,
}

/// A manifest that could not be read, with where.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("invalid YAML at line {line}, column {column}: {message}")]
    Yaml {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("invalid YAML: {0}")]
    YamlUnlocated(String),
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
}

/// JSON when the text opens with `{` or `[`, else YAML.
pub fn format_of(text: &str) -> Format {
    if text.trim_start().starts_with(['{', '[']) {
        Format::Json
    } else {
        Format::Yaml
    }
}

/// Read the documents of `text` one at a time, in order, and hand each to
/// `each` with its position (YAML: empty documents count, as null) and, for
/// JSON, its bytes in `text`. Only one document is held at a time.
pub fn for_each_document(
    text: &str,
    mut each: impl FnMut(usize, Value, Option<Range<usize>>),
) -> Result<Format, ManifestError> {
    let format = format_of(text);
    match format {
        Format::Json => {
            let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
            let mut start = 0;
            let mut index = 0;
            while let Some(document) = stream.next() {
                let document = document.map_err(|e| ManifestError::Json {
                    line: e.line(),
                    column: e.column(),
                    message: e.to_string(),
                })?;
                let end = stream.byte_offset();
                each(index, document, Some(start..end));
                start = end;
                index += 1;
            }
        }
        Format::Yaml => {
            for (index, document) in yaml_serde::Deserializer::from_str(text).enumerate() {
                let value = Value::deserialize(document).map_err(yaml_error)?;
                each(index, value, None);
            }
        }
    }
    Ok(format)
}

/// [`for_each_document`] for a reader that needs only some objects of a
/// `kind: List` whole: a YAML document's top-level `items` are read one at a
/// time, and each for which `keep` is false is replaced at once by its stub
/// (`apiVersion`, `kind`, `metadata.namespace` and `metadata.name` only), so
/// a 10,000-item List is never held whole. `each` gets `sparse: true` for a
/// List that holds stubs. A document with `items` that turns out not to be
/// a List is read again whole. JSON is read whole (its documents are proven
/// whole when rewritten, see `cli::in_place`).
pub fn for_each_document_sparse(
    text: &str,
    mut keep: impl FnMut(&Value) -> bool,
    mut each: impl FnMut(usize, Value, Option<Range<usize>>, bool),
) -> Result<Format, ManifestError> {
    if format_of(text) == Format::Json {
        return for_each_document(text, |index, value, range| each(index, value, range, false));
    }
    for (index, document) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let mut stubbed = false;
        let seed = sparse::Document {
            keep: &mut keep,
            stubbed: &mut stubbed,
        };
        let mut value =
            serde::de::DeserializeSeed::deserialize(seed, document).map_err(yaml_error)?;
        let is_list = value
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|kind| kind.ends_with("List"));
        if stubbed && !is_list {
            value = read_yaml_document(text, index)?.unwrap_or(Value::Null);
        }
        each(index, value, None, stubbed && is_list);
    }
    Ok(Format::Yaml)
}

/// Document `index` of a YAML stream, read whole (`None` past the end).
pub fn read_yaml_document(text: &str, index: usize) -> Result<Option<Value>, ManifestError> {
    yaml_serde::Deserializer::from_str(text)
        .nth(index)
        .map(Value::deserialize)
        .transpose()
        .map_err(yaml_error)
}

/// What stands for an item of a List that is not kept whole.
pub fn stub(object: &Value) -> Value {
    let mut stub = serde_json::Map::new();
    for key in ["apiVersion", "kind"] {
        if let Some(value) = object.get(key) {
            stub.insert(key.to_owned(), value.clone());
        }
    }
    let mut metadata = serde_json::Map::new();
    for key in ["namespace", "name"] {
        if let Some(value) = object.get("metadata").and_then(|m| m.get(key)) {
            metadata.insert(key.to_owned(), value.clone());
        }
    }
    if !metadata.is_empty() {
        stub.insert("metadata".to_owned(), Value::Object(metadata));
    }
    Value::Object(stub)
}

/// The serde side of [`for_each_document_sparse`]: a document as a
/// `serde_json::Value`, but for its top-level `items`.
mod sparse {
    use std::fmt;

    use serde::Deserialize;
    use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Number, Value};

    /// Scalars as `serde_json::Value`'s own visitor reads them.
    macro_rules! scalars {
        () => {
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Number(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
                Ok(Value::Number(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
                Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value::String(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
                Ok(Value::String(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
                Value::deserialize(d)
            }
        };
    }

    pub(super) struct Document<'k, K> {
        pub keep: &'k mut K,
        pub stubbed: &'k mut bool,
    }

    impl<'de, K: FnMut(&Value) -> bool> DeserializeSeed<'de> for Document<'_, K> {
        type Value = Value;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de, K: FnMut(&Value) -> bool> Visitor<'de> for Document<'_, K> {
        type Value = Value;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a YAML document")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut object = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                let value = if key == "items" {
                    map.next_value_seed(Items {
                        keep: &mut *self.keep,
                        stubbed: &mut *self.stubbed,
                    })?
                } else {
                    map.next_value::<Value>()?
                };
                object.insert(key, value);
            }
            Ok(Value::Object(object))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
            Value::deserialize(de::value::SeqAccessDeserializer::new(seq))
        }
        scalars!();
    }

    /// A top-level `items`: a sequence read an element at a time.
    struct Items<'k, K> {
        keep: &'k mut K,
        stubbed: &'k mut bool,
    }

    impl<'de, K: FnMut(&Value) -> bool> DeserializeSeed<'de> for Items<'_, K> {
        type Value = Value;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de, K: FnMut(&Value) -> bool> Visitor<'de> for Items<'_, K> {
        type Value = Value;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("items")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element::<Value>()? {
                if (self.keep)(&item) {
                    items.push(item);
                } else {
                    items.push(super::stub(&item));
                    *self.stubbed = true;
                }
            }
            Ok(Value::Array(items))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
            Value::deserialize(de::value::MapAccessDeserializer::new(map))
        }
        scalars!();
    }
}

fn yaml_error(e: yaml_serde::Error) -> ManifestError {
    match e.location() {
        Some(at) => ManifestError::Yaml {
            line: at.line(),
            column: at.column(),
            // The location is ours to print; drop the parser's copy.
            message: e
                .to_string()
                .split(" at line ")
                .next()
                .unwrap_or_default()
                .to_owned(),
        },
        None => ManifestError::YamlUnlocated(e.to_string()),
    }
}

/// Read every document of `text`. Empty documents are dropped.
pub fn parse_manifest(text: &str) -> Result<Manifest, ManifestError> {
    let mut documents = Vec::new();
    let format = for_each_document(text, |_, value, _| {
        if !value.is_null() {
            documents.push(value);
        }
    })?;
    Ok(Manifest { format, documents })
}

/// `Kind namespace/name` for messages.
pub fn describe(object: &Value) -> String {
    let field = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
    let kind = field("/kind").unwrap_or("object");
    match (field("/metadata/namespace"), field("/metadata/name")) {
        (Some(namespace), Some(name)) => format!("{kind} {namespace}/{name}"),
        (None, Some(name)) => format!("{kind} {name}"),
        _ => format!("{kind} (unnamed)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_streams_keep_every_document() {
        let manifest = parse_manifest("a: 1\n---\n---\nb: \"2\"\n").unwrap();
        assert_eq!(manifest.format, Format::Yaml);
        assert_eq!(manifest.documents, vec![json!({"a": 1}), json!({"b": "2"})]);
    }

    #[test]
    fn documents_are_numbered_with_the_empty_ones_and_json_ones_located() {
        let mut seen = Vec::new();
        for_each_document("a: 1\n---\n---\nb: 2\n", |i, v, r| seen.push((i, v, r))).unwrap();
        assert_eq!(
            seen,
            vec![
                (0, json!({"a": 1}), None),
                (1, Value::Null, None),
                (2, json!({"b": 2}), None)
            ]
        );
        let text = "{\"a\": 1}\n {\"b\": 2}";
        let mut ranges = Vec::new();
        for_each_document(text, |_, _, r| ranges.push(r.unwrap())).unwrap();
        assert_eq!(ranges, vec![0..8, 8..text.len()]);
        assert_eq!(text[ranges[1].clone()].trim(), "{\"b\": 2}");
    }

    fn sparse(text: &str, keep: impl Fn(&Value) -> bool) -> Vec<(usize, Value, bool)> {
        let mut seen = Vec::new();
        for_each_document_sparse(text, keep, |i, v, _, sparse| seen.push((i, v, sparse))).unwrap();
        seen
    }

    #[test]
    fn sparse_lists_hold_only_the_items_kept() {
        let text = "apiVersion: v1\nitems:\n- kind: A\n  metadata: {name: a, namespace: n, labels: {x: y}}\n  data: {k: v}\n- kind: B\n  keep: true\n- 7\nkind: List\n";
        let seen = sparse(text, |item| item.get("keep").is_some());
        assert_eq!(
            seen,
            vec![(
                0,
                json!({"apiVersion": "v1", "kind": "List", "items": [
                    {"kind": "A", "metadata": {"name": "a", "namespace": "n"}},
                    {"kind": "B", "keep": true},
                    {},
                ]}),
                true
            )]
        );
        // Keeping everything reads what for_each_document reads.
        let mut whole = Vec::new();
        for_each_document(text, |i, v, _| whole.push((i, v, false))).unwrap();
        assert_eq!(sparse(text, |_| true), whole);
    }

    #[test]
    fn sparse_reading_of_other_documents_is_the_plain_reading() {
        // Not a List: read again whole. Scalars, sequences, empty documents.
        let text = "kind: ConfigMap\nitems: [{a: 1}]\n---\n- a\n- 1.5\n- null\n- true\n---\n---\nplain\n---\nitems: x\nn: -3\nu: 18446744073709551615\n";
        let mut whole = Vec::new();
        for_each_document(text, |i, v, _| whole.push((i, v, false))).unwrap();
        assert_eq!(sparse(text, |_| false), whole);
        assert_eq!(
            whole[0].1,
            json!({"kind": "ConfigMap", "items": [{"a": 1}]})
        );
        let error = for_each_document_sparse("items: [a\n", |_| false, |_, _, _, _| {});
        assert!(
            matches!(error, Err(ManifestError::Yaml { .. })),
            "{error:?}"
        );
    }

    #[test]
    fn json_is_read_and_written_as_json() {
        let manifest = parse_manifest("{\"kind\": \"List\", \"items\": []}").unwrap();
        assert_eq!(manifest.format, Format::Json);
        assert_eq!(
            manifest.documents,
            vec![json!({"kind": "List", "items": []})]
        );
    }

    #[test]
    fn errors_say_where() {
        let error = parse_manifest("a: 1\nb: [\n").unwrap_err();
        assert!(
            matches!(
                error,
                ManifestError::Yaml { line: 3, .. } | ManifestError::Yaml { line: 2, .. }
            ),
            "{error}"
        );
        let error = parse_manifest("{\"a\": }").unwrap_err();
        assert!(
            matches!(
                error,
                ManifestError::Json {
                    line: 1,
                    column: 7,
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn describes_objects() {
        assert_eq!(
            describe(&json!({"kind": "ConfigMap", "metadata": {"name": "a", "namespace": "n"}})),
            "ConfigMap n/a"
        );
        assert_eq!(describe(&json!({})), "object (unnamed)");
    }
}
