//! A blocking TLS client for four-letter words on a secure client port: how `arbor local`
//! checks servers that have no plain client port (`secureClientPort` without `clientPort`).
//!
//! The probe runs next to the servers it started from the same config, so it knows the
//! certificate they present: it accepts exactly the leaf certificate of `ssl.keyStore`
//! (pinned; the handshake signature is still verified) rather than checking a name, which
//! works whatever names the certificate carries and needs no trust store. It presents that
//! same key store as its client certificate, which a server with `ssl.clientAuth=need`
//! accepts when the certificate chains to its trust store and allows client use (the
//! `make-test-certs.sh` server certificate does: serverAuth and clientAuth).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use super::{invalid, key_store, provider, TlsSetupError};
use crate::config::Config;

/// Answers longer than this are cut (`srvr` is a few hundred bytes).
const MAX_ANSWER: usize = 64 << 10;

pub struct Probe {
    config: Arc<ClientConfig>,
}

impl Probe {
    /// From the `ssl.*` keys of the config the servers run with.
    pub fn new(cfg: &Config) -> Result<Probe, TlsSetupError> {
        let (certs, key) = key_store(cfg, &cfg.tls.client)?;
        let leaf = certs.first().cloned().ok_or_else(|| invalid(cfg, "ssl.keyStore.location: no certificate".into()))?;
        let provider = provider();
        let pinned = Pinned { leaf, algs: provider.signature_verification_algorithms };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(cfg, format!("ssl TLS settings: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(pinned))
            .with_client_auth_cert(certs, key)
            .map_err(|e| invalid(cfg, format!("ssl.keyStore.location: {e}")))?;
        Ok(Probe { config: Arc::new(config) })
    }

    /// Send `word` over TLS and read the answer until the server closes; empty when it
    /// does not answer (refused, handshake failed, timed out).
    pub fn four_letter(&self, addr: SocketAddr, word: &str) -> String {
        let Ok(tcp) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else { return String::new() };
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = tcp.set_write_timeout(Some(Duration::from_secs(2)));
        let Ok(conn) = rustls::ClientConnection::new(self.config.clone(), ServerName::IpAddress(addr.ip().into())) else {
            return String::new();
        };
        let mut s = rustls::StreamOwned::new(conn, tcp);
        if s.write_all(word.as_bytes()).and_then(|_| s.flush()).is_err() {
            return String::new();
        }
        // The server closes after answering, with or without close_notify: keep what came.
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while out.len() < MAX_ANSWER {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Accepts exactly one certificate.
#[derive(Debug)]
struct Pinned {
    leaf: CertificateDer<'static>,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.leaf.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer))
        }
    }

    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}
