//! `config.yaml` as vMCP reads it.
//!
//! vMCP decodes its config with gopkg.in/yaml.v3, a Go port of libyaml, which
//! follows YAML 1.1 where YAML 1.2 readers differ (line breaks, the end of a
//! block scalar at the end of the text). Every decision here (which items
//! there are, what their names are, whether a reordered text means the same)
//! is taken on libyaml's reading of the text, through yaml_serde.

use yaml_serde::Value;

use super::{Refusal, RefusalReason};

/// The text's one document as libyaml reads it.
pub fn read(text: &str) -> Result<Value, Refusal> {
    yaml_serde::from_str(text).map_err(|error| {
        let detail = match error.location() {
            Some(at) => format!("line {} column {}: {error}", at.line(), at.column()),
            None => error.to_string(),
        };
        // yaml_serde reads one document; several are a shape this tool does
        // not reorder, not a broken config.
        let reason = if detail.contains("more than one document") {
            RefusalReason::Unsupported
        } else {
            RefusalReason::InvalidYaml
        };
        Refusal { reason, detail }
    })
}

/// The top-level `backends` sequence, if the root is a mapping that has one.
pub fn backends(root: &Value) -> Option<&Value> {
    root.as_mapping()?.get("backends")
}

/// Check that `reordered` is `original` with only the items of the
/// top-level `backends` sequence permuted: item `k` of `reordered` is item
/// `order[k]` of `original`. Mappings are compared in order, so nothing may
/// move but those items. The error names the first difference.
pub fn same_but_backends(
    original: &Value,
    reordered: &Value,
    order: &[usize],
) -> Result<(), String> {
    let (Some(original_root), Some(reordered_root)) =
        (original.as_mapping(), reordered.as_mapping())
    else {
        return Err("the root is no longer a mapping".to_owned());
    };
    if original_root.len() != reordered_root.len() {
        return Err("the top level has a different number of keys".to_owned());
    }
    for ((key, want), (got_key, got)) in original_root.iter().zip(reordered_root) {
        let at = |path: Path| path.within(Step::Key(key)).to_string();
        same(key, got_key).map_err(at)?;
        if key.as_str() != Some("backends") {
            same(want, got).map_err(at)?;
            continue;
        }
        let (Some(want), Some(got)) = (want.as_sequence(), got.as_sequence()) else {
            return Err("backends is no longer a list".to_owned());
        };
        if got.len() != want.len() || order.len() != want.len() {
            return Err(format!(
                "backends has {} items, not {}",
                got.len(),
                want.len()
            ));
        }
        for (position, (&from, got)) in order.iter().zip(got).enumerate() {
            let want = want
                .get(from)
                .ok_or_else(|| format!("no backends item {from} to move"))?;
            same(want, got).map_err(|path| {
                path.within(Step::Index(position))
                    .within(Step::Key(key))
                    .to_string()
            })?;
        }
    }
    Ok(())
}

/// Where two trees differ, built only once they do: the steps from the
/// difference up to the root.
struct Path<'v>(Vec<Step<'v>>);

enum Step<'v> {
    Key(&'v Value),
    Index(usize),
}

impl<'v> Path<'v> {
    fn within(mut self, step: Step<'v>) -> Self {
        self.0.push(step);
        self
    }
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (at, step) in self.0.iter().rev().enumerate() {
            match step {
                Step::Key(Value::String(key)) if at == 0 => write!(f, "{key}")?,
                Step::Key(Value::String(key)) => write!(f, ".{key}")?,
                Step::Key(_) => f.write_str(".<key>")?,
                Step::Index(index) => write!(f, "[{index}]")?,
            }
        }
        f.write_str(" reads differently")
    }
}

/// Strict equality: values, tags, and the order of mapping keys.
fn same<'v>(want: &'v Value, got: &Value) -> Result<(), Path<'v>> {
    let differs = || Err(Path(Vec::new()));
    match (want, got) {
        (Value::Sequence(want), Value::Sequence(got)) => {
            if want.len() != got.len() {
                return differs();
            }
            for (index, (want, got)) in want.iter().zip(got).enumerate() {
                same(want, got).map_err(|path| path.within(Step::Index(index)))?;
            }
            Ok(())
        }
        (Value::Mapping(want), Value::Mapping(got)) => {
            if want.len() != got.len() {
                return differs();
            }
            for ((want_key, want), (got_key, got)) in want.iter().zip(got) {
                same(want_key, got_key)
                    .and_then(|()| same(want, got))
                    .map_err(|path| path.within(Step::Key(want_key)))?;
            }
            Ok(())
        }
        (Value::Tagged(want), Value::Tagged(got)) => {
            if want.tag != got.tag {
                return differs();
            }
            same(&want.value, &got.value)
        }
        // Scalars: yaml_serde's equality (NaN equals NaN, as YAML has one).
        (want, got) if want == got => Ok(()),
        _ => differs(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Value {
        read(text).unwrap()
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
        assert_eq!(tree("a: |\n  x")["a"], Value::from("x"));
        assert_eq!(tree("a: |\n  x\n")["a"], Value::from("x\n"));
    }

    #[test]
    fn several_documents_are_unsupported_and_broken_text_is_invalid() {
        assert_eq!(
            read("a: 1\n---\nb: 2\n").unwrap_err().reason,
            RefusalReason::Unsupported
        );
        let invalid = read("a: [1\n").unwrap_err();
        assert_eq!(invalid.reason, RefusalReason::InvalidYaml);
        assert!(invalid.detail.starts_with("line "), "{}", invalid.detail);
    }

    #[test]
    fn only_the_backends_items_may_move() {
        let original = tree("x: 1\nbackends: [{name: b}, {name: a}]\ny: {p: 1, q: 2}\n");
        let swapped = tree("x: 1\nbackends: [{name: a}, {name: b}]\ny: {p: 1, q: 2}\n");
        assert_eq!(same_but_backends(&original, &swapped, &[1, 0]), Ok(()));
        assert_eq!(
            same_but_backends(&original, &swapped, &[0, 1]),
            Err("backends[0].name reads differently".to_owned())
        );
        for (text, differs) in [
            // a key order inside a map, a quoted number, a tag, top-level order
            (
                "x: 1\nbackends: [{name: a}, {name: b}]\ny: {q: 2, p: 1}\n",
                "y.p",
            ),
            (
                "x: '1'\nbackends: [{name: a}, {name: b}]\ny: {p: 1, q: 2}\n",
                "x",
            ),
            (
                "x: !t 1\nbackends: [{name: a}, {name: b}]\ny: {p: 1, q: 2}\n",
                "x",
            ),
            (
                "backends: [{name: a}, {name: b}]\nx: 1\ny: {p: 1, q: 2}\n",
                "x",
            ),
        ] {
            let error = same_but_backends(&original, &tree(text), &[1, 0]).unwrap_err();
            assert!(error.starts_with(differs), "{text}: {error}");
        }
    }

    #[test]
    fn nan_is_one_value() {
        let text = "a: .nan\nbackends: []\n";
        assert_eq!(same_but_backends(&tree(text), &tree(text), &[]), Ok(()));
    }
}
