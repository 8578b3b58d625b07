//! The order-churn detector: on an UPDATE, tell whether an object changed only
//! in the order of some lists, and name those lists.
//!
//! A producer that builds a list from a Go map iteration writes the same set
//! in a new order on every reconcile; every new order is a new checksum and a
//! rollout (toolhive#3448). The detector finds such a list before anyone
//! declares it a set: old and new are compared with every list taken as a
//! multiset, and when that makes them equal, each list whose order differs is
//! reported by its path. A change of content (a value, an item added or gone,
//! a different count of duplicates) is not churn, and nothing is reported.
//!
//! What is compared is what a writer sets: `spec`, `data`, labels,
//! annotations, owner references and finalizers, never `status` or the fields
//! the apiserver keeps (`resourceVersion`, `managedFields`, ...). Derived
//! checksum annotations are left out, since they change with any order. A
//! ConfigMap data value and kubectl's last-applied copy are read as documents
//! (YAML as vMCP reads it, through libyaml; JSON with serde_json), but only
//! when old and new texts differ: an unchanged text costs no reading. Mapping
//! key order is not compared: yaml.v3 and encoding/json write map keys sorted
//! and struct fields in a fixed order, and no reader gives it a meaning.
//!
//! Pure: no I/O, no clock. The admission path adds warnings, an audit
//! annotation, a log line and metrics from what [`detect`] returns.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use serde_json::Value;

use crate::recognize::{
    CONTENT_CHECKSUM_ANNOTATION, LAST_APPLIED_ANNOTATION, RUNCONFIG_CHECKSUM_ANNOTATION, at,
    is_vmcp_configmap, vmcp_deployment_configmap,
};
use crate::workload::WorkloadKind;

/// Documents larger than this are not read (the detector gives up): the
/// server's large-document limit, above which normalization leaves the
/// runtime's workers for the blocking pool.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// The deepest nesting of lists, mappings and tags compared, from the object's
/// root through any document in it. vMCP configs and Deployments stay under
/// 15; the bound keeps the recursion here shallow whatever a writer sends.
pub const MAX_DEPTH: usize = 32;

/// The most lists reported for one object; more are summed up as "more".
pub const MAX_REPORTED_LISTS: usize = 8;

/// A reported path longer than this is cut (a key can be 63+253 bytes).
const MAX_PATH_BYTES: usize = 200;

/// The kinds whose writes the webhook sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ConfigMap,
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl Kind {
    /// Whether the kind has a pod template that follows a checksum.
    fn is_workload(self) -> bool {
        self != Kind::ConfigMap
    }
}

impl From<WorkloadKind> for Kind {
    fn from(kind: WorkloadKind) -> Self {
        match kind {
            WorkloadKind::Deployment => Kind::Deployment,
            WorkloadKind::StatefulSet => Kind::StatefulSet,
            WorkloadKind::DaemonSet => Kind::DaemonSet,
        }
    }
}

/// Checksum annotations a rule derives from content elsewhere: left out of
/// the comparison, as ToolHive's are, since they change with any order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Derived<'a> {
    /// A declared rule's checksum annotation on the object itself.
    pub checksum: Option<&'a str>,
    /// A rule's workload link, when the object is a workload it links.
    pub workload: Option<LinkedChecksum<'a>>,
}

/// A workload link's pod-template annotation and the ConfigMap it follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkedChecksum<'a> {
    pub annotation: &'a str,
    /// `None` when the workload names no usable ConfigMap.
    pub configmap: Option<&'a str>,
}

/// Which rule, if any, puts a list back in order (the `rule` metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// The built-in normalizer reorders this list (vMCP `backends`).
    ToolhiveVmcp,
    /// A rule of the rules file (mode `mutate`) reorders it. One label value
    /// whatever the file holds, so the metric's cardinality stays fixed.
    Declared,
    /// No rule does: the detector only warns.
    None,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::ToolhiveVmcp => "toolhive-vmcp",
            Rule::Declared => "declared",
            Rule::None => "none",
        }
    }
}

/// One list whose order alone changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReorderedList {
    /// Dotted keys, `[*]` for list items, `key: ` before the path inside a
    /// ConfigMap data value: `config.yaml: backends`,
    /// `spec.template.spec.containers[*].env`.
    pub path: String,
    pub rule: Rule,
}

