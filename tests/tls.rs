//! TLS against the real binary: the secure client port (`secureClientPort`, `ssl.*`), client
//! certificates and ZooKeeper's `x509` ids, a plain-text client on the secure port, the
//! quorum under TLS (`sslQuorum`), key-store errors naming the config line, and ZooKeeper's
//! own Java client (zkCli over Netty TLS) when it is installed.
//!
//! A CA, a server certificate (for 127.0.0.1 and localhost) and a client certificate are made
//! at test time with rcgen; the client side of most tests is a small blocking rustls client
//! that speaks the ZooKeeper protocol through arbor's own codec.
mod common;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbor::jute::{ConnectResponse, Request, RequestHeader, Response};
use arbor::proto::{perms, Acl, Id};
use common::cluster::Cluster;
use common::{create_req, new_session_request, Node, RawClient, IO_TIMEOUT};
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// The client certificate's subject as ZooKeeper's x509 provider names it (Java's RFC 2253
/// form of `C=US, O=arbor tests, CN=arbor-client`: last RDN first).
const CLIENT_DN: &str = "CN=arbor-client,O=arbor tests,C=US";

/// PEM files for one test, in its own temp dir.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::Builder::new().prefix("arbor-tls-").tempdir().expect("temp dir");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        ca.distinguished_name = DistinguishedName::new();
        ca.distinguished_name.push(DnType::CommonName, "arbor test CA");
        let ca_cert = ca.self_signed(&ca_key).expect("CA cert");
        let leaf = |names: Vec<String>, dn: &[(DnType, &str)], file: &str| {
            let key = KeyPair::generate().expect("key");
            let mut p = CertificateParams::new(names).expect("params");
            p.distinguished_name = DistinguishedName::new();
            for (t, v) in dn {
                p.distinguished_name.push(t.clone(), *v);
            }
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
            let cert = p.signed_by(&key, &ca_cert, &ca_key).expect("sign");
            // ZooKeeper's PEM key store: key and certificate in one file.
            std::fs::write(dir.path().join(format!("{file}.pem")), format!("{}{}", key.serialize_pem(), cert.pem())).expect("write");
            std::fs::write(dir.path().join(format!("{file}-cert.pem")), cert.pem()).expect("write");
            std::fs::write(dir.path().join(format!("{file}-key.pem")), key.serialize_pem()).expect("write");
        };
        leaf(vec!["127.0.0.1".into(), "localhost".into()], &[(DnType::CommonName, "arbor-server")], "server");
        leaf(
            vec![],
            &[(DnType::CountryName, "US"), (DnType::OrganizationName, "arbor tests"), (DnType::CommonName, "arbor-client")],
            "client",
        );
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).expect("write");
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// Config lines for a secure client port with `clientAuth`.
    fn server_lines(&self, port: u16, client_auth: &str) -> Vec<String> {
        vec![
            format!("secureClientPort={port}"),
            format!("ssl.keyStore.location={}", self.p("server.pem")),
            "ssl.keyStore.type=PEM".into(),
            format!("ssl.trustStore.location={}", self.p("ca.pem")),
            "ssl.trustStore.type=PEM".into(),
            format!("ssl.clientAuth={client_auth}"),
        ]
    }

    fn client_config(&self, with_cert: bool) -> Arc<rustls::ClientConfig> {
        self.client_config_from(with_cert.then_some(self))
    }

    /// Trusting this CA, presenting the client certificate of `cert` (another CA's, maybe).
    fn client_config_from(&self, cert: Option<&Pki>) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(self.path("ca.pem")).expect("ca") {
            roots.add(c.expect("ca pem")).expect("add ca");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let b = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
        let cfg = if let Some(from) = cert {
            let certs: Vec<_> = CertificateDer::pem_file_iter(from.path("client.pem")).expect("certs").map(|c| c.expect("cert")).collect();
            let key = PrivateKeyDer::from_pem_file(from.path("client.pem")).expect("key");
            b.with_client_auth_cert(certs, key).expect("client auth")
        } else {
            b.with_no_client_auth()
        };
        Arc::new(cfg)
    }
}

fn start_node(lines: &[String]) -> Node {
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    Node::start_standalone(&refs)
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A blocking ZooKeeper session over TLS.
struct TlsZk {
    s: Tls,
    next_xid: i32,
    resp: ConnectResponse,
}

fn tls_connect(cfg: Arc<rustls::ClientConfig>, port: u16) -> io::Result<Tls> {
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(IO_TIMEOUT))?;
    tcp.set_write_timeout(Some(IO_TIMEOUT))?;
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let conn = rustls::ClientConnection::new(cfg, name).map_err(io::Error::other)?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    // Drive the handshake to its end (a refused client certificate shows here or on the
    // first read, depending on the TLS version).
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

fn read_frame(s: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let n = i32::from_be_bytes(len);
    if !(0..=16 << 20).contains(&n) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("frame length {n}")));
    }
    let mut body = vec![0u8; n as usize];
    s.read_exact(&mut body)?;
    Ok(body)
}

impl TlsZk {
    fn connect(cfg: Arc<rustls::ClientConfig>, port: u16) -> io::Result<TlsZk> {
        let mut s = tls_connect(cfg, port)?;
        let mut out = bytes::BytesMut::new();
        arbor::jute::encode_connect_request(&mut out, &new_session_request(10_000));
        s.write_all(&out)?;
        s.flush()?;
        let payload = read_frame(&mut s)?;
        let resp = arbor::jute::decode_connect_response(&payload).map_err(|e| io::Error::other(e.to_string()))?;
        assert_ne!(resp.session_id, 0, "no session over TLS: {resp:?}");
        Ok(TlsZk { s, next_xid: 1, resp })
    }

    fn call(&mut self, req: &Request) -> Result<Response, i32> {
        let xid = self.next_xid;
        self.next_xid += 1;
        let mut out = bytes::BytesMut::new();
        arbor::jute::encode_request(&mut out, RequestHeader { xid, op: req.opcode() }, req);
        self.s.write_all(&out).expect("write over TLS");
        self.s.flush().expect("flush");
        loop {
            let payload = read_frame(&mut self.s).expect("reply over TLS");
            let (h, body) = arbor::jute::decode_reply_header(&payload).expect("reply header");
            if h.xid == -1 {
                continue;
            }
            assert_eq!(h.xid, xid, "reply out of order");
            if h.err != 0 {
                return Err(h.err);
            }
            return Ok(arbor::jute::decode_response(req.opcode(), body).expect("decode"));
        }
    }

    fn whoami(&mut self) -> Vec<(String, String)> {
        match self.call(&Request::WhoAmI) {
            Ok(Response::WhoAmI(v)) => v,
            r => panic!("whoami: {r:?}"),
        }
    }
}

