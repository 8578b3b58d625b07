//! `vmcp-normalizer selftest`: prove the installed webhook works end to end,
//! through the API server, and say plainly why when it does not.
//!
//! Two checks, each a server-side dry-run CREATE (`?dryRun=All`: admitted,
//! validated, answered, never stored), whose answer is compared with what
//! this project's own core computes:
//!
//! 1. ConfigMap: a vMCP config ConfigMap with its backends out of order must
//!    come back in canonical order with the right `content-checksum`.
//! 2. Deployment: the webhook sets `runconfig-checksum` from the ConfigMap it
//!    reads through the API, and a dry-run ConfigMap is never stored (the
//!    webhook would find none and leave the Deployment alone). So this check
//!    stores the probe ConfigMap [`probe::PROBE_CONFIGMAP`] for real, dry-runs
//!    a Deployment that mounts it with a stale checksum, and deletes the
//!    ConfigMap again (by uid) whatever the outcome.
//!
//! The webhook configuration (caBundle, selectors) is read only to explain an
//! answer that came back unchanged; the answer itself is the verdict.

pub mod api;
pub mod probe;
pub mod selector;
pub mod verdict;

use std::fmt;
use std::io::Write;

use serde_json::Value;

use self::api::{Answer, Api, ApiError};
use self::selector::{Labels, labels_of, unmatched};
use self::verdict::Verdict;

/// Exit status: both checks passed.
pub const EXIT_OK: u8 = 0;
/// The answer came back unchanged although the webhook is configured for
/// it: the API server could not reach the webhook and failed open.
pub const EXIT_NOT_CALLED: u8 = 1;
/// Bad arguments, or no API access configured (also clap's usage errors).
pub const EXIT_USAGE: u8 = 2;
/// The webhook's caBundle is empty: the API server cannot call it yet.
pub const EXIT_NO_CA_BUNDLE: u8 = 3;
/// The webhook's namespaceSelector or objectSelector excludes the test.
pub const EXIT_EXCLUDED: u8 = 4;
/// RBAC: a request was refused (401/403).
pub const EXIT_FORBIDDEN: u8 = 5;
/// The API server did not answer (connection, timeout, 5xx).
pub const EXIT_API_UNREACHABLE: u8 = 6;
/// The webhook configuration, or its webhook for the kind, does not exist.
pub const EXIT_NOT_INSTALLED: u8 = 7;
/// The webhook answered but not as it should: wrong result, its own
/// warning, or another unexpected API answer.
pub const EXIT_WRONG_ANSWER: u8 = 8;

/// What to test.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the probes are written: a namespace the webhook watches.
    pub namespace: String,
    /// The chart's MutatingWebhookConfiguration, read to explain failures.
    pub webhook_configuration: Option<String>,
}

/// Which of the two checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    ConfigMap,
    Deployment,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Check::ConfigMap => "ConfigMap",
            Check::Deployment => "Deployment",
        })
    }
}

