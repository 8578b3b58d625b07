//! Declared sets: which objects hold lists that are sets, where, sorted by
//! what, and which checksum follows them. Read from a versioned rules file
//! (`apiVersion: vmcp-normalizer.io/v1alpha1`, `kind: NormalizationRules`)
//! or the built-in preset `toolhive-vmcp`, which is what runs without one.
//!
//! Matching and applying a rule is pure: the normalizers do the work.

mod file;
mod label_selector;
mod position;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::LazyLock;

use serde_json::Value;

use crate::normalize::{
    ChecksumAlgorithm, ChecksumRule, DataFormat, DataRule, Follow, Outcome, SetPath, SetSpec,
    SortKey, normalize_data, normalize_object_sets,
};
use crate::recognize::at;
use crate::workload::WorkloadKind;
pub use file::{API_VERSION, KIND};
use file::{AlgorithmSpec, FormatSpec, ModeSpec, OperatorSpec, RuleSpec, RulesFile, SelectorSpec};
pub use position::Position;

/// The preset's name, and the `rule` label of what it matches.
pub const PRESET: &str = "toolhive-vmcp";
/// The preset as a rules file: the same format users write.
pub const PRESET_YAML: &str = include_str!("preset.yaml");

/// Checked rules, tried in order: the first that matches an object is its
/// rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet {
    /// `metadata.name` of the file, for logs.
    pub name: Option<String>,
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub mode: Mode,
    pub matcher: Matcher,
    pub action: Action,
    pub workload: Option<WorkloadLink>,
    /// From the built-in preset (its workload link runs in the webhook's
    /// checksum sync, for Deployments).
    pub builtin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Patch the object.
    Mutate,
    /// Warnings, audit annotation and metrics only: a dry run.
    Warn,
}

/// Which objects a rule applies to.
#[derive(Debug, Clone, PartialEq)]
pub struct Matcher {
    pub api_version: Option<String>,
    pub kind: String,
    pub selector: Selector,
    /// `metadata.name`, `*` for any characters.
    pub name: Option<String>,
}

/// A Kubernetes label selector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selector {
    pub match_labels: BTreeMap<String, String>,
    pub match_expressions: Vec<Expression>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    pub key: String,
    pub operator: Operator,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// What a rule does to the objects it matches.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Sets in one data key of a ConfigMap, and its checksum.
    Data(DataRule),
    /// Sets in the object's own fields.
    Object(Vec<SetSpec>),
}

/// A workload whose pod-template annotation must hold the rule's checksum
/// of the ConfigMap it uses.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadLink {
    pub api_version: Option<String>,
    pub kind: String,
    pub selector: Selector,
    pub annotation: String,
    pub config_map: ConfigMapRef,
}

/// How a workload names its ConfigMap (a volume, or a name template).
pub use crate::normalize::ConfigMapName as ConfigMapRef;

/// The kind of an object being matched: from the AdmissionReview's request
/// (the webhook) or the object itself (the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectKind<'a> {
    /// `v1`, `apps/v1`; `None` when unknown (then any rule's apiVersion fits).
    pub api_version: Option<&'a str>,
    pub kind: &'a str,
}

impl<'a> ObjectKind<'a> {
    /// The kind an object says it is.
    pub fn of(object: &'a Value) -> Option<Self> {
        Some(Self {
            api_version: object.get("apiVersion").and_then(Value::as_str),
            kind: object.get("kind").and_then(Value::as_str)?,
        })
    }
}

/// A rule's result for one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied<'r> {
    /// The rule that matched; `None`: no rule did (the outcome is
    /// [`Outcome::NotVmcp`]).
    pub rule: Option<&'r Rule>,
    pub outcome: Outcome,
}

impl Applied<'_> {
    /// The matched rule's name, or `none`: the bounded `rule` metric label.
    pub fn rule_name(&self) -> &str {
        self.rule.map_or("none", |rule| rule.name.as_str())
    }

    /// Whether the outcome is to be reported only, not patched.
    pub fn warn_only(&self) -> bool {
        self.rule.is_some_and(|rule| rule.mode == Mode::Warn)
    }
}

