//! Rules file hot reload: the same watching as the certificate's (the
//! directory, for a mounted ConfigMap's `..data` swap, and a poll of the
//! contents' hash). A file that does not pass the checks is refused with a
//! log line naming each problem, and the last good rules stay in force.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::Shutdown;
use super::reload::{ReloadOptions, ReloadResult, watch_and_poll};
use crate::metrics::Metrics;
use crate::rules::{RuleSet, RulesError};

/// A rules file that cannot be used, with where it is.
#[derive(Debug, thiserror::Error)]
pub enum RulesFileError {
    #[error("cannot read rules file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("rules file {}: {source}", path.display())]
    Invalid {
        path: PathBuf,
        #[source]
        source: RulesError,
    },
}

/// Read and check a rules file.
pub fn load_rules(path: &Path) -> Result<(RuleSet, [u8; 32]), RulesFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| RulesFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    let rules = RuleSet::from_yaml(&text).map_err(|source| RulesFileError::Invalid {
        path: path.to_owned(),
        source,
    })?;
    Ok((rules, fingerprint(&text)))
}

fn fingerprint(text: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let mut bytes = [0; 32];
    bytes.copy_from_slice(digest.as_ref());
    bytes
}

/// What was last acted on, so an unchanged bad file is logged once.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Contents([u8; 32]),
    Unreadable(String),
}

pub struct RulesReloader {
    path: PathBuf,
    rules: Arc<ArcSwap<RuleSet>>,
    metrics: Arc<Metrics>,
    seen: Seen,
}

impl RulesReloader {
    /// `served` is the fingerprint of the file the rules in `rules` came from.
    pub fn new(
        path: PathBuf,
        rules: Arc<ArcSwap<RuleSet>>,
        metrics: Arc<Metrics>,
        served: [u8; 32],
    ) -> Self {
        Self {
            path,
            rules,
            metrics,
            seen: Seen::Contents(served),
        }
    }

    /// Read the file again; put its rules in force if it changed and passes
    /// the checks.
    pub fn check(&mut self) -> ReloadResult {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) => {
                let seen = Seen::Unreadable(error.to_string());
                if seen == self.seen {
                    return ReloadResult::Unchanged;
                }
                self.seen = seen;
                self.metrics.rules_reload(false);
                tracing::error!(
                    path = %self.path.display(),
                    %error,
                    "rules file cannot be read; the last good rules stay in force"
                );
                return ReloadResult::Rejected;
            }
        };
        let seen = Seen::Contents(fingerprint(&text));
        if seen == self.seen {
            return ReloadResult::Unchanged;
        }
        self.seen = seen;
        match RuleSet::from_yaml(&text) {
            Ok(rules) => {
                let names: Vec<&str> = rules
                    .rules()
                    .iter()
                    .map(|rule| rule.name.as_str())
                    .collect();
                tracing::info!(
                    path = %self.path.display(),
                    rules = %names.join(","),
                    "rules file reloaded"
                );
                self.rules.store(Arc::new(rules));
                self.metrics.rules_reload(true);
                ReloadResult::Reloaded
            }
            Err(error) => {
                let problems: Vec<String> =
                    error.problems().iter().map(ToString::to_string).collect();
                self.metrics.rules_reload(false);
                tracing::error!(
                    path = %self.path.display(),
                    problems = ?problems,
                    "rules file refused; the last good rules stay in force"
                );
                ReloadResult::Rejected
            }
        }
    }

    /// Watch and poll until shutdown.
    pub async fn run(mut self, options: ReloadOptions, shutdown: Shutdown) {
        let paths = [self.path.clone()];
        watch_and_poll(&paths, "rules", options, shutdown, || {
            self.check();
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::PRESET;

    const GOOD: &str = "apiVersion: vmcp-normalizer.io/v1alpha1\nkind: NormalizationRules\nrules:\n- name: hosts\n  match: {kind: ConfigMap}\n  key: hosts.json\n  format: json\n  sets: [{path: ., by: .}]\n";

    #[test]
    fn a_bad_file_keeps_the_last_good_rules_and_a_good_one_replaces_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.yaml");
        std::fs::write(&path, GOOD).unwrap();
        let (rules, served) = load_rules(&path).unwrap();
        let cell = Arc::new(ArcSwap::from_pointee(rules));
        let metrics = Arc::new(Metrics::new());
        let mut reloader = RulesReloader::new(path.clone(), cell.clone(), metrics.clone(), served);
        assert_eq!(reloader.check(), ReloadResult::Unchanged);

        std::fs::write(&path, GOOD.replace("format: json", "format: toml")).unwrap();
        assert_eq!(reloader.check(), ReloadResult::Rejected);
        assert_eq!(reloader.check(), ReloadResult::Unchanged, "refused once");
        assert_eq!(cell.load().rules()[0].name, "hosts");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(reloader.check(), ReloadResult::Rejected);
        assert_eq!(cell.load().rules()[0].name, "hosts");

        std::fs::write(
            &path,
            GOOD.replace("rules:\n", "include: [toolhive-vmcp]\nrules:\n"),
        )
        .unwrap();
        assert_eq!(reloader.check(), ReloadResult::Reloaded);
        assert_eq!(cell.load().rules()[0].name, PRESET);
        // Two refusals (a bad file, then none), one reload.
        let text = metrics.encode().unwrap();
        assert!(
            text.contains(r#"vmcp_normalizer_rules_reloads_total{outcome="failed"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"vmcp_normalizer_rules_reloads_total{outcome="ok"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn at_startup_a_bad_file_is_an_error_that_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.yaml");
        std::fs::write(&path, GOOD.replace("by: .", "by: ''")).unwrap();
        let error = load_rules(&path).unwrap_err().to_string();
        assert!(error.contains("line 8 column"), "{error}");
        assert!(error.contains("rules[0].sets[0].by"), "{error}");
        assert!(matches!(
            load_rules(&dir.path().join("missing.yaml")),
            Err(RulesFileError::Read { .. })
        ));
    }
}
