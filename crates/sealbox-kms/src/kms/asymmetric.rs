//! Operations of asymmetric and HMAC keys: Sign, Verify, GetPublicKey, RSAES-OAEP Encrypt and
//! Decrypt, GenerateMac, VerifyMac, and data key pairs (sealed under a symmetric key). Each
//! checks the key's usage and algorithms first (InvalidKeyUsageException, with AWS's wording),
//! then its state, then does the cryptography in `asym.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::{KeyRecord, Kms, Material};
use crate::spec::{EncryptionAlgorithm, KeyFamily, KeySpec, KeyUsage, MacAlgorithm, MessageType, SigningAlgorithm};
use crate::KmsError;

/// What GenerateDataKeyPair returns: the pair, and the private key sealed under the KMS key.
pub struct DataKeyPair {
    /// PKCS#8 DER.
    pub private_key_plaintext: Zeroizing<Vec<u8>>,
    pub private_key_ciphertext_blob: Vec<u8>,
    /// DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    pub key_arn: String,
    pub material_id: String,
}

impl Kms {
    fn usage_error(&self, rec: &KeyRecord, operation: &str) -> KmsError {
        KmsError::InvalidKeyUsage(format!(
            "{} key usage is {} which is not valid for {operation}.",
            self.key_arn(&rec.key_id),
            rec.key_usage
        ))
    }

    fn require_usage(
        &self,
        rec: &KeyRecord,
        usage: KeyUsage,
        family: KeyFamily,
        operation: &str,
    ) -> Result<(), KmsError> {
        if rec.key_usage != usage || rec.key_spec.family() != family {
            return Err(self.usage_error(rec, operation));
        }
        Ok(())
    }

    /// "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_4096." (AWS's wording).
    pub(crate) fn incompatible(algorithm: &str, spec: KeySpec) -> KmsError {
        KmsError::InvalidKeyUsage(format!("Algorithm {algorithm} is incompatible with key spec {spec}."))
    }

    fn private_key(&self, rec: &KeyRecord) -> Result<Arc<Material>, KmsError> {
        let m = self.current_material(rec)?;
        match &*m {
            Material::Private { .. } => Ok(m),
            _ => Err(KmsError::Internal("asymmetric key without a private key".into())),
        }
    }

    /// Whether `rec` is an HMAC key that supports `algorithm`.
    pub(crate) fn check_mac(&self, rec: &KeyRecord, algorithm: MacAlgorithm, operation: &str) -> Result<(), KmsError> {
        self.require_usage(rec, KeyUsage::GenerateVerifyMac, KeyFamily::Hmac, operation)?;
        if !rec.key_spec.mac_algorithms().contains(&algorithm) {
            return Err(Self::incompatible(algorithm.as_str(), rec.key_spec));
        }
        Ok(())
    }

    fn hmac_key(&self, rec: &KeyRecord, algorithm: MacAlgorithm) -> Result<Arc<Material>, KmsError> {
        self.check_mac(rec, algorithm, "this operation")?;
        let m = self.current_material(rec)?;
        match &*m {
            Material::Hmac { key, .. } if key.algorithm() == algorithm => Ok(m),
            _ => Err(KmsError::Internal("HMAC key without HMAC material".into())),
        }
    }

    /// Whether `rec` can Sign/Verify with `algorithm` and a message of this type and length.
    pub(crate) fn check_signing(
        &self,
        rec: &KeyRecord,
        algorithm: SigningAlgorithm,
        kind: MessageType,
        message: &[u8],
        operation: &str,
    ) -> Result<(), KmsError> {
        if rec.key_usage != KeyUsage::SignVerify {
            return Err(self.usage_error(rec, operation));
        }
        if !rec.key_spec.signing_algorithms(rec.key_usage).contains(&algorithm) {
            return Err(Self::incompatible(algorithm.as_str(), rec.key_spec));
        }
        if kind == MessageType::Digest && message.len() != algorithm.digest_len() {
            return Err(KmsError::Validation(format!(
                "Digest is invalid length for algorithm {algorithm}: a DIGEST message must be {} bytes.",
                algorithm.digest_len()
            )));
        }
        Ok(())
    }

    /// Sign: a signature AWS-compatible verifiers accept (PKCS#1 for RSA, DER for ECDSA).
    pub fn sign(
        &self,
        rec: &KeyRecord,
        algorithm: SigningAlgorithm,
        kind: MessageType,
        message: &[u8],
    ) -> Result<Vec<u8>, KmsError> {
        self.check_signing(rec, algorithm, kind, message, "Sign")?;
        let m = self.private_key(rec)?;
        let Material::Private { key, .. } = &*m else { unreachable!("checked by private_key") };
        key.sign(algorithm, kind, message)
    }

