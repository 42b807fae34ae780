//! Which public key a verification is anchored to, and the data directory's copy of it.
//!
//! The server keeps a copy of the audit public key in `<data dir>/audit-public-key.pem` for
//! convenience, but whoever can rewrite the trail can replace that copy as well: a forger who
//! rewrote the chain and re-signed the digests with a key of their own also writes their public
//! key there. So a verification proves something only against a key the verifier brings, either
//! the key itself or its fingerprint (printed at first start and by `sealbox audit export-key`).
//! The server never overwrites a copy that differs from its sealed signing key: that would erase
//! the evidence of the replacement.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::signer::AuditPublicKey;

/// The public key's copy in the data directory.
pub const PUBLIC_KEY_FILE: &str = "audit-public-key.pem";

pub fn public_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(PUBLIC_KEY_FILE)
}

/// What the verifier trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustAnchor {
    /// A public key kept away from the server (`--public-key FILE`).
    PublicKey(AuditPublicKey),
    /// The key's fingerprint (`--fingerprint HEX`); the key itself is read from the data directory
    /// and must match it.
    Fingerprint(String),
    /// Only the data directory's own copy: proves nothing against whoever can write that directory.
    DataDirCopy,
}

/// The key to verify with, and whether it is anchored outside the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedKey {
    pub key: AuditPublicKey,
    pub anchored: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    #[error("could not read the audit public key {path}: {source}")]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("{path} is not an Ed25519 public key: {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("{0:?} is not a key fingerprint (64 hex digits, as `sealbox audit export-key` prints it)")]
    BadFingerprint(String),
    #[error(
        "the public key in {path} has fingerprint {found}, not the {expected} you gave: the key file was replaced \
         (as a forger who re-signed the trail with a key of their own would do)"
    )]
    FingerprintMismatch { path: PathBuf, expected: String, found: String },
    #[error(
        "{path} holds the public key {on_disk}, but the sealed audit signing key's public key is {sealed}: the file was \
         replaced (as a forger who re-signed the trail with a key of their own would do). sealbox does not overwrite \
         it, because that would hide the replacement. Check the trail with your own copy of the key \
         (`sealbox audit verify --data DIR --fingerprint {sealed}`), keep the file for investigation, then remove it \
         so the next start writes the right one"
    )]
    PublicKeyReplaced { path: PathBuf, on_disk: String, sealed: String },
    #[error("could not write the audit public key {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// A fingerprint as people paste it: hex in either case, `:` or spaces allowed between bytes.
pub fn normalize_fingerprint(text: &str) -> Result<String, AnchorError> {
    let hex: String = text.chars().filter(|c| !matches!(c, ':' | ' ' | '\t' | '\n' | '\r')).collect();
    let hex = hex.to_ascii_lowercase();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AnchorError::BadFingerprint(text.to_owned()));
    }
    Ok(hex)
}

fn read_pem(path: &Path) -> Result<AuditPublicKey, AnchorError> {
    let pem = fs::read_to_string(path).map_err(|source| AnchorError::Unreadable { path: path.to_owned(), source })?;
    AuditPublicKey::from_pem(&pem).map_err(|e| AnchorError::BadKey { path: path.to_owned(), reason: e.to_string() })
}

/// Reads a PEM public key the verifier brings.
pub fn read_public_key(path: &Path) -> Result<AuditPublicKey, AnchorError> {
    read_pem(path)
}

/// The key to check `data_dir`'s trail with, given what the verifier trusts.
pub fn resolve_anchor(data_dir: &Path, anchor: &TrustAnchor) -> Result<ResolvedKey, AnchorError> {
    match anchor {
        TrustAnchor::PublicKey(key) => Ok(ResolvedKey { key: *key, anchored: true }),
        TrustAnchor::Fingerprint(given) => {
            let expected = normalize_fingerprint(given)?;
            let path = public_key_path(data_dir);
            let key = read_pem(&path)?;
            let found = key.fingerprint();
            if found != expected {
                return Err(AnchorError::FingerprintMismatch { path, expected, found });
            }
            Ok(ResolvedKey { key, anchored: true })
        }
        TrustAnchor::DataDirCopy => Ok(ResolvedKey { key: read_pem(&public_key_path(data_dir))?, anchored: false }),
    }
}

