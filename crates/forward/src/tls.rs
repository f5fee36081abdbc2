//! The TLS listener's rustls configuration: a certificate chain and key, and with
//! `client_ca`, mutual TLS (a client certificate signed by that CA is required).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::ListenConfig;

fn certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .with_context(|| format!("{}: not a PEM certificate file", path.display()))?;
    if certs.is_empty() {
        bail!("{}: no CERTIFICATE block found", path.display());
    }
    Ok(certs)
}

fn key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .with_context(|| format!("{}: not a PEM key file", path.display()))?
        .with_context(|| format!("{}: no PRIVATE KEY block found", path.display()))
}

/// Build the acceptor for a `protocol = "tls"` listener.
pub(crate) fn acceptor(cfg: &ListenConfig) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let (Some(cert), Some(key_path)) = (&cfg.cert, &cfg.key) else {
        bail!("protocol = \"tls\" needs `cert` and `key`");
    };
    #[allow(
        deprecated,
        reason = "the ring provider is chosen on purpose: no C toolchain or cmake for aws-lc; rustls 0.23.48 deprecates it for lacking post-quantum key exchange"
    )]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &cfg.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs(ca)? {
                roots
                    .add(c)
                    .with_context(|| format!("{}: bad CA certificate", ca.display()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .context("client certificate verifier")?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(certs(cert)?, key(key_path)?)
        .context("the certificate and key do not form a valid pair")?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// A TLS listener's acceptor, which a reload replaces: each new connection takes the one
/// current at its accept, and connections already open keep their sessions.
#[derive(Clone)]
pub(crate) struct AcceptorCell(Arc<std::sync::RwLock<tokio_rustls::TlsAcceptor>>);

impl std::fmt::Debug for AcceptorCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AcceptorCell")
    }
}

impl AcceptorCell {
    pub(crate) fn new(a: tokio_rustls::TlsAcceptor) -> AcceptorCell {
        AcceptorCell(Arc::new(std::sync::RwLock::new(a)))
    }

    /// The acceptor for a connection accepted now.
    pub(crate) fn current(&self) -> tokio_rustls::TlsAcceptor {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Serve `a` to the handshakes that start from now on.
    pub(crate) fn set(&self, a: tokio_rustls::TlsAcceptor) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = a;
    }
}
