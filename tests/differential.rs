//! Differential test of the reorder: generated sets of backends, written in
//! many hand-written and operator shapes and in several orders, are held to
//! an oracle that does not use the normalizer's code.
//!
//! For every config the test checks: the output reads under both YAML
//! readings (libyaml, which vMCP's yaml.v3 ports, and saphyr's YAML 1.2), and
//! under each it is the input but for the order of the top-level `backends`;
//! names are in Go byte order; the checksum is ToolHive's, computed here from
//! its definition; normalizing again changes nothing; and every order of one
//! set gives one text, the text the generator itself writes for the sorted
//! set. Inputs the two readings read differently must be left alone.
//!
//! `DIFFERENTIAL_SEED` and `DIFFERENTIAL_CONFIGS` change the run; a failure
//! prints the seed and the config.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use saphyr_parser::{Event, Parser, ScalarStyle};
use serde_json::{Value, json};
use vmcp_normalizer::normalize::{Outcome, RefusalReason, normalize_configmap};

const CONTENT_CHECKSUM: &str = "toolhive.stacklok.dev/content-checksum";

#[test]
fn generated_configs_hold_under_both_readings() {
    let seed = env_number("DIFFERENTIAL_SEED", 0x5eed_cafe);
    let configs = env_number("DIFFERENTIAL_CONFIGS", 20_000);
    let mut random = Random(seed);
    let mut tally = Tally::default();
    let mut written = 0;
    while written < configs {
        let case = Case::generate(&mut random);
        let orders = case.orders(&mut random);
        written += orders.len() as u64;
        let context = |order: &[usize]| {
            format!(
                "seed {seed:#x}, config {written}, order {order:?}:\n{}",
                case.render(order)
            )
        };
        let mut canonical_outputs = Vec::new();
        for order in &orders {
            let text = case.render(order);
            match check(&case, &text) {
                Ok(Checked::Canonical(output)) => canonical_outputs.push((order, output)),
                Ok(Checked::LeftAlone(reason)) => *tally.left_alone.entry(reason).or_default() += 1,
                Err(failure) => panic!("{failure}\n--- {}", context(order)),
            }
        }
        for (order, output) in &canonical_outputs {
            tally.normalized += 1;
            let sorted = case.render(&case.sorted_order());
            assert_eq!(
                output,
                &sorted,
                "not the sorted set as written\n--- {}",
                context(order)
            );
        }
    }
    eprintln!("{written} configs: {tally:?}");
    // The generator must mostly make configs the reorder can take: a test
    // whose cases are all refused would prove nothing.
    assert!(
        tally.normalized * 10 >= written * 7,
        "only {} of {written} configs were normalized: {tally:?}",
        tally.normalized
    );
}

#[derive(Debug, Default)]
struct Tally {
    normalized: u64,
    left_alone: BTreeMap<&'static str, u64>,
}

