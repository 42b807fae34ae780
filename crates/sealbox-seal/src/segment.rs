//! The AEAD of one segment: per-object key derivation, the nonce and the AAD. This is the only
//! module that builds a nonce (`segment_nonce`) or an AAD (`SegmentAad`).

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hkdf::{Salt, HKDF_SHA256};
use bytes::BytesMut;
use zeroize::Zeroizing;

use crate::header::{ObjectHeader, FORMAT_VERSION};
use crate::{DataKey, SealError, DATA_KEY_LEN, MAX_SEGMENTS, TAG_LEN};

/// HKDF `info` label: ties derived keys to this format and purpose, so the same data key used
/// anywhere else (or by a future format version) yields unrelated keys.
const KDF_LABEL: &[u8] = b"sealbox-seal segment key";
/// Longest AAD: an 80-byte two-layer header, the index, the final flag and the layer number.
const MAX_AAD_LEN: usize = 80 + 8 + 1 + 1;

/// The AES-256-GCM keys of one object, one per layer (index 0 is the inner layer), derived from
/// the object's data keys and the header's salts, plus the header they are bound to.
///
/// Zeroized on drop: the raw derived bytes only ever sit in `Zeroizing`, and the expanded AES key
/// lives in AWS-LC's `OPENSSL_malloc`ed `EVP_AEAD_CTX`, which `OPENSSL_free` cleanses when the
/// `LessSafeKey` drops (aws-lc-rs 1.19 / aws-lc-sys 0.47).
pub(crate) struct SegmentKeys {
    header: ObjectHeader,
    layers: Vec<LessSafeKey>,
}

impl SegmentKeys {
    /// Derives `HKDF-SHA256(salt = header salt of layer i, ikm = keys[i], info = label || version
    /// || layer || layer count)` for each layer. The random salt makes the derived key unique per
    /// object even if a caller reuses a data key, which is what makes counter nonces safe.
    pub(crate) fn derive(keys: &[DataKey], header: ObjectHeader) -> Result<Self, SealError> {
        let count = header.layers().count();
        if keys.len() != count {
            return Err(SealError::KeyCount { layers: count, keys: keys.len() });
        }
        let layers = keys
            .iter()
            .enumerate()
            .map(|(layer, key)| derive_layer_key(key, header.salt(layer), layer_number(layer), count as u8))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { header, layers })
    }

    pub(crate) fn header(&self) -> &ObjectHeader {
        &self.header
    }

    /// Seals the plaintext in `segment` in place, appending one tag per layer (inner first).
    /// `segment` should have `TAG_LEN * layers` spare capacity so nothing is reallocated.
    pub(crate) fn seal_segment(&self, index: u64, is_final: bool, segment: &mut BytesMut) -> Result<(), SealError> {
        if index >= MAX_SEGMENTS {
            return Err(SealError::TooLong);
        }
        for (layer, key) in self.layers.iter().enumerate() {
            let aad = SegmentAad::new(&self.header, index, is_final, layer_number(layer));
            key.seal_in_place_append_tag(segment_nonce(index), Aad::from(aad.as_bytes()), segment)
                .map_err(|_| SealError::Crypto)?;
        }
        Ok(())
    }

    /// Authenticates and decrypts a sealed segment in place (outer layer first); returns the
    /// plaintext prefix. On failure the buffer holds garbage and must not be used.
    pub(crate) fn open_segment<'a>(
        &self,
        index: u64,
        is_final: bool,
        sealed: &'a mut [u8],
    ) -> Result<&'a mut [u8], SealError> {
        if sealed.len() < TAG_LEN * self.layers.len() {
            return Err(SealError::Truncated { segment: index });
        }
        let mut len = sealed.len();
        for (layer, key) in self.layers.iter().enumerate().rev() {
            let aad = SegmentAad::new(&self.header, index, is_final, layer_number(layer));
            let plain = key
                .open_in_place(segment_nonce(index), Aad::from(aad.as_bytes()), &mut sealed[..len])
                .map_err(|_| SealError::Authentication { segment: index })?;
            len = plain.len();
        }
        Ok(&mut sealed[..len])
    }
}