/// Why the self-test failed; each variant has its own exit status.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("no API access: {0}")]
    NoApiAccess(String),
    #[error("{0}")]
    Usage(String),
    #[error(
        "{check}: the webhook {webhook} in MutatingWebhookConfiguration {configuration} has no caBundle yet, \
         so the API server cannot call it over TLS and lets writes through unnormalized. \
         self-managed mode: the server writes it within seconds of starting (check its logs); \
         cert-manager mode: cainjector writes it once the Certificate is ready"
    )]
    NoCaBundle {
        check: Check,
        configuration: String,
        webhook: String,
    },
    #[error(
        "{check}: the dry-run answer came back unchanged: the API server did not get an answer from the webhook \
         and failed open (failurePolicy Ignore){hint}. Check that the webhook pods are Ready, that their Service \
         has endpoints, that no NetworkPolicy or firewall blocks the API server from the pods' port 8443, \
         and the API server's log for 'failed calling webhook'"
    )]
    NotCalled { check: Check, hint: String },
    #[error(
        "{check}: the {selector} of webhook {webhook} excludes this test ({why}), so the API server never calls it \
         for {namespace}. Run the test in a namespace the webhook watches (chart value selftest.namespace, \
         or --namespace), or change webhook.excludedNamespaces"
    )]
    Excluded {
        check: Check,
        webhook: String,
        selector: &'static str,
        namespace: String,
        why: String,
    },
    #[error(
        "RBAC denied: {action}: {error}. The self-test's ServiceAccount needs: create on configmaps and \
         deployments (dry run) and delete on configmap {probe} in the test namespace, get on the \
         MutatingWebhookConfiguration (the chart's helm test hook grants exactly that)",
        probe = probe::PROBE_CONFIGMAP
    )]
    Forbidden { action: String, error: ApiError },
    #[error("cannot reach the API server: {action}: {error}")]
    ApiUnreachable { action: String, error: ApiError },
    #[error(
        "MutatingWebhookConfiguration {configuration} not found: the webhook is not installed (or the name \
         is wrong: it is the chart's full name, `kubectl get mutatingwebhookconfigurations`)"
    )]
    NotInstalled { configuration: String },
    #[error("{check}: {detail}")]
    WrongAnswer { check: Check, detail: String },
    #[error("{action}: {error}")]
    Unexpected { action: String, error: ApiError },
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::NoApiAccess(_) | Failure::Usage(_) => EXIT_USAGE,
            Failure::NoCaBundle { .. } => EXIT_NO_CA_BUNDLE,
            Failure::NotCalled { .. } => EXIT_NOT_CALLED,
            Failure::Excluded { .. } => EXIT_EXCLUDED,
            Failure::Forbidden { .. } => EXIT_FORBIDDEN,
            Failure::ApiUnreachable { .. } => EXIT_API_UNREACHABLE,
            Failure::NotInstalled { .. } => EXIT_NOT_INSTALLED,
            Failure::WrongAnswer { .. } | Failure::Unexpected { .. } => EXIT_WRONG_ANSWER,
        }
    }
}

/// An API error during `action`, sorted by what the user can do about it.
fn api_failure(action: String, error: ApiError) -> Failure {
    match error {
        ApiError::Forbidden { .. } => Failure::Forbidden { action, error },
        ApiError::Timeout(_) | ApiError::Unreachable(_) => {
            Failure::ApiUnreachable { action, error }
        }
        error => Failure::Unexpected { action, error },
    }
}

/// The webhook configuration and the namespace's labels, to explain an
/// answer that came back unchanged.
struct Setup {
    /// `None` without `--webhook-configuration`.
    configuration: Option<(String, Value)>,
    namespace: String,
    namespace_labels: Labels,
}

impl Setup {
    /// The webhook that handles CREATE of `resource` in `group`, with its
    /// name: `None` when no configuration was given, `Some(None)` when the
    /// configuration has none (that webhook is switched off).
    fn webhook(&self, group: &str, resource: &str) -> Option<Option<(&str, &Value)>> {
        let (_, configuration) = self.configuration.as_ref()?;
        let webhooks = configuration.get("webhooks").and_then(Value::as_array);
        let found = webhooks
            .into_iter()
            .flatten()
            .find(|webhook| handles_create(webhook, group, resource))
            .map(|webhook| {
                let name = webhook.get("name").and_then(Value::as_str).unwrap_or("");
                (name, webhook)
            });
        Some(found)
    }