/// What the detector found in one UPDATE.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderChurn {
    /// At most [`MAX_REPORTED_LISTS`], in document order, parents first.
    pub lists: Vec<ReorderedList>,
    /// More lists changed only in order than are listed.
    pub more: bool,
    /// A workload whose pod template changed only in its checksum
    /// annotation (`runconfig-checksum`, or a workload link's).
    pub checksum_only_rollout: Option<ChecksumOnlyRollout>,
}

impl OrderChurn {
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty() && self.checksum_only_rollout.is_none()
    }
}

/// A pod-template change whose only difference is the checksum annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumOnlyRollout {
    /// The ConfigMap the checksum follows: the workload link's, else the
    /// `vmcp-config` volume's when the workload is a vMCP Deployment.
    pub configmap: Option<String>,
}

/// Why the detector did not compare an object: it never costs more than
/// these bounds allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skipped {
    #[error("a changed document is {bytes} bytes, over the detector's {MAX_DOCUMENT_BYTES}")]
    TooLarge { bytes: usize },
    #[error("nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

impl Skipped {
    pub fn as_str(&self) -> &'static str {
        match self {
            Skipped::TooLarge { .. } => "too_large",
            Skipped::TooDeep => "too_deep",
        }
    }
}

/// Compare the object a writer sends (`new`, as received, before any
/// normalization) with the stored one (`old`).
pub fn detect(kind: Kind, old: &Value, new: &Value) -> Result<OrderChurn, Skipped> {
    detect_ignoring(kind, old, new, None)
}

/// [`detect`], leaving one more annotation out of the comparison, as
/// ToolHive's checksums are: a declared rule's checksum, which changes with
/// the order and so is no change of content.
pub fn detect_ignoring(
    kind: Kind,
    old: &Value,
    new: &Value,
    checksum_annotation: Option<&str>,
) -> Result<OrderChurn, Skipped> {
    let derived = Derived {
        checksum: checksum_annotation,
        workload: None,
    };
    detect_deriving(kind, old, new, derived)
}

/// [`detect`], leaving out the annotations `derived` names: a declared
/// rule's checksum, and a linked workload's pod-template annotation, which
/// also makes a change in it alone a checksum-only rollout.
pub fn detect_deriving(
    kind: Kind,
    old: &Value,
    new: &Value,
    derived: Derived<'_>,
) -> Result<OrderChurn, Skipped> {
    if old == new {
        return Ok(OrderChurn::default());
    }
    let last_applied = LastAppliedPair::read(old, new)?;
    let old_tree = object_tree(old, Some(new), last_applied.old_side(), derived)?;
    let new_tree = object_tree(new, Some(old), last_applied.new_side(), derived)?;
    let mut churn = OrderChurn::default();
    if let Some(reordered) = reordered_lists(&old_tree, &new_tree) {
        let builtin = kind == Kind::ConfigMap && is_vmcp_configmap(new);
        churn.more = reordered.more;
        churn.lists = reordered
            .paths
            .into_iter()
            .map(|path| {
                let rule = if builtin && BUILTIN_PATHS.contains(&path.as_str()) {
                    Rule::ToolhiveVmcp
                } else {
                    Rule::None
                };
                ReorderedList { path, rule }
            })
            .collect();
    }
    let linked = derived.workload;
    if kind.is_workload()
        && pod_template_changed_only_in_checksum(old, new, linked.map(|link| link.annotation))
    {
        let configmap = match linked {
            Some(link) => link.configmap,
            None => vmcp_deployment_configmap(new),
        };
        churn.checksum_only_rollout = Some(ChecksumOnlyRollout {
            configmap: configmap.map(str::to_owned),
        });
    }
    Ok(churn)
}

/// The lists the built-in normalizer reorders, as [`detect`] names them.
const BUILTIN_PATHS: [&str; 2] = [
    "config.yaml: backends",
    "last-applied: config.yaml: backends",
];

/// The pod templates differ, and would not without `runconfig-checksum`
/// and the `linked` annotation.
fn pod_template_changed_only_in_checksum(old: &Value, new: &Value, linked: Option<&str>) -> bool {
    let template = |object| at(object, &["spec", "template"]);
    let (Some(old), Some(new)) = (template(old), template(new)) else {
        return false;
    };
    if old == new {
        return false;
    }
    let (mut old, mut new) = (old.clone(), new.clone());
    for template in [&mut old, &mut new] {
        if let Some(annotations) = template
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            annotations.remove(RUNCONFIG_CHECKSUM_ANNOTATION);
            if let Some(linked) = linked {
                annotations.remove(linked);
            }
        }
    }
    old == new
}

