//! `audit --rules`: every rule's objects listed with its kind and label
//! selector, each judged by the core as the webhook would (its first
//! matching rule), then every rule's workloads against the canonical
//! checksum of the ConfigMap they follow, and each audited workload's
//! rollout history (a Deployment's from its ReplicaSets, a StatefulSet's or
//! DaemonSet's from its ControllerRevisions).
//!
//! An object listed by several rules' queries is judged only in the
//! listing of its first matching rule, so once, with no set of names kept.
//! Memory is one page, the checksums kept for workloads, one workload's
//! revisions at a time, and the findings.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::Value;

use super::findings::{self, Code, Effect, Finding};
use super::history::{self, Revision, Store};
use super::kinds::Kinds;
use super::report::Report;
use super::{AuditError, Progress};
use crate::cluster::{ClusterError, ListQuery, Lister, Resource, Scope};
use crate::normalize::{
    ChecksumSource, Follow, Unsynced, canonical_checksum_for, canonical_content_checksum,
    checksum_source, checksum_source_of, sync_to_canonical_checksum, sync_to_checksum_of,
};
use crate::rules::{Action, ObjectKind, Rule, RuleSet};
use crate::workload::{self, WorkloadKind};

/// Each rule's canonical checksum of a ConfigMap (or why there is none),
/// by rule index, namespace and name; `None` for one looked up and absent.
type Checksums = HashMap<(usize, String, String), Option<Result<String, Unsynced>>>;

/// What one rule lists: its own kind, and its workload's.
struct Target {
    resource: Resource,
    workload: Option<Resource>,
}

/// Read the cluster and judge every object the rules match in scope.
pub async fn scan(
    rules: &RuleSet,
    lister: &Lister,
    scope: Scope,
    read_history: bool,
    progress: &mut Progress<'_>,
) -> Result<Report, AuditError> {
    // Every kind is resolved first: an unknown one fails before any list.
    let mut kinds = Kinds::default();
    let mut targets = Vec::new();
    for rule in rules.rules() {
        let matcher = &rule.matcher;
        let resource = kinds
            .resolve(
                lister,
                &rule.name,
                matcher.api_version.as_deref(),
                &matcher.kind,
            )
            .await?;
        let workload = match &rule.workload {
            Some(link) => Some(
                kinds
                    .resolve(lister, &rule.name, link.api_version.as_deref(), &link.kind)
                    .await?,
            ),
            None => None,
        };
        targets.push(Target { resource, workload });
    }

    let mut scan = Scan {
        rules,
        lister,
        scope,
        report: Report {
            scope: Scope::AllNamespaces,
            configmaps: 0,
            deployments: 0,
            // The preset matches only ConfigMaps and Deployments.
            others: (!rules.is_preset()).then_some(0),
            findings: Vec::new(),
            notes: Vec::new(),
        },
        checksums: Checksums::new(),
        read_history,
        refused: Vec::new(),
    };
    scan.report.scope = scan.scope.clone();
    for (index, (rule, target)) in rules.rules().iter().zip(&targets).enumerate() {
        scan.objects(index, rule, &target.resource, progress)
            .await?;
    }
    for (index, (rule, target)) in rules.rules().iter().zip(&targets).enumerate() {
        if let Some(resource) = &target.workload {
            scan.workloads(index, rule, resource, progress).await?;
        }
    }
    Ok(scan.report)
}

struct Scan<'a> {
    rules: &'a RuleSet,
    lister: &'a Lister,
    scope: Scope,
    report: Report,
    checksums: Checksums,
    /// Whether to read the rollout history (`--no-history`).
    read_history: bool,
    /// The history stores whose listing was refused: not asked again.
    refused: Vec<Store>,
}

