//! Asymmetric and HMAC key material and every operation on it, all with aws-lc-rs: RSA key
//! generation, RSASSA-PSS / PKCS#1 v1.5 signatures, RSAES-OAEP, ECDSA on P-256/P-384/P-521 and
//! secp256k1, HMAC-SHA-2, DER SubjectPublicKeyInfo export. Nothing here is hand-rolled.
//!
//! A private key exists only as PKCS#8 DER in a `Zeroizing` buffer (while being generated,
//! wrapped or unwrapped) or inside an aws-lc-rs key object (which frees it with the object);
//! `Debug` never shows key bytes.

use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{
    KeySize, OaepAlgorithm, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey,
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256,
};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, EcdsaVerificationAlgorithm, KeyPair, RsaEncoding, RsaKeyPair,
    RsaParameters, UnparsedPublicKey,
};
use zeroize::Zeroizing;

use crate::spec::{EncryptionAlgorithm, KeySpec, KeyUsage, MacAlgorithm, MessageType, SigningAlgorithm};
use crate::KmsError;

fn internal(what: &str) -> KmsError {
    KmsError::Internal(format!("{what} failed"))
}

fn rsa_size(bits: usize) -> Result<KeySize, KmsError> {
    match bits {
        2048 => Ok(KeySize::Rsa2048),
        3072 => Ok(KeySize::Rsa3072),
        4096 => Ok(KeySize::Rsa4096),
        _ => Err(KmsError::Internal(format!("no RSA key size of {bits} bits"))),
    }
}

fn ecdsa_signing(spec: KeySpec) -> Option<&'static EcdsaSigningAlgorithm> {
    match spec {
        KeySpec::EccNistP256 => Some(&signature::ECDSA_P256_SHA256_ASN1_SIGNING),
        KeySpec::EccNistP384 => Some(&signature::ECDSA_P384_SHA384_ASN1_SIGNING),
        KeySpec::EccNistP521 => Some(&signature::ECDSA_P521_SHA512_ASN1_SIGNING),
        KeySpec::EccSecgP256k1 => Some(&signature::ECDSA_P256K1_SHA256_ASN1_SIGNING),
        _ => None,
    }
}

fn ecdsa_verification(spec: KeySpec) -> Option<&'static EcdsaVerificationAlgorithm> {
    match spec {
        KeySpec::EccNistP256 => Some(&signature::ECDSA_P256_SHA256_ASN1),
        KeySpec::EccNistP384 => Some(&signature::ECDSA_P384_SHA384_ASN1),
        KeySpec::EccNistP521 => Some(&signature::ECDSA_P521_SHA512_ASN1),
        KeySpec::EccSecgP256k1 => Some(&signature::ECDSA_P256K1_SHA256_ASN1),
        _ => None,
    }
}

/// The RSA signing encoding and verification parameters of an algorithm (salt length = digest
/// length for PSS, as AWS KMS uses).
fn rsa_signing(alg: SigningAlgorithm) -> Option<(&'static dyn RsaEncoding, &'static RsaParameters)> {
    use SigningAlgorithm as S;
    Some(match alg {
        S::RsassaPssSha256 => (&signature::RSA_PSS_SHA256, &signature::RSA_PSS_2048_8192_SHA256),
        S::RsassaPssSha384 => (&signature::RSA_PSS_SHA384, &signature::RSA_PSS_2048_8192_SHA384),
        S::RsassaPssSha512 => (&signature::RSA_PSS_SHA512, &signature::RSA_PSS_2048_8192_SHA512),
        S::RsassaPkcs1V15Sha256 => (&signature::RSA_PKCS1_SHA256, &signature::RSA_PKCS1_2048_8192_SHA256),
        S::RsassaPkcs1V15Sha384 => (&signature::RSA_PKCS1_SHA384, &signature::RSA_PKCS1_2048_8192_SHA384),
        S::RsassaPkcs1V15Sha512 => (&signature::RSA_PKCS1_SHA512, &signature::RSA_PKCS1_2048_8192_SHA512),
        S::EcdsaSha256 | S::EcdsaSha384 | S::EcdsaSha512 => return None,
    })
}

