//! Shared by the asymmetric, grant and BYOK tests: a key store on a fake clock, calls through
//! the JSON API, and customer-side wrapping of key material for import (as a BYOK client does,
//! with aws-lc-rs standing in for openssl).

#![allow(dead_code)]

use std::sync::Arc;

use aws_lc_rs::key_wrap::{AesKek, KeyWrapPadded, AES_256};
use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA256_MGF1SHA256};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sealbox_kms::api::{handle, AuthzRequest, CallSummary};
use sealbox_kms::{Caller, FakeClock, Kms, KmsConfig, KmsError, RootKey};
use serde_json::{json, Value};

pub const T0: i64 = 1_800_000_000;
pub const DAY: i64 = 86_400;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub kms: Kms,
    pub clock: Arc<FakeClock>,
}

pub fn config() -> KmsConfig {
    KmsConfig { account_id: "000000000000".into(), region: "us-east-1".into() }
}

pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FakeClock::at(T0));
    let root = RootKey::load_or_create_file(&dir.path().join("root.key")).unwrap();
    let kms = Kms::open(&dir.path().join("kms.db"), root, clock.clone(), config()).unwrap();
    Fixture { dir, kms, clock }
}

pub fn allow(_: &AuthzRequest<'_>) -> Result<(), KmsError> {
    Ok(())
}

/// A call as `principal`, decided by `authorize`; returns status, body and audit summary.
pub fn call_with(
    f: &Fixture,
    principal: &str,
    authorize: &dyn Fn(&AuthzRequest<'_>) -> Result<(), KmsError>,
    op: &str,
    body: Value,
) -> (u16, Value, CallSummary) {
    let caller = Caller { principal_arn: principal.into(), ..Default::default() };
    let (reply, summary) = handle(&f.kms, op, body.to_string().as_bytes(), &caller, authorize);
    (reply.status, serde_json::from_slice(&reply.body).unwrap(), summary)
}

pub fn call(f: &Fixture, op: &str, body: Value) -> (u16, Value) {
    let (s, v, _) = call_with(f, "arn:aws:iam::000000000000:root", &allow, op, body);
    (s, v)
}

pub fn ok(f: &Fixture, op: &str, body: Value) -> Value {
    let (status, v) = call(f, op, body);
    assert_eq!(status, 200, "{op}: {v}");
    v
}

/// "ok" or the error's `__type` (asserting a 400 with a message).
pub fn outcome(f: &Fixture, op: &str, body: Value) -> String {
    let (status, v) = call(f, op, body);
    if status == 200 {
        "ok".into()
    } else {
        assert_eq!(status, 400, "{op}: {v}");
        assert!(v["message"].is_string(), "{op}: {v}");
        v["__type"].as_str().unwrap().to_owned()
    }
}

pub fn create(f: &Fixture, body: Value) -> String {
    ok(f, "CreateKey", body)["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned()
}

pub fn key(f: &Fixture, spec: &str, usage: &str) -> String {
    create(f, json!({"KeySpec": spec, "KeyUsage": usage}))
}

pub fn b64(v: &Value) -> Vec<u8> {
    B64.decode(v.as_str().unwrap()).unwrap()
}

pub fn state(f: &Fixture, id: &str) -> String {
    ok(f, "DescribeKey", json!({"KeyId": id}))["KeyMetadata"]["KeyState"].as_str().unwrap().to_owned()
}

/// RSAES-OAEP-SHA-256 under a DER SubjectPublicKeyInfo (what `openssl pkeyutl -encrypt -pkeyopt
/// rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256` does).
pub fn oaep_sha256(spki: &[u8], data: &[u8]) -> Vec<u8> {
    let pk = OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(spki).unwrap()).unwrap();
    let mut out = vec![0u8; pk.ciphertext_size()];
    pk.encrypt(&OAEP_SHA256_MGF1SHA256, data, &mut out, None).unwrap().to_vec()
}

/// RSA_AES_KEY_WRAP_SHA_256: OAEP(fresh AES-256 key) ‖ AES-KWP(that key, material), as AWS's
/// BYOK guide builds it with `openssl enc -id-aes256-wrap-pad`.
pub fn rsa_aes_wrap(spki: &[u8], material: &[u8]) -> Vec<u8> {
    let aes = [0x5au8; 32];
    let mut kwp = vec![0u8; material.len() + 16];
    let n = AesKek::new(&AES_256, &aes).unwrap().wrap_with_padding(material, &mut kwp).unwrap().len();
    [oaep_sha256(spki, &aes), kwp[..n].to_vec()].concat()
}

/// GetParametersForImport + ImportKeyMaterial (never expiring) of `material` into `id`.
pub fn import(f: &Fixture, id: &str, material: &[u8], algorithm: &str) -> Value {
    let (token, wrapped) = wrapped_for_import(f, id, material, algorithm);
    ok(
        f,
        "ImportKeyMaterial",
        json!({"KeyId": id, "ImportToken": B64.encode(token), "EncryptedKeyMaterial": B64.encode(wrapped),
               "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}),
    )
}

/// (import token, wrapped material) ready for ImportKeyMaterial.
pub fn wrapped_for_import(f: &Fixture, id: &str, material: &[u8], algorithm: &str) -> (Vec<u8>, Vec<u8>) {
    let p = ok(
        f,
        "GetParametersForImport",
        json!({"KeyId": id, "WrappingAlgorithm": algorithm, "WrappingKeySpec": "RSA_2048"}),
    );
    let spki = b64(&p["PublicKey"]);
    let wrapped =
        if algorithm.starts_with("RSA_AES") { rsa_aes_wrap(&spki, material) } else { oaep_sha256(&spki, material) };
    (b64(&p["ImportToken"]), wrapped)
}