/// A value as the detector compares it, from JSON or from libyaml's reading.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tree<'a> {
    Null,
    Bool(bool),
    Integer(i128),
    /// The bits of an f64 (YAML has one NaN).
    Float(u64),
    Str(Cow<'a, str>),
    /// A YAML node with an explicit tag.
    Tagged(String, Box<Tree<'a>>),
    List(Vec<Tree<'a>>),
    /// Entries sorted by key: key order is not compared.
    Map(Vec<(Tree<'a>, Tree<'a>)>),
    /// A string read as a document (a data value, the last-applied copy).
    Document(Format, Box<Tree<'a>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    Yaml,
    Json,
}

/// The lists found reordered, and whether more were found than kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reordered {
    pub paths: Vec<String>,
    pub more: bool,
}

/// The paths of the lists whose order alone changed from `old` to `new`;
/// `None` when they differ in more than order (or in a mapping's key order
/// only, which is no list's). Equal trees give an empty list.
pub fn reordered_lists(old: &Tree<'_>, new: &Tree<'_>) -> Option<Reordered> {
    let mut found = Reordered::default();
    if old == new {
        return Some(found);
    }
    if canonical(old) != canonical(new) {
        return None;
    }
    walk(old, new, &mut Vec::new(), &mut found);
    Some(found)
}

/// `tree` with every list sorted, inside out: equal for two trees exactly
/// when they are equal with each list taken as a multiset.
fn canonical<'a>(tree: &Tree<'a>) -> Tree<'a> {
    match tree {
        Tree::List(items) => {
            let mut items: Vec<Tree<'a>> = items.iter().map(canonical).collect();
            items.sort_unstable();
            Tree::List(items)
        }
        Tree::Map(entries) => Tree::Map(
            entries
                .iter()
                .map(|(key, value)| (key.clone(), canonical(value)))
                .collect(),
        ),
        Tree::Tagged(tag, inner) => Tree::Tagged(tag.clone(), Box::new(canonical(inner))),
        Tree::Document(format, inner) => Tree::Document(*format, Box::new(canonical(inner))),
        scalar => scalar.clone(),
    }
}

/// One step of a path from the root.
#[derive(Clone, Copy)]
enum Step<'t, 'a> {
    Key(&'t Tree<'a>),
    Items,
    Document,
}

/// Report the lists of `old` and `new` (equal but for list order) whose own
/// order differs, then look inside their items, each paired with its equal.
fn walk<'t, 'a>(
    old: &'t Tree<'a>,
    new: &'t Tree<'a>,
    path: &mut Vec<Step<'t, 'a>>,
    found: &mut Reordered,
) {
    if old == new {
        return;
    }
    match (old, new) {
        // Equal canonical forms: the same keys in the same order.
        (Tree::Map(old), Tree::Map(new)) => {
            for ((key, old), (_, new)) in old.iter().zip(new) {
                path.push(Step::Key(key));
                walk(old, new, path, found);
                path.pop();
            }
        }
        (Tree::Tagged(_, old), Tree::Tagged(_, new)) => walk(old, new, path, found),
        (Tree::Document(_, old), Tree::Document(_, new)) => {
            path.push(Step::Document);
            walk(old, new, path, found);
            path.pop();
        }
        (Tree::List(old), Tree::List(new)) => {
            let old_canonical: Vec<Tree<'a>> = old.iter().map(canonical).collect();
            let new_canonical: Vec<Tree<'a>> = new.iter().map(canonical).collect();
            if old_canonical != new_canonical {
                report(path, found);
            }
            // Pair each item with an equal one of the other side (duplicates
            // in the order they stand), then look for reorders inside.
            let sorted = |canonical: &[Tree<'a>]| {
                let mut order: Vec<usize> = (0..canonical.len()).collect();
                order.sort_by(|&a, &b| canonical[a].cmp(&canonical[b]));
                order
            };
            path.push(Step::Items);
            for (i, j) in sorted(&old_canonical)
                .into_iter()
                .zip(sorted(&new_canonical))
            {
                if let (Some(old), Some(new)) = (old.get(i), new.get(j)) {
                    walk(old, new, path, found);
                }
            }
            path.pop();
        }
        _ => {}
    }
}

fn report(path: &[Step<'_, '_>], found: &mut Reordered) {
    let rendered = render(path);
    if found.paths.contains(&rendered) {
        return;
    }
    if found.paths.len() == MAX_REPORTED_LISTS {
        found.more = true;
    } else {
        found.paths.push(rendered);
    }
}