fn digest_algorithm(alg: SigningAlgorithm) -> &'static digest::Algorithm {
    match alg.digest_len() {
        32 => &digest::SHA256,
        48 => &digest::SHA384,
        _ => &digest::SHA512,
    }
}

pub(crate) fn oaep(alg: EncryptionAlgorithm) -> Option<&'static OaepAlgorithm> {
    match alg {
        EncryptionAlgorithm::RsaesOaepSha1 => Some(&OAEP_SHA1_MGF1SHA1),
        EncryptionAlgorithm::RsaesOaepSha256 => Some(&OAEP_SHA256_MGF1SHA256),
        EncryptionAlgorithm::SymmetricDefault => None,
    }
}

/// An RSA decryption key (for OAEP) as PKCS#8 and its SubjectPublicKeyInfo.
pub(crate) fn generate_rsa_decryption_key(bits: usize) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), KmsError> {
    let key = PrivateDecryptingKey::generate(rsa_size(bits)?).map_err(|_| internal("RSA key generation"))?;
    let pkcs8: Pkcs8V1Der<'static> = key.as_der().map_err(|_| internal("PKCS#8 encoding"))?;
    let spki: PublicKeyX509Der<'static> = key.public_key().as_der().map_err(|_| internal("SPKI encoding"))?;
    Ok((Zeroizing::new(pkcs8.as_ref().to_vec()), spki.as_ref().to_vec()))
}

/// A fresh private key of `spec` (asymmetric) as PKCS#8 DER, with its SubjectPublicKeyInfo. RSA
/// keys are the same PKCS#8 whatever their usage; the usage decides how they are parsed.
pub(crate) fn generate_key_pair(spec: KeySpec) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), KmsError> {
    if let Some(bits) = spec.rsa_bits() {
        let kp = RsaKeyPair::generate(rsa_size(bits)?).map_err(|_| internal("RSA key generation"))?;
        let pkcs8: Pkcs8V1Der<'static> = kp.as_der().map_err(|_| internal("PKCS#8 encoding"))?;
        let spki: PublicKeyX509Der<'static> = kp.public_key().as_der().map_err(|_| internal("SPKI encoding"))?;
        return Ok((Zeroizing::new(pkcs8.as_ref().to_vec()), spki.as_ref().to_vec()));
    }
    let alg = ecdsa_signing(spec).ok_or_else(|| KmsError::Internal(format!("{spec} is not an asymmetric spec")))?;
    let kp = EcdsaKeyPair::generate(alg).map_err(|_| internal("EC key generation"))?;
    let pkcs8 = kp.to_pkcs8v1().map_err(|_| internal("PKCS#8 encoding"))?;
    let spki: PublicKeyX509Der<'static> = kp.public_key().as_der().map_err(|_| internal("SPKI encoding"))?;
    Ok((Zeroizing::new(pkcs8.as_ref().to_vec()), spki.as_ref().to_vec()))
}

