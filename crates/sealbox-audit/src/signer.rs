//! The audit signing key: Ed25519, stored as PKCS#8 where the server says (outside the audit
//! directory, so an attacker who can rewrite the logs cannot re-sign them), and its public half for
//! `sealbox audit export-key` and `verify`.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use zeroize::Zeroizing;

use crate::AuditError;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE { SEQUENCE { OID 1.3.101.112 },
/// BIT STRING (32 bytes) }.
const SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// The private signing key. Never printed; the PKCS#8 bytes stay in zeroizing memory.
pub struct AuditSigner {
    key_pair: Ed25519KeyPair,
    pkcs8: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for AuditSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditSigner").field("fingerprint", &self.fingerprint()).finish_non_exhaustive()
    }
}

impl AuditSigner {
    pub fn generate() -> Result<Self, AuditError> {
        // PKCS#8 v1: the form `openssl genpkey -algorithm ED25519` writes and OpenSSL 3.0 reads
        // (it rejects the v2 form with the public key embedded).
        let doc = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new()).map_err(|_| AuditError::KeyGeneration)?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// Parses a PKCS#8 (v1 or v2) Ed25519 private key.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, AuditError> {
        let key_pair = Ed25519KeyPair::from_pkcs8(der).map_err(|e| AuditError::BadSigningKey(e.to_string()))?;
        Ok(AuditSigner { key_pair, pkcs8: Zeroizing::new(der.to_vec()) })
    }

    /// Loads the key at `path`, or on first start generates one and writes it there (mode 0600,
    /// written to a temporary file and renamed so a crash never leaves half a key).
    pub fn load_or_generate(path: &Path) -> Result<Self, AuditError> {
        match fs::read(path) {
            Ok(der) => Self::from_pkcs8(&Zeroizing::new(der)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let signer = Self::generate()?;
                write_private_file(path, signer.pkcs8_der()).map_err(|e| AuditError::io(path, e))?;
                Ok(signer)
            }
            Err(e) => Err(AuditError::io(path, e)),
        }
    }

    /// The PKCS#8 encoding, for a caller that wants to store the key wrapped elsewhere.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    pub fn public_key(&self) -> AuditPublicKey {
        let mut raw = [0u8; 32];
        raw.copy_from_slice(self.key_pair.public_key().as_ref());
        AuditPublicKey(raw)
    }

    pub fn public_key_pem(&self) -> String {
        self.public_key().to_pem()
    }

    pub fn fingerprint(&self) -> String {
        self.public_key().fingerprint()
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key_pair.sign(message).as_ref().to_vec()
    }
}

fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    crate::fsutil::sync_parent(path)
}

/// The public half: what verifiers hold.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AuditPublicKey([u8; 32]);

impl fmt::Debug for AuditPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditPublicKey({})", self.fingerprint())
    }
}

impl AuditPublicKey {
    pub fn from_raw(raw: [u8; 32]) -> Self {
        AuditPublicKey(raw)
    }

    pub fn raw(&self) -> &[u8; 32] {
        &self.0
    }

    /// The SubjectPublicKeyInfo DER (what `openssl pkey -pubin` reads).
    pub fn to_spki_der(&self) -> Vec<u8> {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.0);
        der
    }

    pub fn from_spki_der(der: &[u8]) -> Result<Self, AuditError> {
        let raw = der
            .strip_prefix(&SPKI_PREFIX[..])
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or_else(|| AuditError::BadPublicKey("not an Ed25519 SubjectPublicKeyInfo".into()))?;
        Ok(AuditPublicKey(raw))
    }

    /// `-----BEGIN PUBLIC KEY-----` PEM, as `openssl pkey -pubout` writes it.
    pub fn to_pem(&self) -> String {
        format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", B64.encode(self.to_spki_der()))
    }

    pub fn from_pem(pem: &str) -> Result<Self, AuditError> {
        let body: String = pem
            .lines()
            .map(str::trim)
            .skip_while(|l| *l != "-----BEGIN PUBLIC KEY-----")
            .skip(1)
            .take_while(|l| *l != "-----END PUBLIC KEY-----")
            .collect();
        let der = B64.decode(body.as_bytes()).map_err(|e| AuditError::BadPublicKey(e.to_string()))?;
        Self::from_spki_der(&der)
    }

    /// Hex SHA-256 of the SubjectPublicKeyInfo DER; digests name the key that signed them by it.
    pub fn fingerprint(&self) -> String {
        hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.to_spki_der()))
    }

    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0).verify(message, signature).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keys_openssl_generates_and_exports_the_same_public_key() {
        // `openssl genpkey -algorithm ED25519 -outform DER`, and its `openssl pkey -pubout`.
        let der = hex::decode(
            "302e020100300506032b657004220420956d83a63194eaefbdc1baab94173a0bcb5786ff8c7d32ea66d9eee3dc4c0394",
        )
        .unwrap();
        let pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAxY/aalDpgZMnPNi2DMpWFJ0sa/exjDgWEc7ex24lim0=\n-----END PUBLIC KEY-----\n";
        let signer = AuditSigner::from_pkcs8(&der).unwrap();
        assert_eq!(signer.public_key_pem(), pem);
        assert!(AuditSigner::from_pkcs8(&der[..der.len() - 1]).is_err());
        assert!(AuditPublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----").is_err());
    }

    #[test]
    fn key_persists_and_public_key_round_trips_through_pem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/audit-signing.pk8");
        let a = AuditSigner::load_or_generate(&path).unwrap();
        let b = AuditSigner::load_or_generate(&path).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let pem = a.public_key_pem();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"));
        assert_eq!(AuditPublicKey::from_pem(&pem).unwrap(), a.public_key());
        let sig = a.sign(b"hello");
        assert!(a.public_key().verify(b"hello", &sig));
        assert!(!a.public_key().verify(b"hellO", &sig));
        assert!(!format!("{a:?}").contains(&hex::encode(a.pkcs8_der())));
    }
}