/// `a.b[*].c`, with `: ` where a document starts; the document of a data
/// key is named by the key alone, kubectl's copy `last-applied`, and a list
/// at a document's root is `.`.
fn render(path: &[Step<'_, '_>]) -> String {
    let mut out = String::new();
    let mut segments = path.split(|step| matches!(step, Step::Document)).peekable();
    while let Some(segment) = segments.next() {
        let before_document = segments.peek().is_some();
        if before_document && segment.is_empty() {
            // A document at the root: no prefix to name.
            continue;
        }
        match segment {
            [Step::Key(Tree::Str(data)), Step::Key(Tree::Str(key))]
                if before_document && data == "data" =>
            {
                out.push_str(key)
            }
            [
                Step::Key(Tree::Str(metadata)),
                Step::Key(Tree::Str(annotations)),
                Step::Key(Tree::Str(key)),
            ] if before_document
                && metadata == "metadata"
                && annotations == "annotations"
                && key == LAST_APPLIED_ANNOTATION =>
            {
                out.push_str("last-applied")
            }
            [] => out.push('.'),
            steps => render_steps(steps, &mut out),
        }
        if before_document {
            out.push_str(": ");
        }
    }
    cut(out)
}

fn render_steps(steps: &[Step<'_, '_>], out: &mut String) {
    for (index, step) in steps.iter().enumerate() {
        match step {
            Step::Key(Tree::Str(key)) if is_plain_key(key) => {
                if index > 0 {
                    out.push('.');
                }
                out.push_str(key);
            }
            Step::Key(Tree::Str(key)) => {
                out.push('[');
                out.push_str(&serde_json::to_string(key).unwrap_or_default());
                out.push(']');
            }
            Step::Key(Tree::Integer(key)) => out.push_str(&format!("[{key}]")),
            Step::Key(_) => out.push_str("[?]"),
            Step::Items => out.push_str("[*]"),
            Step::Document => out.push_str(": "),
        }
    }
}

fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn cut(mut path: String) -> String {
    if path.len() > MAX_PATH_BYTES {
        let mut end = MAX_PATH_BYTES - '…'.len_utf8();
        while !path.is_char_boundary(end) {
            end -= 1;
        }
        path.truncate(end);
        path.push('…');
    }
    path
}

// ---- The object as a tree ----

/// What one object field is to the comparison.
enum Slot {
    /// Not set by a writer, or derived from other fields.
    Ignored,
    /// A string that may hold a document (a ConfigMap data value).
    Document,
    /// kubectl's last-applied copy of the object, as JSON.
    LastApplied,
    Plain,
}

/// Metadata a writer sets; the rest is the apiserver's (or the name, which
/// an UPDATE cannot change).
const WRITER_METADATA: [&str; 4] = ["labels", "annotations", "ownerReferences", "finalizers"];

fn slot(path: &[&str], in_last_applied: bool, derived: Derived<'_>) -> Slot {
    match path {
        ["metadata", "annotations", annotation] if Some(*annotation) == derived.checksum => {
            Slot::Ignored
        }
        ["spec", "template", "metadata", "annotations", annotation]
            if Some(*annotation) == derived.workload.map(|link| link.annotation) =>
        {
            Slot::Ignored
        }
        ["status"] => Slot::Ignored,
        ["metadata", field] if !WRITER_METADATA.contains(field) => Slot::Ignored,
        ["metadata", "annotations", CONTENT_CHECKSUM_ANNOTATION]
        | [
            "spec",
            "template",
            "metadata",
            "annotations",
            RUNCONFIG_CHECKSUM_ANNOTATION,
        ] => Slot::Ignored,
        ["metadata", "annotations", LAST_APPLIED_ANNOTATION] if !in_last_applied => {
            Slot::LastApplied
        }
        ["data", _] => Slot::Document,
        _ => Slot::Plain,
    }
}

/// Both last-applied copies, read once each, when they differ.
struct LastAppliedPair(Option<(Value, Value)>);