static PRESET_RULES: LazyLock<RuleSet> = LazyLock::new(|| {
    // Checked by a test; an error here is a build of a broken preset.
    RuleSet::parse(PRESET_YAML, true).unwrap_or_else(|error| panic!("the preset: {error}"))
});

impl RuleSet {
    /// The built-in preset `toolhive-vmcp`.
    pub fn preset() -> Self {
        PRESET_RULES.clone()
    }

    /// Read and check a rules file.
    pub fn from_yaml(text: &str) -> Result<Self, RulesError> {
        Self::parse(text, false)
    }

    fn parse(text: &str, builtin: bool) -> Result<Self, RulesError> {
        let file: RulesFile = yaml_serde::from_str(text).map_err(|error| {
            let (line, column) = error
                .location()
                .map_or((0, 0), |at| (at.line(), at.column()));
            RulesError::Syntax {
                line,
                column,
                message: error.to_string(),
            }
        })?;
        let name = file
            .metadata
            .as_ref()
            .and_then(|metadata| metadata.name.clone());
        let mut check = Check::default();
        let rules = check.file(file, builtin);
        if check.problems.is_empty() {
            return Ok(Self { name, rules });
        }
        let positions = position::positions(text);
        let mut problems = check.problems;
        for problem in &mut problems {
            problem.position = nearest(&positions, &problem.path);
        }
        Err(RulesError::Invalid(problems))
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Rules already checked (taken from other rule sets), in this order.
    pub fn from_rules(rules: Vec<Rule>) -> Self {
        Self { name: None, rules }
    }

    /// The first rule that matches `object`, if any.
    pub fn rule_for(&self, kind: ObjectKind<'_>, object: &Value) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.matches(kind, object))
    }

    /// Apply the first matching rule to `object`.
    pub fn apply(&self, kind: ObjectKind<'_>, object: &Value) -> Applied<'_> {
        match self.rule_for(kind, object) {
            None => Applied {
                rule: None,
                outcome: Outcome::NotVmcp,
            },
            Some(rule) => Applied {
                rule: Some(rule),
                outcome: rule.apply(object),
            },
        }
    }

    /// The first rule whose workload link matches `object`.
    pub fn workload_rule_for(&self, kind: ObjectKind<'_>, object: &Value) -> Option<&Rule> {
        self.rules.iter().find(|rule| {
            rule.workload.as_ref().is_some_and(|link| {
                kind_fits(link.api_version.as_deref(), &link.kind, kind)
                    && link.selector.matches(object)
            })
        })
    }

    /// Whether these are exactly the built-in rules.
    pub fn is_preset(&self) -> bool {
        self.rules == PRESET_RULES.rules
    }

    /// Whether the built-in preset's rules are among these (a file that
    /// includes it).
    pub fn includes_preset(&self) -> bool {
        self.rules.iter().any(|rule| rule.builtin)
    }

    /// Whether any rule links a workload to its checksum.
    pub fn links_workloads(&self) -> bool {
        self.rules.iter().any(|rule| rule.workload.is_some())
    }
}

impl Rule {
    /// Whether this rule applies to `object` of kind `kind`.
    pub fn matches(&self, kind: ObjectKind<'_>, object: &Value) -> bool {
        let matcher = &self.matcher;
        kind_fits(matcher.api_version.as_deref(), &matcher.kind, kind)
            && matcher.selector.matches(object)
            && matcher.name.as_deref().is_none_or(|pattern| {
                at(object, &["metadata", "name"])
                    .and_then(Value::as_str)
                    .is_some_and(|name| wildcard(pattern, name))
            })
            // A data key of any type marks the object (one that is not a
            // string is refused with a reason).
            && match &self.action {
                Action::Data(data) => at(object, &["data", &data.key]).is_some(),
                Action::Object(_) => true,
            }
    }

    /// What this rule does to an object it matched.
    pub fn apply(&self, object: &Value) -> Outcome {
        match &self.action {
            Action::Data(data) => normalize_data(object, data),
            Action::Object(sets) => normalize_object_sets(object, sets),
        }
    }

    /// How a workload follows this rule's checksum, when the rule links one.
    pub fn follow(&self) -> Option<Follow> {
        let link = self.workload.as_ref()?;
        let Action::Data(data) = &self.action else {
            return None;
        };
        let checksum = data.checksum.as_ref()?;
        Some(Follow {
            annotation: link.annotation.clone(),
            config_map: link.config_map.clone(),
            checksum_annotation: checksum.annotation.clone(),
            data: data.clone(),
            not_matching: format!("the ConfigMap it names does not match rule {}", self.name),
        })
    }

    /// The declared sets.
    pub fn sets(&self) -> &[SetSpec] {
        match &self.action {
            Action::Data(data) => &data.sets,
            Action::Object(sets) => sets,
        }
    }
}

fn kind_fits(api_version: Option<&str>, kind: &str, object: ObjectKind<'_>) -> bool {
    kind == object.kind
        && match (api_version, object.api_version) {
            (Some(wanted), Some(got)) => wanted == got,
            _ => true,
        }
}

impl Selector {
    pub fn matches(&self, object: &Value) -> bool {
        let label = |key: &str| at(object, &["metadata", "labels", key]).and_then(Value::as_str);
        self.match_labels
            .iter()
            .all(|(key, value)| label(key) == Some(value.as_str()))
            && self.match_expressions.iter().all(|expression| {
                let value = label(&expression.key);
                match expression.operator {
                    Operator::Exists => value.is_some(),
                    Operator::DoesNotExist => value.is_none(),
                    Operator::In => value.is_some_and(|v| expression.values.iter().any(|w| w == v)),
                    Operator::NotIn => {
                        value.is_none_or(|v| expression.values.iter().all(|w| w != v))
                    }
                }
            })
    }
}

/// Whether `name` fits a rule's `match.name` pattern, as the server checks
/// it. Public so the chart's rendered name condition can be checked against
/// the server's matcher (`tests/chart.rs`).
pub fn name_matches(pattern: &str, name: &str) -> bool {
    wildcard(pattern, name)
}

/// `*` matches any run of characters; everything else itself.
fn wildcard(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// A rules file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    /// Not YAML, or not the shape of a rules file (an unknown field, a
    /// missing one, a wrong type): the reader's position.
    #[error("line {line} column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// Well formed, but some rule cannot be used.
    #[error("{}", problems_text(.0))]
    Invalid(Vec<Problem>),
}

/// One reason a rules file is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where in the file, when it can be told.
    pub position: Option<Position>,
    /// The field, as `rules[0].sets[1].path`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(Position { line, column }) = self.position {
            write!(f, "line {line} column {column}: ")?;
        }
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl RulesError {
    /// Every problem, each with its position (one for a syntax error).
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            RulesError::Syntax {
                line,
                column,
                message,
            } => vec![Problem {
                position: (*line > 0).then_some(Position {
                    line: *line,
                    column: *column,
                }),
                path: "(file)".to_owned(),
                message: message.clone(),
            }],
            RulesError::Invalid(problems) => problems.clone(),
        }
    }
}

