//! Cryptographic operations: Encrypt, Decrypt, ReEncrypt (symmetric blobs and RSAES-OAEP),
//! data keys and data key pairs, Sign, Verify, GenerateMac, VerifyMac, GetPublicKey,
//! GenerateRandom. Each checks its input, authorises (policies and grants, with the request's
//! encryption context and algorithms as condition keys), checks the key's usage and state,
//! honours DryRun, then acts.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::{bounded_blob, context, enum_field, missing, opt_int, opt_str, req_str, stop_if_dry_run, Access, Ctx};
use crate::kms::{KeyRecord, Kms};
use crate::spec::{
    EncryptionAlgorithm, KeySpec, MacAlgorithm, MessageType, SigningAlgorithm, FOREIGN_ENCRYPTION_ALGORITHMS,
    FOREIGN_MESSAGE_TYPES, FOREIGN_SIGNING_ALGORITHMS,
};
use crate::KmsError;

type Choice<T> = Result<T, &'static str>;

fn encryption_algorithm(ctx: &Ctx<'_>, field: &str) -> Result<Choice<EncryptionAlgorithm>, KmsError> {
    Ok(enum_field::<EncryptionAlgorithm>(ctx.req, field, FOREIGN_ENCRYPTION_ALGORITHMS)?
        .unwrap_or(Ok(EncryptionAlgorithm::SymmetricDefault)))
}

/// The requested algorithm, if `rec` supports it (InvalidKeyUsageException otherwise).
fn fit_encryption(
    kms: &Kms,
    rec: &KeyRecord,
    alg: Choice<EncryptionAlgorithm>,
    op: &str,
) -> Result<EncryptionAlgorithm, KmsError> {
    let alg = alg.map_err(|name| Kms::incompatible(name, rec.key_spec))?;
    kms.check_encryption(rec, alg, op)?;
    Ok(alg)
}

/// Encryption contexts are AAD of symmetric blobs; RSAES-OAEP has nowhere to bind one.
fn no_context_for_asymmetric(rec: &KeyRecord, ec: &BTreeMap<String, String>) -> Result<(), KmsError> {
    if rec.key_spec != KeySpec::SymmetricDefault && !ec.is_empty() {
        return Err(KmsError::Validation(format!(
            "EncryptionContext is not supported with {} keys: it is supported only on operations with symmetric encryption KMS keys.",
            rec.key_spec
        )));
    }
    Ok(())
}

fn check_rsa_plaintext(rec: &KeyRecord, alg: EncryptionAlgorithm, len: usize) -> Result<(), KmsError> {
    if let Some(bits) = rec.key_spec.rsa_bits() {
        if len > alg.max_plaintext(bits) {
            return Err(KmsError::Validation(format!(
                "Plaintext of {len} bytes is too long for {alg} with a {} key: at most {} bytes.",
                rec.key_spec,
                alg.max_plaintext(bits)
            )));
        }
    }
    Ok(())
}

/// The visible symmetric key a blob names (IncorrectKeyException when the request named
/// another key; InvalidCiphertextException when the blob is not ours or its key is gone).
fn blob_key(kms: &Kms, blob: &[u8], expected: Option<&KeyRecord>) -> Result<KeyRecord, KmsError> {
    let invalid = || KmsError::InvalidCiphertext("The ciphertext is invalid.".into());
    let (key_id, _) = Kms::blob_key_info(blob).ok_or_else(invalid)?;
    if let Some(exp) = expected {
        if exp.key_id != key_id {
            return Err(KmsError::IncorrectKey(
                "The key ID in the request does not identify a CMK that can perform this operation.".into(),
            ));
        }
    }
    match kms.key(&key_id)? {
        Some(r) if r.hidden => Err(invalid()),
        Some(r) => Ok(r),
        None => Err(KmsError::InvalidCiphertext("The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.".into())),
    }
}

fn key_of(kms: &Kms, req: &serde_json::Map<String, Value>, field: &str) -> Result<Option<KeyRecord>, KmsError> {
    match opt_str(req, field)? {
        Some(k) => Ok(Some(kms.resolve(k, true)?)),
        None => Ok(None),
    }
}