#[test]
fn secure_port_serves_tls_clients_next_to_the_plain_port() {
    let pki = Pki::new();
    let sport = common::free_port();
    let node = start_node(&pki.server_lines(sport, "none"));
    let mut tls = TlsZk::connect(pki.client_config(false), sport).expect("TLS session");
    assert!(tls.resp.timeout_ms > 0);
    // A write over TLS, larger than one TLS record, read back over plain TCP.
    let big = vec![7u8; 200_000];
    tls.call(&Request::Create(create_req(arbor::jute::CreateKind::Create, "/tls", Some(&big), Acl::open_unsafe(), 0))).expect("create over TLS");
    let mut plain = RawClient::connect(&node.addr(), 10_000);
    let (data, _) = plain.get_data("/tls", false).expect("get over plain TCP");
    assert_eq!(data.as_deref(), Some(&big[..]));
    match tls.call(&Request::GetData { path: "/tls".into(), watch: false }) {
        Ok(Response::GetData { data, .. }) => assert_eq!(data.as_deref(), Some(&big[..])),
        r => panic!("get over TLS: {r:?}"),
    }
    // No certificate asked for (clientAuth=none): no x509 id, only the ip one.
    assert_eq!(tls.whoami(), vec![("ip".to_string(), "127.0.0.1".to_string())]);
}

#[test]
fn plain_text_client_on_the_secure_port_is_closed_and_others_go_on() {
    let pki = Pki::new();
    let sport = common::free_port();
    let node = start_node(&pki.server_lines(sport, "none"));
    let mut tls = TlsZk::connect(pki.client_config(false), sport).expect("TLS session");
    let mut plain_ok = RawClient::connect(&node.addr(), 10_000);
    for attempt in [common::connect_frame(10_000), b"ruok".to_vec(), vec![0x16, 0x03, 0x01, 0xff, 0xff, 0, 0, 0]] {
        let mut s = common::raw_connect(&format!("127.0.0.1:{sport}"));
        s.write_all(&attempt).expect("write");
        match common::read_until_closed(&mut s, Duration::from_secs(5)) {
            common::Ending::Closed(got) => {
                // At most a TLS alert record (content type 21), never a ZooKeeper reply.
                assert!(got.is_empty() || got[0] == 21, "unexpected answer {got:?}");
            }
            common::Ending::StillOpen(got) => panic!("plain-text client on the secure port not closed (got {got:?})"),
        }
    }
    // Everyone else is unaffected.
    tls.call(&Request::Create(create_req(arbor::jute::CreateKind::Create, "/after", None, Acl::open_unsafe(), 0))).expect("TLS session goes on");
    plain_ok.exists("/after", false).expect("plain session goes on");
    assert_eq!(node.four_letter("ruok"), "imok");
    assert!(node.log().contains("TLS failed; closing the connection"), "{}", node.log());
}

#[test]
fn client_certificate_gives_the_x509_id_and_acls_use_it() {
    let pki = Pki::new();
    let sport = common::free_port();
    let node = start_node(&pki.server_lines(sport, "need"));
    // clientAuth=need: no certificate, no connection.
    let refused = TlsZk::connect(pki.client_config(false), sport);
    assert!(refused.is_err(), "a client without a certificate was served with clientAuth=need");
    let mut tls = TlsZk::connect(pki.client_config(true), sport).expect("TLS session with a client certificate");
    let who = tls.whoami();
    assert!(who.contains(&("x509".to_string(), CLIENT_DN.to_string())), "{who:?}");
    // A node only the certificate may read.
    let acl = vec![Acl { perms: perms::ALL, id: Id::new("x509", CLIENT_DN) }];
    tls.call(&Request::Create(create_req(arbor::jute::CreateKind::Create, "/mine", Some(b"secret"), acl, 0))).expect("create with an x509 ACL");
    match tls.call(&Request::GetData { path: "/mine".into(), watch: false }) {
        Ok(Response::GetData { data, .. }) => assert_eq!(data.as_deref(), Some(&b"secret"[..])),
        r => panic!("the owner cannot read: {r:?}"),
    }
    let mut plain = RawClient::connect(&node.addr(), 10_000);
    assert_eq!(plain.get_data("/mine", false).err(), Some(common::err::NO_AUTH));
    // `auth` expands to the x509 id, as in ZooKeeper (the provider is authenticated).
    let auth = vec![Acl { perms: perms::ALL, id: Id::new("auth", "") }];
    tls.call(&Request::Create(create_req(arbor::jute::CreateKind::Create, "/auth", None, auth, 0))).expect("create with auth ACL");
    match tls.call(&Request::GetAcl { path: "/auth".into() }) {
        Ok(Response::GetAcl { acl, .. }) => assert_eq!(acl, vec![Acl { perms: perms::ALL, id: Id::new("x509", CLIENT_DN) }]),
        r => panic!("getAcl: {r:?}"),
    }
}

#[test]
fn the_configured_certificate_subject_is_the_superuser() {
    let pki = Pki::new();
    let sport = common::free_port();
    let mut lines = pki.server_lines(sport, "need");
    lines.push(format!("X509AuthenticationProvider.superUser={CLIENT_DN}"));
    let node = start_node(&lines);
    // A node only a digest user may touch.
    let mut plain = RawClient::connect(&node.addr(), 10_000);
    plain.call(&Request::Auth { scheme: "digest".into(), auth: b"alice:secret".to_vec() }).expect("addauth");
    let acl = vec![Acl { perms: perms::ALL, id: Id::new("auth", "") }];
    plain.call(&Request::Create(create_req(arbor::jute::CreateKind::Create, "/alice", Some(b"hers"), acl, 0))).expect("create");
    let mut sup = TlsZk::connect(pki.client_config(true), sport).expect("TLS session with the superuser's certificate");
    match sup.call(&Request::GetData { path: "/alice".into(), watch: false }) {
        Ok(Response::GetData { data, .. }) => assert_eq!(data.as_deref(), Some(&b"hers"[..])),
        r => panic!("the superuser cannot read: {r:?}"),
    }
    // Without the setting the same certificate is an ordinary x509 id.
    let sport2 = common::free_port();
    let other = start_node(&pki.server_lines(sport2, "need"));
    let mut plain = RawClient::connect(&other.addr(), 10_000);
    plain.call(&Request::Auth { scheme: "digest".into(), auth: b"alice:secret".to_vec() }).expect("addauth");
    let acl = vec![Acl { perms: perms::ALL, id: Id::new("auth", "") }];
    plain.call(&Request::Create(create_req(arbor::jute::CreateKind::Create, "/alice", Some(b"hers"), acl, 0))).expect("create");
    let mut user = TlsZk::connect(pki.client_config(true), sport2).expect("TLS session");
    assert_eq!(user.call(&Request::GetData { path: "/alice".into(), watch: false }).err(), Some(common::err::NO_AUTH));
}

