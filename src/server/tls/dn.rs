//! A certificate's subject as ZooKeeper's `x509` auth scheme names it:
//! `X509Certificate.getSubjectX500Principal().getName()` (Java's RFC 2253 form), which
//! `X509AuthenticationProvider.getClientId` uses as the session's id.
//!
//! Java's rules, followed here: RDNs last to first, joined by `,`; the AVAs of a multi-valued
//! RDN joined by `+` in encoded order; the RFC 2253 keywords (CN, C, L, ST, O, OU, STREET, DC,
//! UID) for their OIDs and the dotted OID for any other type; a string value (UTF8String,
//! PrintableString, TeletexString, IA5String, BMPString, UniversalString) with
//! `, = + < > # ; " \` and a leading or trailing space backslash-escaped; a value of another
//! type, or of an attribute without a keyword, as `#` and the lowercase hex of its DER.
//! So `C=US, O=Example, CN=client` (as openssl prints it) is `CN=client,O=Example,C=US`.
//!
//! A small DER reader over untrusted bytes (the chain was verified by rustls before we get
//! here, but nothing below may panic on any input): every length is checked, `None` on
//! anything malformed.

/// The subject DN of a DER certificate, or `None` if it cannot be read.
pub fn subject_dn(cert_der: &[u8]) -> Option<String> {
    let (tag, cert, _) = tlv(cert_der)?;
    expect(tag, 0x30)?;
    let (tag, tbs, _) = tlv(cert)?;
    expect(tag, 0x30)?;
    let mut rest = tbs;
    // [0] EXPLICIT version, optional.
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    // serialNumber, signature, issuer, validity, then subject.
    for _ in 0..4 {
        rest = tlv(rest)?.2;
    }
    let (tag, subject, _) = tlv(rest)?;
    expect(tag, 0x30)?;
    name_rfc2253(subject)
}

/// The content of a `Name` (a SEQUENCE OF RelativeDistinguishedName) in RFC 2253 form.
fn name_rfc2253(mut seq: &[u8]) -> Option<String> {
    let mut rdns = Vec::new();
    while !seq.is_empty() {
        let (tag, set, rest) = tlv(seq)?;
        expect(tag, 0x31)?;
        seq = rest;
        let mut avas = Vec::new();
        let mut set = set;
        while !set.is_empty() {
            let (tag, ava, rest) = tlv(set)?;
            expect(tag, 0x30)?;
            set = rest;
            avas.push(ava_rfc2253(ava)?);
        }
        rdns.push(avas.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// `AttributeTypeAndValue ::= SEQUENCE { type OBJECT IDENTIFIER, value ANY }`.
fn ava_rfc2253(ava: &[u8]) -> Option<String> {
    let (tag, oid, rest) = tlv(ava)?;
    expect(tag, 0x06)?;
    let oid = oid_text(oid)?;
    let (vtag, value, after) = tlv(rest)?;
    let value_der = &rest[..rest.len() - after.len()];
    let keyword = keyword(&oid);
    let text = match (keyword, string_value(vtag, value)) {
        (Some(_), Some(s)) => escape(&s),
        _ => {
            let mut hex = String::with_capacity(1 + 2 * value_der.len());
            hex.push('#');
            for b in value_der {
                hex.push_str(&format!("{b:02x}"));
            }
            hex
        }
    };
    Some(format!("{}={}", keyword.unwrap_or(&oid), text))
}

/// Java's RFC 2253 keywords (`AVAKeyword`s marked RFC 2253 compliant).
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// The text of a DirectoryString-like value; `None` for other types (and bad encodings).
fn string_value(tag: u8, v: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, TeletexString (read as Latin-1, as Java does), IA5String
        0x0c => String::from_utf8(v.to_vec()).ok(),
        0x13 | 0x16 => v.is_ascii().then(|| v.iter().map(|&b| b as char).collect()),
        0x14 => Some(v.iter().map(|&b| b as char).collect()),
        // BMPString: UTF-16BE.
        0x1e => {
            if !v.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = v.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16(&units).ok()
        }
        // UniversalString: UTF-32BE.
        0x1c => {
            if !v.len().is_multiple_of(4) {
                return None;
            }
            v.chunks_exact(4).map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))).collect()
        }
        _ => None,
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    let n = s.chars().count();
    for (i, c) in s.chars().enumerate() {
        let edge_space = c == ' ' && (i == 0 || i + 1 == n);
        if ",=+<>#;\"\\".contains(c) || edge_space {
            out.push('\\');
        }
        if c == '\0' {
            out.push_str("00");
        } else {
            out.push(c);
        }
    }
    out
}

/// Dotted text of an OID's content octets.
fn oid_text(b: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for (i, &byte) in b.iter().enumerate() {
        if acc > (u64::MAX >> 7) {
            return None;
        }
        acc = (acc << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        } else if i + 1 == b.len() {
            return None;
        }
    }
    if arcs.is_empty() {
        return None;
    }
    Some(arcs.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
}

fn expect(tag: u8, want: u8) -> Option<()> {
    (tag == want).then_some(())
}

/// One DER TLV: (tag, content, what follows). Single-byte tags only (all X.509 needs).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let first = *b.get(1)?;
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    let content = b.get(header..end)?;
    Some((tag, content, &b[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SET { SEQUENCE { OID, value } }` for one AVA.
    fn rdn(oid: &[u8], vtag: u8, value: &[u8]) -> Vec<u8> {
        let mut ava = vec![0x06, oid.len() as u8];
        ava.extend_from_slice(oid);
        ava.push(vtag);
        ava.push(value.len() as u8);
        ava.extend_from_slice(value);
        let mut seq = vec![0x30, ava.len() as u8];
        seq.extend(ava);
        let mut set = vec![0x31, seq.len() as u8];
        set.extend(seq);
        set
    }

    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const O: &[u8] = &[0x55, 0x04, 0x0a];
    const C: &[u8] = &[0x55, 0x04, 0x06];
    const EMAIL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];

    #[test]
    fn rdns_are_reversed_and_keyworded_like_java() {
        let mut name = rdn(C, 0x13, b"US");
        name.extend(rdn(O, 0x0c, b"Example, Inc"));
        name.extend(rdn(CN, 0x0c, b"client 1"));
        assert_eq!(name_rfc2253(&name).as_deref(), Some("CN=client 1,O=Example\\, Inc,C=US"));
    }

    #[test]
    fn attributes_without_keyword_are_oid_and_hex() {
        let mut name = rdn(CN, 0x0c, b"a");
        name.extend(rdn(EMAIL, 0x16, b"a@b"));
        assert_eq!(name_rfc2253(&name).as_deref(), Some("1.2.840.113549.1.9.1=#1603614062,CN=a"));
    }

    #[test]
    fn special_characters_are_escaped() {
        assert_eq!(escape(" a+b=c<d>e#f;g\"h\\i "), "\\ a\\+b\\=c\\<d\\>e\\#f\\;g\\\"h\\\\i\\ ");
    }

    #[test]
    fn malformed_input_is_none_not_a_panic() {
        for bad in [&[][..], &[0x30], &[0x30, 0x85, 1, 1, 1, 1, 1], &[0x30, 0x05, 0x30], &[0x1f, 0, 0]] {
            assert_eq!(subject_dn(bad), None);
        }
        // Every prefix of a valid name either parses or is rejected; none panics.
        let name = rdn(CN, 0x0c, b"abc");
        for i in 0..name.len() {
            let _ = name_rfc2253(&name[..i]);
        }
        assert_eq!(oid_text(&[0x55, 0x84]), None);
    }
}