enum Checked {
    /// The canonical text (normalized, or already canonical).
    Canonical(String),
    /// Left as it was, for a reason the case allows.
    LeftAlone(&'static str),
}

/// Normalize one text and check every promise; the canonical text, or why
/// it was rightly left alone.
fn check(case: &Case, text: &str) -> Result<Checked, String> {
    let raw_separators = text.contains(['\u{85}', '\u{2028}', '\u{2029}']);
    let object = configmap(text);
    let libyaml_in = yaml_serde::from_str::<yaml_serde::Value>(text);
    let saphyr_in = saphyr_tree(text);
    let output = match normalize_configmap(&object) {
        Outcome::Normalized(normalized) => {
            let patched = normalized
                .apply_to(&object)
                .map_err(|e| format!("the patch does not apply: {e}"))?;
            let output = patched["data"]["config.yaml"]
                .as_str()
                .ok_or("no config.yaml")?
                .to_owned();
            check_checksum(&patched)?;
            if normalize_configmap(&patched) != Outcome::Unchanged {
                return Err("normalizing again changes it".into());
            }
            output
        }
        Outcome::Unchanged => text.to_owned(),
        Outcome::Refused(refusal) => {
            let allowed = match refusal.reason {
                RefusalReason::InvalidYaml => libyaml_in.is_err(),
                RefusalReason::Unsupported => raw_separators,
                RefusalReason::ProofFailed => case.risky(),
                RefusalReason::MalformedObject => false,
            };
            return if allowed {
                Ok(Checked::LeftAlone(refusal.reason.as_str()))
            } else {
                Err(format!("refused: {refusal}"))
            };
        }
        other => return Err(format!("unexpected outcome {other:?}")),
    };
    if output == text {
        return Ok(Checked::Canonical(output));
    }
    if raw_separators {
        return Err("text the two readings read differently was reordered".into());
    }

    // Under libyaml (vMCP's reading)...
    let libyaml_in = libyaml_in.map_err(|e| format!("reordered an unreadable input: {e}"))?;
    let libyaml_out = yaml_serde::from_str::<yaml_serde::Value>(&output)
        .map_err(|e| format!("output unreadable under libyaml: {e}"))?;
    same_but_backends_libyaml(&libyaml_in, &libyaml_out)?;
    let names: Vec<&str> = libyaml_out["backends"]
        .as_sequence()
        .ok_or("no backends list")?
        .iter()
        .map(|item| item["name"].as_str().unwrap_or_default())
        .collect();
    if !names.is_sorted() {
        return Err(format!("names not in Go byte order: {names:?}"));
    }
    // ... and under YAML 1.2, when the input reads there at all.
    if let Ok(saphyr_in) = saphyr_in {
        let saphyr_out =
            saphyr_tree(&output).map_err(|e| format!("output unreadable under saphyr: {e}"))?;
        same_but_backends_saphyr(&saphyr_in, &saphyr_out)?;
    }
    Ok(Checked::Canonical(output))
}

fn configmap(config: &str) -> Value {
    let mut object = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": "demo-vmcp-config", "namespace": "ns",
            "labels": {"toolhive.stacklok.io/component": "vmcp-config",
                       "toolhive.stacklok.io/managed-by": "toolhive-operator",
                       "toolhive.stacklok.io/virtual-mcp-server": "demo"},
            "annotations": {"note": "h\u{e9}"},
        },
        "data": {"config.yaml": config, "a.yaml": "x: 1\n"},
    });
    object["metadata"]["annotations"][CONTENT_CHECKSUM] = json!(toolhive_checksum(&object));
    object
}

