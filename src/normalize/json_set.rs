//! Put the elements of every array at a declared path of a JSON text in
//! order of their key, moving each element's bytes whole.
//!
//! Go's encoding/json writes arrays element by element with the same
//! separator between each (compact `,` or indented `,\n` and spaces), so
//! moving element bytes between those separators gives exactly the text Go
//! writes for the sorted slice. The result is parsed again and must equal
//! the input but for the permutation before it is returned.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;
use serde_json::value::RawValue;

use super::set_path::{Segment, SetSpec, SortKey};
use super::yaml_set::{Reordered, unsupported};
use super::{Refusal, RefusalReason};

/// One array found at the path: its elements as slices of the text.
struct Found<'t> {
    elements: Vec<&'t RawValue>,
}

/// Reorder every array at `spec.path` of the JSON `text` by `spec.key`.
pub fn sort_json_sets(text: &str, spec: &SetSpec) -> Result<Option<Reordered>, Refusal> {
    let root: &RawValue = serde_json::from_str(text).map_err(invalid)?;
    let mut found = Vec::new();
    collect(
        root,
        spec.path.segments(),
        &spec.path.to_string(),
        &mut found,
    )?;
    let path = spec.path.to_string();

    // (start, end, replacement) for every element that moves.
    let mut moves: Vec<(usize, usize, &str)> = Vec::new();
    let mut orders = Vec::with_capacity(found.len());
    let mut items = 0;
    for array in &found {
        let keys = array
            .elements
            .iter()
            .enumerate()
            .map(|(index, element)| sort_key(element, &spec.key, &path, index))
            .collect::<Result<Vec<_>, _>>()?;
        let mut order: Vec<usize> = (0..keys.len()).collect();
        // Go's `<` on strings compares bytes; ties fall back to the
        // element's own text so the order is total.
        let text_of = |index: usize| array.elements[index].get();
        order.sort_by(|&a, &b| (&keys[a], text_of(a)).cmp(&(&keys[b], text_of(b))));
        if order.iter().enumerate().any(|(slot, &from)| slot != from) {
            items += order.len();
            for (slot, &from) in order.iter().enumerate() {
                let (start, end) = span(text, array.elements[slot])?;
                moves.push((start, end, array.elements[from].get()));
            }
        }
        orders.push(order);
    }
    if moves.is_empty() {
        return Ok(None);
    }
    moves.sort_by_key(|&(start, ..)| start);
    let mut reordered = String::with_capacity(text.len());
    let mut cursor = 0;
    for (start, end, element) in moves {
        if start < cursor {
            return Err(unsupported(&format!("{path}: arrays that overlap")));
        }
        reordered.push_str(&text[cursor..start]);
        reordered.push_str(element);
        cursor = end;
    }
    reordered.push_str(&text[cursor..]);
    prove(text, spec, &orders, &reordered)?;
    Ok(Some(Reordered {
        text: reordered,
        items,
    }))
}

/// Every array at `segments` under `value`, in text order.
fn collect<'t>(
    value: &'t RawValue,
    segments: &[Segment],
    path: &str,
    found: &mut Vec<Found<'t>>,
) -> Result<(), Refusal> {
    let text = value.get();
    match segments.split_first() {
        None => match text.as_bytes().first() {
            Some(b'[') => found.push(Found {
                elements: serde_json::from_str(text).map_err(invalid)?,
            }),
            Some(b'n') => {}
            _ => return Err(unsupported(&format!("a {path} value that is not an array"))),
        },
        Some((Segment::Key(key), rest)) => {
            if text.starts_with('{') {
                let object: BTreeMap<Cow<'t, str>, &'t RawValue> =
                    serde_json::from_str(text).map_err(invalid)?;
                if let Some(child) = object.get(key.as_str()) {
                    collect(child, rest, path, found)?;
                }
            }
        }
        Some((Segment::Each, rest)) => {
            if text.starts_with('[') {
                let elements: Vec<&'t RawValue> = serde_json::from_str(text).map_err(invalid)?;
                for element in elements {
                    collect(element, rest, path, found)?;
                }
            }
        }
    }
    Ok(())
}

