//! Mutual TLS between members, as etcd's peer TLS (feature `tls`).
//!
//! [`TlsInfo`] takes etcd's peer flags (`--peer-cert-file`,
//! `--peer-key-file`, `--peer-trusted-ca-file`, `--peer-client-cert-auth`,
//! `--peer-cert-allowed-cn`, `--peer-cert-allowed-hostname`) and
//! [`TlsInfo::load`]s them into a [`PeerTls`], which gives both ends:
//!
//! - the pipeline's side: [`PeerTls::client_config`] for
//!   [`PipelineConfig::tls`](crate::PipelineConfig::tls). The senders then
//!   post to `https://` peer URLs, present this member's certificate, and
//!   verify the peer's against the trusted CA;
//! - the receiver's side: [`PeerTls::server_config`] for actix-web's
//!   `HttpServer::bind_rustls_0_23`. With client-cert auth on, it requires a
//!   client certificate and verifies it in the handshake (unknown CA,
//!   expired certificate, or a name outside the allow-list end the
//!   handshake, before any request is read).
//!
//! Both ends read the certificate and key again when their files change
//! (checked on each new handshake, or at once with [`PeerTls::reload`]):
//! new connections use the new pair, connections already open keep theirs
//! until they close ([`ResetConnections`](crate::ResetConnections) closes
//! the pipeline's). The trusted CA is read once, at `load`.
//!
//! rustls runs on its `ring` provider, named explicitly, so no process-wide
//! default provider is needed.
//!
//! ```no_run
//! # use actix_web::{App, HttpServer};
//! # use rafthttp_pipeline::{receiver::{self, ReceiverConfig}, tls::TlsInfo, *};
//! # async fn run(me: LocalMember, config: ReceiverConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let tls = TlsInfo::new("peer.crt", "peer.key")
//!     .trusted_ca_file("ca.crt")
//!     .client_cert_auth(true)
//!     .load()?;
//! let server = HttpServer::new(move || App::new().configure(receiver::configure(config.clone())))
//!     .bind_rustls_0_23(("127.0.0.1", 2380), tls.server_config())?
//!     .run();
//! let pipeline = PipelineConfig::new(&me, Id(2), vec!["https://10.0.0.2:2380".into()])
//!     .tls(tls.client_config());
//! # Ok(())
//! # }
//! ```

mod allowed;
mod key_files;
mod subject;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use self::allowed::{Allowed, AllowedNames};
use self::key_files::{certificates, KeyFiles};

/// etcd's peer TLS settings (`transport.TLSInfo` in
/// `pkg/transport/listener.go`), each field named for its flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// This member's certificate chain, PEM (`--peer-cert-file`): served
    /// to peers and presented to them as the client certificate.
    pub cert_file: PathBuf,
    /// Its private key, PEM (`--peer-key-file`).
    pub key_file: PathBuf,
    /// The CA certificates peers' certificates must chain to, PEM
    /// (`--peer-trusted-ca-file`). Required: the pipeline verifies every
    /// peer against it.
    pub trusted_ca_file: Option<PathBuf>,
    /// Require and verify a client certificate from every peer
    /// (`--peer-client-cert-auth`).
    pub client_cert_auth: bool,
    /// Admit only client certificates with one of these subject common
    /// names (`--peer-cert-allowed-cn`; etcd 3.4 takes one name). Empty
    /// admits any. Checked only with `client_cert_auth`.
    pub allowed_cn: Vec<String>,
    /// Admit only client certificates valid for one of these host names or
    /// IP addresses (`--peer-cert-allowed-hostname`). Empty admits any.
    /// Checked only with `client_cert_auth`.
    pub allowed_hostname: Vec<String>,
}

/// Why peer TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or held nothing usable.
    #[error("{}: {reason}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The private key is not usable or does not match the certificate.
    #[error("{}: {source}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// A trusted CA certificate was refused.
    #[error("{}: {source}", path.display())]
    Ca {
        /// The CA file.
        path: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// No `--peer-trusted-ca-file`.
    #[error("a trusted CA file is required for peer TLS")]
    NoTrustedCa,
    /// Both allow-lists were given (etcd's text).
    #[error(
        "AllowedCN and AllowedHostname are mutually exclusive (cn={cn:?}, hostname={hostname:?})"
    )]
    MutuallyExclusive {
        /// `--peer-cert-allowed-cn`.
        cn: String,
        /// `--peer-cert-allowed-hostname`.
        hostname: String,
    },
    /// The client certificate verifier could not be built.
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] VerifierBuilderError),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

