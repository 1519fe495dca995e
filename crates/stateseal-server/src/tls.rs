//! TLS through rustls (ring), from the `tls` block of the server configuration:
//!
//! ```hcl
//! tls {
//!   cert_file      = "server.pem"   # certificate chain, PEM
//!   key_file       = "server.key"   # private key, PEM (PKCS#8, PKCS#1 or SEC1)
//!   client_ca_file = "clients.pem"  # optional: require client certificates signed by these CAs
//! }
//! ```
//!
//! Each handshake runs in its connection's own task (bounded by [`HANDSHAKE_TIMEOUT`]), so a
//! slow or silent client never holds up the others ([`crate::connections`]). ALPN offers only
//! `http/1.1`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Longest a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the `tls` block could not be set up: the file at fault and what is wrong with it.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("{}: {source}", file.display())]
    Pem {
        file: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{}: no certificate found", .0.display())]
    NoCertificate(PathBuf),
    /// rustls refused the file's contents (a CA, or the key for the certificate).
    #[error("{}: {source}", file.display())]
    Rejected {
        file: PathBuf,
        #[source]
        source: rustls::Error,
    },
    /// The client CA verifier could not be built.
    #[error("{}: {source}", file.display())]
    Verifier {
        file: PathBuf,
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
}

/// The `tls` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca_file: Option<PathBuf>,
}

impl TlsSettings {
    /// Reads the files and builds the acceptor. Errors name the file.
    pub fn acceptor(&self) -> Result<TlsAcceptor, TlsError> {
        let pem = |file: &PathBuf| {
            let file = file.clone();
            move |source| TlsError::Pem { file, source }
        };
        let rejected = |file: &PathBuf| {
            let file = file.clone();
            move |source| TlsError::Rejected { file, source }
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert_file)
            .and_then(|i| i.collect())
            .map_err(pem(&self.cert_file))?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate(self.cert_file.clone()));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key_file).map_err(pem(&self.key_file))?;
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(rejected(&self.cert_file))?;
        let builder = match &self.client_ca_file {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_file_iter(ca).map_err(pem(ca))? {
                    roots.add(c.map_err(pem(ca))?).map_err(rejected(ca))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(|source| TlsError::Verifier {
                    file: ca.clone(),
                    source,
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(rejected(&self.key_file))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}