/// The element's sort key: the string it is, or the string of its field.
fn sort_key(
    element: &RawValue,
    key: &SortKey,
    path: &str,
    index: usize,
) -> Result<String, Refusal> {
    let number = index + 1;
    match key {
        SortKey::Item => serde_json::from_str::<String>(element.get())
            .map_err(|_| unsupported(&format!("{path} item {number} that is not a string"))),
        SortKey::Field(field) => {
            serde_json::from_str::<BTreeMap<Cow<'_, str>, Value>>(element.get())
                .ok()
                .and_then(|object| match object.get(field.as_str()) {
                    Some(Value::String(key)) => Some(key.clone()),
                    _ => None,
                })
                .ok_or_else(|| unsupported(&format!("{path} item {number} has no string {field}")))
        }
    }
}

/// Where a raw value stands in `text`: it is a slice of it. Checked rather
/// than trusted.
fn span(text: &str, raw: &RawValue) -> Result<(usize, usize), Refusal> {
    let start = (raw.get().as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
    let end = start.wrapping_add(raw.get().len());
    if text.get(start..end) == Some(raw.get()) {
        Ok((start, end))
    } else {
        Err(proof_failed("an element was not found in place"))
    }
}

/// The reordered text must parse as the original with each array's
/// elements permuted: element `k` of array `a` is element `orders[a][k]`.
fn prove(
    original: &str,
    spec: &SetSpec,
    orders: &[Vec<usize>],
    reordered: &str,
) -> Result<(), Refusal> {
    let mut expected: Value =
        serde_json::from_str(original).map_err(|_| proof_failed("the original does not read"))?;
    let mut arrays = Vec::new();
    arrays_at(&mut expected, spec.path.segments(), &mut arrays);
    if arrays.len() != orders.len() {
        return Err(proof_failed("the arrays are not found again"));
    }
    for (array, order) in arrays.into_iter().zip(orders) {
        let taken = std::mem::take(array);
        if taken.len() != order.len() {
            return Err(proof_failed("an array changed length"));
        }
        *array = order.iter().map(|&from| taken[from].clone()).collect();
    }
    match serde_json::from_str::<Value>(reordered) {
        Ok(got) if got == expected => Ok(()),
        Ok(_) => Err(proof_failed(
            "it does not read as the original but for the order",
        )),
        Err(error) => Err(proof_failed(&format!("it does not read back: {error}"))),
    }
}

/// Every array at `segments` under `value`, in document order.
pub(super) fn arrays_at<'v>(
    value: &'v mut Value,
    segments: &[Segment],
    found: &mut Vec<&'v mut Vec<Value>>,
) {
    match (segments.split_first(), value) {
        (None, Value::Array(array)) => found.push(array),
        (Some((Segment::Key(key), rest)), Value::Object(object)) => {
            if let Some(child) = object.get_mut(key.as_str()) {
                arrays_at(child, rest, found);
            }
        }
        (Some((Segment::Each, rest)), Value::Array(array)) => {
            for child in array {
                arrays_at(child, rest, found);
            }
        }
        _ => {}
    }
}

fn invalid(error: serde_json::Error) -> Refusal {
    Refusal {
        reason: RefusalReason::InvalidYaml,
        detail: format!("not JSON: {error}"),
    }
}

