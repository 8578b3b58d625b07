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