/// A parsed private key of an asymmetric KMS key, ready for its key usage.
pub(crate) enum PrivateKey {
    RsaSigning(RsaKeyPair),
    RsaDecryption { private: OaepPrivateDecryptingKey, public: OaepPublicEncryptingKey, spki: Vec<u8> },
    Ecdsa { key_pair: EcdsaKeyPair, spec: KeySpec },
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// Why a PKCS#8 document is not a key of the expected spec (for IncorrectKeyMaterialException).
#[derive(Debug)]
pub(crate) struct WrongKey(pub String);

impl PrivateKey {
    /// Parses PKCS#8 DER as a key of exactly `spec` (RSA modulus size, EC curve) for `usage`.
    pub(crate) fn from_pkcs8(spec: KeySpec, usage: KeyUsage, der: &[u8]) -> Result<Self, WrongKey> {
        if let Some(bits) = spec.rsa_bits() {
            return match usage {
                KeyUsage::EncryptDecrypt => {
                    let key = PrivateDecryptingKey::from_pkcs8(der)
                        .map_err(|e| WrongKey(format!("not an RSA private key in PKCS#8: {e}")))?;
                    if key.key_size_bits() != bits {
                        return Err(WrongKey(format!("an RSA key of {} bits, not {bits}", key.key_size_bits())));
                    }
                    let public_key = key.public_key();
                    let spki: PublicKeyX509Der<'static> =
                        public_key.as_der().map_err(|_| WrongKey("no public key".into()))?;
                    let public = OaepPublicEncryptingKey::new(public_key).map_err(|_| WrongKey("OAEP".into()))?;
                    let private = OaepPrivateDecryptingKey::new(key).map_err(|_| WrongKey("OAEP".into()))?;
                    Ok(PrivateKey::RsaDecryption { private, public, spki: spki.as_ref().to_vec() })
                }
                _ => {
                    let kp = RsaKeyPair::from_pkcs8(der)
                        .map_err(|e| WrongKey(format!("not an RSA private key in PKCS#8: {e}")))?;
                    if kp.public_modulus_len() * 8 != bits {
                        return Err(WrongKey(format!(
                            "an RSA key of {} bits, not {bits}",
                            kp.public_modulus_len() * 8
                        )));
                    }
                    Ok(PrivateKey::RsaSigning(kp))
                }
            };
        }
        let alg = ecdsa_signing(spec).ok_or_else(|| WrongKey(format!("{spec} has no private key")))?;
        let key_pair = EcdsaKeyPair::from_pkcs8(alg, der)
            .map_err(|e| WrongKey(format!("not a {spec} private key in PKCS#8: {e}")))?;
        Ok(PrivateKey::Ecdsa { key_pair, spec })
    }

    /// DER SubjectPublicKeyInfo (what GetPublicKey returns; `openssl pkey -pubin -inform DER`).
    pub(crate) fn public_key_der(&self) -> Result<Vec<u8>, KmsError> {
        match self {
            PrivateKey::RsaSigning(kp) => {
                let d: PublicKeyX509Der<'static> = kp.public_key().as_der().map_err(|_| internal("SPKI encoding"))?;
                Ok(d.as_ref().to_vec())
            }
            PrivateKey::RsaDecryption { spki, .. } => Ok(spki.clone()),
            PrivateKey::Ecdsa { key_pair, .. } => {
                let d: PublicKeyX509Der<'static> =
                    key_pair.public_key().as_der().map_err(|_| internal("SPKI encoding"))?;
                Ok(d.as_ref().to_vec())
            }
        }
    }

    /// Signs `message` (RAW: hashed here; DIGEST: already the digest of the algorithm's hash,
    /// whose length the caller checked).
    pub(crate) fn sign(&self, alg: SigningAlgorithm, kind: MessageType, message: &[u8]) -> Result<Vec<u8>, KmsError> {
        let digest = |m: &[u8]| {
            Digest::import_less_safe(m, digest_algorithm(alg))
                .map_err(|_| KmsError::Validation(format!("Digest is invalid length for algorithm {alg}.")))
        };
        match self {
            PrivateKey::RsaSigning(kp) => {
                let (encoding, _) = rsa_signing(alg).ok_or_else(|| internal("RSA signing algorithm"))?;
                let mut sig = vec![0u8; kp.public_modulus_len()];
                match kind {
                    MessageType::Raw => kp.sign(encoding, &SystemRandom::new(), message, &mut sig),
                    MessageType::Digest => kp.sign_digest(encoding, &digest(message)?, &mut sig),
                }
                .map_err(|_| internal("RSA signing"))?;
                Ok(sig)
            }
            PrivateKey::Ecdsa { key_pair, .. } => {
                let sig = match kind {
                    MessageType::Raw => key_pair.sign(&SystemRandom::new(), message),
                    MessageType::Digest => key_pair.sign_digest(&digest(message)?),
                }
                .map_err(|_| internal("ECDSA signing"))?;
                Ok(sig.as_ref().to_vec())
            }
            PrivateKey::RsaDecryption { .. } => Err(internal("signing with an encryption key")),
        }
    }

