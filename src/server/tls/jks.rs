//! Java's own key store formats, JKS (`keytool -storetype JKS`, Java 8's default) and JCEKS,
//! read the way `sun.security.provider.JavaKeyStore` and `com.sun.crypto.provider.JceKeyStore`
//! read them. No well-kept Rust crate does this (the `jks` crate is young and wraps
//! p12-keystore), and the format is small, so it is parsed here.
//!
//! Grammar (integers big-endian; `utf` = u16 length + Java's modified UTF-8):
//! ```text
//! store    = magic:u32 version:u32 count:u32 entry{count} digest:[u8; 20]
//! magic    = FEEDFEED (JKS) | CECECECE (JCEKS);  version = 1 (JKS only) | 2
//! entry    = tag:u32 alias:utf date_ms:u64 body
//! body     = tag 1, a private key:  key_len:u32 protected_key:[u8; key_len]
//!                                   chain_len:u32 cert{chain_len}   (leaf first)
//!          | tag 2, a trusted certificate: cert
//!          | tag 3, a JCEKS secret key: a Java-serialized SealedObject   (refused)
//! cert     = [version 2: type:utf, "X.509"] der_len:u32 der:[u8; der_len]
//! digest   = SHA-1(password as UTF-16BE || "Mighty Aphrodite" || every byte before it)
//! ```
//! `protected_key` is a PKCS#8 `EncryptedPrivateKeyInfo` whose algorithm names the key
//! protector: Sun's JKS protector (OID 1.3.6.1.4.1.42.2.17.1.1: salt, the key XORed with a
//! SHA-1 keystream of password and salt, and a SHA-1 check of password and key) or, in
//! JCEKS, Sun's PBEWithMD5AndTripleDES (OID 1.3.6.1.4.1.42.2.19.1). Either store may hold
//! either, as Java's readers accept.
//!
//! Invariants: every length is checked against the bytes left before anything is sliced or
//! allocated (a count never pre-allocates), the integrity digest is checked with the store
//! password before any entry is used (ZooKeeper always passes a password, empty when none
//! is set, so Java always checks it), and no input panics: every failure is an `OpenError`.

use des::TdesEde3;
use md5::Md5;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha1::Sha1;

use super::OpenError;

const JKS_MAGIC: u32 = 0xfeed_feed;
const JCEKS_MAGIC: u32 = 0xcece_cece;
/// What Java mixes into the integrity digest after the password.
const DIGEST_WHITENER: &[u8] = b"Mighty Aphrodite";
const SHA1_LEN: usize = 20;
/// DER contents of the key protectors' OIDs.
const JKS_PROTECTOR_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x11, 0x01, 0x01];
const PBE_MD5_3DES_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x13, 0x01];
/// Java's JCEKS key protector refuses more rounds than this (`KeyProtector`), and so do we:
/// each round costs two MD5s at load time.
const MAX_PBE_ITERATIONS: u32 = 5_000_000;

/// Which of Java's two formats a store is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Jks,
    Jceks,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Jks => "JKS",
            Kind::Jceks => "JCEKS",
        }
    }
}

/// The kind of Java store `bytes` is, by its magic.
pub fn sniff(bytes: &[u8]) -> Option<Kind> {
    let magic: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    match u32::from_be_bytes(magic) {
        JKS_MAGIC => Some(Kind::Jks),
        JCEKS_MAGIC => Some(Kind::Jceks),
        _ => None,
    }
}

/// One entry of a store, as stored (keys still protected).
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    PrivateKey { alias: String, protected: Vec<u8>, chain: Vec<Vec<u8>> },
    TrustedCert { der: Vec<u8> },
}