impl LastAppliedPair {
    fn read(old: &Value, new: &Value) -> Result<Self, Skipped> {
        let copy = |object| {
            at(
                object,
                &["metadata", "annotations", LAST_APPLIED_ANNOTATION],
            )
            .and_then(Value::as_str)
        };
        let (Some(old), Some(new)) = (copy(old), copy(new)) else {
            return Ok(Self(None));
        };
        if old == new {
            return Ok(Self(None));
        }
        for copy in [old, new] {
            if copy.len() > MAX_DOCUMENT_BYTES {
                return Err(Skipped::TooLarge { bytes: copy.len() });
            }
        }
        match (serde_json::from_str(old), serde_json::from_str(new)) {
            (Ok(old @ Value::Object(_)), Ok(new @ Value::Object(_))) => Ok(Self(Some((old, new)))),
            // Compared as text: they differ, which is a change of content.
            _ => Ok(Self(None)),
        }
    }

    fn old_side(&self) -> Option<(&Value, &Value)> {
        self.0.as_ref().map(|(old, new)| (old, new))
    }

    fn new_side(&self) -> Option<(&Value, &Value)> {
        self.0.as_ref().map(|(old, new)| (new, old))
    }
}

/// `object` as compared, `other` the object on the other side of the UPDATE
/// (a document is read only when its text differs there), and the two
/// last-applied copies, this side's first.
fn object_tree<'v>(
    object: &'v Value,
    other: Option<&'v Value>,
    last_applied: Option<(&'v Value, &'v Value)>,
    derived: Derived<'_>,
) -> Result<Tree<'v>, Skipped> {
    ObjectReader {
        path: Vec::new(),
        last_applied,
        in_last_applied: false,
        derived,
    }
    .tree(object, other, 0)
}

struct ObjectReader<'v, 'a> {
    path: Vec<&'v str>,
    last_applied: Option<(&'v Value, &'v Value)>,
    in_last_applied: bool,
    /// The annotations [`slot`] leaves out (see [`detect_deriving`]).
    derived: Derived<'a>,
}

impl<'v> ObjectReader<'v, '_> {
    fn tree(
        &mut self,
        value: &'v Value,
        other: Option<&'v Value>,
        depth: usize,
    ) -> Result<Tree<'v>, Skipped> {
        Ok(match value {
            Value::Object(fields) => {
                let depth = deeper(depth)?;
                let mut entries = Vec::with_capacity(fields.len());
                for (key, value) in fields {
                    self.path.push(key);
                    let other = other.and_then(|other| other.get(key));
                    let tree = match slot(&self.path, self.in_last_applied, self.derived) {
                        Slot::Ignored => None,
                        Slot::Document => Some(match value {
                            Value::String(text) => document(text, other, depth)?,
                            // Not a string: the apiserver refuses it later;
                            // compared as it is.
                            _ => self.tree(value, other, depth)?,
                        }),
                        Slot::LastApplied => Some(self.last_applied_tree(value, depth)?),
                        Slot::Plain => Some(self.tree(value, other, depth)?),
                    };
                    self.path.pop();
                    if let Some(tree) = tree {
                        entries.push((Tree::Str(Cow::Borrowed(key.as_str())), tree));
                    }
                }
                entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                Tree::Map(entries)
            }
            Value::Array(items) => {
                let depth = deeper(depth)?;
                // Inside a list no field has a role: no paths to match.
                self.path.push("[*]");
                let items = items
                    .iter()
                    .map(|item| self.tree(item, None, depth))
                    .collect::<Result<_, _>>();
                self.path.pop();
                Tree::List(items?)
            }
            Value::String(text) => Tree::Str(Cow::Borrowed(text)),
            scalar => json_scalar(scalar),
        })
    }

    fn last_applied_tree(&mut self, value: &'v Value, depth: usize) -> Result<Tree<'v>, Skipped> {
        match (value, self.last_applied) {
            (Value::String(_), Some((this, other))) => {
                let mut reader = ObjectReader {
                    path: Vec::new(),
                    last_applied: None,
                    in_last_applied: true,
                    derived: self.derived,
                };
                let tree = reader.tree(this, Some(other), depth)?;
                Ok(Tree::Document(Format::Json, Box::new(tree)))
            }
            _ => self.tree(value, None, depth),
        }
    }
}

fn deeper(depth: usize) -> Result<usize, Skipped> {
    if depth >= MAX_DEPTH {
        Err(Skipped::TooDeep)
    } else {
        Ok(depth + 1)
    }
}

