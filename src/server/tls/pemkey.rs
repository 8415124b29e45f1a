//! Encrypted PEM private keys, as ZooKeeper's `PemReader` reads them: one
//! `-----BEGIN ENCRYPTED PRIVATE KEY-----` block, a PKCS#8 `EncryptedPrivateKeyInfo`
//! (RFC 5208), decrypted with `ssl.keyStore.password`. What `openssl pkcs8 -topk8 -v2
//! aes-256-cbc` (and `openssl genpkey -aes256`) writes is PBES2 with PBKDF2 and AES-CBC; the
//! RustCrypto `pkcs8` crate decrypts it (also with the older HMAC-SHA1 PRF and 3DES).
//!
//! OpenSSL's legacy encryption (`Proc-Type: 4,ENCRYPTED` headers inside a `BEGIN RSA/EC
//! PRIVATE KEY` block) is not PKCS#8; ZooKeeper refuses it too, and so does arbor, naming the
//! command that converts it.

use base64::Engine;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use super::OpenError;

const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";

/// How a PEM file's private key is kept.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum KeyForm {
    Plain,
    /// PKCS#8 encrypted: `decrypt` opens it.
    Pkcs8Encrypted,
    /// OpenSSL's legacy `Proc-Type: 4,ENCRYPTED` PEM encryption.
    LegacyEncrypted,
}

pub fn key_form(pem: &str) -> KeyForm {
    if pem.contains(BEGIN) {
        KeyForm::Pkcs8Encrypted
    } else if pem.contains("Proc-Type: 4,ENCRYPTED") {
        KeyForm::LegacyEncrypted
    } else {
        KeyForm::Plain
    }
}

/// The PKCS#8 key inside the first `ENCRYPTED PRIVATE KEY` block of `pem`.
/// `WrongPassword`: it did not decrypt to a key (a wrong password, or a damaged block: PBES2
/// has no MAC, so the two look alike).
pub fn decrypt(pem: &str, password: &str) -> Result<PrivateKeyDer<'static>, OpenError> {
    let der =
        block(pem).ok_or_else(|| OpenError::Unreadable("a damaged ENCRYPTED PRIVATE KEY block (bad base64 or no END line)".into()))?;
    let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_slice())
        .map_err(|e| OpenError::Unreadable(format!("the ENCRYPTED PRIVATE KEY block is not PKCS#8: {e}")))?;
    let doc = info.decrypt(password.as_bytes()).map_err(|e| match e {
        // Padding or DER that does not check out after decryption.
        pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::DecryptFailed) | pkcs8::Error::Asn1(_) => OpenError::WrongPassword,
        other => OpenError::Unreadable(format!("cannot decrypt the ENCRYPTED PRIVATE KEY block: {other}")),
    })?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(doc.as_bytes().to_vec())))
}

/// The DER between the BEGIN and END lines (header lines, if any, are not part of PKCS#8
/// PEM, so any line with a colon is refused by base64).
fn block(pem: &str) -> Option<Vec<u8>> {
    let start = pem.find(BEGIN)? + BEGIN.len();
    let len = pem[start..].find(END)?;
    let b64: String = pem[start..start + len].chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_forms_are_told_apart() {
        assert_eq!(key_form("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), KeyForm::Plain);
        assert_eq!(key_form(&format!("{BEGIN}\nAAAA\n{END}\n")), KeyForm::Pkcs8Encrypted);
        assert_eq!(
            key_form("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"),
            KeyForm::LegacyEncrypted
        );
    }

    #[test]
    fn damaged_blocks_are_errors_never_panics() {
        for bad in [
            format!("{BEGIN}\nnot base64!\n{END}\n"),
            format!("{BEGIN}\nMAA=\n"),
            format!("{BEGIN}\n\n{END}\n"),
            format!("{BEGIN}\nMAMCAQA=\n{END}\n"),
            format!("{END}\n{BEGIN}\n"),
        ] {
            assert!(matches!(decrypt(&bad, "pw"), Err(OpenError::Unreadable(_))), "{bad}");
        }
    }
}
