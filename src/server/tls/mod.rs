//! TLS on the loop's connections: the secure client port (`secureClientPort`) and, with
//! `sslQuorum`, the election and quorum ports. rustls is sans-IO like the rest of the loop:
//! a connection's read path hands the ciphertext it read to `TlsConn::feed`, which appends
//! the plaintext to the connection's read buffer for the existing frame cutter; the write
//! path hands the connection's (plaintext) write buffer to `TlsConn::write_out`, which
//! encrypts what rustls will take and writes ciphertext until the socket would block.
//! Nothing else in the loop knows about TLS.
//!
//! Limits: rustls holds at most `TLS_BUFFER_LIMIT` bytes of unsent ciphertext per connection
//! (it refuses more plaintext until the socket drains), and the plaintext it decrypts goes
//! straight into the read buffer, so the loop's own limits (read budget, `HIGH_WATER`,
//! `MAX_PENDING_OUT`, `jute.maxbuffer`) still count everything buffered.
//!
//! Failure: a TLS error (a plain-text client on the secure port, a bad or missing
//! certificate, a protocol violation) ends that one connection: the alert rustls queued is
//! written if the socket takes it, then the connection is closed like any other.
//!
//! Stores: ZooKeeper's PEM key store is one file holding the private key (plain, or
//! PKCS#8-encrypted: `pemkey`) and the certificate chain; the trust store holds the CA
//! certificates. Either may instead be a binary store opened with its password: PKCS#12
//! (`pkcs12`), or Java's JKS or JCEKS (`jks`). Which reader opens a binary store is decided
//! by its first bytes, not by the type key, as Java 9+ does for JKS and PKCS#12 (a `.jks`
//! file written by keytool since Java 9 is really PKCS#12). Every store is read once, at
//! start; any failure stops the server with a `TlsSetupError` naming the config key and line
//! (and, for a wrong password, the password's key and line, never the password).
//! `config` documents the keys.

pub mod dn;
pub mod jks;
pub mod pemkey;
pub mod pkcs12;
pub mod probe;

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use bytes::BytesMut;
use mio::net::TcpListener;
use mio::Interest;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use super::peers::{PeerKind, PeerLink};
use super::{ConnRole, EventLoop, SECURE_LISTENER};
use crate::config::{ClientAuth, Config, StorePassword, StoreType, TlsStores};
use crate::proto::{Id, ServerId};
use crate::replica::Input;

/// Unsent ciphertext (and, during the handshake, plaintext) rustls buffers per connection.
const TLS_BUFFER_LIMIT: usize = 64 << 10;

/// Why a binary store (or an encrypted key) cannot be opened, in words for the operator.
#[derive(Debug, PartialEq, Eq)]
pub enum OpenError {
    /// The integrity check (PKCS#12 MAC, JKS digest, PKCS#8 padding) fails with this
    /// password: it is wrong, or the file was changed.
    WrongPassword,
    Unreadable(String),
}

/// A key or trust store that cannot be used. Names the config file, line and key that
/// pointed at it.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("{file}:{line}: {key}: {path}: {reason}")]
    Store { file: String, line: usize, key: String, path: String, reason: String },
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
}

/// What the loop needs to run TLS, built from the config once at start.
#[derive(Default)]
pub struct TlsSetup {
    /// For connections accepted on the secure client port.
    pub client: Option<Arc<ServerConfig>>,
    /// `sslQuorum`: for both sides of election and quorum connections.
    pub quorum: Option<QuorumTls>,
    /// The certificate subject that is the superuser (`X509AuthenticationProvider.superUser`).
    pub super_user: Option<String>,
}

pub struct QuorumTls {
    accept: Arc<ServerConfig>,
    dial: Arc<ClientConfig>,
    /// The name each peer's certificate must carry: the host of its `server.N` line.
    names: BTreeMap<ServerId, ServerName<'static>>,
}