#[test]
fn client_auth_want_serves_clients_with_and_without_certificates() {
    let pki = Pki::new();
    let sport = common::free_port();
    let _node = start_node(&pki.server_lines(sport, "want"));
    let mut anon = TlsZk::connect(pki.client_config(false), sport).expect("no certificate");
    assert!(anon.whoami().iter().all(|(s, _)| s != "x509"));
    let mut named = TlsZk::connect(pki.client_config(true), sport).expect("with certificate");
    assert!(named.whoami().contains(&("x509".to_string(), CLIENT_DN.to_string())));
}

#[test]
fn secure_port_alone_without_client_port() {
    let pki = Pki::new();
    let sport = common::free_port();
    let dir = tempfile::Builder::new().prefix("arbor-tls-only-").tempdir().expect("dir");
    let mut cfg = format!("dataDir={}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n", dir.path().join("data").display());
    for l in pki.server_lines(sport, "none") {
        cfg.push_str(&l);
        cfg.push('\n');
    }
    let cfg_path = common::write_cfg(dir.path(), "zoo.cfg", &cfg);
    let log = std::fs::File::create(dir.path().join("arbor.log")).expect("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_arbor"))
        .args(["node", "1"])
        .arg(&cfg_path)
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spawn arbor");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut session = None;
    while Instant::now() < deadline && session.is_none() {
        session = TlsZk::connect(pki.client_config(false), sport).ok();
        if session.is_none() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let got = session.map(|mut s| s.call(&Request::Exists { path: "/".into(), watch: false }).is_ok());
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(dir.path().join("arbor.log")).unwrap_or_default();
    assert_eq!(got, Some(true), "no TLS service on the only client port:\n{log}");
}

/// Run `arbor node 1 CFG` on a config that must be refused; returns its stderr.
fn refused_config(cfg: &str) -> String {
    let dir = tempfile::Builder::new().prefix("arbor-tls-cfg-").tempdir().expect("dir");
    let text = format!("dataDir={}\nclientPort={}\nadmin.enableServer=false\n{cfg}", dir.path().join("data").display(), common::free_port());
    let path = common::write_cfg(dir.path(), "zoo.cfg", &text);
    let out = Command::new(env!("CARGO_BIN_EXE_arbor")).args(["node", "1"]).arg(&path).stdin(Stdio::null()).output().expect("run arbor");
    assert!(!out.status.success(), "arbor accepted:\n{text}");
    assert!(!dir.path().join("data").exists(), "a refused config touched the dataDir");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_tls_settings_are_refused_naming_the_line() {
    let pki = Pki::new();
    let port = common::free_port();
    // Line 4 (after dataDir, clientPort, admin.enableServer).
    let err = refused_config(&format!("secureClientPort={port}\nssl.keyStore.location=/nonexistent/key.pem\nssl.clientAuth=none\n"));
    assert!(err.contains("zoo.cfg:5: ssl.keyStore.location: /nonexistent/key.pem: cannot read"), "{err}");
    // A damaged encrypted key.
    let enc = pki.path("encrypted.pem");
    std::fs::write(&enc, format!("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n{}", std::fs::read_to_string(pki.path("server-cert.pem")).expect("cert"))).expect("write");
    let err = refused_config(&format!("secureClientPort={port}\nssl.keyStore.location={}\nssl.keyStore.password=secret\nssl.clientAuth=none\n", enc.display()));
    assert!(err.contains("zoo.cfg:5: ssl.keyStore.location") && err.contains("encrypted private key") && err.contains("not PKCS#8"), "{err}");
    // A key store without a certificate.
    let err = refused_config(&format!("secureClientPort={port}\nssl.keyStore.location={}\nssl.clientAuth=none\n", pki.p("server-key.pem")));
    assert!(err.contains("no CERTIFICATE block"), "{err}");
    // clientAuth=need (the default) without a trust store.
    let err = refused_config(&format!("secureClientPort={port}\nssl.keyStore.location={}\n", pki.p("server.pem")));
    assert!(err.contains("ssl.trustStore.location"), "{err}");
    // Not PEM.
    let err = refused_config(&format!("secureClientPort={port}\nssl.keyStore.location={}\nssl.keyStore.type=BKS\n", pki.p("server.pem")));
    assert!(err.contains("zoo.cfg:6: ssl.keyStore.type") && err.contains("PEM, PKCS12, JKS or JCEKS"), "{err}");
}

/// Whether a TLS connection to a peer port with `cfg` is kept open (the server accepted our
/// certificate): the handshake completes and the server neither alerts nor closes within 2 s
/// (it sends nothing on an election or quorum connection until the peer speaks). With TLS 1.3
/// a refused client certificate shows only after the client's side of the handshake.
fn peer_port_keeps(cfg: Arc<rustls::ClientConfig>, port: u16) -> bool {
    let Ok(mut s) = tls_connect(cfg, port) else { return false };
    let _ = s.sock.set_read_timeout(Some(Duration::from_secs(2)));
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
}

/// The election port of server `id` in a cluster's config.
fn election_port(cluster: &Cluster, id: u64) -> u16 {
    let cfg = std::fs::read_to_string(&cluster.cfg_path).expect("cfg");
    let line = cfg.lines().find(|l| l.starts_with(&format!("server.{id}="))).expect("server line");
    let peer = line.split_once('=').and_then(|(_, v)| v.split(';').next()).expect("value");
    peer.split(':').nth(2).and_then(|p| p.parse().ok()).expect("election port")
}

#[test]
fn ssl_quorum_ensemble_elects_and_replicates() {
    let pki = Pki::new();
    let lines = [
        "sslQuorum=true".to_string(),
        format!("ssl.quorum.keyStore.location={}", pki.p("server.pem")),
        "ssl.quorum.keyStore.type=PEM".to_string(),
        format!("ssl.quorum.trustStore.location={}", pki.p("ca.pem")),
        "ssl.quorum.trustStore.type=PEM".to_string(),
    ];
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let mut cluster = Cluster::start(3, &refs);
    let leader = cluster.wait_leader(Duration::from_secs(30));
    let follower = cluster.followers()[0];
    let mut w = RawClient::connect(&cluster.addr(leader), 10_000);
    w.create("/replicated", Some(b"over tls"), 0).expect("create at the leader");
    let mut r = RawClient::connect(&cluster.addr(follower), 10_000);
    r.call(&Request::Sync { path: "/".into() }).expect("sync");
    let (data, _) = r.get_data("/replicated", false).expect("read at a follower");
    assert_eq!(data.as_deref(), Some(&b"over tls"[..]));
    // The peer ports really speak TLS: a handshake with the quorum CA and a certificate
    // succeeds on an election port, and plain text there is dropped.
    let port = election_port(&cluster, follower);
    assert!(peer_port_keeps(pki.client_config(true), port), "a trusted certificate was refused on an election port");
    // A certificate from another CA is refused.
    let stranger = Pki::new();
    assert!(!peer_port_keeps(pki.client_config_from(Some(&stranger)), port), "an untrusted certificate was accepted");
    assert!(!peer_port_keeps(pki.client_config(false), port), "a peer without a certificate was accepted");
    let mut s = common::raw_connect(&format!("127.0.0.1:{port}"));
    s.write_all(b"not tls at all, just bytes").expect("write");
    assert!(matches!(common::read_until_closed(&mut s, Duration::from_secs(5)), common::Ending::Closed(_)));
    // And the ensemble still works after that.
    w.set_data("/replicated", b"again", -1).expect("write after the probes");
    for id in cluster.ids() {
        assert!(cluster.log(id).contains("sslQuorum"), "{}", cluster.log(id));
    }
}

// ---------------------------------------------------------------------------------------
// ZooKeeper's own client over TLS (zkCli.sh, Java, Netty)
// ---------------------------------------------------------------------------------------

/// zkCli's jar, when ZooKeeper is installed (Debian's `zookeeper` package).
fn zookeeper_jar() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("ZOOKEEPER_JAR") {
        return Some(PathBuf::from(p));
    }
    let cli = Path::new("/usr/share/zookeeper/bin/zkCli.sh");
    let jar = Path::new("/usr/share/java/zookeeper.jar");
    (cli.exists() && jar.exists()).then(|| jar.to_path_buf())
}