/// ToolHive's ComputeConfigMapChecksum, from its definition: SHA-256 over
/// data, then labels, then annotations but the checksum, each key then value,
/// keys in byte order, nothing between.
fn toolhive_checksum(object: &Value) -> String {
    let mut fed = Vec::new();
    for (section, skip) in [
        (&object["data"], None),
        (&object["metadata"]["labels"], None),
        (&object["metadata"]["annotations"], Some(CONTENT_CHECKSUM)),
    ] {
        let mut pairs: Vec<(&String, &Value)> = section
            .as_object()
            .map(|map| map.iter().collect())
            .unwrap_or_default();
        pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        for (key, value) in pairs {
            if Some(key.as_str()) != skip {
                fed.extend_from_slice(key.as_bytes());
                fed.extend_from_slice(value.as_str().unwrap_or_default().as_bytes());
            }
        }
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, &fed);
    digest.as_ref().iter().fold(String::new(), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

fn check_checksum(patched: &Value) -> Result<(), String> {
    let stored = patched["metadata"]["annotations"][CONTENT_CHECKSUM].as_str();
    let wanted = toolhive_checksum(patched);
    if stored == Some(wanted.as_str()) {
        Ok(())
    } else {
        Err(format!("checksum {stored:?}, ToolHive's is {wanted}"))
    }
}

/// Everything but `backends` equal and in order; `backends` the same items.
fn same_but_backends_libyaml(
    input: &yaml_serde::Value,
    output: &yaml_serde::Value,
) -> Result<(), String> {
    let (Some(input), Some(output)) = (input.as_mapping(), output.as_mapping()) else {
        return Err("root is not a mapping".into());
    };
    let keys = |map: &yaml_serde::Mapping| map.keys().cloned().collect::<Vec<_>>();
    if keys(input) != keys(output) {
        return Err("top-level keys differ under libyaml".into());
    }
    for (key, value) in input {
        let other = &output[key];
        let same = if key.as_str() == Some("backends") {
            as_multiset(value) == as_multiset(other)
        } else {
            format!("{value:?}") == format!("{other:?}")
        };
        if !same {
            return Err(format!("{key:?} differs under libyaml"));
        }
    }
    Ok(())
}

fn as_multiset(list: &yaml_serde::Value) -> Vec<String> {
    let mut items: Vec<String> = list
        .as_sequence()
        .map(|items| items.iter().map(|item| format!("{item:?}")).collect())
        .unwrap_or_default();
    items.sort();
    items
}

/// A YAML 1.2 tree, scalar styles and tags kept, aliases expanded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    Scalar(String, String, Option<String>),
    Sequence(Vec<Node>, Option<String>),
    Mapping(Vec<(Node, Node)>, Option<String>),
}

fn saphyr_tree(text: &str) -> Result<Node, String> {
    let mut anchors: BTreeMap<usize, Node> = BTreeMap::new();
    let mut stack: Vec<(Node, usize)> = Vec::new();
    let mut documents = Vec::new();
    for event in Parser::new_from_str(text) {
        let (event, _) = event.map_err(|e| e.to_string())?;
        let tag = |tag: &Option<std::borrow::Cow<'_, saphyr_parser::Tag>>| {
            tag.as_ref().map(|t| format!("{}{}", t.handle, t.suffix))
        };
        let (node, anchor) = match event {
            Event::MappingStart(anchor, t) => {
                stack.push((Node::Mapping(Vec::new(), tag(&t)), anchor));
                continue;
            }
            Event::SequenceStart(anchor, t) => {
                stack.push((Node::Sequence(Vec::new(), tag(&t)), anchor));
                continue;
            }
            Event::MappingEnd | Event::SequenceEnd => stack.pop().ok_or("unbalanced")?,
            Event::Scalar(value, style, anchor, t) => {
                let style = match style {
                    ScalarStyle::Plain => "plain",
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => "quoted",
                    ScalarStyle::Literal | ScalarStyle::Folded => "block",
                };
                (
                    Node::Scalar(value.into_owned(), style.into(), tag(&t)),
                    anchor,
                )
            }
            Event::Alias(anchor) => (anchors.get(&anchor).cloned().ok_or("unknown alias")?, 0),
            _ => continue,
        };
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            Some((Node::Sequence(items, _), _)) => items.push(node),
            Some((Node::Mapping(pairs, _), _)) => match pairs.last_mut() {
                Some((_, value @ Node::Scalar(..))) if is_pending(value) => *value = node,
                _ => pairs.push((node, pending())),
            },
            _ => documents.push(node),
        }
    }
    match documents.len() {
        1 => documents.pop().ok_or_else(|| "no document".into()),
        n => Err(format!("{n} documents")),
    }
}

/// A mapping key waits for its value under a marker no reader produces.
fn pending() -> Node {
    Node::Scalar(String::new(), "pending".into(), None)
}

fn is_pending(node: &Node) -> bool {
    matches!(node, Node::Scalar(_, style, _) if style == "pending")
}

fn same_but_backends_saphyr(input: &Node, output: &Node) -> Result<(), String> {
    let (Node::Mapping(input, _), Node::Mapping(output, _)) = (input, output) else {
        return Err("root is not a mapping under saphyr".into());
    };
    if input.len() != output.len() {
        return Err("top-level keys differ under saphyr".into());
    }
    for ((key, value), (other_key, other)) in input.iter().zip(output) {
        let is_backends = matches!(key, Node::Scalar(k, _, _) if k == "backends");
        let same = key == other_key
            && match (is_backends, value, other) {
                (true, Node::Sequence(a, _), Node::Sequence(b, _)) => {
                    let (mut a, mut b) = (a.clone(), b.clone());
                    a.sort();
                    b.sort();
                    a == b
                }
                _ => value == other,
            };
        if !same {
            return Err(format!("{key:?} differs under saphyr"));
        }
    }
    Ok(())
}

