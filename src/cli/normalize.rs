//! `vmcp-normalizer normalize`: the normalizer offline, for files, pipes, CI
//! and pre-commit hooks.
//!
//! Every input is read whole before anything is written, because a
//! Deployment is kept in step with a ConfigMap that may come after it, and
//! an unreadable input must leave the output empty. Parsed objects are not
//! kept: only the documents that hold a vMCP object, one document at a time
//! otherwise.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{Read, Write};
use std::path::PathBuf;

use json_patch::{Patch, PatchOperation};
use serde_json::{Value, json};

use super::in_place::{self, DocumentEdit};
use super::set_order::SetEdit;
use crate::manifest::{Format, for_each_document, for_each_document_sparse, read_yaml_document};
use crate::normalize::{
    ChecksumSource, ChecksumSync, Follow, Outcome, SetSpec, checksum_source, checksum_source_of,
    sync_checksum_of, sync_runconfig_checksum,
};
use crate::recognize::{is_vmcp_configmap, vmcp_deployment_configmap};
use crate::rules::{Action, Mode, ObjectKind, Rule, RuleSet};
use crate::splice::{Replacement, Step};

/// Exit status: everything canonical (or written normalized).
pub const EXIT_OK: u8 = 0;
/// Exit status of `--check` when some object would change.
pub const EXIT_WOULD_CHANGE: u8 = 1;
/// Exit status when an input cannot be read or parsed (nothing is written).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit status when some vMCP object could not be normalized and was left
/// as read (the output is still complete; warnings say why).
pub const EXIT_NOT_NORMALIZED: u8 = 3;

const EXIT_CODES: &str = "\
Exit status:
  0  every object is canonical, or was written normalized
  1  --check: some object would change (listed on stdout)
  2  an input cannot be read or parsed; nothing is written
  3  some vMCP object could not be normalized and is left as read
     (a warning on stderr says why); takes precedence over 1";

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub struct NormalizeArgs {
    /// Manifest files, YAML or JSON, one or many documents, `kind: List`
    /// included. No file, or `-`, reads standard input.
    pub files: Vec<PathBuf>,
    /// Write nothing; exit 1 when any object would change, naming it and why.
    #[arg(long, conflicts_with = "patch")]
    pub check: bool,
    /// Print one JSON object per line for each object: apiVersion, kind,
    /// namespace, name, its RFC 6902 patch, changes and warnings.
    #[arg(long)]
    pub patch: bool,
    /// Rules file of declared sets (see `rules check`); without it the
    /// built-in preset toolhive-vmcp runs. A file that fails its checks
    /// exits 2.
    #[arg(long)]
    pub rules: Option<PathBuf>,
}

/// One object of the input, what is to change in it and why.
#[derive(Debug)]
struct Object {
    input: usize,
    document: usize,
    /// Its index in a `List`'s `items`.
    item: Option<usize>,
    api_version: Option<String>,
    kind: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    patch: Vec<PatchOperation>,
    /// The sets of its `format: object` rule, when the patch reorders them
    /// (written by reordering the object's text, see `set_order`).
    sets: Vec<SetSpec>,
    changes: Vec<String>,
    warnings: Vec<String>,
    /// A vMCP object left as read because it could not be normalized.
    failed: bool,
    /// A Deployment's new checksum: the ConfigMap (namespace, name) it follows.
    follows: Option<(Option<String>, String)>,
}

/// One file or standard input.
struct Input {
    name: String,
    text: String,
    format: Format,
    json_ranges: Vec<std::ops::Range<usize>>,
    /// The documents that hold a vMCP object, as read; a `kind: List` with
    /// only its vMCP items whole, the others as stubs (see `sparse`).
    kept: BTreeMap<usize, Value>,
    /// The kept Lists that hold stubs.
    sparse: BTreeSet<usize>,
    /// The text to write, when it differs from `text`.
    written: Option<String>,
}

/// A Deployment to keep in step: its index among the objects, and the link
/// it follows (`None`: the preset's `runconfig-checksum`).
type FollowingDeployment = (usize, Option<RuleLink>);