impl Scan<'_> {
    /// Rule `rule`'s own listing: judge the objects it is the first rule of.
    async fn objects(
        &mut self,
        index: usize,
        rule: &Rule,
        resource: &Resource,
        progress: &mut Progress<'_>,
    ) -> Result<(), AuditError> {
        let kind = ObjectKind {
            api_version: Some(&resource.api_version),
            kind: &resource.kind,
        };
        let follow = rule.follow();
        let checksum = match &rule.action {
            Action::Data(data) => data.checksum.as_ref().map(|c| c.annotation.as_str()),
            Action::Object(_) => None,
        };
        let mut pages = self.lister.pages(ListQuery {
            resource: resource.clone(),
            scope: self.scope.clone(),
            label_selector: rule.matcher.selector.to_query(),
            field_selector: None,
        });
        while let Some(items) = pages.next().await? {
            for object in &items {
                if let Some(follow) = &follow {
                    let (namespace, name) = findings::identity(object);
                    let canonical = canonical_checksum(rule, follow, object);
                    self.checksums
                        .insert((index, namespace, name), Some(canonical));
                }
                // Judged where its first matching rule lists it, and only there.
                let applied = self.rules.apply(kind, object);
                if applied.rule.map(|first| first.name.as_str()) != Some(rule.name.as_str()) {
                    continue;
                }
                self.count(&resource.kind);
                let paths = findings::order_paths(object, kind.kind, &applied.outcome, checksum);
                self.report.findings.extend(findings::rule_findings(
                    object,
                    kind.kind,
                    rule,
                    &applied.outcome,
                    &paths,
                ));
                // A workload's history is read with its link (see `workloads`).
                if let Some(workload) = workload_kind(resource)
                    && self.rules.workload_rule_for(kind, object).is_none()
                {
                    let found = self.history(rule, workload, object, None).await?;
                    self.report.findings.extend(found);
                }
            }
            progress.show(&self.report, &resource.name(), pages.pages_read());
        }
        Ok(())
    }

    /// Rule `rule`'s workloads: each pod-template annotation against the
    /// canonical checksum of the ConfigMap it names, as the webhook follows
    /// it (the preset's link by the preset's own checks).
    async fn workloads(
        &mut self,
        index: usize,
        rule: &Rule,
        resource: &Resource,
        progress: &mut Progress<'_>,
    ) -> Result<(), AuditError> {
        let (Some(link), Some(follow)) = (&rule.workload, rule.follow()) else {
            return Ok(());
        };
        let kind = ObjectKind {
            api_version: Some(&resource.api_version),
            kind: &resource.kind,
        };
        let mut pages = self.lister.pages(ListQuery {
            resource: resource.clone(),
            scope: self.scope.clone(),
            label_selector: link.selector.to_query(),
            field_selector: None,
        });
        while let Some(items) = pages.next().await? {
            for workload in &items {
                let first = self.rules.workload_rule_for(kind, workload);
                if first.map(|first| first.name.as_str()) != Some(rule.name.as_str()) {
                    continue;
                }
                let source = if rule.builtin {
                    checksum_source(workload).map_name(Cow::Borrowed)
                } else {
                    checksum_source_of(workload, &follow)
                };
                let (found, configmap) = match source {
                    ChecksumSource::NotVmcp => continue,
                    ChecksumSource::NoRunconfigChecksum => (Vec::new(), None),
                    ChecksumSource::Unusable(unsynced) => (
                        findings::unsynced_finding(workload, kind.kind, &unsynced),
                        None,
                    ),
                    ChecksumSource::ConfigMap { name, .. } => {
                        let found =
                            match self.checksum(index, rule, &follow, workload, &name).await? {
                                None => findings::configmap_missing(workload, kind.kind, &name),
                                Some(canonical) => {
                                    let sync = if rule.builtin {
                                        sync_to_canonical_checksum(workload, || canonical.clone())
                                    } else {
                                        sync_to_checksum_of(workload, &follow, || canonical.clone())
                                    };
                                    findings::workload_findings(
                                        workload,
                                        kind.kind,
                                        &follow.annotation,
                                        &name,
                                        sync,
                                    )
                                }
                            };
                        (found, Some(name.into_owned()))
                    }
                };
                self.count(&resource.kind);
                self.report.findings.extend(findings::by_rule(found, rule));
                if let Some(workload_kind) = workload_kind(resource) {
                    let followed = configmap
                        .as_deref()
                        .map(|name| (link.annotation.as_str(), name));
                    let found = self
                        .history(rule, workload_kind, workload, followed)
                        .await?;
                    self.report.findings.extend(found);
                }
            }
            progress.show(&self.report, &resource.name(), pages.pages_read());
        }
        Ok(())
    }

    /// Rule `index`'s canonical checksum of ConfigMap `name` in the
    /// workload's namespace. One its listing did not hold is read by name
    /// (a `list` with a field selector, so `list` stays the only
    /// permission), and the core says why it cannot be followed.
    async fn checksum(
        &mut self,
        index: usize,
        rule: &Rule,
        follow: &Follow,
        workload: &Value,
        name: &str,
    ) -> Result<Option<Result<String, Unsynced>>, ClusterError> {
        let (namespace, _) = findings::identity(workload);
        let key = (index, namespace.clone(), name.to_owned());
        if !self.checksums.contains_key(&key) {
            let mut pages = self.lister.pages(ListQuery {
                resource: Resource::configmaps(),
                scope: Scope::Namespace(namespace),
                label_selector: None,
                field_selector: Some(format!("metadata.name={name}")),
            });
            let mut found = None;
            while let Some(items) = pages.next().await? {
                if let Some(configmap) = items.iter().find(|c| findings::identity(c).1 == name) {
                    found = Some(canonical_checksum(rule, follow, configmap));
                }
            }
            self.checksums.insert(key.clone(), found);
        }
        Ok(self.checksums.get(&key).cloned().flatten())
    }

    /// The rollout history of `workload`, a `kind` under `rule`, from the store its
    /// controller keeps revisions in, read a page at a time; `followed` is
    /// the checksum annotation and the ConfigMap it follows. A 403 is not
    /// the audit's failure: a note says what to grant, once per store, and
    /// that store is not asked again.
    async fn history(
        &mut self,
        rule: &Rule,
        kind: WorkloadKind,
        workload: &Value,
        followed: Option<(&str, &str)>,
    ) -> Result<Vec<Finding>, ClusterError> {
        let store = Store::of(kind);
        let uid = workload
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let (namespace, _) = findings::identity(workload);
        let Some(selector) = history::history_selector(workload) else {
            return Ok(Vec::new());
        };
        if !self.read_history || self.refused.contains(&store) || uid.is_empty() {
            return Ok(Vec::new());
        }
        let resource = store.resource();
        let mut pages = self.lister.pages(ListQuery {
            resource: resource.clone(),
            scope: Scope::Namespace(namespace),
            label_selector: Some(selector),
            field_selector: None,
        });
        let mut revisions: Vec<Revision> = Vec::new();
        loop {
            match pages.next().await {
                Ok(Some(items)) => {
                    revisions.extend(
                        items
                            .iter()
                            .filter_map(|object| history::revision_of(store, object, uid)),
                    );
                }
                Ok(None) => break,
                Err(ClusterError::Forbidden {
                    code: 403, listing, ..
                }) => {
                    self.refused.push(store);
                    self.report.notes.push(format!(
                        "rollout history was not read: {listing} is forbidden; grant `list` on {} (apiGroups: [\"{}\"], resources: [\"{}\"]) to report checksum_only_rollouts and order_churn",
                        resource.name(),
                        workload::GROUP,
                        resource.plural,
                    ));
                    return Ok(Vec::new());
                }
                Err(error) => return Err(error),
            }
        }
        let rollouts =
            history::compare(kind, revisions, followed.map(|(annotation, _)| annotation));
        let mut found = Vec::new();
        if let Some((annotation, configmap)) = followed
            && rollouts.checksum_only > 0
        {
            let mut finding = Finding::about(
                workload,
                kind.name(),
                Code::ChecksumOnlyRollouts,
                Effect::Note,
                None,
                format!(
                    "{} of {} rollouts changed only {annotation} (ConfigMap {configmap})",
                    rollouts.checksum_only, rollouts.compared
                ),
            );
            finding.count = Some(rollouts.checksum_only);
            found.push(finding);
        }
        if rollouts.order_only > 0 {
            let mut finding = Finding::about(
                workload,
                kind.name(),
                Code::OrderChurn,
                Effect::Note,
                None,
                format!(
                    "{} of {} rollouts changed only the order of: {}",
                    rollouts.order_only,
                    rollouts.compared,
                    rollouts.paths.join(", ")
                ),
            );
            finding.count = Some(rollouts.order_only);
            finding.paths = rollouts.paths;
            found.push(finding);
        }
        Ok(findings::attributed(found, rule))
    }

    fn count(&mut self, kind: &str) {
        let report = &mut self.report;
        match kind {
            "ConfigMap" => report.configmaps += 1,
            "Deployment" => report.deployments += 1,
            _ => *report.others.get_or_insert(0) += 1,
        }
    }
}

/// The rule's canonical checksum of `configmap`: the preset's by its own
/// checks, as the webhook's preset link reads it; another rule's when the
/// rule matches the ConfigMap.
fn canonical_checksum(rule: &Rule, follow: &Follow, configmap: &Value) -> Result<String, Unsynced> {
    if rule.builtin {
        return canonical_content_checksum(configmap);
    }
    let configmap_kind = ObjectKind {
        api_version: None,
        kind: "ConfigMap",
    };
    canonical_checksum_for(configmap, follow, rule.matches(configmap_kind, configmap))
}

/// The workload kind of `resource`, whose rollout history is read.
fn workload_kind(resource: &Resource) -> Option<WorkloadKind> {
    if resource.api_version != workload::API_VERSION {
        return None;
    }
    WorkloadKind::named(&resource.kind)
}