pub(super) fn encrypt(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let alg = encryption_algorithm(ctx, "EncryptionAlgorithm")?;
    let plaintext = Zeroizing::new(bounded_blob(ctx.req, "Plaintext", 4096)?);
    let ec = context(ctx.req, "EncryptionContext")?;
    let rec = ctx.key("KeyId", true)?;
    let alg_name = alg.map_or_else(|n| n, |a| a.as_str());
    ctx.allow(&rec, "kms:Encrypt", Access::with_context(&ec).condition("kms:EncryptionAlgorithm", alg_name))?;
    let alg = fit_encryption(ctx.kms, &rec, alg, "Encrypt")?;
    no_context_for_asymmetric(&rec, &ec)?;
    check_rsa_plaintext(&rec, alg, plaintext.len())?;
    ctx.kms.require_usable(&rec)?;
    stop_if_dry_run(ctx.req)?;
    let blob = if alg == EncryptionAlgorithm::SymmetricDefault {
        ctx.kms.encrypt_with(&rec, &plaintext, &ec)?.0
    } else {
        ctx.kms.encrypt_asymmetric(&rec, alg, &plaintext)?
    };
    ctx.kms.stats.encrypt.fetch_add(1, Ordering::Relaxed);
    Ok(
        json!({"CiphertextBlob": B64.encode(blob), "KeyId": ctx.kms.key_arn(&rec.key_id), "EncryptionAlgorithm": alg.as_str()}),
    )
}

/// The decrypted source of Decrypt and ReEncrypt: RSAES-OAEP under the named asymmetric key,
/// or a symmetric blob under the key its header names.
struct Opened {
    key: KeyRecord,
    plaintext: Zeroizing<Vec<u8>>,
    algorithm: EncryptionAlgorithm,
    material_id: Option<String>,
}

fn source_access<'a>(ec: &'a BTreeMap<String, String>, alg: &str, same_key: Option<bool>) -> Access<'a> {
    let a = Access::with_context(ec).condition("kms:EncryptionAlgorithm", alg);
    match same_key {
        Some(s) => a.condition("kms:ReEncryptOnSameKey", s.to_string()),
        None => a,
    }
}

fn open_source(
    ctx: &mut Ctx<'_>,
    action: &str,
    alg: Choice<EncryptionAlgorithm>,
    blob: &[u8],
    ec: &BTreeMap<String, String>,
    expected: Option<KeyRecord>,
    same_key: Option<bool>,
) -> Result<Opened, KmsError> {
    let op = action.trim_start_matches("kms:");
    let alg_name = alg.map_or_else(|n| n, |a| a.as_str());
    match expected {
        Some(rec) if rec.key_spec != KeySpec::SymmetricDefault => {
            ctx.key_arn = Some(ctx.kms.key_arn(&rec.key_id));
            ctx.allow(&rec, action, source_access(ec, alg_name, same_key))?;
            let alg = fit_encryption(ctx.kms, &rec, alg, op)?;
            no_context_for_asymmetric(&rec, ec)?;
            ctx.kms.require_usable(&rec)?;
            let plaintext = ctx.kms.decrypt_asymmetric(&rec, alg, blob)?;
            Ok(Opened { key: rec, plaintext, algorithm: alg, material_id: None })
        }
        expected => {
            let alg = alg.map_err(|name| Kms::incompatible(name, KeySpec::SymmetricDefault))?;
            if alg != EncryptionAlgorithm::SymmetricDefault {
                return Err(Kms::incompatible(alg.as_str(), KeySpec::SymmetricDefault));
            }
            let rec = blob_key(ctx.kms, blob, expected.as_ref())?;
            ctx.key_arn = Some(ctx.kms.key_arn(&rec.key_id));
            ctx.allow(&rec, action, source_access(ec, alg_name, same_key))?;
            let (rec, d) = ctx.kms.decrypt_blob(blob, ec, Some(&rec))?;
            Ok(Opened { key: rec, plaintext: d.plaintext, algorithm: alg, material_id: Some(d.material_id) })
        }
    }
}

pub(super) fn decrypt(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let alg = encryption_algorithm(ctx, "EncryptionAlgorithm")?;
    let blob = bounded_blob(ctx.req, "CiphertextBlob", 6144)?;
    let ec = context(ctx.req, "EncryptionContext")?;
    if ctx.req.get("Recipient").is_some_and(|r| !r.is_null()) {
        return Err(KmsError::UnsupportedOperation("Nitro Enclaves attestation (Recipient) is not supported.".into()));
    }
    let expected = key_of(ctx.kms, ctx.req, "KeyId")?;
    let opened = open_source(ctx, "kms:Decrypt", alg, &blob, &ec, expected, None)?;
    stop_if_dry_run(ctx.req)?;
    ctx.kms.stats.decrypt.fetch_add(1, Ordering::Relaxed);
    let mut out = json!({"KeyId": ctx.kms.key_arn(&opened.key.key_id), "Plaintext": B64.encode(&opened.plaintext[..]),
                         "EncryptionAlgorithm": opened.algorithm.as_str()});
    if let Some(m) = opened.material_id {
        out["KeyMaterialId"] = json!(m);
    }
    Ok(out)
}

