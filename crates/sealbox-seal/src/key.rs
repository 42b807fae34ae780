//! The per-object data key.

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

    /// The key bytes, for wrapping under a KMS or customer key. Never log or store them.
    pub fn expose_secret(&self) -> &[u8; DATA_KEY_LEN] {
        &self.0
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
    fn generated_keys_differ() {
        let a = DataKey::generate().unwrap();
        let b = DataKey::generate().unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