// ---- the generator -------------------------------------------------------

/// One set of backends and one way of writing a config around it.
#[derive(Debug)]
struct Case {
    items: Vec<Item>,
    break_: &'static str,
    column: usize,
    prelude: String,
    key_comment: bool,
    head: Vec<String>,
    separators: Vec<Vec<String>>,
    trailer: Vec<String>,
    postlude: String,
    document_end: bool,
    final_break: bool,
}

#[derive(Debug, Clone)]
struct Item {
    name: String,
    lead: Vec<String>,
    /// Lines after the `- ` (the first is on the dash line), relative to the
    /// item's key column.
    body: Vec<(usize, String)>,
    flow: bool,
    /// Holds a block scalar whose final line break is not stripped.
    open_block: bool,
    /// ... and one that keeps trailing blank lines (`|+`).
    keep: bool,
}

impl Case {
    fn generate(r: &mut Random) -> Self {
        let operator = r.chance(30);
        let column = if operator { 4 } else { *r.pick(&[0, 2, 4]) };
        let nested = if operator { 2 } else { *r.pick(&[2, 4]) };
        let break_ = if !operator && r.chance(10) {
            "\r\n"
        } else {
            "\n"
        };
        let raw_separators = !operator && r.chance(3);
        let count = r.below(7) as usize;
        let mut items: Vec<Item> = Vec::with_capacity(count);
        for _ in 0..count {
            let item = if !items.is_empty() && r.chance(8) {
                // A duplicate name, or a whole duplicate item.
                let mut twin = items[r.below(items.len() as u64) as usize].clone();
                if !twin.flow && r.chance(50) {
                    twin.body.push((0, format!("weight: {}", r.below(9))));
                }
                twin
            } else {
                Item::generate(r, operator, nested, raw_separators)
            };
            items.push(item);
        }
        let blank = |r: &mut Random| -> String {
            if r.chance(80) {
                String::new()
            } else {
                " ".repeat(1 + r.below(3) as usize)
            }
        };
        let loose = |r: &mut Random, comment_at: usize| -> Vec<String> {
            // Blank lines, and comments only with a blank line after them:
            // a comment right above an item belongs to the item.
            let mut lines = Vec::new();
            if r.chance(60) {
                return lines;
            }
            if r.chance(30) {
                lines.push(format!("{}# between", " ".repeat(comment_at)));
            }
            for _ in 0..1 + r.below(2) {
                lines.push(blank(r));
            }
            lines
        };
        let separators = (0..count.saturating_sub(1))
            .map(|_| {
                if operator {
                    Vec::new()
                } else {
                    loose(r, column)
                }
            })
            .collect();
        let head = if operator {
            Vec::new()
        } else {
            loose(r, column)
        };
        let mut trailer = Vec::new();
        if !operator && r.chance(30) {
            trailer.push(blank(r));
            if r.chance(50) {
                trailer.push(format!(
                    "{}# after the list",
                    " ".repeat(*r.pick(&[0, column]))
                ));
            }
        }
        let mut prelude = String::new();
        if !operator && r.chance(10) {
            prelude.push_str("---\n");
        }
        if !operator && r.chance(20) {
            prelude.push_str("# vMCP config\n");
        }
        prelude.push_str("name: demo\ngroupRef: g\n");
        let postlude = if r.chance(70) {
            let pad = " ".repeat(nested.max(2));
            format!(
                "incomingAuth:\n{pad}type: anonymous\naggregation:\n{pad}conflictResolutionConfig:\n{pad}{pad}priorityOrder:\n{pad}{pad}{pad}- b\n{pad}{pad}{pad}- a\n"
            )
        } else {
            String::new()
        };
        let document_end = !operator && r.chance(5);
        let final_break = operator || document_end || !r.chance(10);
        Case {
            items,
            break_,
            column,
            prelude,
            key_comment: !operator && r.chance(10),
            head,
            separators,
            trailer,
            postlude,
            document_end,
            final_break,
        }
    }