impl TlsInfo {
    /// This member's certificate and key, with no CA yet and client-cert
    /// auth off.
    pub fn new(cert_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        TlsInfo {
            cert_file: cert_file.into(),
            key_file: key_file.into(),
            trusted_ca_file: None,
            client_cert_auth: false,
            allowed_cn: Vec::new(),
            allowed_hostname: Vec::new(),
        }
    }

    /// Sets the trusted CA file.
    pub fn trusted_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.trusted_ca_file = Some(path.into());
        self
    }

    /// Sets whether peers must present a verified client certificate.
    pub fn client_cert_auth(mut self, on: bool) -> Self {
        self.client_cert_auth = on;
        self
    }

    /// Sets the common names a client certificate may have.
    pub fn allowed_cn(mut self, names: Vec<String>) -> Self {
        self.allowed_cn = names;
        self
    }

    /// Sets the host names a client certificate must be valid for (one).
    pub fn allowed_hostname(mut self, hosts: Vec<String>) -> Self {
        self.allowed_hostname = hosts;
        self
    }

    /// Reads the files and builds both ends' configurations.
    pub fn load(&self) -> Result<PeerTls, TlsError> {
        let allowed = self.allowed()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let ca_file = self
            .trusted_ca_file
            .as_deref()
            .ok_or(TlsError::NoTrustedCa)?;
        let roots = Arc::new(roots(ca_file)?);
        let key_files = Arc::new(KeyFiles::open(
            &self.cert_file,
            &self.key_file,
            provider.clone(),
        )?);
        let verifier = match self.client_cert_auth {
            true => client_verifier(roots.clone(), provider.clone(), allowed)?,
            false => WebPkiClientVerifier::no_client_auth(),
        };
        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(key_files.clone());
        // No session resumption on either end, as etcd (Go keeps no
        // session cache unless asked): every connection shows and checks
        // the certificates in use now, so a rotated or revoked one takes
        // effect on the next connection.
        server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        server.send_tls13_tickets = 0;
        let mut client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_cert_resolver(key_files.clone());
        // HTTP/1.1 only, as the senders speak (etcd's peer port sends
        // HTTP/2 to gRPC).
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        client.resumption = rustls::client::Resumption::disabled();
        Ok(PeerTls {
            key_files,
            client: Arc::new(client),
            server: Arc::new(server),
        })
    }

    /// The allow-list, if any; both at once is etcd's error.
    fn allowed(&self) -> Result<Option<Allowed>, TlsError> {
        match (self.allowed_cn.is_empty(), self.allowed_hostname.is_empty()) {
            (true, true) => Ok(None),
            (false, true) => Ok(Some(Allowed::CommonName(self.allowed_cn.clone()))),
            (true, false) => Ok(Some(Allowed::Hostname(self.allowed_hostname.clone()))),
            (false, false) => Err(TlsError::MutuallyExclusive {
                cn: self.allowed_cn.join(","),
                hostname: self.allowed_hostname.join(","),
            }),
        }
    }
}

/// Both ends of peer TLS, loaded from a [`TlsInfo`]; cheap to clone and
/// shared by every pipeline and the server.
#[derive(Debug, Clone)]
pub struct PeerTls {
    key_files: Arc<KeyFiles>,
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

impl PeerTls {
    /// The senders' configuration, for
    /// [`PipelineConfig::tls`](crate::PipelineConfig::tls).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.client.clone()
    }

    /// The server's configuration, for `HttpServer::bind_rustls_0_23`
    /// (actix-web's feature `rustls-0_23`, which this crate's `tls`
    /// feature turns on).
    pub fn server_config(&self) -> ServerConfig {
        (*self.server).clone()
    }

    /// Reads the certificate and key files again now, for both ends. On
    /// error the pair in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.key_files.reload()
    }
}

/// The trusted CA certificates in `path`.
fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots.add(cert).map_err(|source| TlsError::Ca {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(roots)
}

/// Requires a client certificate chaining to `roots`, valid now, and
/// admitted by `allowed` if given.
fn client_verifier(
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    allowed: Option<Allowed>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider).build()?;
    Ok(match allowed {
        Some(allowed) => Arc::new(AllowedNames::new(verifier, allowed)),
        None => verifier,
    })
}
