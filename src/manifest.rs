//! Kubernetes manifests as `kubectl` reads and prints them: YAML streams of
//! one or more documents, or JSON, either possibly a `kind: List`.

use serde::Deserialize;
use serde_json::Value;

/// How a manifest was written, so it can be written back the same way.
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
    #[error("cannot write the manifest: {0}")]
    Render(String),
}

/// Read every document of `text`. Empty documents are dropped.
pub fn parse_manifest(text: &str) -> Result<Manifest, ManifestError> {
    if text.trim_start().starts_with(['{', '[']) {
        let documents = serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ManifestError::Json {
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            })?;
        return Ok(Manifest {
            format: Format::Json,
            documents,
        });
    }
    let mut documents = Vec::new();
    for document in yaml_serde::Deserializer::from_str(text) {
        let value = Value::deserialize(document).map_err(|e| match e.location() {
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
        })?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    Ok(Manifest {
        format: Format::Yaml,
        documents,
    })
}

/// Write the documents back in the manifest's format.
pub fn render_manifest(manifest: &Manifest) -> Result<String, ManifestError> {
    let mut out = String::new();
    for (index, document) in manifest.documents.iter().enumerate() {
        match manifest.format {
            Format::Json => {
                let text = serde_json::to_string_pretty(document)
                    .map_err(|e| ManifestError::Render(e.to_string()))?;
                out.push_str(&text);
                out.push('\n');
            }
            Format::Yaml => {
                if index > 0 {
                    out.push_str("---\n");
                }
                out.push_str(
                    &yaml_serde::to_string(document)
                        .map_err(|e| ManifestError::Render(e.to_string()))?,
                );
            }
        }
    }
    Ok(out)
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
        let again = parse_manifest(&render_manifest(&manifest).unwrap()).unwrap();
        assert_eq!(again, manifest);
    }

    #[test]
    fn json_is_read_and_written_as_json() {
        let manifest = parse_manifest("{\"kind\": \"List\", \"items\": []}").unwrap();
        assert_eq!(manifest.format, Format::Json);
        assert!(render_manifest(&manifest).unwrap().starts_with('{'));
    }

    #[test]
    fn multi_line_strings_survive_a_round_trip() {
        let config = "name: x\nbackends:\n    - name: a\n      url: '{w}'\n";
        let manifest = Manifest {
            format: Format::Yaml,
            documents: vec![json!({"data": {"config.yaml": config, "n": "8080", "t": "true"}})],
        };
        let again = parse_manifest(&render_manifest(&manifest).unwrap()).unwrap();
        assert_eq!(again, manifest);
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
