//! The self-managed serving certificate: a CA of the webhook's own and a leaf
//! for its Service, and the decision of what to keep and what to issue.
//!
//! Deciding is separate from storing, and takes the time as an argument, so
//! every rotation rule is tested without a clock or a cluster.

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// Certificates stand valid this long before "now", for clocks slightly behind.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// Lifetimes and how long before expiry each certificate is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub ca_lifetime: Duration,
    pub leaf_lifetime: Duration,
    /// Replace the CA when less than this is left. Longer than a leaf's
    /// lifetime, so the old CA stays trusted for every leaf it signed.
    pub ca_renew_before: Duration,
    pub leaf_renew_before: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        const DAY: u64 = 24 * 60 * 60;
        Self {
            ca_lifetime: Duration::from_secs(3 * 365 * DAY),
            leaf_lifetime: Duration::from_secs(90 * DAY),
            ca_renew_before: Duration::from_secs(120 * DAY),
            leaf_renew_before: Duration::from_secs(30 * DAY),
        }
    }
}

/// The PEM texts stored in the certificate Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSet {
    /// `tls.crt`: the serving certificate.
    pub tls_cert: String,
    /// `tls.key`: its private key.
    pub tls_key: String,
    /// `ca.crt`: the CAs clients trust, the current one first, then any older
    /// one still inside its validity (the rotation overlap).
    pub ca_bundle: String,
    /// `ca.key`: the current CA's private key, to sign the next leaf.
    pub ca_key: String,
}

/// Why a new set was issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueReason {
    Missing,
    Unreadable(String),
    CaExpiring,
    LeafExpiring,
    NamesChanged,
}

impl IssueReason {
    /// Every [`IssueReason::as_str`], for the metrics to start at zero.
    pub const LABELS: [&'static str; 5] = [
        "missing",
        "unreadable",
        "ca_expiring",
        "leaf_expiring",
        "names_changed",
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            IssueReason::Missing => "missing",
            IssueReason::Unreadable(_) => "unreadable",
            IssueReason::CaExpiring => "ca_expiring",
            IssueReason::LeafExpiring => "leaf_expiring",
            IssueReason::NamesChanged => "names_changed",
        }
    }
}

/// What to do with the stored set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Keep,
    Issue {
        set: CertificateSet,
        reason: IssueReason,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{0}")]
    Time(String),
}

/// Keep `stored`, or issue what should replace it, for the DNS `names` at `now`.
pub fn decide(
    stored: Option<&CertificateSet>,
    names: &[String],
    now: OffsetDateTime,
    policy: &Policy,
) -> Result<Decision, AuthorityError> {
    let Some(stored) = stored else {
        return Ok(Decision::Issue {
            set: new_authority(names, now, policy, &[])?,
            reason: IssueReason::Missing,
        });
    };
    let parsed = match ParsedSet::read(stored) {
        Ok(parsed) => parsed,
        Err(why) => {
            return Ok(Decision::Issue {
                set: new_authority(names, now, policy, &[])?,
                reason: IssueReason::Unreadable(why),
            });
        }
    };
    let left = |not_after: OffsetDateTime| not_after - now;
    if left(parsed.ca_not_after) < policy.ca_renew_before {
        // The current CA joins the trusted older ones until it expires.
        return Ok(Decision::Issue {
            set: new_authority(names, now, policy, &parsed.trusted_at(now))?,
            reason: IssueReason::CaExpiring,
        });
    }
    let reason = if parsed.leaf_names != sorted(names) {
        IssueReason::NamesChanged
    } else if left(parsed.leaf_not_after) < policy.leaf_renew_before || !parsed.leaf_signed_by_ca {
        IssueReason::LeafExpiring
    } else {
        return Ok(Decision::Keep);
    };
    let ca_key = KeyPair::from_pem(&stored.ca_key)?;
    let issuer = Issuer::from_ca_cert_pem(&parsed.ca_pem, ca_key)?;
    let (tls_cert, tls_key) = new_leaf(names, now, policy, &issuer, parsed.ca_not_after)?;
    Ok(Decision::Issue {
        set: CertificateSet {
            tls_cert,
            tls_key,
            ca_bundle: parsed.trusted_at(now).concat(),
            ca_key: stored.ca_key.clone(),
        },
        reason,
    })
}

/// A new CA and a leaf it signs for `names`, valid from `now`.
pub fn issue(
    names: &[String],
    now: OffsetDateTime,
    policy: &Policy,
) -> Result<CertificateSet, AuthorityError> {
    new_authority(names, now, policy, &[])
}

