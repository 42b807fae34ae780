//! The per-object data key.

use aws_lc_rs::hkdf::{KeyType, Salt, HKDF_SHA256};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::SealError;

/// Length of a [`DataKey`] in bytes (AES-256).
pub const DATA_KEY_LEN: usize = 32;

/// The 32-byte key that seals one layer of one object. The S3 layer generates it (or unwraps it
/// from KMS); this crate never stores it, only derives per-object segment keys from it.
///
/// Zeroized on drop; `Debug` never prints the bytes.
#[derive(Clone, ZeroizeOnDrop)]
pub struct DataKey(Zeroizing<[u8; DATA_KEY_LEN]>);

impl DataKey {
    /// A fresh random key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, SealError> {
        let mut bytes = Zeroizing::new([0u8; DATA_KEY_LEN]);
        SystemRandom::new().fill(&mut bytes[..]).map_err(|_| SealError::Crypto)?;
        Ok(Self(bytes))
    }

    /// A key from exactly 32 bytes (e.g. a KMS plaintext data key).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SealError> {
        let array: &[u8; DATA_KEY_LEN] = bytes.try_into().map_err(|_| SealError::BadKeyLength)?;
        Ok(Self(Zeroizing::new(*array)))
    }

    /// A key for one place that shares this key with others, e.g. one part of a multipart upload
    /// (`binding` = upload id and part number). The format binds a segment to its object but not
    /// the object to its name: blobs sealed under one data key could be swapped undetected.
    /// Sealing each place under its own bound key makes a moved blob fail authentication.
    pub fn bound_to(&self, binding: &[u8]) -> Result<Self, SealError> {
        let prk = Salt::new(HKDF_SHA256, &[]).extract(&self.0[..]);
        let info = [BINDING_LABEL, binding];
        let okm = prk.expand(&info, KeyLen).map_err(|_| SealError::Crypto)?;
        let mut bytes = Zeroizing::new([0u8; DATA_KEY_LEN]);
        okm.fill(&mut bytes[..]).map_err(|_| SealError::Crypto)?;
        Ok(Self(bytes))
    }

    /// The key bytes, for wrapping under a KMS or customer key. Never log or store them.
    pub fn expose_secret(&self) -> &[u8; DATA_KEY_LEN] {
        &self.0
    }
}

/// HKDF `info` prefix of [`DataKey::bound_to`], distinct from the segment-key label.
const BINDING_LABEL: &[u8] = b"sealbox-seal bound data key";

struct KeyLen;

impl KeyType for KeyLen {
    fn len(&self) -> usize {
        DATA_KEY_LEN
    }
}

impl From<Zeroizing<[u8; DATA_KEY_LEN]>> for DataKey {
    fn from(bytes: Zeroizing<[u8; DATA_KEY_LEN]>) -> Self {
        Self(bytes)
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_bytes_needs_exactly_32() {
        assert_eq!(DataKey::from_bytes(&[7; 31]).unwrap_err(), SealError::BadKeyLength);
        assert_eq!(DataKey::from_bytes(&[7; 33]).unwrap_err(), SealError::BadKeyLength);
        assert_eq!(DataKey::from_bytes(&[7; 32]).unwrap().expose_secret(), &[7; 32]);
    }

    #[test]
    fn debug_is_redacted() {
        let key = DataKey::from_bytes(&[0xab; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "DataKey(<redacted>)");
        assert_eq!(format!("{:?}", [key]), "[DataKey(<redacted>)]");
    }

    #[test]
    fn bound_keys_are_deterministic_and_distinct() {
        let key = DataKey::from_bytes(&[1; 32]).unwrap();
        let part1 = key.bound_to(b"upload-1 part 1").unwrap();
        assert_eq!(part1.expose_secret(), key.bound_to(b"upload-1 part 1").unwrap().expose_secret());
        assert_ne!(part1.expose_secret(), key.bound_to(b"upload-1 part 2").unwrap().expose_secret());
        assert_ne!(part1.expose_secret(), key.expose_secret());
    }

    #[test]
    fn generated_keys_differ() {
        let a = DataKey::generate().unwrap();
        let b = DataKey::generate().unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
