//! What a dry-run answer says: normalized as the core would, left
//! unchanged (the webhook did not act), or changed wrongly. Pure, so every
//! reading is tested without an API server.

use serde_json::Value;

use super::probe;
use crate::checksum::content_checksum;

/// The reading of one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// As the core computes it; the checksum the answer carries.
    Normalized { checksum: String },
    /// As it was sent: the webhook did not act on it.
    Unchanged,
    /// Changed, but not into what the core computes: why.
    Wrong(String),
}

/// The answer to the dry-run create of the ConfigMap `sent`: its
/// `config.yaml` must be the canonical text and its `content-checksum` the
/// checksum of the answer itself (so a label another webhook added is
/// counted, as ToolHive counts it).
pub fn configmap(sent: &Value, answer: &Value) -> Verdict {
    let got = probe::config_of(answer);
    if got == probe::config_of(sent) {
        return Verdict::Unchanged;
    }
    let Some(expected) = probe::canonical_config(sent) else {
        return Verdict::Wrong("the probe ConfigMap does not normalize (a bug)".to_owned());
    };
    if got != Some(expected.as_str()) {
        return Verdict::Wrong(format!(
            "config.yaml came back changed but not in canonical order (another version of \
             vmcp-normalizer?):\n{}",
            got.unwrap_or("<missing>")
        ));
    }
    let checksum = match content_checksum(answer) {
        Ok(checksum) => checksum,
        Err(error) => return Verdict::Wrong(format!("the answer cannot be checksummed: {error}")),
    };
    match probe::content_checksum_of(answer) {
        Some(got) if got == checksum => Verdict::Normalized { checksum },
        got => Verdict::Wrong(format!(
            "backends sorted, but content-checksum is {} instead of {checksum}",
            got.unwrap_or("<missing>")
        )),
    }
}

/// The answer to the dry-run create of a Deployment sent with
/// `runconfig-checksum: stale`, which must come back as `expected`.
pub fn deployment(stale: &str, expected: &str, answer: &Value) -> Verdict {
    match probe::runconfig_checksum_of(answer) {
        Some(got) if got == expected => Verdict::Normalized {
            checksum: expected.to_owned(),
        },
        Some(got) if got == stale => Verdict::Unchanged,
        got => Verdict::Wrong(format!(
            "runconfig-checksum came back as {} instead of {expected}",
            got.unwrap_or("<missing>")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::{Outcome, normalize_configmap};
    use serde_json::json;

    fn normalized(sent: &Value) -> Value {
        let Outcome::Normalized(normalized) = normalize_configmap(sent) else {
            panic!("the probe normalizes");
        };
        normalized.apply_to(sent).unwrap()
    }

    #[test]
    fn configmap_answers() {
        let sent = probe::unordered_configmap("ns", probe::DRY_RUN_CONFIGMAP);
        let good = normalized(&sent);
        let checksum = probe::content_checksum_of(&good).unwrap().to_owned();
        assert_eq!(configmap(&sent, &good), Verdict::Normalized { checksum });
        assert_eq!(configmap(&sent, &sent), Verdict::Unchanged);

        // Sorted, but the checksum left as sent.
        let mut stale = good.clone();
        stale["metadata"]["annotations"]["toolhive.stacklok.dev/content-checksum"] =
            sent["metadata"]["annotations"]["toolhive.stacklok.dev/content-checksum"].clone();
        let Verdict::Wrong(why) = configmap(&sent, &stale) else {
            panic!("a stale checksum passed");
        };
        assert!(why.contains("content-checksum is"), "{why}");

        // Changed some other way.
        let mut other = sent.clone();
        other["data"]["config.yaml"] = json!("name: x\n");
        let Verdict::Wrong(why) = configmap(&sent, &other) else {
            panic!("another text passed");
        };
        assert!(why.contains("not in canonical order"), "{why}");

        // A label added after the webhook: the checksum no longer covers it.
        let mut labelled = good.clone();
        labelled["metadata"]["labels"]["team"] = json!("a");
        assert!(matches!(configmap(&sent, &labelled), Verdict::Wrong(_)));
    }

    #[test]
    fn deployment_answers() {
        let with = |checksum: &str| probe::deployment("ns", checksum);
        assert_eq!(
            deployment("old", "new", &with("new")),
            Verdict::Normalized {
                checksum: "new".to_owned()
            }
        );
        assert_eq!(deployment("old", "new", &with("old")), Verdict::Unchanged);
        assert!(matches!(
            deployment("old", "new", &with("other")),
            Verdict::Wrong(_)
        ));
        assert!(matches!(
            deployment("old", "new", &json!({})),
            Verdict::Wrong(_)
        ));
    }
}