/// A rules file's workload link: the rule and how its workload follows it.
#[derive(Debug, Clone)]
struct RuleLink {
    rule: Rule,
    follow: Follow,
}

/// Where each ConfigMap a rule matched is in the input (input, document,
/// item), under its namespace and name; a name can be there more than once.
type ConfigMapIndex = HashMap<(Option<String>, String), Vec<(usize, usize, Option<usize>)>>;

/// Run the command. Output is written only once every input has been read.
pub fn run(
    args: &NormalizeArgs,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    let rules = match &args.rules {
        None => RuleSet::preset(),
        Some(path) => match crate::server::rules_reload::load_rules(path) {
            Ok((rules, _)) => rules,
            Err(error) => {
                let _ = writeln!(stderr, "error: {error}");
                return EXIT_BAD_INPUT;
            }
        },
    };
    let sources: Vec<PathBuf> = if args.files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.files.clone()
    };
    let mut inputs = Vec::new();
    let mut objects = Vec::new();
    let mut configmaps = ConfigMapIndex::new();
    let mut deployments: Vec<FollowingDeployment> = Vec::new();
    for path in &sources {
        let name = if path.as_os_str() == "-" {
            "<stdin>".to_owned()
        } else {
            path.display().to_string()
        };
        let read = read_source(path, stdin).and_then(|text| {
            read_input(
                &rules,
                inputs.len(),
                name.clone(),
                text,
                &mut objects,
                &mut configmaps,
                &mut deployments,
            )
            .map_err(|e| e.to_string())
        });
        match read {
            Ok(input) => inputs.push(input),
            Err(message) => {
                let _ = writeln!(stderr, "error: {name}: {message}");
                return EXIT_BAD_INPUT;
            }
        }
    }
    for (deployment, link) in &deployments {
        keep_in_step(
            *deployment,
            link.as_ref(),
            &mut objects,
            &inputs,
            &configmaps,
        );
    }
    for (index, input) in inputs.iter_mut().enumerate() {
        write_in_place(index, input, &mut objects);
    }
    // A Deployment follows its ConfigMap's new checksum only if that
    // ConfigMap's change was written; else both stay as read.
    for index in unfollow_unwritten(&mut objects) {
        let input = &mut inputs[index];
        reread_edited(index, input, &objects);
        input.written = None;
        write_in_place(index, input, &mut objects);
    }

    for object in &objects {
        for warning in &object.warnings {
            let _ = writeln!(
                stderr,
                "warning: {}: {}: {warning}",
                inputs[object.input].name,
                describe(object)
            );
        }
    }
    let written = if args.check {
        write_check(&inputs, &objects, stdout)
    } else if args.patch {
        write_patches(&inputs, &objects, stdout)
    } else {
        write_manifests(&inputs, stdout)
    };
    if let Err(error) = written {
        let _ = writeln!(stderr, "error: cannot write output: {error}");
        return EXIT_BAD_INPUT;
    }
    if objects.iter().any(|o| o.failed) {
        EXIT_NOT_NORMALIZED
    } else if args.check && objects.iter().any(|o| !o.patch.is_empty()) {
        EXIT_WOULD_CHANGE
    } else {
        EXIT_OK
    }
}

fn read_source(path: &PathBuf, stdin: &mut dyn Read) -> Result<String, String> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        stdin
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read: {e}"))?;
    } else {
        text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    }
    Ok(text)
}

