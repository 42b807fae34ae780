//! The root key: the one secret that wraps every KMS key's material. Kept apart from the data:
//! a 0600 file (default), or derived from a passphrase with Argon2id.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::KmsError;

/// AES-256-GCM under the root key. Every wrap uses a fresh random 96-bit nonce; the number of
/// wraps per root key (one per key-material version) is far below the random-nonce bound.
pub struct RootKey {
    key: Backend,
}

enum Backend {
    /// Key bytes in this process (file or passphrase providers).
    Local(LessSafeKey),
    /// A non-extractable AES key inside a PKCS#11 token: wrapping happens in the HSM.
    #[cfg(feature = "pkcs11")]
    Hsm(crate::hsm::HsmKey),
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootKey(<redacted>)")
    }
}

pub(crate) fn random<const N: usize>() -> Result<[u8; N], KmsError> {
    let mut b = [0u8; N];
    SystemRandom::new().fill(&mut b).map_err(|_| KmsError::Internal("system randomness failed".into()))?;
    Ok(b)
}

impl RootKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KmsError> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| KmsError::RootKey("bad key".into()))?;
        Ok(RootKey { key: Backend::Local(LessSafeKey::new(unbound)) })
    }

    #[cfg(feature = "pkcs11")]
    /// The root key inside a PKCS#11 token (e.g. SoftHSM2, a YubiHSM, a cloud HSM's PKCS#11
    /// library): found by label, or generated there (non-extractable) on first use.
    pub fn from_pkcs11(module: &Path, token_label: &str, pin: &str, key_label: &str) -> Result<Self, KmsError> {
        Ok(RootKey { key: Backend::Hsm(crate::hsm::HsmKey::open(module, token_label, pin, key_label)?) })
    }

    /// Loads the root key file, creating it (mode 0600, 32 random bytes) on first use. Refuses a
    /// file that group or others can read.
    pub fn load_or_create_file(path: &Path) -> Result<Self, KmsError> {
        if path.exists() {
            let meta = std::fs::metadata(path).map_err(|e| KmsError::RootKey(format!("{}: {e}", path.display())))?;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(KmsError::RootKey(format!(
                    "{} is readable by group or others (mode {:o}); run: chmod 600 {}",
                    path.display(),
                    meta.permissions().mode() & 0o777,
                    path.display()
                )));
            }
            let bytes =
                Zeroizing::new(std::fs::read(path).map_err(|e| KmsError::RootKey(format!("{}: {e}", path.display())))?);
            let arr: [u8; 32] = bytes[..]
                .try_into()
                .map_err(|_| KmsError::RootKey(format!("{} must hold exactly 32 bytes", path.display())))?;
            let arr = Zeroizing::new(arr);
            return Self::from_bytes(&arr);
        }
        let key = Zeroizing::new(random::<32>()?);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| KmsError::RootKey(format!("creating {}: {e}", path.display())))?;
        f.write_all(&key[..])
            .and_then(|_| f.sync_all())
            .map_err(|e| KmsError::RootKey(format!("writing {}: {e}", path.display())))?;
        Self::from_bytes(&key)
    }

    /// Argon2id(passphrase, salt) with OWASP's recommended cost (19 MiB, 2 passes).
    pub fn from_passphrase(passphrase: &[u8], salt: &[u8]) -> Result<Self, KmsError> {
        let params = argon2::Params::new(19 * 1024, 2, 1, Some(32)).map_err(|e| KmsError::RootKey(e.to_string()))?;
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; 32]);
        argon.hash_password_into(passphrase, salt, &mut out[..]).map_err(|e| KmsError::RootKey(e.to_string()))?;
        Self::from_bytes(&out)
    }

    /// nonce || ciphertext+tag, with `aad` bound.
    // Without the pkcs11 feature the match below has one arm.
    #[cfg_attr(not(feature = "pkcs11"), allow(clippy::infallible_destructuring_match))]
    pub fn wrap(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, KmsError> {
        let nonce = random::<12>()?;
        let key = match &self.key {
            Backend::Local(k) => k,
            #[cfg(feature = "pkcs11")]
            Backend::Hsm(h) => return h.wrap(nonce, plaintext, aad),
        };
        let mut buf = plaintext.to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
            .map_err(|_| KmsError::Internal("wrap failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    // Without the pkcs11 feature the match below has one arm.
    #[cfg_attr(not(feature = "pkcs11"), allow(clippy::infallible_destructuring_match))]
    pub fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        if wrapped.len() < 12 + 16 {
            return Err(KmsError::WrongRootKey);
        }
        let key = match &self.key {
            Backend::Local(k) => k,
            #[cfg(feature = "pkcs11")]
            Backend::Hsm(h) => return h.unwrap(wrapped, aad),
        };
        let nonce = Nonce::try_assume_unique_for_key(&wrapped[..12]).map_err(|_| KmsError::WrongRootKey)?;
        let mut buf = Zeroizing::new(wrapped[12..].to_vec());
        let len = key.open_in_place(nonce, Aad::from(aad), &mut buf).map_err(|_| KmsError::WrongRootKey)?.len();
        buf.truncate(len);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_is_created_0600_and_refused_when_readable_by_others() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("root.key");
        let k = RootKey::load_or_create_file(&p).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let w = k.wrap(b"material", b"aad").unwrap();
        let again = RootKey::load_or_create_file(&p).unwrap();
        assert_eq!(&again.unwrap(&w, b"aad").unwrap()[..], b"material");
        assert!(matches!(again.unwrap(&w, b"other aad"), Err(KmsError::WrongRootKey)));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(RootKey::load_or_create_file(&p), Err(KmsError::RootKey(_))));
    }

    #[test]
    fn passphrase_keys_differ_by_passphrase() {
        let a = RootKey::from_passphrase(b"correct horse", b"0123456789abcdef").unwrap();
        let b = RootKey::from_passphrase(b"wrong horse", b"0123456789abcdef").unwrap();
        let w = a.wrap(b"x", b"").unwrap();
        assert!(b.unwrap(&w, b"").is_err());
        assert_eq!(&a.unwrap(&w, b"").unwrap()[..], b"x");
    }
}