    /// A reason in the webhook configuration that the API server cannot
    /// call the webhook for `object`.
    fn configuration_problem(
        &self,
        check: Check,
        webhook: Option<(&str, &Value)>,
        object: &Value,
    ) -> Option<Failure> {
        let (configuration, _) = self.configuration.as_ref()?;
        let (name, webhook) = webhook?;
        let ca_bundle = webhook
            .pointer("/clientConfig/caBundle")
            .and_then(Value::as_str)
            .unwrap_or("");
        if ca_bundle.is_empty() {
            return Some(Failure::NoCaBundle {
                check,
                configuration: configuration.clone(),
                webhook: name.to_owned(),
            });
        }
        let excluded = |selector: &'static str, why: String| Failure::Excluded {
            check,
            webhook: name.to_owned(),
            selector,
            namespace: format!("namespace {}", self.namespace),
            why,
        };
        if let Some(why) = unmatched(webhook.get("namespaceSelector"), &self.namespace_labels) {
            return Some(excluded("namespaceSelector", why));
        }
        if let Some(why) = unmatched(webhook.get("objectSelector"), &labels_of(object)) {
            return Some(excluded("objectSelector", why));
        }
        None
    }

    /// Why `sent` came back unchanged.
    fn explain_unchanged(
        &self,
        check: Check,
        webhook: Option<(&str, &Value)>,
        sent: &Value,
        warnings: &[String],
    ) -> Failure {
        // The webhook answered, and said why it left the object alone.
        let own: Vec<&str> = warnings
            .iter()
            .map(String::as_str)
            .filter(|w| w.starts_with("vmcp-normalizer:"))
            .collect();
        if !own.is_empty() {
            return Failure::WrongAnswer {
                check,
                detail: format!(
                    "the webhook answered but left the object unchanged: {}",
                    own.join("; ")
                ),
            };
        }
        if let Some(problem) = self.configuration_problem(check, webhook, sent) {
            return problem;
        }
        let hint = if self.configuration.is_none() {
            " (or does not call it at all: give --webhook-configuration to tell which)".to_owned()
        } else {
            String::new()
        };
        Failure::NotCalled { check, hint }
    }
}

/// Whether a webhook's rules cover CREATE of `group`/`resource`.
fn handles_create(webhook: &Value, group: &str, resource: &str) -> bool {
    let has = |rule: &Value, field: &str, want: &str| {
        rule.get(field)
            .and_then(Value::as_array)
            .is_some_and(|items| {
                items
                    .iter()
                    .any(|item| item.as_str().is_some_and(|s| s == want || s == "*"))
            })
    };
    webhook
        .get("rules")
        .and_then(Value::as_array)
        .is_some_and(|rules| {
            rules.iter().any(|rule| {
                has(rule, "operations", "CREATE")
                    && has(rule, "apiGroups", group)
                    && has(rule, "resources", resource)
            })
        })
}

/// Run both checks, writing one line per step to `out`.
pub async fn run(api: &Api, options: &Options, out: &mut dyn Write) -> Result<(), Failure> {
    // Both go into URL paths.
    if !crate::normalize::is_dns_subdomain(&options.namespace) {
        return Err(Failure::Usage(format!(
            "--namespace {:?} is not a namespace name",
            options.namespace
        )));
    }
    if let Some(name) = &options.webhook_configuration
        && !crate::normalize::is_dns_subdomain(name)
    {
        return Err(Failure::Usage(format!(
            "--webhook-configuration {name:?} is not an object name"
        )));
    }
    let setup = read_setup(api, options, out).await?;
    let mut passed = Vec::new();
    if check_configmap(api, &setup, out).await? {
        passed.push("ConfigMaps");
    }
    if check_deployment(api, &setup, out).await? {
        passed.push("Deployments");
    }
    let _ = writeln!(
        out,
        "PASS: the webhook normalizes vMCP {} in namespace {}",
        passed.join(" and "),
        setup.namespace
    );
    Ok(())
}

async fn read_setup(api: &Api, options: &Options, out: &mut dyn Write) -> Result<Setup, Failure> {
    let namespace = options.namespace.clone();
    // The API server sets this label on every namespace (Kubernetes >= 1.21);
    // the chart's namespaceSelector uses it.
    let mut namespace_labels =
        Labels::from([("kubernetes.io/metadata.name".to_owned(), namespace.clone())]);
    let Some(name) = &options.webhook_configuration else {
        return Ok(Setup {
            configuration: None,
            namespace,
            namespace_labels,
        });
    };
    let configuration = match api.webhook_configuration(name).await {
        Ok(answer) => answer.object,
        Err(ApiError::NotFound { .. }) => {
            return Err(Failure::NotInstalled {
                configuration: name.clone(),
            });
        }
        Err(error) => {
            return Err(api_failure(
                format!("get MutatingWebhookConfiguration {name}"),
                error,
            ));
        }
    };
    match api.namespace(&namespace).await {
        Ok(answer) => namespace_labels.extend(labels_of(&answer.object)),
        // Only needed to explain a failure; the chart's selector needs none
        // but the label set above.
        Err(ApiError::Forbidden { .. }) => {
            let _ = writeln!(
                out,
                "note: may not read namespace {namespace}; judging the namespaceSelector by its name only"
            );
        }
        Err(error) => return Err(api_failure(format!("get namespace {namespace}"), error)),
    }
    Ok(Setup {
        configuration: Some((name.clone(), configuration)),
        namespace,
        namespace_labels,
    })
}

