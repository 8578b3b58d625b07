//! Sets in the object's own fields (a list under `spec` of a custom
//! resource, say): each list at the path is replaced by its items in order
//! of their key. The items are the received values, moved whole.

use json_patch::jsonptr::PointerBuf;
use serde_json::Value;

use super::Refusal;
use super::set_path::{Segment, SetSpec, SortKey};
use super::yaml_set::unsupported;

/// One list to replace: where, with what, and how many items it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct SortedList {
    pub pointer: PointerBuf,
    pub items: Vec<Value>,
}

/// Every list at `spec.path` of `object` whose items are not in order, with
/// its items sorted by `spec.key`.
pub fn sort_object_sets(object: &Value, spec: &SetSpec) -> Result<Vec<SortedList>, Refusal> {
    let path = spec.path.to_string();
    let mut found = Vec::new();
    lists_at(
        object,
        spec.path.segments(),
        &mut Vec::new(),
        &path,
        &mut found,
    )?;
    let mut sorted = Vec::new();
    for (tokens, list) in found {
        let keys = list
            .iter()
            .enumerate()
            .map(|(index, item)| item_key(item, &spec.key, &path, index))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.windows(2).all(|pair| pair[0] < pair[1]) {
            continue;
        }
        let texts: Vec<String> = list.iter().map(Value::to_string).collect();
        let mut order: Vec<usize> = (0..list.len()).collect();
        // Byte order of the key (Go's `<`); ties by the item's JSON text.
        order.sort_by(|&a, &b| (keys[a], &texts[a]).cmp(&(keys[b], &texts[b])));
        if order.iter().enumerate().all(|(slot, &from)| slot == from) {
            continue;
        }
        // Moved whole: the new list is the received items, permuted.
        let items: Vec<Value> = order.iter().map(|&from| list[from].clone()).collect();
        sorted.push(SortedList {
            pointer: PointerBuf::from_tokens(tokens),
            items,
        });
    }
    Ok(sorted)
}

fn lists_at<'v>(
    value: &'v Value,
    segments: &[Segment],
    tokens: &mut Vec<String>,
    path: &str,
    found: &mut Vec<(Vec<String>, &'v Vec<Value>)>,
) -> Result<(), Refusal> {
    match (segments.split_first(), value) {
        (None, Value::Array(list)) => found.push((tokens.clone(), list)),
        (None, Value::Null) => {}
        (None, _) => return Err(unsupported(&format!("a {path} value that is not a list"))),
        (Some((Segment::Key(key), rest)), Value::Object(object)) => {
            if let Some(child) = object.get(key.as_str()) {
                tokens.push(key.clone());
                lists_at(child, rest, tokens, path, found)?;
                tokens.pop();
            }
        }
        (Some((Segment::Each, rest)), Value::Array(list)) => {
            for (index, child) in list.iter().enumerate() {
                tokens.push(index.to_string());
                lists_at(child, rest, tokens, path, found)?;
                tokens.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

fn item_key<'v>(
    item: &'v Value,
    key: &SortKey,
    path: &str,
    index: usize,
) -> Result<&'v str, Refusal> {
    let number = index + 1;
    match key {
        SortKey::Item => item
            .as_str()
            .ok_or_else(|| unsupported(&format!("{path} item {number} that is not a string"))),
        SortKey::Field(field) => item
            .get(field.as_str())
            .and_then(Value::as_str)
            .ok_or_else(|| unsupported(&format!("{path} item {number} has no string {field}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_under_spec_are_sorted_and_pointed_at() {
        let object = json!({"spec": {"routes": [{"host": "b", "x": [2, 1]}, {"host": "a"}], "order": ["b", "a"]}});
        assert_eq!(
            sort_object_sets(&object, &SetSpec::of("spec.routes", Some("host"))),
            Ok(vec![SortedList {
                pointer: PointerBuf::from_tokens(["spec", "routes"]),
                items: vec![json!({"host": "a"}), json!({"host": "b", "x": [2, 1]})],
            }])
        );
        let nested = json!({"spec": {"groups": [{"hosts": ["y", "x"]}, {"hosts": ["p"]}, {"hosts": ["d", "c"]}]}});
        let sorted = sort_object_sets(&nested, &SetSpec::of("spec.groups[*].hosts", None)).unwrap();
        assert_eq!(
            sorted
                .iter()
                .map(|list| list.pointer.to_string())
                .collect::<Vec<_>>(),
            ["/spec/groups/0/hosts", "/spec/groups/2/hosts"]
        );
    }

    #[test]
    fn in_order_lists_are_left_and_others_refused() {
        let sorted = json!({"spec": {"s": ["a", "b"]}});
        assert_eq!(
            sort_object_sets(&sorted, &SetSpec::of("spec.s", None)),
            Ok(vec![])
        );
        for (object, detail) in [
            (
                json!({"spec": {"s": ["b", 1]}}),
                "item 2 that is not a string",
            ),
            (json!({"spec": {"s": {"a": 1}}}), "not a list"),
        ] {
            let refusal = sort_object_sets(&object, &SetSpec::of("spec.s", None)).unwrap_err();
            assert!(refusal.detail.contains(detail), "{refusal}");
        }
    }
}
