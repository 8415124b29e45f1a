//! PKCS#12 key and trust stores (`ssl.keyStore.type=PKCS12`, and `JKS` for a file that is
//! really PKCS#12), read with the `p12-keystore` crate: pure Rust, modern (PBES2/AES,
//! HMAC-SHA256, what OpenSSL 3 and keytool write) and legacy (3DES, RC2/RC4 with SHA-1)
//! schemes, and the MAC is checked with the password before anything is decrypted, so a
//! wrong password is told apart from a damaged file.
//!
//! Java's own JKS/JCEKS formats (magic `FEEDFEED` / `CECECECE`) are read by `jks`. Java
//! writes PKCS#12 by default since Java 9, also for a `.jks` name, and its JKS type reads
//! such a file (`keystore.type.compat`): the loader picks the reader by the file's first
//! bytes (`sniff`), whatever the type key says.
//!
//! Every function returns a reason (for `TlsSetupError::Store`) instead of panicking: the
//! bytes come from a file an operator pointed at.

use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::OpenError;

/// What the first bytes of a store say it is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// A DER SEQUENCE: PKCS#12 (the only DER store format there is).
    Pkcs12,
    /// Java's JKS or JCEKS.
    Java,
    Other,
}

pub fn sniff(bytes: &[u8]) -> Format {
    match bytes {
        [0xfe, 0xed, 0xfe, 0xed, ..] | [0xce, 0xce, 0xce, 0xce, ..] => Format::Java,
        [0x30, ..] => Format::Pkcs12,
        _ => Format::Other,
    }
}

fn open(bytes: &[u8], password: &str, policy: Pkcs12ImportPolicy) -> Result<KeyStore, OpenError> {
    match sniff(bytes) {
        Format::Java => return Err(OpenError::Unreadable("a JKS/JCEKS store, not PKCS#12".into())),
        Format::Other => return Err(OpenError::Unreadable("not a PKCS#12 file (it does not start with a DER SEQUENCE)".into())),
        Format::Pkcs12 => {}
    }
    // The crate parses untrusted DER with its own checks; catch_unwind is a second line of
    // defence so that no input can take the server down with a panic at start.
    let opened = std::panic::catch_unwind(|| KeyStore::from_pkcs12(bytes, password, policy))
        .map_err(|_| OpenError::Unreadable("the PKCS#12 reader failed on this file".into()))?;
    opened.map_err(|e| match e {
        p12_keystore::error::Error::MacError(_) => OpenError::WrongPassword,
        other => OpenError::Unreadable(format!("not a readable PKCS#12 file: {other}")),
    })
}

/// The private key and its certificate chain (leaf first) of a PKCS#12 key store: the first
/// key entry, as Java's key manager picks when the store has one.
pub fn key_store(bytes: &[u8], password: &str) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), OpenError> {
    let store = open(bytes, password, Pkcs12ImportPolicy::Strict)?;
    let Some((_, chain)) = store.private_key_chain() else {
        return Err(OpenError::Unreadable(
            "no private key with its certificate in it (a trust store?): the key store needs the key and the certificate chain".into(),
        ));
    };
    let certs: Vec<CertificateDer<'static>> = chain.certs().iter().map(|c| CertificateDer::from(c.as_der().to_vec())).collect();
    if certs.is_empty() {
        return Err(OpenError::Unreadable("the private key has no certificate".into()));
    }
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()));
    Ok((certs, key))
}

/// Every certificate of a PKCS#12 trust store. Raw import: keytool marks trusted
/// certificates with Java's trust attribute, `openssl pkcs12 -export -nokeys` does not, and
/// both are meant as CA lists here.
pub fn trust_store(bytes: &[u8], password: &str) -> Result<Vec<CertificateDer<'static>>, OpenError> {
    let store = open(bytes, password, Pkcs12ImportPolicy::Raw)?;
    let certs: Vec<CertificateDer<'static>> = store
        .entries()
        .filter_map(|(_, e)| match e {
            KeyStoreEntry::Certificate(c) => Some(CertificateDer::from(c.as_der().to_vec())),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(OpenError::Unreadable("no certificate in it".into()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_their_first_bytes() {
        assert_eq!(sniff(&[0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]), Format::Java);
        assert_eq!(sniff(&[0xce, 0xce, 0xce, 0xce]), Format::Java);
        assert_eq!(sniff(&[0x30, 0x82, 1, 2]), Format::Pkcs12);
        assert_eq!(sniff(b"-----BEGIN CERTIFICATE-----"), Format::Other);
        assert_eq!(sniff(&[]), Format::Other);
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        assert!(matches!(key_store(&[0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2], "x"), Err(OpenError::Unreadable(_))));
        for bad in [&[][..], &[0x30], &[0x30, 0x03, 2, 1, 3], &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff], b"hello"] {
            assert!(matches!(key_store(bad, "pw"), Err(OpenError::Unreadable(_))), "{bad:?}");
            assert!(matches!(trust_store(bad, "pw"), Err(OpenError::Unreadable(_))), "{bad:?}");
        }
    }
}