/// The ConfigMap check; `Ok(false)` when its webhook is switched off.
async fn check_configmap(api: &Api, setup: &Setup, out: &mut dyn Write) -> Result<bool, Failure> {
    let check = Check::ConfigMap;
    let webhook = match setup.webhook("", "configmaps") {
        Some(None) => {
            let _ = writeln!(
                out,
                "skip: ConfigMap: the webhook configuration has no webhook for configmaps (webhook.configMaps.enabled=false)"
            );
            return Ok(false);
        }
        Some(Some(webhook)) => Some(webhook),
        None => None,
    };
    let namespace = &setup.namespace;
    let sent = probe::unordered_configmap(namespace, probe::DRY_RUN_CONFIGMAP);
    let answer = api
        .create(&configmaps(namespace), &sent, true)
        .await
        .map_err(|error| {
            api_failure(
                format!(
                    "dry-run create of ConfigMap {} in {namespace}",
                    probe::DRY_RUN_CONFIGMAP
                ),
                error,
            )
        })?;
    match verdict::configmap(&sent, &answer.object) {
        Verdict::Normalized { checksum } => {
            let _ = writeln!(
                out,
                "ok: ConfigMap: a dry-run create in {namespace} came back with its backends in name order and content-checksum {checksum}"
            );
            Ok(true)
        }
        Verdict::Unchanged => Err(setup.explain_unchanged(check, webhook, &sent, &answer.warnings)),
        Verdict::Wrong(detail) => Err(Failure::WrongAnswer { check, detail }),
    }
}

/// The Deployment check; `Ok(false)` when its webhook is switched off.
async fn check_deployment(api: &Api, setup: &Setup, out: &mut dyn Write) -> Result<bool, Failure> {
    let check = Check::Deployment;
    let webhook = match setup.webhook("apps", "deployments") {
        Some(None) => {
            let _ = writeln!(
                out,
                "skip: Deployment: the webhook configuration has no webhook for deployments (webhook.deployments.enabled=false)"
            );
            return Ok(false);
        }
        Some(Some(webhook)) => Some(webhook),
        None => None,
    };
    let namespace = &setup.namespace;
    let unordered = probe::unordered_configmap(namespace, probe::PROBE_CONFIGMAP);
    let stale = probe::content_checksum_of(&unordered)
        .unwrap_or_default()
        .to_owned();
    // Known not to work: say so before writing anything.
    if let Some(problem) =
        setup.configuration_problem(check, webhook, &probe::deployment(namespace, &stale))
    {
        return Err(problem);
    }

    let stored = store_probe_configmap(api, namespace, &unordered, out).await?;
    let uid = stored
        .object
        .pointer("/metadata/uid")
        .and_then(Value::as_str);
    let checked = dry_run_deployment(api, setup, webhook, &stored.object, &stale, out).await;
    let removed = api
        .delete(&configmaps(namespace), probe::PROBE_CONFIGMAP, uid)
        .await;
    match (checked, removed) {
        (checked, Ok(())) => checked.map(|()| true),
        (checked, Err(error)) => {
            let _ = writeln!(
                out,
                "LEFT BEHIND: ConfigMap {namespace}/{} could not be deleted ({error}); delete it with: \
                 kubectl -n {namespace} delete configmap {}",
                probe::PROBE_CONFIGMAP,
                probe::PROBE_CONFIGMAP
            );
            checked.and(Err::<bool, _>(api_failure(
                format!("delete ConfigMap {}", probe::PROBE_CONFIGMAP),
                error,
            )))
        }
    }
}