/// The private key and its certificate chain (leaf first) of a JKS/JCEKS key store: the
/// first key entry, decrypted with the store password (ZooKeeper uses it for the key too).
pub fn key_store(bytes: &[u8], password: &str) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), OpenError> {
    let (kind, entries) = parse(bytes, password)?;
    let Some((alias, protected, chain)) = entries.into_iter().find_map(|e| match e {
        Entry::PrivateKey { alias, protected, chain } => Some((alias, protected, chain)),
        Entry::TrustedCert { .. } => None,
    }) else {
        return Err(OpenError::Unreadable(format!(
            "no private key entry in this {} store (a trust store?): the key store needs the key and its certificate chain",
            kind.name()
        )));
    };
    if chain.is_empty() {
        return Err(OpenError::Unreadable(format!("the private key {alias:?} has no certificate")));
    }
    let key = recover_key(&protected, password).map_err(|why| OpenError::Unreadable(format!("private key {alias:?}: {why}")))?;
    let certs = chain.into_iter().map(CertificateDer::from).collect();
    Ok((certs, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key))))
}

/// Every trusted certificate of a JKS/JCEKS trust store, and the leaf certificate of each
/// key entry, as Java's trust manager takes them (`TrustStoreUtil.getTrustedCerts`).
pub fn trust_store(bytes: &[u8], password: &str) -> Result<Vec<CertificateDer<'static>>, OpenError> {
    let (kind, entries) = parse(bytes, password)?;
    let certs: Vec<CertificateDer<'static>> = entries
        .into_iter()
        .filter_map(|e| match e {
            Entry::TrustedCert { der } => Some(CertificateDer::from(der)),
            Entry::PrivateKey { chain, .. } => chain.into_iter().next().map(CertificateDer::from),
        })
        .collect();
    if certs.is_empty() {
        return Err(OpenError::Unreadable(format!("no certificate in this {} store", kind.name())));
    }
    Ok(certs)
}

/// A bounded reader over the store's bytes: every read checks what is left.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

fn truncated(what: &str) -> OpenError {
    OpenError::Unreadable(format!("the store is truncated or damaged (in {what})"))
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], OpenError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| truncated(what))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u16(&mut self, what: &str) -> Result<u16, OpenError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, OpenError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Java's `writeUTF`: the alias or the certificate type. Modified UTF-8 differs from
    /// UTF-8 only for NUL and characters outside the BMP, which are shown lossily.
    fn utf(&mut self, what: &str) -> Result<String, OpenError> {
        let n = self.u16(what)? as usize;
        Ok(String::from_utf8_lossy(self.take(n, what)?).into_owned())
    }

    /// A u32 length and that many bytes.
    fn blob(&mut self, what: &str) -> Result<&'a [u8], OpenError> {
        let n = self.u32(what)?;
        self.take(usize::try_from(n).map_err(|_| truncated(what))?, what)
    }

    fn cert(&mut self, version: u32) -> Result<Vec<u8>, OpenError> {
        if version == 2 {
            let kind = self.utf("a certificate type")?;
            if kind != "X.509" {
                return Err(OpenError::Unreadable(format!("a {kind:?} certificate; only X.509 certificates are used")));
            }
        }
        Ok(self.blob("a certificate")?.to_vec())
    }
}

/// Check the magic, version and integrity digest, and cut the entries.
fn parse(bytes: &[u8], password: &str) -> Result<(Kind, Vec<Entry>), OpenError> {
    let kind = sniff(bytes).ok_or_else(|| OpenError::Unreadable("not a JKS or JCEKS store (bad magic number)".into()))?;
    let mut r = Reader { bytes, at: 4 };
    let version = r.u32("the header")?;
    match (kind, version) {
        (Kind::Jks, 1 | 2) | (Kind::Jceks, 2) => {}
        _ => return Err(OpenError::Unreadable(format!("{} store version {version}, which Java never wrote", kind.name()))),
    }
    let count = r.u32("the header")?;
    let mut entries = Vec::new();
    for _ in 0..count {
        let tag = r.u32("an entry tag")?;
        let alias = r.utf("an alias")?;
        r.take(8, "an entry date")?;
        match tag {
            1 => {
                let protected = r.blob("a protected key")?.to_vec();
                let n = r.u32("a certificate chain")?;
                let mut chain = Vec::new();
                for _ in 0..n {
                    chain.push(r.cert(version)?);
                }
                entries.push(Entry::PrivateKey { alias, protected, chain });
            }
            2 => entries.push(Entry::TrustedCert { der: r.cert(version)? }),
            3 if kind == Kind::Jceks => {
                // Its length is only known by decoding Java serialization: stop here.
                return Err(OpenError::Unreadable(format!(
                    "entry {alias:?} is a secret key, which arbor cannot read; keep TLS keys and certificates in a store of their own"
                )));
            }
            _ => return Err(OpenError::Unreadable(format!("entry {alias:?} has unknown tag {tag}"))),
        }
    }
    let signed = &bytes[..r.at];
    let digest = r.take(SHA1_LEN, "the integrity digest")?;
    if sha1_of(&[&utf16be(password), DIGEST_WHITENER, signed]) != digest {
        return Err(OpenError::WrongPassword);
    }
    Ok((kind, entries))
}