pub(super) fn re_encrypt(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let src_alg = encryption_algorithm(ctx, "SourceEncryptionAlgorithm")?;
    let dst_alg = encryption_algorithm(ctx, "DestinationEncryptionAlgorithm")?;
    let blob = bounded_blob(ctx.req, "CiphertextBlob", 6144)?;
    let src_ec = context(ctx.req, "SourceEncryptionContext")?;
    let dst_ec = context(ctx.req, "DestinationEncryptionContext")?;
    let expected = key_of(ctx.kms, ctx.req, "SourceKeyId")?;
    let dst = ctx.kms.resolve(req_str(ctx.req, "DestinationKeyId")?, true)?;
    let src_id = expected.as_ref().map(|r| r.key_id.clone()).or_else(|| Kms::blob_key_info(&blob).map(|(k, _)| k));
    let same = src_id.as_deref() == Some(dst.key_id.as_str());
    let src = open_source(ctx, "kms:ReEncryptFrom", src_alg, &blob, &src_ec, expected, Some(same))?;
    let dst_alg_name = dst_alg.map_or_else(|n| n, |a| a.as_str());
    ctx.allow(
        &dst,
        "kms:ReEncryptTo",
        Access::with_context(&dst_ec)
            .condition("kms:EncryptionAlgorithm", dst_alg_name)
            .condition("kms:ReEncryptOnSameKey", same.to_string()),
    )?;
    let dst_alg = fit_encryption(ctx.kms, &dst, dst_alg, "ReEncrypt")?;
    no_context_for_asymmetric(&dst, &dst_ec)?;
    check_rsa_plaintext(&dst, dst_alg, src.plaintext.len())?;
    ctx.kms.require_usable(&dst)?;
    stop_if_dry_run(ctx.req)?;
    let (out, dst_material) = if dst_alg == EncryptionAlgorithm::SymmetricDefault {
        let (b, m) = ctx.kms.encrypt_with(&dst, &src.plaintext, &dst_ec)?;
        (b, Some(m))
    } else {
        (ctx.kms.encrypt_asymmetric(&dst, dst_alg, &src.plaintext)?, None)
    };
    ctx.key_arn = Some(ctx.kms.key_arn(&dst.key_id));
    let mut reply = json!({"CiphertextBlob": B64.encode(out), "SourceKeyId": ctx.kms.key_arn(&src.key.key_id),
        "KeyId": ctx.kms.key_arn(&dst.key_id), "SourceEncryptionAlgorithm": src.algorithm.as_str(),
        "DestinationEncryptionAlgorithm": dst_alg.as_str()});
    if let Some(m) = src.material_id {
        reply["SourceKeyMaterialId"] = json!(m);
    }
    if let Some(m) = dst_material {
        reply["DestinationKeyMaterialId"] = json!(m);
    }
    Ok(reply)
}

fn data_key_len(ctx: &Ctx<'_>) -> Result<usize, KmsError> {
    match (opt_str(ctx.req, "KeySpec")?, opt_int(ctx.req, "NumberOfBytes")?) {
        (Some(_), Some(_)) | (None, None) => {
            Err(KmsError::Validation("Please specify either number of bytes or key spec.".into()))
        }
        (Some("AES_256"), None) => Ok(32),
        (Some("AES_128"), None) => Ok(16),
        (Some(other), None) => Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{other}' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]"
        ))),
        (None, Some(n)) if (1..=1024).contains(&n) => Ok(n as usize),
        (None, Some(n)) => Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024"
        ))),
    }
}

pub(super) fn generate_data_key(ctx: &mut Ctx<'_>, op: &str) -> Result<Value, KmsError> {
    let ec = context(ctx.req, "EncryptionContext")?;
    let rec = ctx.target("KeyId", true, &format!("kms:{op}"), Access::with_context(&ec))?;
    let len = data_key_len(ctx)?;
    ctx.kms.require_symmetric_encryption(&rec, op)?;
    ctx.kms.require_usable(&rec)?;
    stop_if_dry_run(ctx.req)?;
    let g = ctx.kms.generate_data_key_with(&rec, len, &ec)?;
    let mut out =
        json!({"CiphertextBlob": B64.encode(&g.ciphertext_blob), "KeyId": g.key_arn, "KeyMaterialId": g.material_id});
    if op == "GenerateDataKey" {
        out["Plaintext"] = json!(B64.encode(&g.plaintext[..]));
    }
    Ok(out)
}

