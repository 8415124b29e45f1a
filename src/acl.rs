//! Access control: authentication schemes (`world`, `auth`, `digest`, `ip`, `x509` — set by
//! the loop from a TLS client certificate, never by an auth packet — plus the superuser),
//! ACL validation on create/setACL (`PrepRequestProcessor.fixupACL`) and the permission
//! check every operation goes through (`ZooKeeperServer.checkACL`).
//!
//! Pure functions: the session's authenticated ids come in as a slice.

use base64::Engine;
use sha1::{Digest, Sha1};

use crate::proto::{perms, Acl, ErrorCode, Id};

/// The superuser's id scheme: a session holding `super:` passes every ACL check.
pub const SUPER_SCHEME: &str = "super";

/// `DigestAuthenticationProvider.generateDigest`: `user:base64(sha1("user:password"))`.
/// Returns `None` when the input has no `:` (not a `user:password` pair).
pub fn generate_digest(user_password: &str) -> Option<String> {
    let (user, _) = user_password.split_once(':')?;
    let hash = Sha1::digest(user_password.as_bytes());
    Some(format!("{}:{}", user, base64::engine::general_purpose::STANDARD.encode(hash)))
}

/// The result of an `auth` packet.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthResult {
    /// Ids to add to the session (the digest id, and `super:` when it matches superDigest).
    Added(Vec<Id>),
    /// Unknown scheme or malformed credentials: the server answers AuthFailed and closes.
    Failed,
}

/// Authenticate an `auth` packet. `super_digest` is the configured `super:<hash>` (the value
/// after `superDigest=`), `client_ip` the peer address of the connection.
pub fn authenticate(scheme: &str, auth: &[u8], super_digest: Option<&str>, client_ip: &str) -> AuthResult {
    match scheme {
        "digest" => {
            let text = String::from_utf8_lossy(auth);
            let Some(digest) = generate_digest(&text) else { return AuthResult::Failed };
            let mut ids = vec![Id::new("digest", &digest)];
            if super_digest == Some(digest.as_str()) {
                ids.push(Id::new(SUPER_SCHEME, ""));
            }
            AuthResult::Added(ids)
        }
        "ip" => AuthResult::Added(vec![Id::new("ip", client_ip)]),
        _ => AuthResult::Failed,
    }
}

/// Whether `ids` (a session's authenticated identities) grant `perm` on a node with `acl`.
pub fn check(acl: &[Acl], perm: i32, ids: &[Id]) -> bool {
    if ids.iter().any(|i| i.scheme == SUPER_SCHEME) {
        return true;
    }
    if acl.is_empty() {
        return true;
    }
    acl.iter().filter(|a| a.perms & perm != 0).any(|a| {
        if a.id.scheme == "world" && a.id.id == "anyone" {
            return true;
        }
        ids.iter().any(|i| {
            i.scheme == a.id.scheme
                && match a.id.scheme.as_str() {
                    "ip" => ip_matches(&a.id.id, &i.id),
                    _ => i.id == a.id.id,
                }
        })
    })
}

/// Validate and normalise an ACL list for create/setACL: remove duplicates, expand `auth`
/// to the session's authenticated ids, reject unknown schemes and malformed ids.
pub fn fixup(acl: &[Acl], ids: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
    let mut uniq: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !uniq.contains(&a) {
            uniq.push(a);
        }
    }
    if uniq.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(uniq.len());
    for a in uniq {
        match a.id.scheme.as_str() {
            "world" if a.id.id == "anyone" => out.push(a.clone()),
            "auth" => {
                // Only schemes whose provider "isAuthenticated" count: digest (and super,
                // whose provider is digest) and x509 (a verified client certificate). The
                // ip identity does not.
                let mut any = false;
                for i in ids.iter().filter(|i| i.scheme == "digest" || i.scheme == "x509") {
                    any = true;
                    let e = Acl { perms: a.perms, id: i.clone() };
                    if !out.contains(&e) {
                        out.push(e);
                    }
                }
                if !any {
                    return Err(ErrorCode::InvalidAcl);
                }
            }
            "digest" if digest_id_valid(&a.id.id) => out.push(a.clone()),
            "ip" if ip_id_valid(&a.id.id) => out.push(a.clone()),
            // `X509AuthenticationProvider.isValid` parses the id as an X500 name; any
            // non-empty DN string is accepted here (a mismatch only means no access).
            "x509" if !a.id.id.is_empty() => out.push(a.clone()),
            _ => return Err(ErrorCode::InvalidAcl),
        }
    }
    Ok(out)
}

/// `DigestAuthenticationProvider.isValid`: `user:hash` with exactly one `:`.
fn digest_id_valid(id: &str) -> bool {
    id.split(':').count() == 2
}

fn parse_ip_prefix(spec: &str) -> Option<(std::net::IpAddr, u32)> {
    let (addr, bits) = match spec.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u32>().ok()?)),
        None => (spec, None),
    };
    let ip: std::net::IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    if bits > max {
        return None;
    }
    Some((ip, bits))
}

fn ip_id_valid(id: &str) -> bool {
    parse_ip_prefix(id).is_some()
}