impl TlsSetup {
    /// Read the key and trust stores the config names. Nothing is built for TLS that is
    /// not turned on (`secureClientPort`, `sslQuorum`).
    pub fn load(cfg: &Config) -> Result<TlsSetup, TlsSetupError> {
        let mut setup = TlsSetup { super_user: cfg.tls.x509_super_user.clone(), ..TlsSetup::default() };
        if cfg.tls.secure_client_port.is_some() || !cfg.tls.secure_client_ports.is_empty() {
            setup.client = Some(server_config(cfg, &cfg.tls.client)?);
        }
        if cfg.tls.ssl_quorum && !cfg.is_standalone() {
            let mut names = BTreeMap::new();
            for (id, spec) in &cfg.servers {
                let name = ServerName::try_from(spec.host.clone()).map_err(|e| TlsSetupError::Invalid {
                    file: cfg.file_name.clone(),
                    reason: format!("server.{id}: host {:?} is not a name TLS can verify: {e}", spec.host),
                })?;
                names.insert(*id, name);
            }
            setup.quorum = Some(QuorumTls {
                accept: server_config(cfg, &cfg.tls.quorum)?,
                dial: client_config(cfg, &cfg.tls.quorum)?,
                names,
            });
        }
        Ok(setup)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Errors about one store, naming where the config set it.
struct StoreRef<'a> {
    cfg: &'a Config,
    line: usize,
    key: String,
    path: &'a Path,
}

impl StoreRef<'_> {
    fn err(&self, reason: impl Into<String>) -> TlsSetupError {
        TlsSetupError::Store {
            file: self.cfg.file_name.clone(),
            line: self.line,
            key: self.key.clone(),
            path: self.path.display().to_string(),
            reason: reason.into(),
        }
    }

    fn read(&self) -> Result<Vec<u8>, TlsSetupError> {
        std::fs::read(self.path).map_err(|e| self.err(format!("cannot read: {e}")))
    }
}

fn invalid(cfg: &Config, reason: String) -> TlsSetupError {
    TlsSetupError::Invalid { file: cfg.file_name.clone(), reason }
}

/// How to open the key store or the trust store of `s`, and errors naming its keys.
struct Store<'a> {
    at: StoreRef<'a>,
    kind: StoreType,
    /// `*.password` or `*.passwordPath`, and its line.
    password: Option<&'a StorePassword>,
    /// `ssl.keyStore` or `ssl.quorum.trustStore`, ...: what the password key is called.
    name: String,
}

impl<'a> Store<'a> {
    fn key(cfg: &'a Config, s: &'a TlsStores) -> Result<Store<'a>, TlsSetupError> {
        let Some((line, path)) = &s.key_store else {
            return Err(invalid(cfg, format!("{}.keyStore.location is not set", s.prefix)));
        };
        Ok(Store {
            at: StoreRef { cfg, line: *line, key: format!("{}.keyStore.location", s.prefix), path },
            kind: s.key_store_kind(),
            password: s.key_store_password.as_ref(),
            name: format!("{}.keyStore", s.prefix),
        })
    }

    fn trust(cfg: &'a Config, s: &'a TlsStores) -> Result<Store<'a>, TlsSetupError> {
        let Some((line, path)) = &s.trust_store else {
            return Err(invalid(cfg, format!("{}.trustStore.location is not set", s.prefix)));
        };
        Ok(Store {
            at: StoreRef { cfg, line: *line, key: format!("{}.trustStore.location", s.prefix), path },
            kind: s.trust_store_kind(),
            password: s.trust_store_password.as_ref(),
            name: format!("{}.trustStore", s.prefix),
        })
    }

    /// A store reader's complaint, naming the password key for a wrong password. `what`:
    /// "JKS store", "encrypted private key", ...
    fn open_err(&self, what: &str, e: OpenError) -> TlsSetupError {
        let p = &self.name;
        match e {
            OpenError::WrongPassword => match self.password {
                Some(pw) if !pw.secret.expose().is_empty() => self.at.err(format!(
                    "cannot open the {what}: wrong password ({} on line {}), or the file is damaged",
                    pw.key, pw.line
                )),
                Some(pw) => self.at.err(format!(
                    "cannot open the {what} with the empty password ({} on line {}): set {p}.password or {p}.passwordPath, or the file is damaged",
                    pw.key, pw.line
                )),
                None => self.at.err(format!(
                    "cannot open the {what} without a password: set {p}.password or {p}.passwordPath (or the file is damaged)"
                )),
            },
            OpenError::Unreadable(why) => self.at.err(format!("{what}: {why}")),
        }
    }

    /// ZooKeeper passes the empty password when none is set.
    fn password(&self) -> &str {
        self.password.map(|p| p.secret.expose()).unwrap_or("")
    }

    /// What a binary store is, by its first bytes, in words: JKS, JCEKS or PKCS#12 (the
    /// type key only says it is not PEM).
    fn binary_kind(&self, bytes: &[u8]) -> &'static str {
        match jks::sniff(bytes) {
            Some(jks::Kind::Jks) => "JKS store",
            Some(jks::Kind::Jceks) => "JCEKS store",
            None => "PKCS#12 store",
        }
    }

    /// A PEM file that is really a binary store: the type key (or the file name) is wrong.
    fn binary_as_pem(&self, bytes: &[u8]) -> Result<(), TlsSetupError> {
        if pkcs12::sniff(bytes) == pkcs12::Format::Other {
            return Ok(());
        }
        let t = match jks::sniff(bytes) {
            Some(k) => k.name(),
            None => "PKCS12",
        };
        Err(self.at.err(format!(
            "a binary {} read as PEM ({p}.type, or the file name); set {p}.type={t}",
            self.binary_kind(bytes),
            p = self.name
        )))
    }
}

