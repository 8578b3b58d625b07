//! Where the self-managed certificate lives: a Secret in the server's own
//! namespace, and the `caBundle` of its MutatingWebhookConfiguration.
//!
//! Several replicas run this at once. They agree through the API server's
//! optimistic concurrency: a create that finds the Secret already there, or a
//! replace that finds it changed, re-reads and adopts what the winner wrote.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, ObjectMeta, PostParams};
use kube::core::GroupVersionKind;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::Value;
use time::OffsetDateTime;

use super::authority::{self, CertificateSet, Decision, IssueReason, Policy};

/// Attempts at a read-decide-write round before giving up until the next tick.
const ATTEMPTS: usize = 4;

const TLS_CERT: &str = "tls.crt";
const TLS_KEY: &str = "tls.key";
const CA_BUNDLE: &str = "ca.crt";
const CA_KEY: &str = "ca.key";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Kubernetes API: {0}")]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Authority(#[from] authority::AuthorityError),
    #[error("Secret {0} changed under every attempt; will retry")]
    Contended(String),
    #[error("MutatingWebhookConfiguration {0} is malformed: {1}")]
    MalformedWebhookConfiguration(String, String),
}

impl StoreError {
    /// Every [`StoreError::metric_label`].
    pub const METRIC_LABELS: [&'static str; 4] = [
        "api",
        "generate",
        "contended",
        "malformed_webhook_configuration",
    ];

    /// A stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            StoreError::Api(_) => "api",
            StoreError::Authority(_) => "generate",
            StoreError::Contended(_) => "contended",
            StoreError::MalformedWebhookConfiguration(..) => "malformed_webhook_configuration",
        }
    }
}

/// What one `ensure` round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensured {
    /// The set now stored (and to be served).
    pub set: CertificateSet,
    /// Set when this replica issued it.
    pub issued: Option<IssueReason>,
    /// Whether the webhook configuration's `caBundle` had to be written.
    pub published: Publish,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    AlreadyCurrent,
    Written,
    /// The webhook configuration does not exist (yet); nothing to publish to.
    NoWebhookConfiguration,
}

/// The Secret and webhook configuration of one installation.
#[derive(Clone)]
pub struct CertificateStore {
    secrets: Api<Secret>,
    webhooks: Api<DynamicObject>,
    secret_name: String,
    webhook_configuration: String,
    names: Vec<String>,
    policy: Policy,
}

impl CertificateStore {
    pub fn new(
        client: kube::Client,
        namespace: &str,
        secret_name: impl Into<String>,
        webhook_configuration: impl Into<String>,
        names: Vec<String>,
        policy: Policy,
    ) -> Self {
        let gvk = GroupVersionKind::gvk(
            "admissionregistration.k8s.io",
            "v1",
            "MutatingWebhookConfiguration",
        );
        let resource = ApiResource::from_gvk_with_plural(&gvk, "mutatingwebhookconfigurations");
        Self {
            secrets: Api::namespaced(client.clone(), namespace),
            // Read and written as untyped JSON, so fields this build does not
            // know survive the round trip.
            webhooks: Api::all_with(client, &resource),
            secret_name: secret_name.into(),
            webhook_configuration: webhook_configuration.into(),
            names,
            policy,
        }
    }

    /// Make sure a valid set is stored and its CAs published; return it.
    pub async fn ensure(&self, now: OffsetDateTime) -> Result<Ensured, StoreError> {
        for _ in 0..ATTEMPTS {
            let stored = self.secrets.get_opt(&self.secret_name).await?;
            let current = stored.as_ref().and_then(read_set);
            let (set, reason) =
                match authority::decide(current.as_ref(), &self.names, now, &self.policy)? {
                    Decision::Keep => match current {
                        Some(set) => (set, None),
                        None => continue,
                    },
                    Decision::Issue { set, reason } => (set, Some(reason)),
                };
            if let Some(reason) = reason {
                let written = match stored {
                    None => self.create(&set).await?,
                    Some(secret) => {
                        // Trust the new CA before any replica serves a leaf it signed.
                        self.publish(&set.ca_bundle, Merge::Add).await?;
                        self.replace(secret, &set).await?
                    }
                };
                if !written {
                    continue; // another replica won the race: adopt its set
                }
                let published = self.publish(&set.ca_bundle, Merge::Exactly).await?;
                return Ok(Ensured {
                    set,
                    issued: Some(reason),
                    published,
                });
            }
            let published = self.publish(&set.ca_bundle, Merge::Exactly).await?;
            return Ok(Ensured {
                set,
                issued: None,
                published,
            });
        }
        Err(StoreError::Contended(self.secret_name.clone()))
    }