    /// Up to three orders of the set, the first one random.
    fn orders(&self, r: &mut Random) -> Vec<Vec<usize>> {
        let count = self.items.len();
        (0..3)
            .map(|_| {
                let mut order: Vec<usize> = (0..count).collect();
                for i in (1..count).rev() {
                    order.swap(i, r.below(i as u64 + 1) as usize);
                }
                order
            })
            .collect()
    }

    /// By name in byte order, ties by the item's text as written.
    fn sorted_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.items.len()).collect();
        let texts: Vec<String> = self.items.iter().map(|item| self.item_text(item)).collect();
        order.sort_by(|&a, &b| {
            (&self.items[a].name, &texts[a]).cmp(&(&self.items[b].name, &texts[b]))
        });
        order
    }

    fn item_text(&self, item: &Item) -> String {
        let mut lines: Vec<String> = item
            .lead
            .iter()
            .map(|c| format!("{}{c}", " ".repeat(self.column)))
            .collect();
        for (at, (indent, line)) in item.body.iter().enumerate() {
            if at == 0 {
                lines.push(format!("{}- {line}", " ".repeat(self.column)));
            } else if line.is_empty() {
                lines.push(String::new());
            } else {
                lines.push(format!("{}{line}", " ".repeat(self.column + 2 + indent)));
            }
        }
        lines.join(self.break_)
    }

    fn render(&self, order: &[usize]) -> String {
        let b = self.break_;
        let mut lines: Vec<String> = self.prelude.lines().map(str::to_owned).collect();
        if self.items.is_empty() {
            lines.push("backends: []".into());
        } else {
            lines.push(if self.key_comment {
                "backends: # the set".into()
            } else {
                "backends:".into()
            });
            lines.extend(self.head.iter().cloned());
            for (slot, &index) in order.iter().enumerate() {
                lines.push(self.item_text(&self.items[index]));
                match self.separators.get(slot) {
                    Some(separator) => lines.extend(separator.iter().cloned()),
                    None => lines.extend(self.trailer.iter().cloned()),
                }
            }
        }
        lines.extend(self.postlude.lines().map(str::to_owned));
        if self.document_end {
            lines.push("...".into());
        }
        let mut text = lines.join(b);
        if self.final_break {
            text.push_str(b);
        }
        text
    }

    /// Cases where moving an item's text may change what it reads as, so
    /// the proof may refuse: a block scalar that keeps its final line break
    /// at the very end of a text without one, or a kept (`|+`) block scalar,
    /// whose trailing blank lines are content wherever they stand.
    fn risky(&self) -> bool {
        let open_at_end = !self.final_break && self.items.iter().any(|item| item.open_block);
        open_at_end || self.items.iter().any(|item| item.keep)
    }
}

