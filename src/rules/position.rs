//! Where each node of a rules file stands, so a validation error can say
//! line and column (libyaml through yaml_serde gives positions only for
//! its own errors).

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

/// A line and column, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

enum Frame {
    Map {
        key: Option<String>,
        awaiting_key: bool,
    },
    Seq {
        next: usize,
    },
}

/// The position of every node of the first document, by its path written
/// as `rules[0].sets[1].path`.
pub fn positions(text: &str) -> HashMap<String, Position> {
    let mut found = HashMap::new();
    let mut stack: Vec<(String, Frame)> = Vec::new();
    for event in Parser::new_from_str(text) {
        let Ok((event, span)) = event else { break };
        let position = Position {
            line: span.start.line(),
            column: span.start.col() + 1,
        };
        let is_node = matches!(
            event,
            Event::Scalar(..)
                | Event::Alias(_)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
        );
        if is_node {
            // A key: remember it and its place.
            if let Some((path, Frame::Map { key, awaiting_key })) = stack.last_mut()
                && *awaiting_key
            {
                *awaiting_key = false;
                if let Event::Scalar(value, ..) = &event {
                    let child = join(path, value);
                    found.entry(child).or_insert(position);
                    *key = Some(value.to_string());
                } else {
                    *key = None;
                }
                if let Event::Scalar(..) | Event::Alias(_) = event {
                    continue;
                }
                // A complex key: walk it off the path.
                let container = container(&event);
                stack.push((String::from("?"), container));
                continue;
            }
            let path = match stack.last_mut() {
                None => String::new(),
                Some((path, Frame::Map { key, awaiting_key })) => {
                    *awaiting_key = true;
                    match key.take() {
                        Some(key) => join(path, &key),
                        None => "?".to_owned(),
                    }
                }
                Some((path, Frame::Seq { next })) => {
                    *next += 1;
                    format!("{path}[{}]", *next - 1)
                }
            };
            found.entry(path.clone()).or_insert(position);
            if matches!(event, Event::SequenceStart(..) | Event::MappingStart(..)) {
                stack.push((path, container(&event)));
            }
        } else if matches!(event, Event::SequenceEnd | Event::MappingEnd) {
            stack.pop();
        } else if matches!(event, Event::DocumentEnd) {
            break;
        }
    }
    found
}

fn container(event: &Event<'_>) -> Frame {
    if matches!(event, Event::SequenceStart(..)) {
        Frame::Seq { next: 0 }
    } else {
        Frame::Map {
            key: None,
            awaiting_key: true,
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_found_by_path() {
        let text = "kind: X\nrules:\n  - name: a\n    sets:\n      - path: p\n        by: [1]\n";
        let found = positions(text);
        assert_eq!(found["kind"], Position { line: 1, column: 1 });
        assert_eq!(found["rules[0].name"], Position { line: 3, column: 5 });
        assert_eq!(
            found["rules[0].sets[0].path"],
            Position { line: 5, column: 9 }
        );
        assert_eq!(
            found["rules[0].sets[0].by"],
            Position { line: 6, column: 9 }
        );
    }
}
