//! ACLs as zkCli writes them: `scheme:id:perms[,scheme:id:perms...]`, perms a subset of
//! `cdrwa`. The id may itself contain colons (`digest:user:hash`), so the scheme ends at the
//! first colon and the perms start after the last.

use crate::proto::{perms, Acl, Id};

pub fn perms_text(p: i32) -> String {
    [(perms::CREATE, 'c'), (perms::DELETE, 'd'), (perms::READ, 'r'), (perms::WRITE, 'w'), (perms::ADMIN, 'a')]
        .iter()
        .filter(|(bit, _)| p & bit != 0)
        .map(|(_, c)| *c)
        .collect()
}

pub fn parse_acls(text: &str) -> Result<Vec<Acl>, String> {
    text.split(',').filter(|s| !s.trim().is_empty()).map(|s| parse_one(s.trim())).collect()
}

fn parse_one(s: &str) -> Result<Acl, String> {
    let (scheme, rest) = s.split_once(':').ok_or_else(|| format!("ACL {s:?}: expected scheme:id:perms"))?;
    let (id, p) = rest.rsplit_once(':').ok_or_else(|| format!("ACL {s:?}: expected scheme:id:perms"))?;
    let mut bits = 0;
    for c in p.chars() {
        bits |= match c {
            'c' => perms::CREATE,
            'd' => perms::DELETE,
            'r' => perms::READ,
            'w' => perms::WRITE,
            'a' => perms::ADMIN,
            _ => return Err(format!("ACL {s:?}: unknown permission {c:?} (use cdrwa)")),
        };
    }
    Ok(Acl { perms: bits, id: Id::new(scheme, id) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_zkcli_acl_text() {
        let a = parse_acls("world:anyone:r,digest:u:abc=:cdrwa,auth::rw").expect("parse");
        assert_eq!(a[0], Acl { perms: perms::READ, id: Id::new("world", "anyone") });
        assert_eq!(a[1], Acl { perms: perms::ALL, id: Id::new("digest", "u:abc=") });
        assert_eq!(a[2], Acl { perms: perms::READ | perms::WRITE, id: Id::new("auth", "") });
        assert_eq!(perms_text(perms::ALL), "cdrwa");
        assert!(parse_acls("world:anyone:x").is_err());
        assert!(parse_acls("nocolon").is_err());
    }
}