fn problems_text(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The position of `path`, or of the nearest enclosing node found.
fn nearest(positions: &HashMap<String, Position>, path: &str) -> Option<Position> {
    let mut path = path;
    loop {
        if let Some(position) = positions.get(path) {
            return Some(*position);
        }
        let cut = path.rfind(['.', '['])?;
        path = &path[..cut];
    }
}

/// The checks of one file, collecting every problem rather than the first.
#[derive(Default)]
struct Check {
    problems: Vec<Problem>,
    names: HashSet<String>,
}

impl Check {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            position: None,
            path: path.into(),
            message: message.into(),
        });
    }

    fn file(&mut self, file: RulesFile, builtin: bool) -> Vec<Rule> {
        if file.api_version != API_VERSION {
            self.problem(
                "apiVersion",
                format!("is {:?}, expected {API_VERSION}", file.api_version),
            );
        }
        if file.kind != KIND {
            self.problem("kind", format!("is {:?}, expected {KIND}", file.kind));
        }
        let mut rules = Vec::new();
        for (index, preset) in file.include.iter().enumerate() {
            if preset == PRESET && !builtin {
                for rule in PRESET_RULES.rules() {
                    self.names.insert(rule.name.clone());
                    rules.push(rule.clone());
                }
            } else {
                self.problem(
                    format!("include[{index}]"),
                    format!("unknown preset {preset:?} (known: {PRESET})"),
                );
            }
        }
        for (index, spec) in file.rules.into_iter().enumerate() {
            if let Some(rule) = self.rule(&format!("rules[{index}]"), spec, builtin) {
                rules.push(rule);
            }
        }
        rules
    }

    fn rule(&mut self, at: &str, spec: RuleSpec, builtin: bool) -> Option<Rule> {
        let before = self.problems.len();
        if !is_dns_label(&spec.name) {
            self.problem(
                format!("{at}.name"),
                "must be lower-case letters, digits and `-`, at most 63 (it is a metric label)",
            );
        } else if !self.names.insert(spec.name.clone()) {
            self.problem(
                format!("{at}.name"),
                format!("{:?} is used twice", spec.name),
            );
        }
        let matches = spec.matches;
        if matches.kind.is_empty() {
            self.problem(format!("{at}.match.kind"), "is empty");
        }
        let selector = self.selector(&format!("{at}.match.selector"), matches.selector);
        if matches.name.as_deref() == Some("") {
            self.problem(
                format!("{at}.match.name"),
                "is empty (leave it out to match any name)",
            );
        }
        if spec.sets.is_empty() {
            self.problem(format!("{at}.sets"), "declares no set");
        }
        let mut sets = Vec::new();
        for (index, set) in spec.sets.into_iter().enumerate() {
            let set_at = format!("{at}.sets[{index}]");
            let path = match SetPath::parse(&set.path) {
                Ok(path) => path,
                Err(error) => {
                    self.problem(format!("{set_at}.path"), error.to_string());
                    continue;
                }
            };
            let key = match set.by.as_str() {
                "." => SortKey::Item,
                "" => {
                    self.problem(
                        format!("{set_at}.by"),
                        "is empty (write `.` for the item itself)",
                    );
                    continue;
                }
                field => SortKey::Field(field.to_owned()),
            };
            sets.push(SetSpec { path, key });
        }
        let checksum = spec.checksum.map(|checksum| {
            if checksum.annotation.is_empty() {
                self.problem(format!("{at}.checksum.annotation"), "is empty");
            }
            ChecksumRule {
                annotation: checksum.annotation,
                algorithm: match checksum.algorithm {
                    AlgorithmSpec::ToolhiveContent => ChecksumAlgorithm::ToolhiveContent,
                    AlgorithmSpec::Sha256 => ChecksumAlgorithm::Sha256,
                },
            }
        });
        let action = match spec.format {
            FormatSpec::Yaml | FormatSpec::Json => {
                if matches.kind != "ConfigMap" {
                    self.problem(
                        format!("{at}.format"),
                        format!(
                            "a data key is read from a ConfigMap, not a {}",
                            matches.kind
                        ),
                    );
                }
                let key = spec.key.unwrap_or_default();
                if key.is_empty() {
                    self.problem(
                        format!("{at}.key"),
                        "names no data key (formats yaml and json need one)",
                    );
                }
                Action::Data(DataRule {
                    key,
                    format: if spec.format == FormatSpec::Yaml {
                        DataFormat::Yaml
                    } else {
                        DataFormat::Json
                    },
                    sets,
                    checksum: checksum.clone(),
                })
            }
            FormatSpec::Object => {
                if spec.key.is_some() {
                    self.problem(format!("{at}.key"), "is for formats yaml and json; format object reorders the object's own fields");
                }
                if checksum.is_some() {
                    self.problem(
                        format!("{at}.checksum"),
                        "needs a data key (formats yaml and json)",
                    );
                }
                Action::Object(sets)
            }
        };
        let workload = spec.workload.map(|workload| {
            let workload_at = format!("{at}.workload");
            if WorkloadKind::named(&workload.kind).is_none() {
                let kinds: Vec<&str> = WorkloadKind::ALL.iter().map(|kind| kind.name()).collect();
                self.problem(
                    format!("{workload_at}.kind"),
                    format!(
                        "is {:?}; a workload is one of {} (a Job's pod template cannot change; a CronJob's is not at spec.template)",
                        workload.kind,
                        kinds.join(", ")
                    ),
                );
            }
            if checksum.is_none() {
                self.problem(
                    workload_at.clone(),
                    "follows a checksum, and the rule declares none",
                );
            }
            if workload.annotation.is_empty() {
                self.problem(format!("{workload_at}.annotation"), "is empty");
            }
            let reference = workload.config_map;
            let config_map = match (reference.volume, reference.name_template, reference.env) {
                (Some(volume), None, None) if !volume.is_empty() => ConfigMapRef::Volume(volume),
                (None, None, Some(variable)) if !variable.is_empty() => ConfigMapRef::Env(variable),
                (None, Some(template), None) => {
                    let rest = template.replace("{name}", "");
                    if template.is_empty() || rest.contains(['{', '}']) {
                        self.problem(
                            format!("{workload_at}.configMap.nameTemplate"),
                            "may hold only `{name}` (the workload's name) and plain text",
                        );
                    }
                    ConfigMapRef::NameTemplate(template)
                }
                _ => {
                    self.problem(
                        format!("{workload_at}.configMap"),
                        "needs exactly one of volume, env and nameTemplate",
                    );
                    ConfigMapRef::Volume(String::new())
                }
            };
            WorkloadLink {
                api_version: workload.api_version,
                kind: workload.kind,
                selector: self.selector(&format!("{workload_at}.selector"), workload.selector),
                annotation: workload.annotation,
                config_map,
            }
        });
        (self.problems.len() == before).then_some(Rule {
            name: spec.name,
            mode: match spec.mode {
                ModeSpec::Mutate => Mode::Mutate,
                ModeSpec::Warn => Mode::Warn,
            },
            matcher: Matcher {
                api_version: matches.api_version,
                kind: matches.kind,
                selector,
                name: matches.name,
            },
            action,
            workload,
            builtin,
        })
    }

    fn selector(&mut self, at: &str, spec: Option<SelectorSpec>) -> Selector {
        let spec = spec.unwrap_or_default();
        let mut expressions = Vec::new();
        for (index, expression) in spec.match_expressions.into_iter().enumerate() {
            let needs_values =
                matches!(expression.operator, OperatorSpec::In | OperatorSpec::NotIn);
            if needs_values == expression.values.is_empty() {
                self.problem(
                    format!("{at}.matchExpressions[{index}].values"),
                    if needs_values {
                        "In and NotIn need values"
                    } else {
                        "Exists and DoesNotExist take no values"
                    },
                );
            }
            expressions.push(Expression {
                key: expression.key,
                operator: match expression.operator {
                    OperatorSpec::In => Operator::In,
                    OperatorSpec::NotIn => Operator::NotIn,
                    OperatorSpec::Exists => Operator::Exists,
                    OperatorSpec::DoesNotExist => Operator::DoesNotExist,
                },
                values: expression.values,
            });
        }
        Selector {
            match_labels: spec.match_labels,
            match_expressions: expressions,
        }
    }
}

/// A DNS label (RFC 1123): what a metric label value and a CRD name can be.
fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests;