/// Create the probe ConfigMap for real. One left by an interrupted run is
/// deleted first (the name is the self-test's own).
async fn store_probe_configmap(
    api: &Api,
    namespace: &str,
    configmap: &Value,
    out: &mut dyn Write,
) -> Result<Answer, Failure> {
    let action = || {
        format!(
            "create ConfigMap {} in {namespace} (the Deployment check reads it)",
            probe::PROBE_CONFIGMAP
        )
    };
    match api.create(&configmaps(namespace), configmap, false).await {
        Err(ApiError::AlreadyExists { .. }) => {
            let _ = writeln!(
                out,
                "note: deleting ConfigMap {namespace}/{} left by an interrupted run",
                probe::PROBE_CONFIGMAP
            );
            api.delete(&configmaps(namespace), probe::PROBE_CONFIGMAP, None)
                .await
                .map_err(|error| {
                    api_failure(
                        format!("delete the leftover ConfigMap {}", probe::PROBE_CONFIGMAP),
                        error,
                    )
                })?;
            api.create(&configmaps(namespace), configmap, false)
                .await
                .map_err(|error| api_failure(action(), error))
        }
        created => created.map_err(|error| api_failure(action(), error)),
    }
}

async fn dry_run_deployment(
    api: &Api,
    setup: &Setup,
    webhook: Option<(&str, &Value)>,
    stored: &Value,
    stale: &str,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let check = Check::Deployment;
    let namespace = &setup.namespace;
    let expected =
        probe::expected_runconfig_checksum(stored).ok_or_else(|| Failure::WrongAnswer {
            check,
            detail: "the stored probe ConfigMap has no canonical checksum".to_owned(),
        })?;
    let sent = probe::deployment(namespace, stale);
    let answer = api
        .create(
            &format!("/apis/apps/v1/namespaces/{namespace}/deployments"),
            &sent,
            true,
        )
        .await
        .map_err(|error| {
            api_failure(
                format!(
                    "dry-run create of Deployment {} in {namespace}",
                    probe::PROBE_VMCP
                ),
                error,
            )
        })?;
    match verdict::deployment(stale, &expected, &answer.object) {
        Verdict::Normalized { checksum } => {
            let _ = writeln!(
                out,
                "ok: Deployment: a dry-run create in {namespace} came back with runconfig-checksum {checksum} \
                 (the canonical checksum of ConfigMap {})",
                probe::PROBE_CONFIGMAP
            );
            Ok(())
        }
        Verdict::Unchanged => Err(setup.explain_unchanged(check, webhook, &sent, &answer.warnings)),
        Verdict::Wrong(detail) => Err(Failure::WrongAnswer { check, detail }),
    }
}

fn configmaps(namespace: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/configmaps")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn webhooks_are_found_by_their_rules() {
        let webhook = json!({"name": "deployments.x", "rules": [{"apiGroups": ["apps"],
            "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}]});
        assert!(handles_create(&webhook, "apps", "deployments"));
        assert!(!handles_create(&webhook, "", "configmaps"));
        assert!(!handles_create(&webhook, "", "deployments"));
        let update_only = json!({"rules": [{"apiGroups": ["apps"], "operations": ["UPDATE"],
            "resources": ["deployments"]}]});
        assert!(!handles_create(&update_only, "apps", "deployments"));
        let wildcard =
            json!({"rules": [{"apiGroups": ["*"], "operations": ["*"], "resources": ["*"]}]});
        assert!(handles_create(&wildcard, "", "configmaps"));
    }

    #[test]
    fn every_failure_has_its_own_exit_status() {
        let codes = [
            EXIT_OK,
            EXIT_NOT_CALLED,
            EXIT_USAGE,
            EXIT_NO_CA_BUNDLE,
            EXIT_EXCLUDED,
            EXIT_FORBIDDEN,
            EXIT_API_UNREACHABLE,
            EXIT_NOT_INSTALLED,
            EXIT_WRONG_ANSWER,
        ];
        let unique: std::collections::BTreeSet<u8> = codes.iter().copied().collect();
        assert_eq!(unique.len(), codes.len());
    }
}