fn sha1_of(parts: &[&[u8]]) -> [u8; SHA1_LEN] {
    use sha1::Digest;
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Java's `char[]` password as the JKS code hashes it: each UTF-16 unit, big-endian.
fn utf16be(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// The PKCS#8 `PrivateKeyInfo` a protected key entry holds.
fn recover_key(protected: &[u8], password: &str) -> Result<Vec<u8>, String> {
    let (oid, params, data) = encrypted_key_info(protected).ok_or("the protected key is not an EncryptedPrivateKeyInfo")?;
    if oid == JKS_PROTECTOR_OID {
        jks_unprotect(data, password)
    } else if oid == PBE_MD5_3DES_OID {
        let (salt, iterations) = pbe_params(params).ok_or("bad PBEWithMD5AndTripleDES parameters")?;
        jceks_unprotect(data, password, salt, iterations)
    } else {
        Err("protected with an algorithm Java's JKS/JCEKS key protectors do not use".into())
    }
}

/// Sun's JKS key protector: `salt(20) || key XOR keystream || SHA-1(password || key)`,
/// the keystream being SHA-1 rounds chained from the salt.
fn jks_unprotect(data: &[u8], password: &str) -> Result<Vec<u8>, String> {
    if data.len() < 2 * SHA1_LEN {
        return Err("the protected key is too short".into());
    }
    let pw = utf16be(password);
    let (salt, rest) = data.split_at(SHA1_LEN);
    let (body, check) = rest.split_at(rest.len() - SHA1_LEN);
    let mut key = Vec::with_capacity(body.len());
    let mut stream = [0u8; SHA1_LEN];
    stream.copy_from_slice(salt);
    for chunk in body.chunks(SHA1_LEN) {
        stream = sha1_of(&[&pw, &stream]);
        key.extend(chunk.iter().zip(&stream).map(|(c, s)| c ^ s));
    }
    if sha1_of(&[&pw, &key]) != check {
        return Err("cannot recover it: its password is not the store password, or it is damaged".into());
    }
    Ok(key)
}

/// Sun's PBEWithMD5AndTripleDES (`PBES1Core.deriveCipherKey`): each half of the 8-byte
/// salt (the first half reversed if both are equal) is hashed `iterations` times with the
/// ASCII password into 16 bytes; the 32 bytes are the DES-EDE3 key and the CBC IV.
fn jceks_unprotect(data: &[u8], password: &str, salt: [u8; 8], iterations: u32) -> Result<Vec<u8>, String> {
    use cbc::cipher::{block_padding::Pkcs7, BlockModeDecrypt, KeyIvInit};
    if !(1..=MAX_PBE_ITERATIONS).contains(&iterations) {
        return Err(format!("{iterations} PBE iterations (Java allows 1 to {MAX_PBE_ITERATIONS})"));
    }
    // Java's PBEKey takes printable ASCII only.
    if !password.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err("JCEKS key passwords are printable ASCII; this one is not".into());
    }
    let mut salt = salt;
    if salt[..4] == salt[4..] {
        salt[..4].reverse();
    }
    let mut derived = [0u8; 32];
    for (half, out) in salt.chunks(4).zip(derived.chunks_mut(16)) {
        use md5::Digest;
        let mut x: Vec<u8> = half.to_vec();
        for _ in 0..iterations {
            let mut h = Md5::new();
            h.update(&x);
            h.update(password.as_bytes());
            x = h.finalize().to_vec();
        }
        out.copy_from_slice(&x);
    }
    let dec =
        cbc::Decryptor::<TdesEde3>::new_from_slices(&derived[..24], &derived[24..]).map_err(|_| "bad DES-EDE3 key length".to_string())?;
    dec.decrypt_padded_vec::<Pkcs7>(data)
        .map_err(|_| "cannot decrypt it: its password is not the store password, or it is damaged".to_string())
}

/// One DER TLV at the front of `b`: (tag, contents, rest). Definite lengths of up to four
/// bytes only (all a key store needs).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&first, mut b) = b.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || b.len() < n {
            return None;
        }
        let len = b[..n].iter().fold(0usize, |acc, &d| (acc << 8) | d as usize);
        b = &b[n..];
        len
    };
    (b.len() >= len).then(|| (tag, &b[..len], &b[len..]))
}