fn derive_layer_key(key: &DataKey, salt: &[u8], layer: u8, layer_count: u8) -> Result<LessSafeKey, SealError> {
    let params = [FORMAT_VERSION, layer, layer_count];
    let info = [KDF_LABEL, &params[..]];
    let prk = Salt::new(HKDF_SHA256, salt).extract(key.expose_secret());
    let okm = prk.expand(&info, &AES_256_GCM).map_err(|_| SealError::Crypto)?;
    // Filled by hand rather than `UnboundKey::from(okm)`, which leaves a copy on the stack.
    let mut bytes = Zeroizing::new([0u8; DATA_KEY_LEN]);
    okm.fill(&mut bytes[..]).map_err(|_| SealError::Crypto)?;
    let unbound = UnboundKey::new(&AES_256_GCM, &bytes[..]).map_err(|_| SealError::Crypto)?;
    Ok(LessSafeKey::new(unbound))
}

/// Layers are numbered from 1 in the KDF info and the AAD (0 is never a valid layer).
fn layer_number(layer: usize) -> u8 {
    layer as u8 + 1
}

/// The nonce of segment `index`: 4 zero bytes then the index, big-endian. Unique per derived key
/// because each object seals each index exactly once and every object has its own derived key.
/// The final flag is not in the nonce but in the AAD, so it cannot create a second use of it.
fn segment_nonce(index: u64) -> Nonce {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[NONCE_LEN - 8..].copy_from_slice(&index.to_be_bytes());
    Nonce::assume_unique_for_key(nonce)
}

/// `header || index (u64 BE) || is_final (0/1) || layer (1/2)`: binds the version, layer count
/// and salts (the header), the position, and whether this is the end of the object.
struct SegmentAad {
    bytes: [u8; MAX_AAD_LEN],
    len: usize,
}

impl SegmentAad {
    fn new(header: &ObjectHeader, index: u64, is_final: bool, layer: u8) -> Self {
        let header = header.as_bytes();
        let mut bytes = [0u8; MAX_AAD_LEN];
        bytes[..header.len()].copy_from_slice(header);
        let mut len = header.len();
        bytes[len..len + 8].copy_from_slice(&index.to_be_bytes());
        len += 8;
        bytes[len] = u8::from(is_final);
        bytes[len + 1] = layer;
        Self { bytes, len: len + 2 }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Layers;

    fn keys(layers: Layers) -> Vec<DataKey> {
        (0..layers.count()).map(|i| DataKey::from_bytes(&[i as u8 + 1; 32]).unwrap()).collect()
    }

    #[test]
    fn nonce_layout() {
        assert_eq!(segment_nonce(0).as_ref(), &[0u8; 12]);
        assert_eq!(segment_nonce(0x0102).as_ref(), &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
    }

    #[test]
    fn aad_layout() {
        let header = ObjectHeader::generate(Layers::Two).unwrap();
        let aad = SegmentAad::new(&header, 5, true, 2);
        let bytes = aad.as_bytes();
        assert_eq!(bytes.len(), MAX_AAD_LEN);
        assert_eq!(&bytes[..80], header.as_bytes());
        assert_eq!(&bytes[80..88], &5u64.to_be_bytes());
        assert_eq!(&bytes[88..], &[1, 2]);
    }

    #[test]
    fn seal_then_open_in_place() {
        for layers in [Layers::One, Layers::Two] {
            let sk = SegmentKeys::derive(&keys(layers), ObjectHeader::generate(layers).unwrap()).unwrap();
            let mut seg = BytesMut::from(&b"hello segment"[..]);
            sk.seal_segment(3, false, &mut seg).unwrap();
            assert_eq!(seg.len(), 13 + TAG_LEN * layers.count());
            let mut wrong_flag = seg.clone();
            assert_eq!(sk.open_segment(3, true, &mut wrong_flag), Err(SealError::Authentication { segment: 3 }));
            let mut wrong_index = seg.clone();
            assert_eq!(sk.open_segment(4, false, &mut wrong_index), Err(SealError::Authentication { segment: 4 }));
            assert_eq!(sk.open_segment(3, false, &mut seg).unwrap(), b"hello segment");
        }
    }

    #[test]
    fn same_data_key_different_salt_gives_different_ciphertext() {
        let seal = || {
            let sk = SegmentKeys::derive(&keys(Layers::One), ObjectHeader::generate(Layers::One).unwrap()).unwrap();
            let mut seg = BytesMut::from(&[0u8; 32][..]);
            sk.seal_segment(0, true, &mut seg).unwrap();
            seg
        };
        assert_ne!(seal(), seal());
    }

    #[test]
    fn key_count_must_match_layers() {
        let header = ObjectHeader::generate(Layers::Two).unwrap();
        let err = SegmentKeys::derive(&keys(Layers::One), header).err();
        assert_eq!(err, Some(SealError::KeyCount { layers: 2, keys: 1 }));
    }
}