    /// Create the Secret; `false` when another replica created it first.
    async fn create(&self, set: &CertificateSet) -> Result<bool, StoreError> {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(self.secret_name.clone()),
                labels: Some(BTreeMap::from([
                    (
                        "app.kubernetes.io/name".to_owned(),
                        "vmcp-normalizer".to_owned(),
                    ),
                    (
                        "app.kubernetes.io/managed-by".to_owned(),
                        "vmcp-normalizer".to_owned(),
                    ),
                ])),
                ..ObjectMeta::default()
            },
            type_: Some("kubernetes.io/tls".to_owned()),
            data: Some(secret_data(set)),
            ..Secret::default()
        };
        match self.secrets.create(&PostParams::default(), &secret).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Replace the Secret's data at the version read; `false` on a conflict.
    async fn replace(&self, mut secret: Secret, set: &CertificateSet) -> Result<bool, StoreError> {
        let mut data = secret.data.take().unwrap_or_default();
        data.extend(secret_data(set));
        secret.data = Some(data);
        secret.string_data = None;
        match self
            .secrets
            .replace(&self.secret_name, &PostParams::default(), &secret)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.is_conflict() => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Write `bundle` into the `caBundle` of every webhook of the
    /// configuration: exactly, or added to the CAs already there.
    async fn publish(&self, bundle: &str, merge: Merge) -> Result<Publish, StoreError> {
        for _ in 0..ATTEMPTS {
            let Some(mut configuration) =
                self.webhooks.get_opt(&self.webhook_configuration).await?
            else {
                return Ok(Publish::NoWebhookConfiguration);
            };
            // `webhooks` is optional: a configuration without any has no
            // caBundle to keep current.
            let webhooks = match configuration.data.get_mut("webhooks") {
                None | Some(Value::Null) => return Ok(Publish::AlreadyCurrent),
                Some(Value::Array(webhooks)) => webhooks,
                Some(_) => {
                    return Err(StoreError::MalformedWebhookConfiguration(
                        self.webhook_configuration.clone(),
                        "webhooks is not a list".to_owned(),
                    ));
                }
            };
            let mut changed = false;
            for webhook in webhooks.iter_mut() {
                let Some(client_config) = webhook
                    .get_mut("clientConfig")
                    .and_then(Value::as_object_mut)
                else {
                    return Err(StoreError::MalformedWebhookConfiguration(
                        self.webhook_configuration.clone(),
                        "a webhook without clientConfig".to_owned(),
                    ));
                };
                let present = client_config
                    .get("caBundle")
                    .and_then(Value::as_str)
                    .and_then(decode_base64)
                    .unwrap_or_default();
                let wanted = match merge {
                    Merge::Exactly => bundle.to_owned(),
                    Merge::Add => union(bundle, &present),
                };
                if present != wanted {
                    client_config.insert(
                        "caBundle".to_owned(),
                        Value::String(encode_base64(wanted.as_bytes())),
                    );
                    changed = true;
                }
            }
            if !changed {
                return Ok(Publish::AlreadyCurrent);
            }
            match self
                .webhooks
                .replace(
                    &self.webhook_configuration,
                    &PostParams::default(),
                    &configuration,
                )
                .await
            {
                Ok(_) => return Ok(Publish::Written),
                Err(kube::Error::Api(status)) if status.is_conflict() => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(StoreError::Contended(self.webhook_configuration.clone()))
    }
}

#[derive(Debug, Clone, Copy)]
enum Merge {
    Exactly,
    Add,
}

/// The certificates of `first`, then those of `then` not already there.
fn union(first: &str, then: &str) -> String {
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let mut out = String::new();
    for pem in [first, then] {
        for der in CertificateDer::pem_slice_iter(pem.as_bytes()).flatten() {
            if !seen.iter().any(|s| s.as_slice() == der.as_ref()) {
                seen.push(der.as_ref().to_vec());
                out.push_str(&authority::pem_encode(der.as_ref()));
            }
        }
    }
    out
}

fn secret_data(set: &CertificateSet) -> BTreeMap<String, ByteString> {
    [
        (TLS_CERT, &set.tls_cert),
        (TLS_KEY, &set.tls_key),
        (CA_BUNDLE, &set.ca_bundle),
        (CA_KEY, &set.ca_key),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), ByteString(value.as_bytes().to_vec())))
    .collect()
}

/// The set in a Secret, when all four keys hold text.
fn read_set(secret: &Secret) -> Option<CertificateSet> {
    let data = secret.data.as_ref()?;
    let text = |key: &str| String::from_utf8(data.get(key)?.0.clone()).ok();
    Some(CertificateSet {
        tls_cert: text(TLS_CERT)?,
        tls_key: text(TLS_KEY)?,
        ca_bundle: text(CA_BUNDLE)?,
        ca_key: text(CA_KEY)?,
    })
}

fn encode_base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn decode_base64(text: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    String::from_utf8(bytes).ok()
}