/// Read one input a document at a time: normalize its ConfigMaps, note its
/// vMCP Deployments and ConfigMaps, and keep only the documents holding them.
fn read_input(
    rules: &RuleSet,
    index: usize,
    name: String,
    text: String,
    objects: &mut Vec<Object>,
    configmaps: &mut ConfigMapIndex,
    deployments: &mut Vec<FollowingDeployment>,
) -> Result<Input, crate::manifest::ManifestError> {
    let mut kept = BTreeMap::new();
    let mut sparse = BTreeSet::new();
    let mut json_ranges = Vec::new();
    // Only the items a rule may act on are held whole: a dump's other
    // objects cost a stub each, not their whole tree.
    let may_matter = |item: &Value| {
        ObjectKind::of(item).is_some_and(|kind| {
            rules.rule_for(kind, item).is_some() || rules.workload_rule_for(kind, item).is_some()
        }) || (rules.includes_preset()
            && (is_vmcp_configmap(item) || vmcp_deployment_configmap(item).is_some()))
    };
    let format = for_each_document_sparse(&text, may_matter, |document, value, range, stubs| {
        if let Some(range) = range {
            json_ranges.push(range);
        }
        let mut keep = false;
        let mut visit = |object: &Value, item: Option<usize>| {
            keep |= read_object(
                rules,
                object,
                (index, document, item),
                objects,
                configmaps,
                deployments,
            );
        };
        match list_items(&value) {
            Some(items) => items
                .iter()
                .enumerate()
                .for_each(|(i, object)| visit(object, Some(i))),
            None if !value.is_null() => visit(&value, None),
            None => {}
        }
        if keep {
            kept.insert(document, value);
            if stubs {
                sparse.insert(document);
            }
        }
    })?;
    Ok(Input {
        name,
        text,
        format,
        json_ranges,
        kept,
        sparse,
        written: None,
    })
}

/// Record one object; true when its document must be kept (it holds a vMCP
/// object).
fn read_object(
    rules: &RuleSet,
    object: &Value,
    (input, document, item): (usize, usize, Option<usize>),
    objects: &mut Vec<Object>,
    configmaps: &mut ConfigMapIndex,
    deployments: &mut Vec<FollowingDeployment>,
) -> bool {
    let field = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let mut record = Object {
        input,
        document,
        item,
        api_version: field("/apiVersion"),
        kind: field("/kind"),
        namespace: field("/metadata/namespace"),
        name: field("/metadata/name"),
        patch: Vec::new(),
        sets: Vec::new(),
        changes: Vec::new(),
        warnings: Vec::new(),
        failed: false,
        follows: None,
    };
    let mut keep = false;
    let applied = match ObjectKind::of(object) {
        Some(kind) => rules.apply(kind, object),
        None => crate::rules::Applied {
            rule: None,
            outcome: Outcome::NotVmcp,
        },
    };
    let warn_only = applied.rule.is_some_and(|rule| rule.mode == Mode::Warn);
    let matched = applied.rule.is_some();
    let rule = applied.rule_name().to_owned();
    match applied.outcome {
        Outcome::NotVmcp => {}
        Outcome::Unchanged => keep = true,
        Outcome::Normalized(normalized) if warn_only => {
            // Kept like an unchanged object: a workload may follow it.
            keep = true;
            record.warnings.extend(
                normalized
                    .changes
                    .iter()
                    .map(|change| format!("rule {rule} (warn only) would have {change}")),
            );
        }
        Outcome::Normalized(normalized) => {
            record.changes = normalized.changes.iter().map(ToString::to_string).collect();
            record.patch = normalized.patch.0;
            if let Some(Action::Object(sets)) = applied.rule.map(|rule| &rule.action) {
                record.sets = sets.clone();
            }
            keep = true;
        }
        Outcome::Refused(refusal) => {
            record.warnings.push(refusal.to_string());
            record.failed = true;
            keep = true;
        }
    }
    let is_configmap = if rules.is_preset() {
        is_vmcp_configmap(object)
    } else {
        record.kind.as_deref() == Some("ConfigMap") && matched
    };
    if keep
        && is_configmap
        && let Some(name) = &record.name
    {
        configmaps
            .entry((record.namespace.clone(), name.clone()))
            .or_default()
            .push((input, document, item));
    }
    // The link this object follows, if it is a workload: a rule's, or the
    // preset's when the rules include it.
    let link = ObjectKind::of(object)
        .and_then(|kind| rules.workload_rule_for(kind, object))
        .filter(|rule| !rule.builtin)
        .and_then(|rule| {
            Some(RuleLink {
                follow: rule.follow()?,
                rule: rule.clone(),
            })
        });
    let source = match &link {
        Some(link) => checksum_source_of(object, &link.follow).map_name(|_| ()),
        None if rules.includes_preset() => checksum_source(object).map_name(|_| ()),
        None => ChecksumSource::NotVmcp,
    };
    match source {
        ChecksumSource::NotVmcp | ChecksumSource::NoRunconfigChecksum => {}
        ChecksumSource::ConfigMap { .. } => {
            deployments.push((objects.len(), link));
            keep = true;
        }
        ChecksumSource::Unusable(unsynced) => {
            record
                .warnings
                .push(format!("runconfig-checksum left as read: {unsynced}"));
            record.failed = true;
        }
    }
    objects.push(record);
    keep
}