/// `IPAuthenticationProvider.matches`: `acl_spec` is an address or `addr/bits`.
fn ip_matches(acl_spec: &str, client: &str) -> bool {
    let (Some((net, bits)), Ok(ip)) = (parse_ip_prefix(acl_spec), client.parse::<std::net::IpAddr>())
    else {
        return false;
    };
    let to_bytes = |a: std::net::IpAddr| match a {
        std::net::IpAddr::V4(v) => v.octets().to_vec(),
        std::net::IpAddr::V6(v) => v.octets().to_vec(),
    };
    let (n, c) = (to_bytes(net), to_bytes(ip));
    if n.len() != c.len() {
        return false;
    }
    let mut left = bits;
    for (x, y) in n.iter().zip(c.iter()) {
        if left == 0 {
            break;
        }
        let mask: u8 = if left >= 8 { 0xff } else { 0xffu8 << (8 - left) };
        if x & mask != y & mask {
            return false;
        }
        left = left.saturating_sub(8);
    }
    true
}

/// Permission needed to read a node's ACL is none; to change it ADMIN. Exposed for clarity
/// at call sites.
pub const ADMIN: i32 = perms::ADMIN;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_zookeeper() {
        // zkCli transcript: digest:user1:+7K83PhyQ3ijGj0ADmljf0quVwQ= is user1:pass1.
        assert_eq!(generate_digest("user1:pass1").as_deref(), Some("user1:+7K83PhyQ3ijGj0ADmljf0quVwQ="));
        // kazoo's superuser super:test.
        assert_eq!(generate_digest("super:test").as_deref(), Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU="));
        assert_eq!(generate_digest("nocolon"), None);
    }

    #[test]
    fn super_digest_adds_super() {
        let r = authenticate("digest", b"super:test", Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU="), "127.0.0.1");
        let AuthResult::Added(ids) = r else { panic!() };
        assert!(ids.iter().any(|i| i.scheme == SUPER_SCHEME));
        assert!(check(&[Acl { perms: 0, id: Id::new("digest", "x:y") }], perms::READ, &ids));
        assert_eq!(authenticate("nosuch", b"a:b", None, "127.0.0.1"), AuthResult::Failed);
    }

    #[test]
    fn check_schemes() {
        let ids = vec![Id::new("ip", "127.0.0.1"), Id::new("digest", "u:h")];
        assert!(check(&Acl::open_unsafe(), perms::WRITE, &[]));
        assert!(!check(&Acl::read_unsafe(), perms::WRITE, &ids));
        assert!(check(&[Acl { perms: perms::READ, id: Id::new("digest", "u:h") }], perms::READ, &ids));
        assert!(!check(&[Acl { perms: perms::READ, id: Id::new("digest", "u:x") }], perms::READ, &ids));
        assert!(check(&[Acl { perms: perms::ALL, id: Id::new("ip", "127.0.0.0/8") }], perms::READ, &ids));
        assert!(!check(&[Acl { perms: perms::ALL, id: Id::new("ip", "10.0.0.0/8") }], perms::READ, &ids));
    }

    #[test]
    fn x509_ids_come_only_from_certificates_and_count_as_authenticated() {
        // An auth packet cannot claim the scheme the TLS layer sets.
        assert_eq!(authenticate("x509", b"CN=me", None, "127.0.0.1"), AuthResult::Failed);
        let ids = [Id::new("ip", "127.0.0.1"), Id::new("x509", "CN=c,O=o")];
        let auth = Acl { perms: perms::ALL, id: Id::new("auth", "") };
        assert_eq!(fixup(&[auth], &ids), Ok(vec![Acl { perms: perms::ALL, id: Id::new("x509", "CN=c,O=o") }]));
        let mine = Acl { perms: perms::READ, id: Id::new("x509", "CN=c,O=o") };
        assert_eq!(fixup(std::slice::from_ref(&mine), &[]), Ok(vec![mine.clone()]));
        assert!(check(std::slice::from_ref(&mine), perms::READ, &ids));
        assert!(!check(&[mine], perms::READ, &[Id::new("x509", "CN=other")]));
        assert_eq!(fixup(&[Acl { perms: 1, id: Id::new("x509", "") }], &[]), Err(ErrorCode::InvalidAcl));
    }

    #[test]
    fn fixup_rules() {
        let open = Acl::open_unsafe();
        assert_eq!(fixup(&[open[0].clone(), open[0].clone()], &[]).unwrap(), open);
        assert_eq!(fixup(&[], &[]), Err(ErrorCode::InvalidAcl));
        let auth = Acl { perms: perms::ALL, id: Id::new("auth", "") };
        assert_eq!(fixup(std::slice::from_ref(&auth), &[Id::new("ip", "127.0.0.1")]), Err(ErrorCode::InvalidAcl));
        let got = fixup(&[auth], &[Id::new("ip", "127.0.0.1"), Id::new("digest", "u:h")]).unwrap();
        assert_eq!(got, vec![Acl { perms: perms::ALL, id: Id::new("digest", "u:h") }]);
        assert_eq!(fixup(&[Acl { perms: 1, id: Id::new("world", "nobody") }], &[]), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup(&[Acl { perms: 1, id: Id::new("bogus", "x") }], &[]), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup(&[Acl { perms: 1, id: Id::new("ip", "1.2.3.400") }], &[]), Err(ErrorCode::InvalidAcl));
    }
}
