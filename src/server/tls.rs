//! The serving certificate: PEM loading and validation, and the resolver that
//! lets a reload swap the certificate under live connections.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a certificate and key cannot be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no PEM certificate in {path}")]
    NoCertificate { path: PathBuf },
    #[error("invalid PEM certificate in {path}: {source}")]
    BadCertificate {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("no usable PEM private key in {path}: {source}")]
    BadKey {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("unsupported private key in {path}: {source}")]
    UnsupportedKey {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("certificate {cert} does not match private key {key}")]
    KeyMismatch {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("cannot parse the X.509 certificate in {path}: {detail}")]
    BadX509 { path: PathBuf, detail: String },
    #[error("TLS configuration: {0}")]
    Config(#[source] rustls::Error),
}

/// Where the certificate chain and its private key live (PEM files; usually a
/// mounted Secret: `tls.crt` and `tls.key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The raw contents of both files, read once.
#[derive(Clone, PartialEq, Eq)]
pub struct PemPair {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

impl fmt::Debug for PemPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("PemPair").finish_non_exhaustive()
    }
}

impl PemPair {
    /// SHA-256 over both files: cheap to compare on every poll.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
        hash.update(&(self.cert.len() as u64).to_be_bytes());
        hash.update(&self.cert);
        hash.update(&self.key);
        let mut fingerprint = [0; 32];
        fingerprint.copy_from_slice(hash.finish().as_ref());
        fingerprint
    }
}

/// A validated certificate, ready to serve.
#[derive(Debug, Clone)]
pub struct ServingCert {
    pub certified_key: Arc<CertifiedKey>,
    /// Not-after of the leaf certificate, Unix seconds.
    pub not_after: i64,
    pub fingerprint: [u8; 32],
}

impl TlsFiles {
    /// Read both files (following symlinks, as the kubelet's `..data` layout needs).
    pub fn read(&self) -> Result<PemPair, TlsError> {
        let read = |what, path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                what,
                path: path.to_owned(),
                source,
            })
        };
        Ok(PemPair {
            cert: read("certificate", &self.cert)?,
            key: read("private key", &self.key)?,
        })
    }

    /// Read and validate: the chain parses, the key parses and is supported,
    /// and the key belongs to the leaf certificate.
    pub fn load(&self) -> Result<ServingCert, TlsError> {
        self.parse(&self.read()?)
    }

    pub fn parse(&self, pem: &PemPair) -> Result<ServingCert, TlsError> {
        let chain = CertificateDer::pem_slice_iter(&pem.cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| TlsError::BadCertificate {
                path: self.cert.clone(),
                source,
            })?;
        let Some(leaf) = chain.first() else {
            return Err(TlsError::NoCertificate {
                path: self.cert.clone(),
            });
        };
        let not_after = not_after(leaf).map_err(|detail| TlsError::BadX509 {
            path: self.cert.clone(),
            detail,
        })?;
        let key = PrivateKeyDer::from_pem_slice(&pem.key).map_err(|source| TlsError::BadKey {
            path: self.key.clone(),
            source,
        })?;
        let signing_key = provider()
            .key_provider
            .load_private_key(key)
            .map_err(|source| TlsError::UnsupportedKey {
                path: self.key.clone(),
                source,
            })?;
        let certified_key = CertifiedKey::new(chain, signing_key);
        // Strict: with ring every key type can report its public key, so
        // "cannot tell" is treated as a mismatch too.
        certified_key
            .keys_match()
            .map_err(|source| TlsError::KeyMismatch {
                cert: self.cert.clone(),
                key: self.key.clone(),
                source,
            })?;
        Ok(ServingCert {
            certified_key: Arc::new(certified_key),
            not_after,
            fingerprint: pem.fingerprint(),
        })
    }
}

fn not_after(leaf: &CertificateDer<'_>) -> Result<i64, String> {
    let (_, certificate) =
        x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|error| error.to_string())?;
    Ok(certificate.validity().not_after.timestamp())
}

/// The one crypto provider: ring (aws-lc-rs is kept out of the build).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Serves whatever certificate was stored last. Every TLS handshake reads it,
/// so a reload takes effect on the next connection and never disturbs an
/// established one.
pub struct CertResolver {
    current: ArcSwap<CertifiedKey>,
}

impl fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertResolver").finish_non_exhaustive()
    }
}

impl CertResolver {
    pub fn new(initial: Arc<CertifiedKey>) -> Self {
        Self {
            current: ArcSwap::new(initial),
        }
    }

    pub fn store(&self, certified_key: Arc<CertifiedKey>) {
        self.current.store(certified_key);
    }

    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// rustls server configuration: TLS 1.3 and 1.2 only, ALPN `h2` (what the
/// apiserver speaks) then `http/1.1`, certificate from the resolver.
pub fn server_config(resolver: Arc<CertResolver>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A `localhost` certificate and its key, PEM.
    pub(in crate::server) fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn files(dir: &Path, cert: &str, key: &str) -> TlsFiles {
        std::fs::write(dir.join("tls.crt"), cert).unwrap();
        std::fs::write(dir.join("tls.key"), key).unwrap();
        TlsFiles {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        }
    }

    #[test]
    fn loads_a_matching_pair() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed();
        let loaded = files(dir.path(), &cert, &key).load().unwrap();
        assert!(loaded.not_after > 1_700_000_000);
        assert_eq!(loaded.certified_key.cert.len(), 1);
    }

    #[test]
    fn refuses_bad_pairs_with_clear_messages() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed();
        let (_, other_key) = self_signed();
        let cases = [
            (
                cert.as_str(),
                other_key.as_str(),
                "does not match private key",
            ),
            ("", key.as_str(), "no PEM certificate in"),
            (cert.as_str(), "", "no usable PEM private key in"),
            (key.as_str(), cert.as_str(), "no PEM certificate in"),
        ];
        for (cert, key, expected) in cases {
            let error = files(dir.path(), cert, key).load().unwrap_err().to_string();
            assert!(error.contains(expected), "{expected:?} not in {error:?}");
        }
        let missing = TlsFiles {
            cert: dir.path().join("missing.crt"),
            key: dir.path().join("tls.key"),
        };
        let error = missing.load().unwrap_err().to_string();
        assert!(
            error.starts_with("cannot read certificate ") && error.contains("missing.crt"),
            "{error}"
        );
    }

    #[test]
    fn fingerprint_covers_both_files() {
        let a = PemPair {
            cert: b"ab".to_vec(),
            key: b"c".to_vec(),
        };
        let b = PemPair {
            cert: b"a".to_vec(),
            key: b"bc".to_vec(),
        };
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
    }
}