/// `kubectl get -o yaml` prints `kind: List`; typed lists end in `List`.
fn list_items(document: &Value) -> Option<&Vec<Value>> {
    let kind = document.get("kind").and_then(Value::as_str)?;
    if !kind.ends_with("List") {
        return None;
    }
    document.get("items").and_then(Value::as_array)
}

fn object_at(
    inputs: &[Input],
    (input, document, item): (usize, usize, Option<usize>),
) -> Option<&Value> {
    let value = inputs.get(input)?.kept.get(&document)?;
    match item {
        Some(item) => value.get("items")?.get(item),
        None => Some(value),
    }
}

/// The webhook's Deployment step, offline: the pod-template
/// `runconfig-checksum` follows the normalized ConfigMap of the same input.
fn keep_in_step(
    index: usize,
    link: Option<&RuleLink>,
    objects: &mut [Object],
    inputs: &[Input],
    configmaps: &ConfigMapIndex,
) {
    let object = &mut objects[index];
    let Some(deployment) = object_at(inputs, (object.input, object.document, object.item)) else {
        return;
    };
    let source = match link {
        Some(link) => checksum_source_of(deployment, &link.follow),
        None => checksum_source(deployment).map_name(std::borrow::Cow::Borrowed),
    };
    let ChecksumSource::ConfigMap { name, .. } = source else {
        return;
    };
    let sync = |configmap: &Value| match link {
        None => sync_runconfig_checksum(deployment, configmap),
        Some(link) => {
            let kind = ObjectKind {
                api_version: None,
                kind: "ConfigMap",
            };
            let matches = link.rule.matches(kind, configmap);
            sync_checksum_of(deployment, configmap, &link.follow, matches)
        }
    };
    let annotation = link.map_or("runconfig-checksum", |link| link.follow.annotation.as_str());
    let key = (object.namespace.clone(), name.to_string());
    let places = configmaps.get(&key).map(Vec::as_slice).unwrap_or_default();
    let mut syncs = places
        .iter()
        .filter_map(|&place| object_at(inputs, place))
        .map(sync);
    let Some(sync) = syncs.next() else {
        object.warnings.push(format!(
            "{annotation} left as read: its ConfigMap {name} is not in the input"
        ));
        return;
    };
    // The same ConfigMap given twice (say, as read and as normalized) is
    // fine as long as every copy gives the same checksum.
    if syncs.any(|other| other != sync) {
        object.warnings.push(format!(
            "{annotation} left as read: the input holds differing ConfigMaps {name}"
        ));
        object.failed = true;
        return;
    }
    match sync {
        ChecksumSync::NotVmcp | ChecksumSync::NoRunconfigChecksum | ChecksumSync::InStep => {}
        ChecksumSync::Replace { from, to, .. }
            if link.is_some_and(|link| link.rule.mode == Mode::Warn) =>
        {
            let rule = link.map_or("", |link| link.rule.name.as_str());
            object.warnings.push(format!(
                "rule {rule} (warn only) would have {annotation} {} -> {}",
                short(&from),
                short(&to)
            ));
        }
        ChecksumSync::Replace { from, to, patch } => {
            object
                .changes
                .push(format!("{annotation} {} -> {}", short(&from), short(&to)));
            object.patch.extend(patch.0);
            object.follows = Some(key);
        }
        ChecksumSync::Unsynced(unsynced) => {
            object.warnings.push(format!(
                "{annotation} left as read: {}: {}",
                unsynced.reason.describe(),
                unsynced.detail
            ));
            object.failed = true;
        }
    }
}