    /// Whether `sig` is a valid signature of `message` by this key under `alg`. Malformed
    /// signatures are simply invalid.
    pub(crate) fn verify(&self, alg: SigningAlgorithm, kind: MessageType, message: &[u8], sig: &[u8]) -> bool {
        let check = |public: UnparsedPublicKey<&[u8]>| match kind {
            MessageType::Raw => public.verify(message, sig).is_ok(),
            MessageType::Digest => Digest::import_less_safe(message, digest_algorithm(alg))
                .map(|d| public.verify_digest(&d, sig).is_ok())
                .unwrap_or(false),
        };
        match self {
            PrivateKey::RsaSigning(kp) => match rsa_signing(alg) {
                Some((_, params)) => check(UnparsedPublicKey::new(params, kp.public_key().as_ref())),
                None => false,
            },
            PrivateKey::Ecdsa { key_pair, spec } => match ecdsa_verification(*spec) {
                Some(v) => check(UnparsedPublicKey::new(v, key_pair.public_key().as_ref())),
                None => false,
            },
            PrivateKey::RsaDecryption { .. } => false,
        }
    }

    /// RSAES-OAEP encryption under the public half.
    pub(crate) fn encrypt(&self, alg: EncryptionAlgorithm, plaintext: &[u8]) -> Result<Vec<u8>, KmsError> {
        let (PrivateKey::RsaDecryption { public, .. }, Some(oaep)) = (self, oaep(alg)) else {
            return Err(internal("encrypting with a non-encryption key"));
        };
        let mut out = vec![0u8; public.ciphertext_size()];
        let n = public.encrypt(oaep, plaintext, &mut out, None).map_err(|_| internal("RSA encryption"))?.len();
        out.truncate(n);
        Ok(out)
    }

    /// RSAES-OAEP decryption; any failure is InvalidCiphertext, never saying why.
    pub(crate) fn decrypt(&self, alg: EncryptionAlgorithm, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        let (PrivateKey::RsaDecryption { private, .. }, Some(oaep)) = (self, oaep(alg)) else {
            return Err(internal("decrypting with a non-encryption key"));
        };
        let mut out = Zeroizing::new(vec![0u8; private.min_output_size()]);
        let n = private
            .decrypt(oaep, ciphertext, &mut out, None)
            .map_err(|_| KmsError::InvalidCiphertext("The ciphertext is invalid.".into()))?
            .len();
        out.truncate(n);
        Ok(out)
    }
}

fn hmac_algorithm(mac: MacAlgorithm) -> hmac::Algorithm {
    match mac {
        MacAlgorithm::HmacSha224 => hmac::HMAC_SHA224,
        MacAlgorithm::HmacSha256 => hmac::HMAC_SHA256,
        MacAlgorithm::HmacSha384 => hmac::HMAC_SHA384,
        MacAlgorithm::HmacSha512 => hmac::HMAC_SHA512,
    }
}

/// An HMAC KMS key: the aws-lc-rs key for the one MAC algorithm its spec allows.
pub(crate) struct HmacKey {
    key: hmac::Key,
    algorithm: MacAlgorithm,
}

impl HmacKey {
    pub(crate) fn new(spec: KeySpec, material: &[u8]) -> Result<Self, KmsError> {
        let algorithm =
            *spec.mac_algorithms().first().ok_or_else(|| KmsError::Internal(format!("{spec} is not an HMAC spec")))?;
        Ok(HmacKey { key: hmac::Key::new(hmac_algorithm(algorithm), material), algorithm })
    }

    pub(crate) fn algorithm(&self) -> MacAlgorithm {
        self.algorithm
    }

    pub(crate) fn mac(&self, message: &[u8]) -> Vec<u8> {
        hmac::sign(&self.key, message).as_ref().to_vec()
    }

