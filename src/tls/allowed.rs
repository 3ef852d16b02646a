//! etcd's `--peer-cert-allowed-cn` and `--peer-cert-allowed-hostname`: a
//! client certificate verifier that first verifies the chain as usual,
//! then admits only certificates whose common name, or whose names, are
//! allowed (etcd's `VerifyPeerCertificate` in `pkg/transport/listener.go`).

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, OtherError};
use rustls::{Error, SignatureScheme};

use super::subject::common_name;

/// What a client certificate must show, beyond a valid chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Allowed {
    /// Its subject's common name is one of these
    /// (`--peer-cert-allowed-cn`).
    CommonName(Vec<String>),
    /// It is valid for one of these host names or IP addresses, as Go's
    /// `x509.Certificate.VerifyHostname` decides: by its subject
    /// alternative names (`--peer-cert-allowed-hostname`).
    Hostname(Vec<String>),
}

impl Allowed {
    /// Whether the verified end-entity certificate `cert` is admitted.
    fn admits(&self, cert: &CertificateDer<'_>) -> bool {
        match self {
            Allowed::CommonName(names) => common_name(cert).is_some_and(|cn| names.contains(&cn)),
            Allowed::Hostname(hosts) => {
                let Ok(cert) = webpki::EndEntityCert::try_from(cert) else {
                    return false;
                };
                hosts.iter().any(|host| {
                    ServerName::try_from(host.as_str())
                        .is_ok_and(|name| cert.verify_is_valid_for_subject_name(&name).is_ok())
                })
            }
        }
    }
}

/// The error a refused certificate ends its handshake with, in etcd's words.
#[derive(Debug, thiserror::Error)]
#[error("client certificate authentication failed")]
struct NotAllowed;

/// `inner`, then the allow-list.
#[derive(Debug)]
pub(crate) struct AllowedNames {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Allowed,
}

impl AllowedNames {
    /// Admits what `inner` verifies and `allowed` admits.
    pub(crate) fn new(inner: Arc<dyn ClientCertVerifier>, allowed: Allowed) -> Self {
        AllowedNames { inner, allowed }
    }
}

impl ClientCertVerifier for AllowedNames {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if self.allowed.admits(end_entity) {
            return Ok(verified);
        }
        log::warn!(
            "refused a peer certificate (CN {:?}): {NotAllowed}",
            common_name(end_entity).unwrap_or_default()
        );
        Err(Error::InvalidCertificate(CertificateError::Other(
            OtherError(Arc::new(NotAllowed)),
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