fn short(checksum: &str) -> &str {
    checksum.get(..12).unwrap_or(checksum)
}

/// Write the input's changed values into its text; an object whose change
/// cannot be written and proven is left as read, with a warning.
fn write_in_place(index: usize, input: &mut Input, objects: &mut [Object]) {
    let mut edits: BTreeMap<usize, DocumentEdit> = BTreeMap::new();
    let mut by_document: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (position, object) in objects.iter_mut().enumerate() {
        if object.input != index || object.patch.is_empty() {
            continue;
        }
        // The kept document becomes the expected one (the Deployment step,
        // the last reader of `kept`, is done).
        let edit = match edits.entry(object.document) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => {
                let Some(document) = input.kept.remove(&object.document) else {
                    continue;
                };
                entry.insert(DocumentEdit {
                    replacements: Vec::new(),
                    sets: Vec::new(),
                    expected: document,
                })
            }
        };
        match replacements(object) {
            Ok(mut replacements) => edit.replacements.append(&mut replacements),
            Err(reason) => {
                refuse(object, &reason);
                continue;
            }
        }
        if !object.sets.is_empty() {
            edit.sets.push(SetEdit {
                item: object.item,
                sets: object.sets.clone(),
            });
        }
        let target = match object.item {
            Some(item) => edit
                .expected
                .get_mut("items")
                .and_then(|items| items.get_mut(item)),
            None => Some(&mut edit.expected),
        };
        let applied = target
            .ok_or_else(|| "the object is gone".to_owned())
            .and_then(|target| {
                json_patch::patch(target, &Patch(object.patch.clone())).map_err(|e| e.to_string())
            });
        if let Err(reason) = applied {
            refuse(object, &format!("the patch does not apply: {reason}"));
            continue;
        }
        by_document
            .entry(object.document)
            .or_default()
            .push(position);
    }
    if edits.is_empty() {
        return;
    }
    // A List read with stubs and proven whole (not item by item: a flow
    // style List) is compared with the whole document, read again.
    let objects_read: &[Object] = objects;
    let whole = |document: usize| whole_expected(index, input, document, objects_read);
    let written = in_place::write(
        &input.text,
        input.format,
        &input.json_ranges,
        &edits,
        &input.sparse,
        &whole,
    );
    for (document, reason) in &written.refused {
        for &position in by_document.get(document).into_iter().flatten() {
            refuse(&mut objects[position], reason);
        }
    }
    input.written = written.text;
}

/// Document `document` of `input` read whole, with the patches of its
/// objects applied: what a sparse document must read back as.
fn whole_expected(
    index: usize,
    input: &Input,
    document: usize,
    objects: &[Object],
) -> Result<Value, String> {
    let mut value = read_yaml_document(&input.text, document)
        .map_err(|error| error.to_string())?
        .ok_or_else(|| "the document is gone".to_owned())?;
    for object in objects
        .iter()
        .filter(|o| o.input == index && o.document == document && !o.patch.is_empty())
    {
        let target = match object.item {
            Some(item) => value.get_mut("items").and_then(|items| items.get_mut(item)),
            None => Some(&mut value),
        }
        .ok_or_else(|| "the object is gone".to_owned())?;
        json_patch::patch(target, &Patch(object.patch.clone())).map_err(|e| e.to_string())?;
    }
    Ok(value)
}

/// Leave as read every Deployment whose ConfigMap's change could not be
/// written; the inputs that held such a Deployment, to write again.
fn unfollow_unwritten(objects: &mut [Object]) -> BTreeSet<usize> {
    let unwritten: HashSet<(Option<String>, String)> = objects
        .iter()
        .filter(|o| o.failed && !o.changes.is_empty() && o.kind.as_deref() == Some("ConfigMap"))
        .filter_map(|o| Some((o.namespace.clone(), o.name.clone()?)))
        .collect();
    let mut inputs = BTreeSet::new();
    for object in objects.iter_mut() {
        if !object.patch.is_empty()
            && object
                .follows
                .as_ref()
                .is_some_and(|key| unwritten.contains(key))
        {
            refuse(object, "its ConfigMap's change could not be written");
            inputs.insert(object.input);
        }
    }
    inputs
}

