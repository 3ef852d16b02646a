//! This member's certificate and key, read from their files and read again
//! whenever the files change, so new connections use new certificates
//! without a restart.
//!
//! etcd reads both files on every handshake (`GetCertificate` and
//! `GetClientCertificate` in `pkg/transport/listener.go`). Here a handshake
//! costs two `stat`s: the files are parsed again only when their size or
//! modification time changed, or on [`KeyFiles::reload`]. A file that fails
//! to load while a good pair is held keeps the good pair (a half-written
//! file during a rotation does not take the member down) and is logged.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

/// What tells one version of a file from the next: its size and its
/// modification time.
type Stamp = Option<(u64, SystemTime)>;

/// The certificate and key files and the pair last read from them.
#[derive(Debug)]
pub(crate) struct KeyFiles {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    stamps: [Stamp; 2],
    key: Arc<CertifiedKey>,
}

impl KeyFiles {
    /// Reads the pair now; an unreadable or mismatched pair is an error.
    pub(crate) fn open(
        cert_file: &Path,
        key_file: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<KeyFiles, TlsError> {
        let stamps = stamps(cert_file, key_file);
        let key = load(cert_file, key_file, &provider)?;
        Ok(KeyFiles {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            provider,
            current: Mutex::new(Loaded { stamps, key }),
        })
    }

    /// Reads the pair again now, whatever the files' stamps say. On error
    /// the pair held so far stays in use.
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        let stamps = stamps(&self.cert_file, &self.key_file);
        let key = load(&self.cert_file, &self.key_file, &self.provider)?;
        *self.lock() = Loaded { stamps, key };
        Ok(())
    }

    /// The pair for a new handshake: read again first if the files changed.
    fn current(&self) -> Arc<CertifiedKey> {
        let stamps = stamps(&self.cert_file, &self.key_file);
        if self.lock().stamps != stamps {
            if let Err(err) = self.reload() {
                log::warn!("keeping the peer certificate in use: {err}");
                // Do not try again until the files change once more.
                self.lock().stamps = stamps;
            }
        }
        self.lock().key.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Loaded> {
        // The guarded data is replaced whole, so a panic elsewhere cannot
        // leave it half-written.
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ResolvesServerCert for KeyFiles {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl ResolvesClientCert for KeyFiles {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn stamps(cert_file: &Path, key_file: &Path) -> [Stamp; 2] {
    [stamp(cert_file), stamp(key_file)]
}

fn stamp(path: &Path) -> Stamp {
    let meta = fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// Reads a PEM certificate chain and its PEM private key, and checks that
/// they belong together.
fn load(
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = certificates(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|err| TlsError::Pem {
        path: key_file.to_owned(),
        reason: err.to_string(),
    })?;
    let key = CertifiedKey::from_der(chain, key, provider).map_err(|source| TlsError::Key {
        path: key_file.to_owned(),
        source,
    })?;
    Ok(Arc::new(key))
}

/// Every certificate in the PEM file `path`, at least one.
pub(crate) fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_error = |err: rustls_pki_types::pem::Error| TlsError::Pem {
        path: path.to_owned(),
        reason: err.to_string(),
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(pem_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            reason: "no certificate".into(),
        });
    }
    Ok(chain)
}