fn proof_failed(what: &str) -> Refusal {
    Refusal {
        reason: RefusalReason::ProofFailed,
        detail: format!("reordered JSON is not equal to the original: {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(text: &str, spec: &SetSpec) -> String {
        sort_json_sets(text, spec)
            .unwrap()
            .map_or_else(|| text.to_owned(), |r| r.text)
    }

    #[test]
    fn compact_and_indented_arrays_keep_their_separators() {
        let strings = SetSpec::of("hosts", None);
        assert_eq!(
            sorted(
                r#"{"hosts":["b.example","a.example","c"],"z":[2,1]}"#,
                &strings
            ),
            r#"{"hosts":["a.example","b.example","c"],"z":[2,1]}"#
        );
        let indented = "{\n  \"hosts\": [\n    \"b\",\n    \"\\u0061\"\n  ]\n}\n";
        assert_eq!(
            sorted(indented, &strings),
            "{\n  \"hosts\": [\n    \"\\u0061\",\n    \"b\"\n  ]\n}\n"
        );
        assert_eq!(
            sorted(r#"["b","a"]"#, &SetSpec::of(".", None)),
            r#"["a","b"]"#
        );
    }

    #[test]
    fn arrays_of_objects_at_nested_paths_sort_by_a_field() {
        let text = r#"{"groups":[{"rules":[{"id":"b","x":1},{"id":"a"}]},{"rules":null},{"rules":[{"id":"d"},{"id":"c"}]}]}"#;
        assert_eq!(
            sorted(text, &SetSpec::of("groups[*].rules", Some("id"))),
            r#"{"groups":[{"rules":[{"id":"a"},{"id":"b","x":1}]},{"rules":null},{"rules":[{"id":"c"},{"id":"d"}]}]}"#
        );
    }

    #[test]
    fn every_order_gives_one_text_and_a_second_run_changes_nothing() {
        let spec = SetSpec::of("s", None);
        let mut outputs = std::collections::BTreeSet::new();
        for order in [
            ["a", "b", "c"],
            ["c", "a", "b"],
            ["b", "c", "a"],
            ["c", "b", "a"],
        ] {
            let text = format!(
                r#"{{"s": ["{}", "{}", "{}"]}}"#,
                order[0], order[1], order[2]
            );
            let once = sorted(&text, &spec);
            assert_eq!(sort_json_sets(&once, &spec), Ok(None));
            outputs.insert(once);
        }
        assert_eq!(outputs.len(), 1, "{outputs:?}");
    }

    #[test]
    fn what_cannot_be_sorted_is_refused_with_a_reason() {
        use RefusalReason::*;
        for (text, path, key, reason, detail) in [
            (
                r#"{"s":["b",1]}"#,
                "s",
                None,
                Unsupported,
                "item 2 that is not a string",
            ),
            (
                r#"{"s":[{"id":"b"},{}]}"#,
                "s",
                Some("id"),
                Unsupported,
                "item 2 has no string id",
            ),
            (r#"{"s":{"a":1}}"#, "s", None, Unsupported, "not an array"),
            (r#"{"s":["b","a"]"#, "s", None, InvalidYaml, "not JSON"),
        ] {
            let refusal = sort_json_sets(text, &SetSpec::of(path, key)).unwrap_err();
            assert_eq!(refusal.reason, reason, "{text}: {refusal}");
            assert!(refusal.detail.contains(detail), "{text}: {refusal}");
        }
    }

    #[test]
    fn the_proof_names_a_result_that_does_not_read_as_the_original() {
        let spec = SetSpec::of("s", None);
        let original = r#"{"s":["b","a"],"t":1}"#;
        assert_eq!(
            prove(original, &spec, &[vec![1, 0]], r#"{"s":["a","b"],"t":1}"#),
            Ok(())
        );
        for reordered in [
            r#"{"s":["a","b"],"t":2}"#,
            r#"{"s":["b","a"],"t":1}"#,
            r#"{"s":["a","b","c"],"t":1}"#,
            r#"{"s":["a","b"],"t":1"#,
        ] {
            let refusal = prove(original, &spec, &[vec![1, 0]], reordered).unwrap_err();
            assert_eq!(refusal.reason, RefusalReason::ProofFailed, "{reordered}");
        }
    }
}