    /// Constant-time comparison (aws-lc-rs `hmac::verify`).
    pub(crate) fn verify(&self, message: &[u8], mac: &[u8]) -> bool {
        hmac::verify(&self.key, message, mac).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signing_algorithm_signs_and_verifies_raw_and_digest() {
        for spec in
            [KeySpec::Rsa2048, KeySpec::EccNistP256, KeySpec::EccNistP384, KeySpec::EccNistP521, KeySpec::EccSecgP256k1]
        {
            let (pkcs8, spki) = generate_key_pair(spec).unwrap();
            let key = PrivateKey::from_pkcs8(spec, KeyUsage::SignVerify, &pkcs8).unwrap();
            assert_eq!(key.public_key_der().unwrap(), spki);
            for alg in spec.signing_algorithms(KeyUsage::SignVerify) {
                let msg = b"a message to sign";
                let sig = key.sign(*alg, MessageType::Raw, msg).unwrap();
                assert!(key.verify(*alg, MessageType::Raw, msg, &sig), "{spec} {alg}");
                // A signature of the message is a signature of its digest, and the reverse.
                let d = digest::digest(digest_algorithm(*alg), msg);
                assert!(key.verify(*alg, MessageType::Digest, d.as_ref(), &sig), "{spec} {alg}");
                let sig2 = key.sign(*alg, MessageType::Digest, d.as_ref()).unwrap();
                assert!(key.verify(*alg, MessageType::Raw, msg, &sig2));
                assert!(!key.verify(*alg, MessageType::Raw, b"another message", &sig));
                let mut bad = sig.clone();
                let last = bad.len() - 1;
                bad[last] ^= 1;
                assert!(!key.verify(*alg, MessageType::Raw, msg, &bad));
                assert!(matches!(key.sign(*alg, MessageType::Digest, &[0u8; 31]), Err(KmsError::Validation(_))));
            }
        }
    }

    #[test]
    fn pkcs8_of_another_spec_is_refused() {
        let (p256, _) = generate_key_pair(KeySpec::EccNistP256).unwrap();
        assert!(PrivateKey::from_pkcs8(KeySpec::EccNistP384, KeyUsage::SignVerify, &p256).is_err());
        assert!(PrivateKey::from_pkcs8(KeySpec::Rsa2048, KeyUsage::SignVerify, &p256).is_err());
        let (rsa, _) = generate_key_pair(KeySpec::Rsa2048).unwrap();
        assert!(PrivateKey::from_pkcs8(KeySpec::Rsa3072, KeyUsage::SignVerify, &rsa).is_err());
        assert!(PrivateKey::from_pkcs8(KeySpec::Rsa2048, KeyUsage::EncryptDecrypt, &rsa).is_ok());
        assert!(PrivateKey::from_pkcs8(KeySpec::Rsa2048, KeyUsage::SignVerify, b"garbage").is_err());
    }

    #[test]
    fn oaep_round_trip_and_tamper() {
        let (pkcs8, spki) = generate_rsa_decryption_key(2048).unwrap();
        let key = PrivateKey::from_pkcs8(KeySpec::Rsa2048, KeyUsage::EncryptDecrypt, &pkcs8).unwrap();
        assert_eq!(key.public_key_der().unwrap(), spki);
        for alg in [EncryptionAlgorithm::RsaesOaepSha1, EncryptionAlgorithm::RsaesOaepSha256] {
            let max = alg.max_plaintext(2048);
            let ct = key.encrypt(alg, &vec![7u8; max]).unwrap();
            assert_eq!(ct.len(), 256);
            assert_eq!(&key.decrypt(alg, &ct).unwrap()[..], &vec![7u8; max][..]);
            assert!(key.encrypt(alg, &vec![7u8; max + 1]).is_err());
            let mut bad = ct.clone();
            bad[10] ^= 1;
            assert!(matches!(key.decrypt(alg, &bad), Err(KmsError::InvalidCiphertext(_))));
        }
        let ct = key.encrypt(EncryptionAlgorithm::RsaesOaepSha1, b"x").unwrap();
        assert!(key.decrypt(EncryptionAlgorithm::RsaesOaepSha256, &ct).is_err(), "the algorithm is bound");
    }

    /// RFC 4231 test case 2 (key "Jefe").
    #[test]
    fn hmac_matches_rfc_4231() {
        let k = HmacKey::new(KeySpec::Hmac256, b"Jefe").unwrap();
        let mac = k.mac(b"what do ya want for nothing?");
        assert_eq!(hex::encode(&mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert!(k.verify(b"what do ya want for nothing?", &mac));
        assert!(!k.verify(b"what do ya want for nothing!", &mac));
        assert!(!k.verify(b"what do ya want for nothing?", &mac[..31]));
        let k224 = HmacKey::new(KeySpec::Hmac224, b"Jefe").unwrap();
        assert_eq!(
            hex::encode(k224.mac(b"what do ya want for nothing?")),
            "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44"
        );
    }
}
