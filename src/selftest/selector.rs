//! Kubernetes label selectors (`matchLabels`, `matchExpressions`), evaluated
//! the way the API server evaluates a webhook's `namespaceSelector` and
//! `objectSelector`, to explain why a webhook was not called.

use std::collections::BTreeMap;

use serde_json::Value;

/// Labels of an object: key to value.
pub type Labels = BTreeMap<String, String>;

/// The labels under `metadata.labels` of `object` (non-strings ignored).
pub fn labels_of(object: &Value) -> Labels {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Why `selector` does not select `labels`: the first requirement that fails,
/// in words; `None` when it selects them. An absent or empty selector selects
/// everything, as in a webhook configuration.
pub fn unmatched(selector: Option<&Value>, labels: &Labels) -> Option<String> {
    let selector = selector.filter(|s| !s.is_null())?;
    if let Some(match_labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (key, want) in match_labels {
            let want = want.as_str().unwrap_or_default();
            if labels.get(key).map(String::as_str) != Some(want) {
                return Some(format!("needs label {key}={want}"));
            }
        }
    }
    let expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    expressions
        .iter()
        .find_map(|expression| unmatched_expression(expression, labels))
}

fn unmatched_expression(expression: &Value, labels: &Labels) -> Option<String> {
    let key = expression.get("key").and_then(Value::as_str).unwrap_or("");
    let operator = expression
        .get("operator")
        .and_then(Value::as_str)
        .unwrap_or("");
    let values: Vec<&str> = expression
        .get("values")
        .and_then(Value::as_array)
        .map(|values| values.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let value = labels.get(key).map(String::as_str);
    let selected = match operator {
        "In" => value.is_some_and(|v| values.contains(&v)),
        "NotIn" => value.is_none_or(|v| !values.contains(&v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        // The API server rejects other operators; selecting nothing is the
        // safe reading.
        _ => false,
    };
    if selected {
        return None;
    }
    let shown = match value {
        Some(value) => format!("{key}={value}"),
        None => format!("no label {key}"),
    };
    Some(format!("{shown} fails {key} {operator} {values:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn empty_or_absent_selectors_select_everything() {
        assert_eq!(unmatched(None, &Labels::new()), None);
        assert_eq!(unmatched(Some(&json!({})), &Labels::new()), None);
        assert_eq!(unmatched(Some(&Value::Null), &Labels::new()), None);
    }

    #[test]
    fn the_charts_namespace_selector() {
        let selector = json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name",
            "operator": "NotIn", "values": ["vmcp-system", "kube-system"]}]});
        let default = labels(&[("kubernetes.io/metadata.name", "default")]);
        assert_eq!(unmatched(Some(&selector), &default), None);
        let own = labels(&[("kubernetes.io/metadata.name", "vmcp-system")]);
        let why = unmatched(Some(&selector), &own).unwrap();
        assert!(
            why.contains("kubernetes.io/metadata.name=vmcp-system fails"),
            "{why}"
        );
    }

    #[test]
    fn every_operator_and_match_labels() {
        let have = labels(&[("a", "1"), ("b", "2")]);
        let select = |selector: Value| unmatched(Some(&selector), &have).is_none();
        assert!(select(json!({"matchLabels": {"a": "1"}})));
        assert!(!select(json!({"matchLabels": {"a": "2"}})));
        assert!(!select(json!({"matchLabels": {"c": "1"}})));
        let expression = |operator: &str, key: &str, values: Value| {
            select(
                json!({"matchExpressions": [{"key": key, "operator": operator, "values": values}]}),
            )
        };
        assert!(expression("In", "a", json!(["0", "1"])));
        assert!(!expression("In", "a", json!(["0"])));
        assert!(!expression("In", "c", json!(["1"])));
        assert!(expression("NotIn", "a", json!(["0"])));
        assert!(expression("NotIn", "c", json!(["0"])));
        assert!(!expression("NotIn", "a", json!(["1"])));
        assert!(expression("Exists", "a", Value::Null));
        assert!(!expression("Exists", "c", Value::Null));
        assert!(expression("DoesNotExist", "c", Value::Null));
        assert!(!expression("DoesNotExist", "a", Value::Null));
        assert!(!expression("Matches", "a", json!(["1"])));
    }

    #[test]
    fn labels_are_read_from_metadata() {
        let object = json!({"metadata": {"labels": {"a": "1", "n": 2}}});
        assert_eq!(labels_of(&object), labels(&[("a", "1")]));
        assert_eq!(labels_of(&json!({})), Labels::new());
    }
}