/// The key store: a PEM file with a private key (plain or PKCS#8-encrypted) and its
/// certificate chain, or a PKCS#12, JKS or JCEKS file opened with the password.
fn key_store(cfg: &Config, s: &TlsStores) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsSetupError> {
    let store = Store::key(cfg, s)?;
    let at = &store.at;
    let bytes = at.read()?;
    if store.kind != StoreType::Pem {
        let what = store.binary_kind(&bytes);
        let opened = match jks::sniff(&bytes) {
            Some(_) => jks::key_store(&bytes, store.password()),
            None => pkcs12::key_store(&bytes, store.password()),
        };
        return opened.map_err(|e| store.open_err(what, e));
    }
    store.binary_as_pem(&bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let form = pemkey::key_form(&text);
    // Before the certificates: its header lines make the PEM unparseable.
    if form == pemkey::KeyForm::LegacyEncrypted {
        return Err(at.err(format!(
            "the private key is encrypted the legacy OpenSSL way (Proc-Type: 4,ENCRYPTED), which ZooKeeper cannot read either; \
             convert it to an encrypted PKCS#8 key with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEY -out KEY.p8` \
             (opened with {}.password)",
            store.name
        )));
    }
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| at.err(format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(at.err("no CERTIFICATE block (the PEM key store holds the key and the certificate chain)"));
    }
    let key = match form {
        pemkey::KeyForm::Pkcs8Encrypted => {
            pemkey::decrypt(&text, store.password()).map_err(|e| store.open_err("encrypted private key", e))?
        }
        pemkey::KeyForm::LegacyEncrypted | pemkey::KeyForm::Plain => PrivateKeyDer::from_pem_slice(&bytes)
            .map_err(|e| at.err(format!("no usable private key (PKCS#8, PKCS#1 or SEC1 PEM block): {e}")))?,
    };
    Ok((certs, key))
}

fn trust_store(cfg: &Config, s: &TlsStores) -> Result<Arc<RootCertStore>, TlsSetupError> {
    let store = Store::trust(cfg, s)?;
    let at = &store.at;
    let bytes = at.read()?;
    let certs = if store.kind != StoreType::Pem {
        let what = store.binary_kind(&bytes);
        let opened = match jks::sniff(&bytes) {
            Some(_) => jks::trust_store(&bytes, store.password()),
            None => pkcs12::trust_store(&bytes, store.password()),
        };
        opened.map_err(|e| store.open_err(what, e))?
    } else {
        store.binary_as_pem(&bytes)?;
        CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| at.err(format!("bad PEM: {e}")))?
    };
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| at.err(format!("unusable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(at.err("no CERTIFICATE block"));
    }
    Ok(Arc::new(roots))
}

fn server_config(cfg: &Config, s: &TlsStores) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let (certs, key) = key_store(cfg, s)?;
    let rustls_err = |e: rustls::Error| invalid(cfg, format!("{} TLS settings: {e}", s.prefix));
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(rustls_err)?;
    let builder = match s.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let mut verifier = WebPkiClientVerifier::builder_with_provider(trust_store(cfg, s)?, provider());
            if auth == ClientAuth::Want {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier
                .build()
                .map_err(|e| invalid(cfg, format!("{}.trustStore.location: {e}", s.prefix)))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| invalid(cfg, format!("{}.keyStore.location: the key does not fit the certificate: {e}", s.prefix)))?;
    Ok(Arc::new(config))
}