pub(super) fn generate_data_key_pair(ctx: &mut Ctx<'_>, op: &str) -> Result<Value, KmsError> {
    let spec = match enum_field::<KeySpec>(ctx.req, "KeyPairSpec", &["SM2", "ECC_NIST_EDWARDS25519"])? {
        None => return Err(missing("KeyPairSpec")),
        Some(Ok(s)) if s.is_data_key_pair_spec() => s,
        Some(Ok(s)) => {
            return Err(KmsError::Validation(format!(
                "1 validation error detected: Value '{s}' at 'keyPairSpec' failed to satisfy constraint: Member must be an asymmetric key pair spec"
            )))
        }
        Some(Err(name)) => return Err(KmsError::UnsupportedOperation(format!("KeyPairSpec {name} is not supported by sealbox."))),
    };
    if ctx.req.get("Recipient").is_some_and(|r| !r.is_null()) {
        return Err(KmsError::UnsupportedOperation("Nitro Enclaves attestation (Recipient) is not supported.".into()));
    }
    let ec = context(ctx.req, "EncryptionContext")?;
    let rec = ctx.target(
        "KeyId",
        true,
        &format!("kms:{op}"),
        Access::with_context(&ec).condition("kms:DataKeyPairSpec", spec.as_str()),
    )?;
    ctx.kms.require_symmetric_encryption(&rec, op)?;
    ctx.kms.require_usable(&rec)?;
    stop_if_dry_run(ctx.req)?;
    let pair = ctx.kms.generate_data_key_pair(&rec, spec, &ec)?;
    let mut out = json!({"PrivateKeyCiphertextBlob": B64.encode(&pair.private_key_ciphertext_blob),
        "PublicKey": B64.encode(&pair.public_key), "KeyId": pair.key_arn, "KeyPairSpec": spec.as_str(),
        "KeyMaterialId": pair.material_id});
    if op == "GenerateDataKeyPair" {
        out["PrivateKeyPlaintext"] = json!(B64.encode(&pair.private_key_plaintext[..]));
    }
    Ok(out)
}

pub(super) fn generate_random(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    ctx.allow_account("kms:GenerateRandom", "*", &[])?;
    if opt_str(ctx.req, "CustomKeyStoreId")?.is_some() || ctx.req.get("Recipient").is_some_and(|r| !r.is_null()) {
        return Err(KmsError::UnsupportedOperation(
            "Custom key stores and Nitro Enclaves attestation are not supported.".into(),
        ));
    }
    let n = opt_int(ctx.req, "NumberOfBytes")?.ok_or_else(|| missing("NumberOfBytes"))?;
    if !(1..=1024).contains(&n) {
        return Err(KmsError::Validation(format!("1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024")));
    }
    let mut b = Zeroizing::new(vec![0u8; n as usize]);
    aws_lc_rs::rand::fill(&mut b[..]).map_err(|_| KmsError::Internal("randomness".into()))?;
    Ok(json!({"Plaintext": B64.encode(&b[..])}))
}

/// A Sign or Verify request, authorised and checked against the key.
struct Signing {
    key: KeyRecord,
    message: Zeroizing<Vec<u8>>,
    kind: MessageType,
    algorithm: SigningAlgorithm,
}

/// Message, MessageType and SigningAlgorithm of Sign and Verify, authorised and checked
/// against the key.
fn signing_request(ctx: &mut Ctx<'_>, op: &str) -> Result<Signing, KmsError> {
    let message = Zeroizing::new(bounded_blob(ctx.req, "Message", 4096)?);
    let kind =
        enum_field::<MessageType>(ctx.req, "MessageType", FOREIGN_MESSAGE_TYPES)?.unwrap_or(Ok(MessageType::Raw));
    let alg = enum_field::<SigningAlgorithm>(ctx.req, "SigningAlgorithm", FOREIGN_SIGNING_ALGORITHMS)?
        .ok_or_else(|| missing("SigningAlgorithm"))?;
    let access = Access::default()
        .condition("kms:SigningAlgorithm", alg.map_or_else(|n| n, |a| a.as_str()))
        .condition("kms:MessageType", kind.map_or_else(|n| n, |k| k.as_str()));
    let rec = ctx.target("KeyId", true, &format!("kms:{op}"), access)?;
    let alg = alg.map_err(|name| Kms::incompatible(name, rec.key_spec))?;
    let kind = kind.map_err(|name| Kms::incompatible(name, rec.key_spec))?;
    ctx.kms.check_signing(&rec, alg, kind, &message, op)?;
    ctx.kms.require_usable(&rec)?;
    Ok(Signing { key: rec, message, kind, algorithm: alg })
}