/// Pipe `script` into zkCli (`ZooKeeperMain`, what zkCli.sh runs) over TLS; its merged
/// output. Run with java directly rather than through zkCli.sh: Debian's zookeeper.jar lists
/// netty-handler but not netty-resolver/netty-codec in its Class-Path, so Netty (which TLS
/// needs) fails to load from zkCli.sh's fixed classpath (`NoClassDefFoundError:
/// io/netty/resolver/AddressResolverGroup`); the same flags otherwise, as CLIENT_JVMFLAGS.
fn zkcli_tls(jar: &Path, pki: &Pki, port: u16, with_cert: bool, script: &str) -> String {
    let mut stores = vec![format!("-Dzookeeper.ssl.trustStore.location={}", pki.p("ca.pem")), "-Dzookeeper.ssl.trustStore.type=PEM".to_string()];
    if with_cert {
        stores.push(format!("-Dzookeeper.ssl.keyStore.location={}", pki.p("client.pem")));
        stores.push("-Dzookeeper.ssl.keyStore.type=PEM".to_string());
    }
    zkcli_tls_with(jar, port, &stores, script)
}

/// zkCli over TLS with these `-Dzookeeper.ssl.*` store flags.
fn zkcli_tls_with(jar: &Path, port: u16, stores: &[String], script: &str) -> String {
    let mut flags = vec![
        "-Dzookeeper.jmx.log4j.disable=true".to_string(),
        "-Dzookeeper.client.secure=true".to_string(),
        "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty".to_string(),
    ];
    flags.extend(stores.iter().cloned());
    let dir = jar.parent().unwrap_or(Path::new("/usr/share/java"));
    let mut cp = vec![jar.display().to_string()];
    for extra in ["netty-resolver.jar", "netty-codec.jar"] {
        if dir.join(extra).exists() {
            cp.push(dir.join(extra).display().to_string());
        }
    }
    let mut child = Command::new("timeout")
        .arg("120")
        .arg("java")
        .arg("-cp")
        .arg(cp.join(":"))
        .args(&flags)
        .arg("org.apache.zookeeper.ZooKeeperMain")
        .args(["-server", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run zkCli");
    child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("script");
    let out = child.wait_with_output().expect("zkCli output");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn zkcli_over_tls_with_a_client_certificate() {
    let Some(jar) = zookeeper_jar() else {
        eprintln!("SKIP zkcli_over_tls_with_a_client_certificate: zkCli not found (apt-get install zookeeper)");
        return;
    };
    if Command::new("java").arg("-version").output().is_err() {
        eprintln!("SKIP zkcli_over_tls_with_a_client_certificate: java not found");
        return;
    }
    let pki = Pki::new();
    let sport = common::free_port();
    let node = start_node(&pki.server_lines(sport, "need"));
    // `ls /` first: it waits for the session, `whoami` would not. zkCli cannot write a DN
    // with commas in an ACL (it splits ACL lists on ','), so the x509 node uses `auth`.
    let script = "ls /\nwhoami\ncreate /zk-tls from-zkcli\nget /zk-tls\ncreate /zk-x509 v auth::cdrwa\ngetAcl /zk-x509\nget /zk-x509\nquit\n";
    let out = zkcli_tls(&jar, &pki, sport, true, script);
    assert!(out.contains(&format!("x509: {CLIENT_DN}")), "whoami over TLS:\n{out}");
    assert!(out.contains("Created /zk-tls") && out.contains("from-zkcli"), "{out}");
    // zkCli prints the commas of an ACL id as %2C.
    assert!(out.contains(&format!("'x509,'{}\n: cdrwa", CLIENT_DN.replace(',', "%2C"))), "getAcl:\n{out}");
    // The writes went through the TLS session: visible over plain TCP, and the x509 node is
    // closed to a session without the certificate.
    let mut plain = RawClient::connect(&node.addr(), 10_000);
    let (data, _) = plain.get_data("/zk-tls", false).expect("get over plain TCP");
    assert_eq!(data.as_deref(), Some(&b"from-zkcli"[..]));
    assert_eq!(plain.get_data("/zk-x509", false).err(), Some(common::err::NO_AUTH));
    // Without a client certificate (clientAuth=need) zkCli gets no session.
    let out = zkcli_tls(&jar, &pki, sport, false, "ls /zk-tls\nquit\n");
    assert!(!out.contains("[]"), "zkCli without a certificate was served:\n{out}");
}

#[test]
fn sample_tls_configs_parse_without_warnings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (c, w) = arbor::config::load(&root.join("config/tls.cfg"), Some(arbor::proto::ServerId(1))).expect("config/tls.cfg");
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.tls.secure_client_port, Some(2281));
    assert_eq!(c.tls.client.client_auth, arbor::config::ClientAuth::Want);
    for id in 1..=3 {
        let (c, w) = arbor::config::load(&root.join("config/tls-only-3.cfg"), Some(arbor::proto::ServerId(id))).expect("config/tls-only-3.cfg");
        assert!(w.is_empty(), "{w:?}");
        assert!(c.tls.ssl_quorum);
        assert_eq!(c.plain_client_addr(arbor::proto::ServerId(id)).ok().flatten(), None, "tls-only-3.cfg has a plain port");
        assert_eq!(c.secure_client_addr(arbor::proto::ServerId(id)).map(|a| a.to_string()), Some(format!("127.0.0.1:{}", 2280 + id)));
    }
    for id in 1..=3 {
        let (c, w) = arbor::config::load(&root.join("config/tls-3.cfg"), Some(arbor::proto::ServerId(id))).expect("config/tls-3.cfg");
        assert!(w.is_empty(), "{w:?}");
        assert!(c.tls.ssl_quorum);
        assert_eq!(c.secure_client_addr(arbor::proto::ServerId(id)).map(|a| a.to_string()), Some(format!("127.0.0.1:{}", 2280 + id)));
    }
}

/// A client that opens the secure port and never finishes (or starts) its TLS handshake is
/// closed after 10 s, like one that never sends its ConnectRequest; a TLS session stays.
#[test]
fn a_tls_handshake_that_never_finishes_is_closed() {
    let pki = Pki::new();
    let sport = common::free_port();
    let node = start_node(&pki.server_lines(sport, "none"));
    let t0 = Instant::now();
    let mut silent = common::raw_connect(&format!("127.0.0.1:{sport}"));
    // The first bytes of a ClientHello record, and then nothing.
    let mut stalled = common::raw_connect(&format!("127.0.0.1:{sport}"));
    stalled.write_all(&[0x16, 0x03, 0x01]).expect("write");
    let mut tls = TlsZk::connect(pki.client_config(false), sport).expect("TLS session");
    // Half way, a request keeps the session (10 s timeout) alive.
    std::thread::sleep(Duration::from_secs(5));
    tls.call(&Request::Exists { path: "/".into(), watch: false }).expect("the TLS session is served");
    for (name, s) in [("silent", &mut silent), ("stalled handshake", &mut stalled)] {
        let left = Duration::from_secs(20).saturating_sub(t0.elapsed());
        match common::read_until_closed(s, left) {
            common::Ending::Closed(_) => {}
            common::Ending::StillOpen(_) => panic!("{name}: still open after {:?}", t0.elapsed()),
        }
        assert!(t0.elapsed() >= Duration::from_secs(9), "{name}: closed after only {:?}", t0.elapsed());
    }
    tls.call(&Request::Create(create_req(arbor::jute::CreateKind::Create, "/still", None, Acl::open_unsafe(), 0)))
        .expect("the TLS session goes on past the limit");
    assert!(node.log().contains("closing a TLS connection that sent no complete request"), "{}", node.log());
}

// ---------------------------------------------------------------------------------------
// PKCS#12 key and trust stores (made with openssl and keytool at test time)
// ---------------------------------------------------------------------------------------

/// Run a store-making tool; `false` (and a SKIP line) when it is not installed.
fn tool(cmd: &str, args: &[&str]) -> bool {
    match Command::new(cmd).args(args).stdin(Stdio::null()).output() {
        Ok(out) if out.status.success() => true,
        Ok(out) => panic!("{cmd} {args:?} failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        Err(e) => {
            eprintln!("SKIP: {cmd} not runnable ({e})");
            false
        }
    }
}

impl Pki {
    /// `NAME.p12`: the key and certificate of `NAME` (and the CA) in a PKCS#12 file, as
    /// `openssl pkcs12 -export` writes it (OpenSSL 3: PBES2/AES-256, HMAC-SHA256).
    fn p12(&self, name: &str, out: &str, password: &str) -> bool {
        tool(
            "openssl",
            &[
                "pkcs12", "-export", "-in", &self.p(&format!("{name}-cert.pem")), "-inkey", &self.p(&format!("{name}-key.pem")),
                "-certfile", &self.p("ca.pem"), "-name", name, "-passout", &format!("pass:{password}"), "-out", &self.p(out),
            ],
        )
    }

    /// A trust store with the CA as keytool makes one (a trusted-certificate entry).
    fn keytool_trust(&self, out: &str, store_type: &str, password: &str) -> bool {
        tool(
            "keytool",
            &["-importcert", "-noprompt", "-alias", "ca", "-file", &self.p("ca.pem"), "-keystore", &self.p(out), "-storetype", store_type, "-storepass", password],
        )
    }
}

/// PKCS#12 key and trust stores on the secure port, the type given or taken from the file
/// name, clientAuth=need: a rustls client with a certificate gets its x509 id, and
/// ZooKeeper's Java client (zkCli over Netty) with PKCS#12 stores of its own works too.
#[test]
fn pkcs12_stores_serve_rustls_and_zkcli_clients() {
    let pki = Pki::new();
    if !(pki.p12("server", "server.p12", "server-pw") && pki.keytool_trust("trust.p12", "PKCS12", "trust-pw") && pki.p12("client", "client.p12", "client-pw")) {
        return;
    }
    let sport = common::free_port();
    let node = start_node(&[
        format!("secureClientPort={sport}"),
        // No type: ".p12" says PKCS12, as in ZooKeeper.
        format!("ssl.keyStore.location={}", pki.p("server.p12")),
        "ssl.keyStore.password=server-pw".into(),
        format!("ssl.trustStore.location={}", pki.p("trust.p12")),
        "ssl.trustStore.type=PKCS12".into(),
        "ssl.trustStore.password=trust-pw".into(),
        "ssl.clientAuth=need".into(),
    ]);
    assert!(TlsZk::connect(pki.client_config(false), sport).is_err(), "served without a client certificate");
    let mut tls = TlsZk::connect(pki.client_config(true), sport).expect("TLS session against PKCS#12 stores");
    assert!(tls.whoami().contains(&("x509".to_string(), CLIENT_DN.to_string())), "the trust store did not verify the client");
    tls.call(&Request::Create(create_req(arbor::jute::CreateKind::Create, "/p12", Some(b"rustls"), Acl::open_unsafe(), 0))).expect("create");

    let Some(jar) = zookeeper_jar() else {
        eprintln!("SKIP zkCli part: zkCli not found (apt-get install zookeeper)");
        return;
    };
    let stores = [
        format!("-Dzookeeper.ssl.keyStore.location={}", pki.p("client.p12")),
        "-Dzookeeper.ssl.keyStore.password=client-pw".to_string(),
        "-Dzookeeper.ssl.keyStore.type=PKCS12".to_string(),
        format!("-Dzookeeper.ssl.trustStore.location={}", pki.p("trust.p12")),
        "-Dzookeeper.ssl.trustStore.password=trust-pw".to_string(),
        "-Dzookeeper.ssl.trustStore.type=PKCS12".to_string(),
    ];
    let out = zkcli_tls_with(&jar, sport, &stores, "ls /\nwhoami\nget /p12\ncreate /p12/zkcli from-java\nquit\n");
    assert!(out.contains(&format!("x509: {CLIENT_DN}")), "whoami over TLS with PKCS#12 stores:\n{out}");
    assert!(out.contains("rustls") && out.contains("Created /p12/zkcli"), "{out}");
    let mut plain = RawClient::connect(&node.addr(), 10_000);
    assert_eq!(plain.get_data("/p12/zkcli", false).expect("get").0.as_deref(), Some(&b"from-java"[..]));
}

/// A `.jks` file that is really PKCS#12 (what keytool writes by default since Java 9) is
/// read as Java's JKS type reads it, and an openssl-made trust store (no Java trust
/// attribute) works too.
#[test]
fn jks_named_pkcs12_and_openssl_trust_stores_work() {
    let pki = Pki::new();
    let trust_ok = tool("openssl", &["pkcs12", "-export", "-nokeys", "-in", &pki.p("ca.pem"), "-passout", "pass:t-pw", "-out", &pki.p("ca.p12")]);
    if !(pki.p12("server", "server.jks", "ks-pw") && trust_ok) {
        return;
    }
    let sport = common::free_port();
    let _node = start_node(&[
        format!("secureClientPort={sport}"),
        format!("ssl.keyStore.location={}", pki.p("server.jks")),
        "ssl.keyStore.password=ks-pw".into(),
        format!("ssl.trustStore.location={}", pki.p("ca.p12")),
        "ssl.trustStore.password=t-pw".into(),
        "ssl.clientAuth=need".into(),
    ]);
    let mut tls = TlsZk::connect(pki.client_config(true), sport).expect("TLS session");
    assert!(tls.whoami().contains(&("x509".to_string(), CLIENT_DN.to_string())));
}

/// Store errors stop the server at start and name the key, the line and the file: a wrong
/// or missing password, a trust store given as key store, garbage.
#[test]
fn pkcs12_store_errors_name_the_key_and_the_file() {
    let pki = Pki::new();
    if !(pki.p12("server", "server.p12", "right-pw") && pki.keytool_trust("trust.p12", "PKCS12", "trust-pw")) {
        return;
    }
    let port = common::free_port();
    let ks = pki.p("server.p12");
    // Lines: 4 secureClientPort, 5 location, 6 password.
    let err = refused_config(&format!("secureClientPort={port}\nssl.keyStore.location={ks}\nssl.keyStore.password=wrong-pw\nssl.clientAuth=none\n"));
    assert!(
        err.contains(&format!("zoo.cfg:5: ssl.keyStore.location: {ks}: cannot open the PKCS#12 store: wrong password (ssl.keyStore.password on line 6)")),
        "{err}"
    );
    assert!(!err.contains("right-pw") && !err.contains("wrong-pw"), "a password in the message: {err}");
    let err = refused_config(&format!("secureClientPort={port}\nssl.keyStore.location={ks}\nssl.clientAuth=none\n"));
    assert!(err.contains("without a password: set ssl.keyStore.password"), "{err}");
    // The quorum's keys are named as such.
    let err = refused_config(&format!(
        "server.1=127.0.0.1:{}:{}\nserver.2=127.0.0.1:{}:{}\nsslQuorum=true\nssl.quorum.keyStore.location={ks}\nssl.quorum.keyStore.password=nope\nssl.quorum.trustStore.location={}\nssl.quorum.trustStore.password=trust-pw\n",
        common::free_port(), common::free_port(), common::free_port(), common::free_port(), pki.p("trust.p12")
    ));
    assert!(err.contains("ssl.quorum.keyStore.location") && err.contains("wrong password (ssl.quorum.keyStore.password on line 8)"), "{err}");
    // A trust store where the key store belongs.
    let err = refused_config(&format!("secureClientPort={port}\nssl.keyStore.location={}\nssl.keyStore.password=trust-pw\nssl.clientAuth=none\n", pki.p("trust.p12")));
    assert!(err.contains("trust.p12") && err.contains("no private key"), "{err}");
    // Garbage with a .p12 name.
    std::fs::write(pki.path("junk.p12"), b"\x30\x03\x02\x01\x07 not pkcs12").expect("write");
    let err = refused_config(&format!("secureClientPort={port}\nssl.keyStore.location={}\nssl.keyStore.password=x\nssl.clientAuth=none\n", pki.p("junk.p12")));
    assert!(err.contains("junk.p12") && err.contains("not a readable PKCS#12 file"), "{err}");
    // A PKCS#12 file declared PEM.
    let err = refused_config(&format!("secureClientPort={port}\nssl.keyStore.location={ks}\nssl.keyStore.type=PEM\nssl.clientAuth=none\n"));
    assert!(err.contains("set ssl.keyStore.type=PKCS12"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Java's JKS and JCEKS stores (keytool), encrypted PEM keys (openssl), passwordPath
// ---------------------------------------------------------------------------------------

/// The magic numbers of Java's own formats: a test must know it has the real thing, since
/// keytool writes PKCS#12 unless told otherwise (and arbor would read that too).
const JKS_MAGIC: [u8; 4] = [0xfe, 0xed, 0xfe, 0xed];
const JCEKS_MAGIC: [u8; 4] = [0xce, 0xce, 0xce, 0xce];

fn magic(path: &Path) -> [u8; 4] {
    let b = std::fs::read(path).expect("store");
    b.get(..4).and_then(|m| m.try_into().ok()).unwrap_or([0; 4])
}

impl Pki {
    /// `NAME`'s key and chain in a Java store of `store_type` (JKS or JCEKS), converted by
    /// keytool from the PKCS#12 file openssl makes; the key password is the store password.
    fn java_key_store(&self, name: &str, out: &str, store_type: &str, password: &str) -> bool {
        let p12 = format!("{name}-for-{out}.p12");
        self.p12(name, &p12, password)
            && tool(
                "keytool",
                &[
                    "-importkeystore", "-noprompt", "-srckeystore", &self.p(&p12), "-srcstoretype", "PKCS12", "-srcstorepass", password,
                    "-destkeystore", &self.p(out), "-deststoretype", store_type, "-deststorepass", password, "-destkeypass", password,
                ],
            )
    }

    /// `NAME-key.pem` encrypted as `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes it, with
    /// `NAME`'s certificate after it: `OUT`.
    fn encrypted_pem(&self, name: &str, out: &str, password: &str) -> bool {
        let key = format!("{out}.key");
        if !tool(
            "openssl",
            &["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", &self.p(&format!("{name}-key.pem")), "-passout", &format!("pass:{password}"), "-out", &self.p(&key)],
        ) {
            return false;
        }
        let text = std::fs::read_to_string(self.path(&key)).expect("key") + &std::fs::read_to_string(self.path(&format!("{name}-cert.pem"))).expect("cert");
        assert!(text.contains("BEGIN ENCRYPTED PRIVATE KEY"), "{text}");
        std::fs::write(self.path(out), text).expect("write");
        true
    }
}

/// Real JKS key and trust stores (magic FEEDFEED), the key store's password read from a
/// file (`ssl.keyStore.passwordPath`, trailing newline dropped), clientAuth=need: a rustls
/// client gets its x509 id and does a create/get; zkCli with its own JKS stores too.
#[test]
fn jks_stores_serve_rustls_and_zkcli_clients() {
    let pki = Pki::new();
    if !(pki.java_key_store("server", "server.jks", "JKS", "server-pw") && pki.keytool_trust("trust.jks", "JKS", "trust-pw")) {
        return;
    }
    assert_eq!(magic(&pki.path("server.jks")), JKS_MAGIC, "keytool did not write a real JKS key store");
    assert_eq!(magic(&pki.path("trust.jks")), JKS_MAGIC, "keytool did not write a real JKS trust store");
    std::fs::write(pki.path("ks.pw"), "server-pw\n").expect("password file");
    let sport = common::free_port();
    let node = start_node(&[
        format!("secureClientPort={sport}"),
        // No type: ".jks" says JKS, as in ZooKeeper.
        format!("ssl.keyStore.location={}", pki.p("server.jks")),
        format!("ssl.keyStore.passwordPath={}", pki.p("ks.pw")),
        format!("ssl.trustStore.location={}", pki.p("trust.jks")),
        "ssl.trustStore.type=JKS".into(),
        "ssl.trustStore.password=trust-pw".into(),
        "ssl.clientAuth=need".into(),
    ]);
    assert!(TlsZk::connect(pki.client_config(false), sport).is_err(), "served without a client certificate");
    let mut tls = TlsZk::connect(pki.client_config(true), sport).expect("TLS session against JKS stores");
    assert!(tls.whoami().contains(&("x509".to_string(), CLIENT_DN.to_string())), "the JKS trust store did not verify the client");
    tls.call(&Request::Create(create_req(arbor::jute::CreateKind::Create, "/jks", Some(b"rustls"), Acl::open_unsafe(), 0))).expect("create");
    match tls.call(&Request::GetData { path: "/jks".into(), watch: false }) {
        Ok(Response::GetData { data, .. }) => assert_eq!(data.as_deref(), Some(&b"rustls"[..])),
        r => panic!("get over TLS: {r:?}"),
    }

    let Some(jar) = zookeeper_jar() else {
        eprintln!("SKIP zkCli part: zkCli not found (apt-get install zookeeper)");
        return;
    };
    assert!(pki.java_key_store("client", "client.jks", "JKS", "client-pw"));
    assert_eq!(magic(&pki.path("client.jks")), JKS_MAGIC);
    let stores = [
        format!("-Dzookeeper.ssl.keyStore.location={}", pki.p("client.jks")),
        "-Dzookeeper.ssl.keyStore.password=client-pw".to_string(),
        "-Dzookeeper.ssl.keyStore.type=JKS".to_string(),
        format!("-Dzookeeper.ssl.trustStore.location={}", pki.p("trust.jks")),
        "-Dzookeeper.ssl.trustStore.password=trust-pw".to_string(),
        "-Dzookeeper.ssl.trustStore.type=JKS".to_string(),
    ];
    let out = zkcli_tls_with(&jar, sport, &stores, "ls /\nwhoami\nget /jks\ncreate /jks/zkcli from-java\nquit\n");
    assert!(out.contains(&format!("x509: {CLIENT_DN}")), "whoami over TLS with JKS stores:\n{out}");
    assert!(out.contains("rustls") && out.contains("Created /jks/zkcli"), "{out}");
    let mut plain = RawClient::connect(&node.addr(), 10_000);
    assert_eq!(plain.get_data("/jks/zkcli", false).expect("get").0.as_deref(), Some(&b"from-java"[..]));
}

/// A JCEKS key store made by `keytool -genkeypair` (a self-signed RSA key, protected with
/// PBEWithMD5AndTripleDES) and a JCEKS trust store: the client trusts the exported
/// certificate and presents one the trust store's CA signed.
#[test]
fn jceks_stores_from_keytool_genkeypair_serve_clients() {
    let pki = Pki::new();
    let ks = pki.p("server.jceks");
    let made = tool(
        "keytool",
        &[
            "-genkeypair", "-storetype", "JCEKS", "-keystore", &ks, "-storepass", "jceks-pw", "-keypass", "jceks-pw", "-alias", "server",
            "-keyalg", "RSA", "-keysize", "2048", "-dname", "CN=arbor-jceks", "-ext", "SAN=ip:127.0.0.1,dns:localhost", "-validity", "2",
        ],
    ) && tool("keytool", &["-exportcert", "-rfc", "-keystore", &ks, "-storetype", "JCEKS", "-storepass", "jceks-pw", "-alias", "server", "-file", &pki.p("jceks-cert.pem")])
        && pki.keytool_trust("trust.jceks", "JCEKS", "trust-pw");
    if !made {
        return;
    }
    assert_eq!(magic(&pki.path("server.jceks")), JCEKS_MAGIC);
    assert_eq!(magic(&pki.path("trust.jceks")), JCEKS_MAGIC);
    let sport = common::free_port();
    let _node = start_node(&[
        format!("secureClientPort={sport}"),
        format!("ssl.keyStore.location={ks}"),
        "ssl.keyStore.type=JCEKS".into(),
        "ssl.keyStore.password=jceks-pw".into(),
        // No type: ".jceks" says JCEKS.
        format!("ssl.trustStore.location={}", pki.p("trust.jceks")),
        "ssl.trustStore.password=trust-pw".into(),
        "ssl.clientAuth=need".into(),
    ]);
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(pki.path("jceks-cert.pem")).expect("exported cert") {
        roots.add(c.expect("pem")).expect("root");
    }
    let certs: Vec<_> = CertificateDer::pem_file_iter(pki.path("client.pem")).expect("certs").map(|c| c.expect("cert")).collect();
    let key = PrivateKeyDer::from_pem_file(pki.path("client.pem")).expect("key");
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .expect("client auth");
    let mut tls = TlsZk::connect(Arc::new(cfg), sport).expect("TLS session against JCEKS stores");
    assert!(tls.whoami().contains(&("x509".to_string(), CLIENT_DN.to_string())), "the JCEKS trust store did not verify the client");
    tls.call(&Request::Create(create_req(arbor::jute::CreateKind::Create, "/jceks", Some(b"v"), Acl::open_unsafe(), 0))).expect("create");
    assert!(matches!(tls.call(&Request::GetData { path: "/jceks".into(), watch: false }), Ok(Response::GetData { .. })));
}

/// An encrypted PKCS#8 PEM key (`openssl pkcs8 -topk8 -v2 aes-256-cbc`) opened with
/// ssl.keyStore.password; a wrong password, and the legacy `Proc-Type: 4,ENCRYPTED` form,
/// are refused naming the key and line.
#[test]
fn encrypted_pem_keys_are_decrypted_with_the_key_store_password() {
    let pki = Pki::new();
    if !pki.encrypted_pem("server", "server-enc.pem", "pem-pw") {
        return;
    }
    let sport = common::free_port();
    let _node = start_node(&[
        format!("secureClientPort={sport}"),
        format!("ssl.keyStore.location={}", pki.p("server-enc.pem")),
        "ssl.keyStore.password=pem-pw".into(),
        format!("ssl.trustStore.location={}", pki.p("ca.pem")),
        "ssl.clientAuth=need".into(),
    ]);
    let mut tls = TlsZk::connect(pki.client_config(true), sport).expect("TLS session with an encrypted PEM key");
    tls.call(&Request::Create(create_req(arbor::jute::CreateKind::Create, "/pem", Some(b"enc"), Acl::open_unsafe(), 0))).expect("create");
    assert!(matches!(tls.call(&Request::GetData { path: "/pem".into(), watch: false }), Ok(Response::GetData { .. })));

    let port = common::free_port();
    let enc = pki.p("server-enc.pem");
    // Lines: 4 secureClientPort, 5 location, 6 password.
    let err = refused_config(&format!("secureClientPort={port}\nssl.keyStore.location={enc}\nssl.keyStore.password=wrong-pw\nssl.clientAuth=none\n"));
    assert!(
        err.contains(&format!("zoo.cfg:5: ssl.keyStore.location: {enc}: cannot open the encrypted private key: wrong password (ssl.keyStore.password on line 6)")),
        "{err}"
    );
    assert!(!err.contains("wrong-pw") && !err.contains("pem-pw"), "a password in the message: {err}");
    let err = refused_config(&format!("secureClientPort={port}\nssl.keyStore.location={enc}\nssl.clientAuth=none\n"));
    assert!(err.contains("encrypted private key without a password: set ssl.keyStore.password"), "{err}");
    // OpenSSL's legacy encryption: refused with the conversion command.
    if tool("openssl", &["ec", "-in", &pki.p("server-key.pem"), "-aes256", "-passout", "pass:legacy-pw", "-out", &pki.p("legacy-key.pem")]) {
        let text = std::fs::read_to_string(pki.path("legacy-key.pem")).expect("key");
        assert!(text.contains("Proc-Type: 4,ENCRYPTED"), "{text}");
        std::fs::write(pki.path("legacy.pem"), text + &std::fs::read_to_string(pki.path("server-cert.pem")).expect("cert")).expect("write");
        let err = refused_config(&format!(
            "secureClientPort={port}\nssl.keyStore.location={}\nssl.keyStore.password=legacy-pw\nssl.clientAuth=none\n",
            pki.p("legacy.pem")
        ));
        assert!(err.contains("zoo.cfg:5: ssl.keyStore.location") && err.contains("openssl pkcs8 -topk8 -v2 aes-256-cbc"), "{err}");
    }
}

/// JKS/JCEKS errors stop the server at start, naming the key, the line and the file and
/// never the password: a wrong password (given inline or by passwordPath), a missing
/// password file, a damaged or truncated store (no panic), a trust store as key store.
#[test]
fn java_store_errors_name_the_key_and_the_line() {
    let pki = Pki::new();
    if !(pki.java_key_store("server", "server.jks", "JKS", "right-pw") && pki.java_key_store("server", "server.jceks", "JCEKS", "right-pw")) {
        return;
    }
    let port = common::free_port();
    for (ks, kind) in [(pki.p("server.jks"), "JKS"), (pki.p("server.jceks"), "JCEKS")] {
        // Lines: 4 secureClientPort, 5 location, 6 password.
        let err = refused_config(&format!("secureClientPort={port}\nssl.keyStore.location={ks}\nssl.keyStore.password=wrong-pw\nssl.clientAuth=none\n"));
        assert!(
            err.contains(&format!("zoo.cfg:5: ssl.keyStore.location: {ks}: cannot open the {kind} store: wrong password (ssl.keyStore.password on line 6)")),
            "{err}"
        );
        assert!(!err.contains("right-pw") && !err.contains("wrong-pw"), "a password in the message: {err}");
    }
    let ks = pki.p("server.jks");
    // By passwordPath: the file's line is named.
    std::fs::write(pki.path("bad.pw"), "wrong-pw\n").expect("write");
    let err = refused_config(&format!("secureClientPort={port}\nssl.keyStore.location={ks}\nssl.keyStore.passwordPath={}\nssl.clientAuth=none\n", pki.p("bad.pw")));
    assert!(err.contains("wrong password (ssl.keyStore.passwordPath on line 6)") && !err.contains("wrong-pw"), "{err}");
    let err = refused_config(&format!("secureClientPort={port}\nssl.keyStore.location={ks}\nssl.keyStore.passwordPath=/nonexistent/ks.pw\nssl.clientAuth=none\n"));
    assert!(err.contains("zoo.cfg:6: ssl.keyStore.passwordPath") && err.contains("cannot read the password file"), "{err}");
    // No password: ZooKeeper's empty one, which does not open it.
    let err = refused_config(&format!("secureClientPort={port}\nssl.keyStore.location={ks}\nssl.clientAuth=none\n"));
    assert!(err.contains("cannot open the JKS store without a password: set ssl.keyStore.password"), "{err}");
    // Damaged: one byte flipped (the digest catches it), and truncated.
    let bytes = std::fs::read(pki.path("server.jks")).expect("store");
    let mut flipped = bytes.clone();
    flipped[bytes.len() - 30] ^= 0x5a; // inside the last certificate, under the digest
    std::fs::write(pki.path("flipped.jks"), &flipped).expect("write");
    std::fs::write(pki.path("short.jks"), &bytes[..bytes.len() / 3]).expect("write");
    for (name, want) in [("flipped.jks", "or the file is damaged"), ("short.jks", "truncated or damaged")] {
        let err = refused_config(&format!("secureClientPort={port}\nssl.keyStore.location={}\nssl.keyStore.password=right-pw\nssl.clientAuth=none\n", pki.p(name)));
        assert!(err.contains(&format!("zoo.cfg:5: ssl.keyStore.location: {}", pki.p(name))) && err.contains(want), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    // A trust store where the key store belongs.
    if pki.keytool_trust("trust.jks", "JKS", "trust-pw") {
        let err = refused_config(&format!("secureClientPort={port}\nssl.keyStore.location={}\nssl.keyStore.password=trust-pw\nssl.clientAuth=none\n", pki.p("trust.jks")));
        assert!(err.contains("trust.jks") && err.contains("no private key entry"), "{err}");
    }
    // A JKS file declared PEM.
    let err = refused_config(&format!("secureClientPort={port}\nssl.keyStore.location={ks}\nssl.keyStore.type=PEM\nssl.clientAuth=none\n"));
    assert!(err.contains("set ssl.keyStore.type=JKS"), "{err}");
}