/// `EncryptedPrivateKeyInfo ::= SEQUENCE { SEQUENCE { OID, params ANY OPTIONAL },
/// OCTET STRING }` → (OID contents, params TLV or empty, encrypted data).
fn encrypted_key_info(der: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (0x30, seq, _) = tlv(der)? else { return None };
    let (0x30, alg, rest) = tlv(seq)? else { return None };
    let (0x04, data, _) = tlv(rest)? else { return None };
    let (0x06, oid, params) = tlv(alg)? else { return None };
    Some((oid, params, data))
}

/// `PBEParameter ::= SEQUENCE { salt OCTET STRING (8), iterationCount INTEGER }`.
fn pbe_params(params: &[u8]) -> Option<([u8; 8], u32)> {
    let (0x30, seq, _) = tlv(params)? else { return None };
    let (0x04, salt, rest) = tlv(seq)? else { return None };
    let (0x02, int, _) = tlv(rest)? else { return None };
    let salt: [u8; 8] = salt.try_into().ok()?;
    // A positive INTEGER of at most 4 value bytes (a leading zero byte allowed).
    let int = match int {
        [0, rest @ ..] => rest,
        _ if int.first().is_some_and(|b| b & 0x80 != 0) => return None,
        _ => int,
    };
    if int.is_empty() || int.len() > 4 {
        return None;
    }
    Some((salt, int.iter().fold(0u32, |acc, &d| (acc << 8) | d as u32)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store built the way Java writes one, with `entries` already encoded.
    fn store(magic: u32, version: u32, entries: &[Vec<u8>], password: &str) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(magic.to_be_bytes());
        b.extend(version.to_be_bytes());
        b.extend((entries.len() as u32).to_be_bytes());
        for e in entries {
            b.extend(e);
        }
        let digest = sha1_of(&[&utf16be(password), DIGEST_WHITENER, &b]);
        b.extend(digest);
        b
    }

    fn utf(s: &str) -> Vec<u8> {
        let mut b = (s.len() as u16).to_be_bytes().to_vec();
        b.extend(s.as_bytes());
        b
    }

    fn cert(der: &[u8]) -> Vec<u8> {
        let mut b = utf("X.509");
        b.extend((der.len() as u32).to_be_bytes());
        b.extend(der);
        b
    }

    fn trusted(alias: &str, der: &[u8]) -> Vec<u8> {
        let mut b = 2u32.to_be_bytes().to_vec();
        b.extend(utf(alias));
        b.extend(0u64.to_be_bytes());
        b.extend(cert(der));
        b
    }

    /// Sun's JKS protector, forwards (the test's own writer, to check the reader against).
    fn jks_protect(key: &[u8], password: &str, salt: [u8; 20]) -> Vec<u8> {
        let pw = utf16be(password);
        let mut out = salt.to_vec();
        let mut stream = salt;
        for chunk in key.chunks(SHA1_LEN) {
            stream = sha1_of(&[&pw, &stream]);
            out.extend(chunk.iter().zip(&stream).map(|(c, s)| c ^ s));
        }
        out.extend(sha1_of(&[&pw, key]));
        // EncryptedPrivateKeyInfo { { OID, NULL }, OCTET STRING }, two-byte long-form lengths.
        let mut alg = vec![0x06, JKS_PROTECTOR_OID.len() as u8];
        alg.extend(JKS_PROTECTOR_OID);
        alg.extend([0x05, 0x00]);
        let mut seq = vec![0x30, alg.len() as u8];
        seq.extend(alg);
        seq.extend([0x04, 0x82]);
        seq.extend((out.len() as u16).to_be_bytes());
        seq.extend(out);
        let mut der = vec![0x30, 0x82];
        der.extend((seq.len() as u16).to_be_bytes());
        der.extend(seq);
        der
    }

    fn key_entry(alias: &str, protected: &[u8], chain: &[&[u8]]) -> Vec<u8> {
        let mut b = 1u32.to_be_bytes().to_vec();
        b.extend(utf(alias));
        b.extend(0u64.to_be_bytes());
        b.extend((protected.len() as u32).to_be_bytes());
        b.extend(protected);
        b.extend((chain.len() as u32).to_be_bytes());
        for c in chain {
            b.extend(cert(c));
        }
        b
    }

    #[test]
    fn a_trust_store_is_read_and_its_digest_checked() {
        let s = store(JKS_MAGIC, 2, &[trusted("ca", b"CA-DER"), trusted("ca2", b"CA2")], "changeit");
        let certs = trust_store(&s, "changeit").expect("read");
        assert_eq!(certs.iter().map(|c| c.as_ref().to_vec()).collect::<Vec<_>>(), vec![b"CA-DER".to_vec(), b"CA2".to_vec()]);
        assert_eq!(trust_store(&s, "wrong"), Err(OpenError::WrongPassword));
        assert_eq!(trust_store(&s, ""), Err(OpenError::WrongPassword));
        // Any byte changed under the digest is caught by it.
        let mut bad = s.clone();
        let i = bad.len() - SHA1_LEN - 2;
        bad[i] ^= 1;
        assert_eq!(trust_store(&bad, "changeit"), Err(OpenError::WrongPassword));
    }

    #[test]
    fn a_jks_key_entry_is_unprotected_with_the_password() {
        let key: Vec<u8> = (0..=200u8).collect(); // not a multiple of 20: a partial last round
        let protected = jks_protect(&key, "s3cret", [7; 20]);
        let s = store(JKS_MAGIC, 2, &[trusted("ca", b"CA"), key_entry("server", &protected, &[b"LEAF", b"CA"])], "s3cret");
        let (certs, got) = key_store(&s, "s3cret").expect("key");
        assert_eq!(got.secret_der(), &key[..]);
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[0].as_ref(), b"LEAF");
        // A trust store takes the key entry's leaf too, as Java's trust manager does.
        assert_eq!(trust_store(&s, "s3cret").expect("trust").len(), 2);
        // The key under another password than the store's: the check catches it.
        let other = jks_protect(&key, "other", [7; 20]);
        let s = store(JKS_MAGIC, 2, &[key_entry("server", &other, &[b"LEAF"])], "s3cret");
        let e = key_store(&s, "s3cret").unwrap_err();
        assert!(matches!(&e, OpenError::Unreadable(w) if w.contains("cannot recover")), "{e:?}");
    }

    #[test]
    fn a_trust_store_is_not_a_key_store() {
        let s = store(JKS_MAGIC, 2, &[trusted("ca", b"CA")], "pw");
        assert!(matches!(key_store(&s, "pw"), Err(OpenError::Unreadable(w)) if w.contains("no private key entry")));
    }

    #[test]
    fn damaged_stores_are_errors_never_panics() {
        let key: Vec<u8> = (0..100u8).collect();
        let good = store(JKS_MAGIC, 2, &[key_entry("k", &jks_protect(&key, "pw", [1; 20]), &[b"LEAF"]), trusted("ca", b"CA")], "pw");
        // Every truncation.
        for n in 0..good.len() {
            assert!(key_store(&good[..n], "pw").is_err(), "truncated to {n}");
            assert!(trust_store(&good[..n], "pw").is_err(), "truncated to {n}");
        }
        // Every single-byte change: an error or (in the digest-covered bytes, never) a
        // different store; it must not panic or allocate what the lengths claim.
        for i in 0..good.len() {
            for x in [0x01, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] ^= x;
                let _ = key_store(&bad, "pw");
                let _ = trust_store(&bad, "pw");
            }
        }
        // Bad magic, bad version, huge counts and lengths.
        let mut bad = good.clone();
        bad[0] = 0;
        assert!(matches!(trust_store(&bad, "pw"), Err(OpenError::Unreadable(w)) if w.contains("magic")));
        let mut bad = good.clone();
        bad[7] = 3;
        assert!(matches!(trust_store(&bad, "pw"), Err(OpenError::Unreadable(w)) if w.contains("version 3")));
        let mut bad = good.clone();
        bad[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(trust_store(&bad, "pw"), Err(OpenError::Unreadable(_))));
        let v1 = store(JCEKS_MAGIC, 1, &[], "pw");
        assert!(matches!(trust_store(&v1, "pw"), Err(OpenError::Unreadable(w)) if w.contains("JCEKS store version 1")));
        let mut huge = store(JKS_MAGIC, 2, &[], "pw")[..12].to_vec();
        huge[11] = 1;
        huge.extend(1u32.to_be_bytes());
        huge.extend(utf("k"));
        huge.extend(0u64.to_be_bytes());
        huge.extend(u32::MAX.to_be_bytes());
        assert!(matches!(key_store(&huge, "pw"), Err(OpenError::Unreadable(w)) if w.contains("truncated")));
    }

    #[test]
    fn jceks_secret_key_entries_and_unknown_tags_are_refused() {
        let mut e = 3u32.to_be_bytes().to_vec();
        e.extend(utf("aes"));
        e.extend(0u64.to_be_bytes());
        e.extend([0xac, 0xed, 0, 5]);
        let s = store(JCEKS_MAGIC, 2, &[e.clone()], "pw");
        assert!(matches!(trust_store(&s, "pw"), Err(OpenError::Unreadable(w)) if w.contains("secret key")));
        let s = store(JKS_MAGIC, 2, &[e], "pw");
        assert!(matches!(trust_store(&s, "pw"), Err(OpenError::Unreadable(w)) if w.contains("unknown tag 3")));
    }

    #[test]
    fn der_helpers_refuse_bad_lengths() {
        assert_eq!(tlv(&[]), None);
        assert_eq!(tlv(&[0x30]), None);
        assert_eq!(tlv(&[0x30, 0x05, 1]), None);
        assert_eq!(tlv(&[0x30, 0x80]), None, "indefinite length");
        assert_eq!(tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]), None, "five length bytes");
        assert_eq!(tlv(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(tlv(&[0x04, 0x01, 9, 8]), Some((0x04, &[9][..], &[8][..])));
        assert_eq!(pbe_params(&[0x30, 0x0d, 0x04, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x02, 0x01, 0x14]), Some(([1, 2, 3, 4, 5, 6, 7, 8], 20)));
        assert_eq!(pbe_params(&[0x30, 0x0d, 0x04, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x02, 0x01, 0x94]), None, "negative");
        assert_eq!(pbe_params(&[0x30, 0x0c, 0x04, 0x07, 1, 2, 3, 4, 5, 6, 7, 0x02, 0x01, 0x14]), None, "7-byte salt");
        assert!(recover_key(&[0x30, 0x00], "pw").is_err());
    }

    #[test]
    fn jceks_key_derivation_refuses_bad_iterations_and_passwords() {
        assert!(jceks_unprotect(&[0; 16], "pw", [0; 8], 0).unwrap_err().contains("iterations"));
        assert!(jceks_unprotect(&[0; 16], "pw", [0; 8], MAX_PBE_ITERATIONS + 1).unwrap_err().contains("iterations"));
        assert!(jceks_unprotect(&[0; 16], "pässword", [0; 8], 1).unwrap_err().contains("ASCII"));
        // Not a whole number of blocks: an error, not a panic.
        assert!(jceks_unprotect(&[0; 13], "pw", [0; 8], 1).is_err());
    }
}