/// A JSON scalar (lists and objects are read by [`ObjectReader::tree`]).
fn json_scalar(value: &Value) -> Tree<'_> {
    match value {
        Value::Bool(value) => Tree::Bool(*value),
        Value::Number(number) => match (number.as_i64(), number.as_u64(), number.as_f64()) {
            (Some(int), _, _) => Tree::Integer(i128::from(int)),
            (_, Some(uint), _) => Tree::Integer(i128::from(uint)),
            (_, _, Some(float)) => Tree::Float(float_bits(float)),
            _ => Tree::Str(Cow::Owned(number.to_string())),
        },
        Value::String(text) => Tree::Str(Cow::Borrowed(text)),
        Value::Null | Value::Array(_) | Value::Object(_) => Tree::Null,
    }
}

fn float_bits(value: f64) -> u64 {
    if value.is_nan() {
        f64::NAN.to_bits()
    } else {
        value.to_bits()
    }
}

/// A data value: read as a document only when the other side's text
/// differs (an unchanged text cannot hold a reorder).
fn document<'v>(
    text: &'v str,
    other: Option<&'v Value>,
    depth: usize,
) -> Result<Tree<'v>, Skipped> {
    match other {
        Some(Value::String(other)) if other != text => read_document(text, depth),
        _ => Ok(Tree::Str(Cow::Borrowed(text))),
    }
}

/// A text as a document: JSON when it reads as JSON, else YAML as libyaml
/// reads it, else the text itself (which then differs: a content change).
pub fn read_document(text: &str, depth: usize) -> Result<Tree<'static>, Skipped> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(Skipped::TooLarge { bytes: text.len() });
    }
    let too_deep = Cell::new(false);
    let seed = || Node {
        depth,
        too_deep: &too_deep,
    };
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let mut json = serde_json::Deserializer::from_str(text);
        if let Ok(tree) = seed().deserialize(&mut json)
            && json.end().is_ok()
        {
            return Ok(Tree::Document(Format::Json, Box::new(tree)));
        }
    }
    if !too_deep.get()
        && let Ok(tree) = seed().deserialize(yaml_serde::Deserializer::from_str(text))
    {
        return Ok(Tree::Document(Format::Yaml, Box::new(tree)));
    }
    if too_deep.get() {
        return Err(Skipped::TooDeep);
    }
    Ok(Tree::Str(Cow::Owned(text.to_owned())))
}

/// A node being read, `depth` levels down.
#[derive(Clone, Copy)]
struct Node<'d> {
    depth: usize,
    too_deep: &'d Cell<bool>,
}

impl Node<'_> {
    fn child<E: de::Error>(self) -> Result<Self, E> {
        match deeper(self.depth) {
            Ok(depth) => Ok(Node { depth, ..self }),
            Err(skipped) => {
                self.too_deep.set(true);
                Err(E::custom(skipped))
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Tree<'static>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Tree<'static>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML or JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Tree::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Tree::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Self::Value, E> {
        Ok(Tree::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Self::Value, E> {
        Ok(Tree::Integer(i128::from(value)))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Self::Value, E> {
        Ok(Tree::Integer(i128::from(value)))
    }

    fn visit_i128<E>(self, value: i128) -> Result<Self::Value, E> {
        Ok(Tree::Integer(value))
    }

    fn visit_u128<E: de::Error>(self, value: u128) -> Result<Self::Value, E> {
        i128::try_from(value)
            .map(Tree::Integer)
            .map_err(|_| E::custom("integer out of range"))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Self::Value, E> {
        Ok(Tree::Float(float_bits(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Tree::Str(Cow::Owned(value.to_owned())))
    }

    fn visit_string<E>(self, value: String) -> Result<Self::Value, E> {
        Ok(Tree::Str(Cow::Owned(value)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<Self::Value, A::Error> {
        let child = self.child()?;
        let mut items = Vec::new();
        while let Some(item) = sequence.next_element_seed(child)? {
            items.push(item);
        }
        Ok(Tree::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let child = self.child()?;
        let mut entries = Vec::new();
        while let Some(key) = map.next_key_seed(child)? {
            entries.push((key, map.next_value_seed(child)?));
        }
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        // yaml.v3 refuses a key defined twice; so does this reading.
        if entries.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            return Err(de::Error::custom("a mapping key is defined twice"));
        }
        Ok(Tree::Map(entries))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        // yaml_serde hands a tagged node over as an enum named by its tag.
        let child = self.child()?;
        let (tag, content): (String, _) = data.variant()?;
        let inner = content.newtype_variant_seed(child)?;
        Ok(Tree::Tagged(tag, Box::new(inner)))
    }
}

#[cfg(test)]
mod tests;