    /// Verify: `Ok(false)` for a signature that does not verify (the caller answers
    /// KMSInvalidSignatureException).
    pub fn verify(
        &self,
        rec: &KeyRecord,
        algorithm: SigningAlgorithm,
        kind: MessageType,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, KmsError> {
        self.check_signing(rec, algorithm, kind, message, "Verify")?;
        let m = self.private_key(rec)?;
        let Material::Private { key, .. } = &*m else { unreachable!("checked by private_key") };
        Ok(key.verify(algorithm, kind, message, signature))
    }

    /// GetPublicKey: DER SubjectPublicKeyInfo. Symmetric and HMAC keys have none
    /// (UnsupportedOperationException).
    pub fn public_key(&self, rec: &KeyRecord) -> Result<Vec<u8>, KmsError> {
        if rec.key_spec.family() != KeyFamily::Asymmetric {
            return Err(KmsError::UnsupportedOperation(format!(
                "{} is a {} key: it has no public key.",
                self.key_arn(&rec.key_id),
                rec.key_spec
            )));
        }
        let m = self.private_key(rec)?;
        let Material::Private { key, .. } = &*m else { unreachable!("checked by private_key") };
        key.public_key_der()
    }

    /// Whether `algorithm` fits `rec` for Encrypt/Decrypt/ReEncrypt: a symmetric encryption key
    /// takes SYMMETRIC_DEFAULT, an RSA encryption key an RSAES_OAEP algorithm; signing and HMAC
    /// keys encrypt nothing.
    pub fn check_encryption(
        &self,
        rec: &KeyRecord,
        algorithm: EncryptionAlgorithm,
        operation: &str,
    ) -> Result<(), KmsError> {
        if rec.key_usage != KeyUsage::EncryptDecrypt {
            return Err(self.usage_error(rec, operation));
        }
        if !rec.key_spec.encryption_algorithms(rec.key_usage).contains(&algorithm) {
            return Err(Self::incompatible(algorithm.as_str(), rec.key_spec));
        }
        Ok(())
    }

    /// Encrypt under an RSA key's public half; the plaintext limit is AWS's (k - 2·hLen - 2).
    pub fn encrypt_asymmetric(
        &self,
        rec: &KeyRecord,
        algorithm: EncryptionAlgorithm,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, KmsError> {
        self.check_encryption(rec, algorithm, "Encrypt")?;
        let bits = rec.key_spec.rsa_bits().unwrap_or(0);
        if plaintext.len() > algorithm.max_plaintext(bits) {
            return Err(KmsError::Validation(format!(
                "Plaintext of {} bytes is too long for {algorithm} with a {} key: at most {} bytes.",
                plaintext.len(),
                rec.key_spec,
                algorithm.max_plaintext(bits)
            )));
        }
        let m = self.private_key(rec)?;
        let Material::Private { key, .. } = &*m else { unreachable!("checked by private_key") };
        key.encrypt(algorithm, plaintext)
    }

    /// Decrypt RSAES-OAEP ciphertext (made by Encrypt or by anyone holding the public key).
    pub fn decrypt_asymmetric(
        &self,
        rec: &KeyRecord,
        algorithm: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        self.check_encryption(rec, algorithm, "Decrypt")?;
        let m = self.private_key(rec)?;
        let Material::Private { key, .. } = &*m else { unreachable!("checked by private_key") };
        key.decrypt(algorithm, ciphertext)
    }

    pub fn generate_mac(&self, rec: &KeyRecord, algorithm: MacAlgorithm, message: &[u8]) -> Result<Vec<u8>, KmsError> {
        let m = self.hmac_key(rec, algorithm)?;
        let Material::Hmac { key, .. } = &*m else { unreachable!("checked by hmac_key") };
        Ok(key.mac(message))
    }

    /// VerifyMac: `Ok(false)` for a MAC that does not match (constant-time comparison).
    pub fn verify_mac(
        &self,
        rec: &KeyRecord,
        algorithm: MacAlgorithm,
        message: &[u8],
        mac: &[u8],
    ) -> Result<bool, KmsError> {
        let m = self.hmac_key(rec, algorithm)?;
        let Material::Hmac { key, .. } = &*m else { unreachable!("checked by hmac_key") };
        Ok(key.verify(message, mac))
    }

    /// GenerateDataKeyPair: a fresh pair of `spec`, its private key sealed under the symmetric
    /// key `rec` with `context` (Decrypt opens it like any data key).
    pub fn generate_data_key_pair(
        &self,
        rec: &KeyRecord,
        spec: KeySpec,
        context: &BTreeMap<String, String>,
    ) -> Result<DataKeyPair, KmsError> {
        self.require_symmetric_encryption(rec, "GenerateDataKeyPair")?;
        self.require_usable(rec)?;
        let (private_key_plaintext, public_key) = crate::asym::generate_key_pair(spec)?;
        let (blob, material_id) = self.encrypt_with(rec, &private_key_plaintext, context)?;
        Ok(DataKeyPair {
            private_key_plaintext,
            private_key_ciphertext_blob: blob,
            public_key,
            key_arn: self.key_arn(&rec.key_id),
            material_id,
        })
    }
}