/// At server start: writes the data directory's copy of `sealed` (the public half of the sealed
/// signing key) when there is none; refuses when the copy there is a different key, or unreadable,
/// instead of overwriting the evidence. Returns true when it wrote the file.
pub fn install_public_key(data_dir: &Path, sealed: &AuditPublicKey) -> Result<bool, AnchorError> {
    let path = public_key_path(data_dir);
    match fs::read_to_string(&path) {
        Ok(pem) => match AuditPublicKey::from_pem(&pem) {
            Ok(on_disk) if on_disk == *sealed => Ok(false),
            Ok(on_disk) => Err(AnchorError::PublicKeyReplaced {
                path,
                on_disk: on_disk.fingerprint(),
                sealed: sealed.fingerprint(),
            }),
            Err(e) => Err(AnchorError::PublicKeyReplaced {
                path,
                on_disk: format!("(unreadable: {e})"),
                sealed: sealed.fingerprint(),
            }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write_atomically(&path, sealed.to_pem().as_bytes())
                .map_err(|source| AnchorError::Write { path, source })?;
            Ok(true)
        }
        Err(source) => Err(AnchorError::Unreadable { path, source }),
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("pem.tmp");
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    crate::fsutil::sync_parent(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::AuditSigner;

    #[test]
    fn fingerprints_are_normalised_and_checked() {
        let fp = "AB".repeat(32);
        assert_eq!(normalize_fingerprint(&fp).unwrap(), "ab".repeat(32));
        let colons = vec!["ab"; 32].join(":");
        assert_eq!(normalize_fingerprint(&colons).unwrap(), "ab".repeat(32));
        assert!(normalize_fingerprint("abc").is_err());
        assert!(normalize_fingerprint(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn install_writes_once_and_refuses_a_replaced_key() {
        let dir = tempfile::tempdir().unwrap();
        let real = AuditSigner::generate().unwrap().public_key();
        assert!(install_public_key(dir.path(), &real).unwrap());
        assert!(!install_public_key(dir.path(), &real).unwrap(), "same key: left alone");
        let forged = AuditSigner::generate().unwrap().public_key();
        fs::write(public_key_path(dir.path()), forged.to_pem()).unwrap();
        let err = install_public_key(dir.path(), &real).unwrap_err();
        assert!(matches!(err, AnchorError::PublicKeyReplaced { .. }), "{err}");
        assert!(err.to_string().contains(&real.fingerprint()));
        assert_eq!(fs::read_to_string(public_key_path(dir.path())).unwrap(), forged.to_pem(), "evidence kept");
        fs::write(public_key_path(dir.path()), "garbage").unwrap();
        assert!(install_public_key(dir.path(), &real).is_err());
    }

    #[test]
    fn anchors_resolve_to_the_right_key() {
        let dir = tempfile::tempdir().unwrap();
        let real = AuditSigner::generate().unwrap().public_key();
        install_public_key(dir.path(), &real).unwrap();
        let by_fp = resolve_anchor(dir.path(), &TrustAnchor::Fingerprint(real.fingerprint().to_uppercase())).unwrap();
        assert_eq!(by_fp, ResolvedKey { key: real, anchored: true });
        let copy = resolve_anchor(dir.path(), &TrustAnchor::DataDirCopy).unwrap();
        assert_eq!(copy, ResolvedKey { key: real, anchored: false });
        let other = AuditSigner::generate().unwrap().public_key();
        let err = resolve_anchor(dir.path(), &TrustAnchor::Fingerprint(other.fingerprint())).unwrap_err();
        assert!(matches!(err, AnchorError::FingerprintMismatch { .. }));
        let given = resolve_anchor(dir.path(), &TrustAnchor::PublicKey(other)).unwrap();
        assert_eq!(given, ResolvedKey { key: other, anchored: true }, "a key the verifier brings wins over the copy");
    }
}