pub(super) fn sign(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let Signing { key: rec, message, kind, algorithm: alg } = signing_request(ctx, "Sign")?;
    stop_if_dry_run(ctx.req)?;
    let signature = ctx.kms.sign(&rec, alg, kind, &message)?;
    Ok(
        json!({"KeyId": ctx.kms.key_arn(&rec.key_id), "Signature": B64.encode(signature), "SigningAlgorithm": alg.as_str()}),
    )
}

pub(super) fn verify(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let signature = bounded_blob(ctx.req, "Signature", 6144)?;
    let Signing { key: rec, message, kind, algorithm: alg } = signing_request(ctx, "Verify")?;
    stop_if_dry_run(ctx.req)?;
    if !ctx.kms.verify(&rec, alg, kind, &message, &signature)? {
        return Err(KmsError::InvalidSignature(
            "The signature does not verify with this key, message and signing algorithm.".into(),
        ));
    }
    Ok(json!({"KeyId": ctx.kms.key_arn(&rec.key_id), "SignatureValid": true, "SigningAlgorithm": alg.as_str()}))
}

fn mac_request(ctx: &mut Ctx<'_>, op: &str) -> Result<(KeyRecord, Zeroizing<Vec<u8>>, MacAlgorithm), KmsError> {
    let message = Zeroizing::new(bounded_blob(ctx.req, "Message", 4096)?);
    let alg = enum_field::<MacAlgorithm>(ctx.req, "MacAlgorithm", &[])?.ok_or_else(|| missing("MacAlgorithm"))?;
    let alg = alg.map_err(|_| KmsError::Internal("no foreign MAC algorithms".into()))?;
    let rec =
        ctx.target("KeyId", true, &format!("kms:{op}"), Access::default().condition("kms:MacAlgorithm", alg.as_str()))?;
    ctx.kms.check_mac(&rec, alg, op)?;
    ctx.kms.require_usable(&rec)?;
    Ok((rec, message, alg))
}

pub(super) fn generate_mac(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let (rec, message, alg) = mac_request(ctx, "GenerateMac")?;
    stop_if_dry_run(ctx.req)?;
    let mac = ctx.kms.generate_mac(&rec, alg, &message)?;
    Ok(json!({"Mac": B64.encode(mac), "MacAlgorithm": alg.as_str(), "KeyId": ctx.kms.key_arn(&rec.key_id)}))
}

pub(super) fn verify_mac(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let mac = bounded_blob(ctx.req, "Mac", 6144)?;
    let (rec, message, alg) = mac_request(ctx, "VerifyMac")?;
    stop_if_dry_run(ctx.req)?;
    if !ctx.kms.verify_mac(&rec, alg, &message, &mac)? {
        return Err(KmsError::InvalidMac("The MAC does not verify with this key, message and MAC algorithm.".into()));
    }
    Ok(json!({"KeyId": ctx.kms.key_arn(&rec.key_id), "MacValid": true, "MacAlgorithm": alg.as_str()}))
}

pub(super) fn get_public_key(ctx: &mut Ctx<'_>) -> Result<Value, KmsError> {
    let rec = ctx.target("KeyId", true, "kms:GetPublicKey", Access::default())?;
    let public_key = ctx.kms.public_key(&rec)?;
    let mut out = json!({"KeyId": ctx.kms.key_arn(&rec.key_id), "PublicKey": B64.encode(public_key),
        "CustomerMasterKeySpec": rec.key_spec.as_str(), "KeySpec": rec.key_spec.as_str(),
        "KeyUsage": rec.key_usage.as_str()});
    let enc: Vec<&str> = rec.key_spec.encryption_algorithms(rec.key_usage).iter().map(|a| a.as_str()).collect();
    let sig: Vec<&str> = rec.key_spec.signing_algorithms(rec.key_usage).iter().map(|a| a.as_str()).collect();
    if !enc.is_empty() {
        out["EncryptionAlgorithms"] = json!(enc);
    }
    if !sig.is_empty() {
        out["SigningAlgorithms"] = json!(sig);
    }
    Ok(out)
}