/// Read again the documents of `input` that still have changes (writing
/// consumed the kept copies).
fn reread_edited(index: usize, input: &mut Input, objects: &[Object]) {
    let wanted: BTreeSet<usize> = objects
        .iter()
        .filter(|o| o.input == index && !o.patch.is_empty())
        .map(|o| o.document)
        .collect();
    let kept = &mut input.kept;
    let sparse = &mut input.sparse;
    // It was read once already; an error here cannot happen and would only
    // leave documents unwritten (as read).
    let _ = for_each_document(&input.text, |document, value, _| {
        if wanted.contains(&document) {
            sparse.remove(&document);
            kept.insert(document, value);
        }
    });
}

fn refuse(object: &mut Object, reason: &str) {
    object.warnings.push(format!(
        "left as read ({}): {reason}",
        object.changes.join("; ")
    ));
    object.patch.clear();
    object.failed = true;
}

/// The object's patch as replacements of string values, with paths from
/// the document's root. The lists a `format: object` rule replaces are
/// written by reordering them in the text instead (see `set_order`).
fn replacements(object: &Object) -> Result<Vec<Replacement>, String> {
    object
        .patch
        .iter()
        .filter(|operation| {
            object.sets.is_empty()
                || !matches!(operation, PatchOperation::Replace(replace) if replace.value.is_array())
        })
        .map(|operation| match operation {
            PatchOperation::Replace(replace) => {
                let Value::String(value) = &replace.value else {
                    return Err("a replacement is not a string".to_owned());
                };
                let mut path = Vec::new();
                if let Some(item) = object.item {
                    path.push(Step::Key("items".to_owned()));
                    path.push(Step::Index(item));
                }
                path.extend(
                    replace
                        .path
                        .tokens()
                        .map(|t| Step::Key(t.decoded().into_owned())),
                );
                Ok(Replacement {
                    path,
                    value: value.clone(),
                })
            }
            other => Err(format!("unexpected patch operation {other}")),
        })
        .collect()
}

/// `Kind namespace/name` for messages.
fn describe(object: &Object) -> String {
    let kind = object.kind.as_deref().unwrap_or("object");
    match (&object.namespace, &object.name) {
        (Some(namespace), Some(name)) => format!("{kind} {namespace}/{name}"),
        (None, Some(name)) => format!("{kind} {name}"),
        _ => format!("{kind} (unnamed)"),
    }
}

/// Each input as read, or with its proven changes; YAML inputs are
/// separated by `---` so their documents stay apart.
fn write_manifests(inputs: &[Input], out: &mut dyn Write) -> std::io::Result<()> {
    let mut ends_line = true;
    for (index, input) in inputs.iter().enumerate() {
        let text = input.written.as_deref().unwrap_or(&input.text);
        if index > 0 {
            if !ends_line {
                out.write_all(b"\n")?;
            }
            if input.format == Format::Yaml {
                out.write_all(b"---\n")?;
            }
        }
        out.write_all(text.as_bytes())?;
        ends_line = text.is_empty() || text.ends_with('\n');
    }
    out.flush()
}

fn write_check(inputs: &[Input], objects: &[Object], out: &mut dyn Write) -> std::io::Result<()> {
    for object in objects.iter().filter(|o| !o.patch.is_empty()) {
        writeln!(
            out,
            "{}: {} would change: {}",
            inputs[object.input].name,
            describe(object),
            object.changes.join("; ")
        )?;
    }
    out.flush()
}

fn write_patches(inputs: &[Input], objects: &[Object], out: &mut dyn Write) -> std::io::Result<()> {
    for object in objects {
        let line = json!({
            "source": inputs[object.input].name,
            "apiVersion": object.api_version,
            "kind": object.kind,
            "namespace": object.namespace,
            "name": object.name,
            "patch": object.patch,
            "changes": object.changes,
            "warnings": object.warnings,
        });
        writeln!(out, "{line}")?;
    }
    out.flush()
}