impl Item {
    fn generate(r: &mut Random, operator: bool, nested: usize, raw_separators: bool) -> Self {
        let name = Self::name(r, operator);
        let name_written = quote(r, &name, operator);
        let url = format!(
            "http://mcp-{}-proxy.ns.svc.cluster.local:8080/mcp",
            r.below(1000)
        );
        let mut lead = Vec::new();
        if !operator && r.chance(15) {
            lead.push(format!("# about {}", name.escape_debug()));
        }
        if !operator && r.chance(12) {
            return Item {
                name,
                body: vec![(0, format!("{{name: {name_written}, url: \"{url}\"}}"))],
                lead,
                flow: true,
                open_block: false,
                keep: false,
            };
        }
        let mut body = Vec::new();
        if !operator && r.chance(10) {
            body.push((0, format!("url: {url}")));
            body.push((0, format!("name: {name_written}")));
        } else {
            body.push((0, format!("name: {name_written}")));
            body.push((0, format!("url: {url}")));
        }
        body.push((0, "transport: streamable-http".into()));
        if !operator && r.chance(10) {
            body.push((0, "# inside the item".into()));
        }
        if r.chance(60) {
            body.push((0, "metadata:".into()));
            for (key, value) in [
                ("group", "demo-group".to_owned()),
                ("port", "\"8080\"".to_owned()),
                (
                    "enabled",
                    if operator {
                        "\"yes\"".into()
                    } else {
                        quote(r, "yes", false)
                    },
                ),
                (
                    "team",
                    quote(r, "s\u{e9}curit\u{e9} \u{65e5}\u{672c}", operator),
                ),
            ] {
                if r.chance(70) {
                    body.push((nested, format!("{key}: {value}")));
                }
            }
        }
        if !operator && r.chance(10) {
            let anchor = format!("a{}", r.below(100));
            body.push((0, format!("primary: &{anchor} \"x\ty\"")));
            body.push((0, format!("copy: *{anchor}\t# same")));
        }
        if raw_separators && r.chance(50) {
            let c = *r.pick(&['\u{85}', '\u{2028}', '\u{2029}']);
            body.push((0, format!("odd: \"one{c}two\"")));
        }
        let (mut open_block, mut keep) = (false, false);
        if !operator && r.chance(25) {
            let style = *r.pick(&["|", "|-", "|+", ">", ">-"]);
            open_block = !style.ends_with('-');
            body.push((0, format!("note: {style}")));
            body.push((2, "first line".into()));
            if r.chance(40) {
                body.push((2, "# not a comment".into()));
            }
            if r.chance(30) {
                body.push((0, String::new()));
                body.push((2, "after a blank line".into()));
            }
            keep = style == "|+";
        }
        Item {
            name,
            lead,
            body,
            flow: false,
            open_block,
            keep,
        }
    }

    fn name(r: &mut Random, operator: bool) -> String {
        let pool: &[&str] = if operator {
            &[
                "context7",
                "fetch",
                "osv",
                "oci-registry",
                "mcp-optimizer",
                "github",
                "123",
                "true",
                "Zeta",
                "b10",
                "b9",
            ]
        } else {
            &[
                "context7",
                "fetch",
                "osv",
                "Fetch",
                "a",
                "a-b",
                "a_b",
                "aB",
                "123",
                "0x10",
                "yes",
                "null",
                "caf\u{e9}",
                "\u{65e5}\u{672c}",
                "\u{1f980}crab",
                "x: y",
                "a #b",
                "-dash",
                "'q'",
                "tab\tin",
                "new\nline",
                "\u{2028}sep",
                "back\\slash",
            ]
        };
        let base = *r.pick(pool);
        if r.chance(50) {
            format!("{base}{}", r.below(20))
        } else {
            base.to_owned()
        }
    }
}

/// `value` as a YAML scalar in some style both readings read as `value`.
fn quote(r: &mut Random, value: &str, operator: bool) -> String {
    let plain_safe = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && value.starts_with(|c: char| c.is_ascii_alphabetic())
        && !["yes", "no", "on", "off", "true", "false", "null", "y", "n"]
            .contains(&value.to_ascii_lowercase().as_str())
        && !(value.starts_with("0x") || value.chars().all(|c| c.is_ascii_digit()));
    let printable = value
        .chars()
        .all(|c| !c.is_control() && !matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}'));
    match r.below(4) {
        _ if operator && plain_safe => value.to_owned(),
        0 | 1 if plain_safe => value.to_owned(),
        0 | 2 if printable => format!("'{}'", value.replace('\'', "''")),
        _ => {
            let mut out = String::from("\"");
            for c in value.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    '\u{85}' => out.push_str("\\N"),
                    '\u{2028}' => out.push_str("\\L"),
                    '\u{2029}' => out.push_str("\\P"),
                    c if !c.is_ascii() && r.chance(30) => {
                        let _ = write!(out, "\\U{:08x}", u32::from(c));
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
    }
}

/// splitmix64: a small, seeded, reproducible source of choices.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[self.below(from.len() as u64) as usize]
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => {
            let value = value.trim();
            let parsed = match value.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => value.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("{name}={value} is not a number"))
        }
        Err(_) => default,
    }
}