/// The dialing side of quorum TLS: verifies the peer against the trust store (and its host
/// name unless `hostnameVerification=false`) and presents our own certificate.
fn client_config(cfg: &Config, s: &TlsStores) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let (certs, key) = key_store(cfg, s)?;
    let roots = trust_store(cfg, s)?;
    let rustls_err = |e: rustls::Error| invalid(cfg, format!("{} TLS settings: {e}", s.prefix));
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(rustls_err)?;
    let builder = if s.hostname_verification {
        builder.with_root_certificates(roots)
    } else {
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|e| invalid(cfg, format!("{}.trustStore.location: {e}", s.prefix)))?;
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyName(inner)))
    };
    let config = builder.with_client_auth_cert(certs, key).map_err(rustls_err)?;
    Ok(Arc::new(config))
}

/// `hostnameVerification=false`: the chain is verified, the name it is for is not.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::{CertificateError, Error};
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(Error::InvalidCertificate(CertificateError::NotValidForName))
            | Err(Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// One connection's TLS state.
pub(super) struct TlsConn {
    conn: rustls::Connection,
    /// The peer's identity was handed to the core (once, when the handshake completed).
    identity_taken: bool,
}

/// What `write_out` did.
pub(super) struct Written {
    /// Plaintext bytes rustls took (encrypted or, during the handshake, buffered).
    pub taken: usize,
    /// The socket failed or closed.
    pub dead: bool,
}

impl TlsConn {
    fn new(mut conn: rustls::Connection) -> Box<TlsConn> {
        conn.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
        Box::new(TlsConn { conn, identity_taken: false })
    }

    /// Ciphertext read from the socket in; the plaintext it carries appended to `plain`.
    /// `Ok(true)`: the peer sent close_notify (an orderly end of the stream).
    pub(super) fn feed(&mut self, mut ciphertext: &[u8], plain: &mut BytesMut) -> Result<bool, rustls::Error> {
        let mut closed = false;
        while !ciphertext.is_empty() {
            match self.conn.read_tls(&mut ciphertext) {
                Ok(0) => return Err(rustls::Error::General("TLS input not taken".into())),
                Ok(_) => {}
                Err(e) => return Err(rustls::Error::General(e.to_string())),
            }
            let state = self.conn.process_new_packets()?;
            let n = state.plaintext_bytes_to_read();
            if n > 0 {
                let start = plain.len();
                plain.resize(start + n, 0);
                if let Err(e) = self.conn.reader().read_exact(&mut plain[start..]) {
                    plain.truncate(start);
                    return Err(rustls::Error::General(e.to_string()));
                }
            }
            closed |= state.peer_has_closed();
        }
        Ok(closed)
    }

    /// Encrypt what rustls takes of `plain` and write ciphertext (handshake records too)
    /// until the socket would block or nothing is left.
    pub(super) fn write_out(&mut self, stream: &mut impl Write, plain: &[u8]) -> Written {
        let mut taken = 0;
        loop {
            if taken < plain.len() {
                // Fewer bytes (or none) once the buffer limit is reached.
                taken += self.conn.writer().write(&plain[taken..]).unwrap_or(0);
            }
            if !self.conn.wants_write() {
                return Written { taken, dead: false };
            }
            match self.conn.write_tls(stream) {
                Ok(0) => return Written { taken, dead: true },
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Written { taken, dead: false },
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Written { taken, dead: true },
            }
        }
    }

    /// Ciphertext (handshake records, alerts, encrypted output) waits for the socket.
    pub(super) fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Best effort before the socket closes: close_notify, or the alert for an error.
    pub(super) fn close(&mut self, stream: &mut impl Write, notify: bool) {
        if notify {
            self.conn.send_close_notify();
        }
        for _ in 0..4 {
            if !self.conn.wants_write() || self.conn.write_tls(stream).is_err() {
                return;
            }
        }
    }

    /// Once, when the handshake has completed: the subject of the peer's certificate, if it
    /// presented one (`Some(None)` if it did but the subject cannot be read).
    fn take_peer_subject(&mut self) -> Option<Option<String>> {
        if self.identity_taken || self.conn.is_handshaking() {
            return None;
        }
        self.identity_taken = true;
        let cert = self.conn.peer_certificates()?.first()?;
        Some(dn::subject_dn(cert.as_ref()))
    }
}

impl EventLoop {
    /// Listen on the secure client port too (`secure_listener`), and use `setup` for it and
    /// for the peer ports. `client_port_secure`: the main client listener is itself the
    /// secure port (the config has `secureClientPort` and no `clientPort`).
    pub fn enable_tls(&mut self, setup: TlsSetup, mut secure_listener: Option<TcpListener>, client_port_secure: bool) -> io::Result<()> {
        if let Some(l) = secure_listener.as_mut() {
            self.poll.registry().register(l, SECURE_LISTENER, Interest::READABLE)?;
        }
        self.tls = setup;
        self.secure_listener = secure_listener;
        self.client_port_secure = client_port_secure;
        Ok(())
    }

    /// TLS state for a client connection accepted on the secure port.
    pub(super) fn client_tls(&self) -> Option<Box<TlsConn>> {
        let cfg = self.tls.client.as_ref()?;
        match rustls::ServerConnection::new(cfg.clone()) {
            Ok(c) => Some(TlsConn::new(c.into())),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start TLS on a client connection");
                None
            }
        }
    }

    /// TLS state for an election or quorum connection, with `sslQuorum`: the server side for
    /// ones we accept, the client side (verifying the peer's name) for ones we dial.
    /// `Err`: TLS is on but cannot be started for it (the connection must not be used).
    pub(super) fn peer_tls(&self, link: &PeerLink) -> Result<Option<Box<TlsConn>>, String> {
        let Some(q) = self.tls.quorum.as_ref() else { return Ok(None) };
        let conn: rustls::Connection = match (link.kind, link.peer) {
            (PeerKind::ElectionIn | PeerKind::QuorumIn, _) => {
                rustls::ServerConnection::new(q.accept.clone()).map_err(|e| e.to_string())?.into()
            }
            (PeerKind::ElectionOut | PeerKind::QuorumOut, Some(peer)) => {
                let name = q.names.get(&peer).ok_or_else(|| format!("no server.{peer} line"))?;
                rustls::ClientConnection::new(q.dial.clone(), name.clone()).map_err(|e| e.to_string())?.into()
            }
            (_, None) => return Err("an outbound peer connection without a peer".into()),
        };
        Ok(Some(TlsConn::new(conn)))
    }

    /// After reading a TLS connection: handshake records to answer are flushed this turn,
    /// and a client that completed the handshake with a certificate gets ZooKeeper's `x509`
    /// id (before its first request is stepped, so the session has it from the start).
    pub(super) fn tls_after_read(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot) else { return };
        let Some(tls) = conn.tls.as_mut() else { return };
        if tls.wants_write() {
            self.dirty.push(slot);
        }
        let Some(subject) = tls.take_peer_subject() else { return };
        if !matches!(conn.role, ConnRole::Client) {
            return;
        }
        let client = conn.id;
        let peer = conn.peer;
        match subject {
            Some(dn) => {
                // ZooKeeper's X509AuthenticationProvider: the superuser's certificate also
                // gets `super:<DN>`.
                if self.tls.super_user.as_deref() == Some(dn.as_str()) {
                    tracing::info!(client = %peer, id = %dn, "authenticated by client certificate (x509) as the superuser");
                    self.step(Input::ClientAuthenticated { client, id: Id::new(crate::acl::SUPER_SCHEME, &dn) });
                } else {
                    tracing::info!(client = %peer, id = %dn, "authenticated by client certificate (x509)");
                }
                self.step(Input::ClientAuthenticated { client, id: Id::new("x509", &dn) });
            }
            None => tracing::warn!(client = %peer, "client certificate subject unreadable; no x509 id"),
        }
    }
}