/// A new CA and a leaf it signs; `older` CAs (PEM) stay in the bundle.
fn new_authority(
    names: &[String],
    now: OffsetDateTime,
    policy: &Policy,
    older: &[String],
) -> Result<CertificateSet, AuthorityError> {
    let ca_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    // A distinct subject per CA, so clients holding old and new tell them apart.
    params.distinguished_name.push(
        DnType::CommonName,
        format!("vmcp-normalizer CA {}", now.unix_timestamp()),
    );
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = now - BACKDATE;
    params.not_after = now + policy.ca_lifetime;
    let ca_not_after = params.not_after;
    let ca_cert = params.self_signed(&ca_key)?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(params, ca_key);
    let (tls_cert, tls_key) = new_leaf(names, now, policy, &issuer, ca_not_after)?;
    let mut bundle = vec![ca_cert.pem()];
    bundle.extend(older.iter().cloned());
    Ok(CertificateSet {
        tls_cert,
        tls_key,
        ca_bundle: bundle.concat(),
        ca_key: ca_key_pem,
    })
}

fn new_leaf(
    names: &[String],
    now: OffsetDateTime,
    policy: &Policy,
    issuer: &Issuer<'_, KeyPair>,
    ca_not_after: OffsetDateTime,
) -> Result<(String, String), AuthorityError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.to_vec())?;
    if let Some(first) = names.first() {
        params
            .distinguished_name
            .push(DnType::CommonName, first.clone());
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_before = now - BACKDATE;
    // A leaf never outlives the CA that vouches for it.
    params.not_after = (now + policy.leaf_lifetime).min(ca_not_after);
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn sorted(names: &[String]) -> Vec<String> {
    let mut names = names.to_vec();
    names.sort();
    names.dedup();
    names
}

/// What `decide` needs to know about a stored set.
struct ParsedSet {
    ca_pem: String,
    ca_not_after: OffsetDateTime,
    /// Older CAs in the bundle, with their expiry.
    older_cas: Vec<(String, OffsetDateTime)>,
    leaf_names: Vec<String>,
    leaf_not_after: OffsetDateTime,
    leaf_signed_by_ca: bool,
}

impl ParsedSet {
    /// The current CA, then the older ones not yet expired at `now` (PEM).
    fn trusted_at(&self, now: OffsetDateTime) -> Vec<String> {
        std::iter::once(self.ca_pem.clone())
            .chain(
                self.older_cas
                    .iter()
                    .filter(|ca| ca.1 > now)
                    .map(|ca| ca.0.clone()),
            )
            .collect()
    }

    fn read(set: &CertificateSet) -> Result<Self, String> {
        let cas: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(set.ca_bundle.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| format!("ca.crt: {e}"))?;
        let (current, older) = cas.split_first().ok_or("ca.crt holds no certificate")?;
        let ca = parse(current, "ca.crt")?;
        let leaf_der = CertificateDer::from_pem_slice(set.tls_cert.as_bytes())
            .map_err(|e| format!("tls.crt: {e}"))?;
        let leaf = parse(&leaf_der, "tls.crt")?;
        let leaf_key = KeyPair::from_pem(&set.tls_key).map_err(|e| format!("tls.key: {e}"))?;
        if leaf.public_key().subject_public_key.data.as_ref() != leaf_key.public_key_raw() {
            return Err("tls.key does not match tls.crt".into());
        }
        let ca_key = KeyPair::from_pem(&set.ca_key).map_err(|e| format!("ca.key: {e}"))?;
        if ca.public_key().subject_public_key.data.as_ref() != ca_key.public_key_raw() {
            return Err("ca.key does not match the first certificate of ca.crt".into());
        }
        let mut leaf_names: Vec<String> = leaf
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|name| match name {
                        GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        leaf_names.sort();
        leaf_names.dedup();
        let older_cas = older
            .iter()
            .map(|der| {
                Ok((
                    pem_of(der),
                    parse(der, "ca.crt")?.validity().not_after.to_datetime(),
                ))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            ca_pem: pem_of(current),
            ca_not_after: ca.validity().not_after.to_datetime(),
            older_cas,
            leaf_names,
            leaf_not_after: leaf.validity().not_after.to_datetime(),
            leaf_signed_by_ca: leaf.issuer() == ca.subject()
                && leaf.verify_signature(Some(ca.public_key())).is_ok(),
        })
    }
}

fn parse<'d>(der: &'d CertificateDer<'_>, what: &str) -> Result<X509Certificate<'d>, String> {
    X509Certificate::from_der(der.as_ref())
        .map(|(_, cert)| cert)
        .map_err(|e| format!("{what}: {e}"))
}

fn pem_of(der: &CertificateDer<'_>) -> String {
    pem_encode(der.as_ref())
}

/// PEM text of a DER certificate.
pub(crate) fn pem_encode(der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 60 * 60);

    fn names() -> Vec<String> {
        vec![
            "svc.ns.svc".to_owned(),
            "svc.ns.svc.cluster.local".to_owned(),
        ]
    }

    fn start() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn issue(
        stored: Option<&CertificateSet>,
        names: &[String],
        now: OffsetDateTime,
    ) -> (CertificateSet, IssueReason) {
        match decide(stored, names, now, &Policy::default()).unwrap() {
            Decision::Issue { set, reason } => (set, reason),
            Decision::Keep => panic!("expected a new set"),
        }
    }

    fn cas(set: &CertificateSet) -> Vec<String> {
        CertificateDer::pem_slice_iter(set.ca_bundle.as_bytes())
            .map(|der| pem_of(&der.unwrap()))
            .collect()
    }

    #[test]
    fn a_missing_set_is_created_and_then_kept() {
        let (set, reason) = issue(None, &names(), start());
        assert_eq!(reason, IssueReason::Missing);
        assert_eq!(cas(&set).len(), 1);
        let parsed = ParsedSet::read(&set).unwrap();
        assert_eq!(parsed.leaf_names, names());
        assert!(parsed.leaf_signed_by_ca);
        assert_eq!(
            decide(Some(&set), &names(), start() + 59 * DAY, &Policy::default()).unwrap(),
            Decision::Keep
        );
    }

    #[test]
    fn the_leaf_is_renewed_under_the_same_ca_before_it_expires() {
        let (set, _) = issue(None, &names(), start());
        let (renewed, reason) = issue(Some(&set), &names(), start() + 61 * DAY);
        assert_eq!(reason, IssueReason::LeafExpiring);
        assert_eq!(
            renewed.ca_bundle, set.ca_bundle,
            "same CA, nothing for clients to learn"
        );
        assert_eq!(renewed.ca_key, set.ca_key);
        assert_ne!(renewed.tls_cert, set.tls_cert);
        assert!(ParsedSet::read(&renewed).unwrap().leaf_signed_by_ca);
    }

    #[test]
    fn the_ca_is_rotated_ahead_of_expiry_keeping_the_old_one_trusted() {
        let policy = Policy::default();
        let (set, _) = issue(None, &names(), start());
        let near_ca_expiry = start() + policy.ca_lifetime - policy.ca_renew_before + DAY;
        let (rotated, reason) = issue(Some(&set), &names(), near_ca_expiry);
        assert_eq!(reason, IssueReason::CaExpiring);
        let bundle = cas(&rotated);
        assert_eq!(bundle.len(), 2);
        assert_eq!(
            bundle[1],
            cas(&set)[0],
            "the old CA stays during the overlap"
        );
        assert_ne!(rotated.ca_key, set.ca_key);
        assert!(ParsedSet::read(&rotated).unwrap().leaf_signed_by_ca);

        // Once the old CA has expired, the next issue drops it.
        let later = start() + policy.ca_lifetime + DAY;
        let (next, reason) = issue(Some(&rotated), &names(), later);
        assert_eq!(reason, IssueReason::LeafExpiring);
        assert_eq!(cas(&next), vec![cas(&rotated)[0].clone()]);
    }

    #[test]
    fn a_leaf_never_outlives_its_ca() {
        let policy = Policy::default();
        let (set, _) = issue(None, &names(), start());
        let parsed = ParsedSet::read(&set).unwrap();
        assert!(parsed.leaf_not_after <= parsed.ca_not_after);
        assert!(policy.ca_renew_before > policy.leaf_lifetime);
    }

    #[test]
    fn new_names_get_a_new_leaf() {
        let (set, _) = issue(None, &names(), start());
        let other = vec!["other.ns.svc".to_owned()];
        let (renewed, reason) = issue(Some(&set), &other, start() + DAY);
        assert_eq!(reason, IssueReason::NamesChanged);
        assert_eq!(ParsedSet::read(&renewed).unwrap().leaf_names, other);
    }

    #[test]
    fn unreadable_or_mismatched_sets_are_replaced() {
        let (set, _) = issue(None, &names(), start());
        let (other, _) = issue(None, &names(), start());
        for broken in [
            CertificateSet {
                tls_cert: "garbage".into(),
                ..set.clone()
            },
            CertificateSet {
                tls_key: other.tls_key.clone(),
                ..set.clone()
            },
            CertificateSet {
                ca_key: other.ca_key.clone(),
                ..set.clone()
            },
            CertificateSet {
                ca_bundle: String::new(),
                ..set.clone()
            },
        ] {
            let (_, reason) = issue(Some(&broken), &names(), start());
            assert!(matches!(reason, IssueReason::Unreadable(_)), "{reason:?}");
        }
        // A leaf from another CA is re-issued under the stored one.
        let foreign = CertificateSet {
            tls_cert: other.tls_cert.clone(),
            tls_key: other.tls_key.clone(),
            ..set.clone()
        };
        assert_eq!(
            issue(Some(&foreign), &names(), start()).1,
            IssueReason::LeafExpiring
        );
    }

    #[test]
    fn issued_pairs_load_into_rustls() {
        let (set, _) = issue(None, &names(), start());
        let certs: Vec<_> = CertificateDer::pem_slice_iter(set.tls_cert.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(set.tls_key.as_bytes()).unwrap();
        let provider = rustls::crypto::ring::default_provider();
        let certified = rustls::sign::CertifiedKey::from_der(certs, key, &provider).unwrap();
        certified.keys_match().unwrap();
    }
}
