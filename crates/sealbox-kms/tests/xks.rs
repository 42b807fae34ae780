//! The XKS proxy API through `xks::handle`, on a real key store with a fake clock: which keys are
//! served, round trips with AAD and metadata, rotation, key states, tampering, every validation
//! error, CDIV, health. The server adds only HTTP, SigV4, mTLS and auditing on top.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sealbox_kms::api::handle as kms_handle;
use sealbox_kms::xks::{self, XksOperation};
use sealbox_kms::Caller;
use serde_json::{json, Value};

mod common;
use common::{allow, fixture, Fixture};

/// A KMS API call (to create, tag, disable, rotate keys as a user would).
fn kms(f: &Fixture, op: &str, body: Value) -> Value {
    let (reply, _) = kms_handle(&f.kms, op, body.to_string().as_bytes(), &Caller::default(), &allow);
    let v: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(reply.status, 200, "{op}: {v}");
    v
}

fn xks_key(f: &Fixture) -> String {
    let id =
        kms(f, "CreateKey", json!({"Description": "for AWS"}))["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    kms(f, "TagResource", json!({"KeyId": id, "Tags": [{"TagKey": "sealbox:xks", "TagValue": "true"}]}));
    id
}

fn metadata(op: &str) -> Value {
    json!({
        "awsPrincipalArn": "arn:aws:iam::123456789012:user/Alice",
        "kmsKeyArn": "arn:aws:kms:us-east-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "kmsOperation": op,
        "kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae",
        "kmsViaService": "ebs",
    })
}

fn call(f: &Fixture, op: XksOperation, key: Option<&str>, body: Value) -> (u16, Value, xks::XksCallSummary) {
    let (reply, summary) = xks::handle(&f.kms, op, key, body.to_string().as_bytes());
    let v: Value = serde_json::from_slice(&reply.body).unwrap();
    (reply.status, v, summary)
}

fn error_name(f: &Fixture, op: XksOperation, key: &str, body: Value) -> (u16, String) {
    let (status, v, _) = call(f, op, Some(key), body);
    assert_ne!(status, 200, "{op:?} should fail: {v}");
    (status, v["errorName"].as_str().unwrap().to_owned())
}

fn encrypt(f: &Fixture, key: &str, plaintext: &[u8], aad: Option<&[u8]>) -> Value {
    let mut body = json!({
        "requestMetadata": metadata("GenerateDataKey"),
        "plaintext": B64.encode(plaintext),
        "encryptionAlgorithm": "AES_GCM",
    });
    if let Some(a) = aad {
        body["additionalAuthenticatedData"] = json!(B64.encode(a));
    }
    let (status, v, _) = call(f, XksOperation::Encrypt, Some(key), body);
    assert_eq!(status, 200, "{v}");
    v
}

fn decrypt_body(sealed: &Value, aad: Option<&[u8]>) -> Value {
    let mut body = json!({
        "requestMetadata": metadata("Decrypt"),
        "ciphertext": sealed["ciphertext"],
        "ciphertextMetadata": sealed["ciphertextMetadata"],
        "initializationVector": sealed["initializationVector"],
        "authenticationTag": sealed["authenticationTag"],
        "encryptionAlgorithm": "AES_GCM",
    });
    if let Some(a) = aad {
        body["additionalAuthenticatedData"] = json!(B64.encode(a));
    }
    body
}

fn decrypt(f: &Fixture, key: &str, body: Value) -> Result<Vec<u8>, (u16, String)> {
    let (status, v, _) = call(f, XksOperation::Decrypt, Some(key), body);
    if status == 200 {
        return Ok(B64.decode(v["plaintext"].as_str().unwrap()).unwrap());
    }
    Err((status, v["errorName"].as_str().unwrap().to_owned()))
}

fn invalid_ciphertext() -> Result<Vec<u8>, (u16, String)> {
    Err((400, "InvalidCiphertextException".into()))
}

#[test]
fn metadata_encrypt_decrypt_round_trip_with_the_specs_shapes() {
    let f = fixture();
    let key = xks_key(&f);
    let (status, v, summary) =
        call(&f, XksOperation::GetKeyMetadata, Some(&key), json!({"requestMetadata": metadata("CreateKey")}));
    assert_eq!(status, 200);
    assert_eq!(v, json!({"keySpec": "AES_256", "keyUsage": ["ENCRYPT", "DECRYPT"], "keyStatus": "ENABLED"}));
    assert_eq!(summary.key_arn.as_deref(), Some(f.kms.key_arn(&key).as_str()));
    assert_eq!(summary.metadata_str("kmsRequestId"), Some("4112f4d6-db54-4af4-ae30-c55a22a8dfae"));

    let aad = b"project=nile,department=marketing";
    let sealed = encrypt(&f, &key, b"Hello World!", Some(aad));
    let fields: Vec<&String> = sealed.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["authenticationTag", "ciphertext", "ciphertextMetadata", "initializationVector"]);
    let len = |name: &str| B64.decode(sealed[name].as_str().unwrap()).unwrap().len();
    assert_eq!(len("ciphertext"), 12, "as long as the plaintext");
    assert_eq!(len("initializationVector"), 12);
    assert_eq!(len("authenticationTag"), 16);
    assert_eq!(len("ciphertextMetadata"), 20, "at most 20 bytes (spec)");
    assert_eq!(decrypt(&f, &key, decrypt_body(&sealed, Some(aad))).unwrap(), b"Hello World!");

    // No AAD at all, and the largest sizes the spec requires (4300 bytes, 8192 bytes of AAD).
    let sealed = encrypt(&f, &key, b"", None);
    assert_eq!(decrypt(&f, &key, decrypt_body(&sealed, None)).unwrap(), b"");
    let big = vec![0x5a; 4300];
    let big_aad = vec![0xa5; 8192];
    let sealed = encrypt(&f, &key, &big, Some(&big_aad));
    assert_eq!(decrypt(&f, &key, decrypt_body(&sealed, Some(&big_aad))).unwrap(), big);
}

#[test]
fn only_tagged_customer_keys_are_served() {
    let f = fixture();
    let untagged = kms(&f, "CreateKey", json!({}))["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let meta = || json!({"requestMetadata": metadata("CreateKey")});
    let not_found = (404, "KeyNotFoundException".to_owned());
    assert_eq!(error_name(&f, XksOperation::GetKeyMetadata, &untagged, meta()), not_found);
    kms(&f, "TagResource", json!({"KeyId": untagged, "Tags": [{"TagKey": "sealbox:xks", "TagValue": "false"}]}));
    assert_eq!(error_name(&f, XksOperation::GetKeyMetadata, &untagged, meta()), not_found, "only `true` serves");
    kms(&f, "TagResource", json!({"KeyId": untagged, "Tags": [{"TagKey": "sealbox:xks", "TagValue": "true"}]}));
    assert_eq!(call(&f, XksOperation::GetKeyMetadata, Some(&untagged), meta()).0, 200);
    kms(&f, "UntagResource", json!({"KeyId": untagged, "TagKeys": ["sealbox:xks"]}));
    assert_eq!(error_name(&f, XksOperation::GetKeyMetadata, &untagged, meta()), not_found, "untagging withdraws it");

    // The AWS managed aws/s3 key is never served, even when tagged.
    let aws_s3 = f.kms.s3_default_key().unwrap();
    f.kms.tag(&aws_s3, &[("sealbox:xks".into(), "true".into())]).unwrap();
    assert_eq!(error_name(&f, XksOperation::GetKeyMetadata, &aws_s3.key_id, meta()), not_found);

    for unknown in ["00000000-0000-0000-0000-000000000000", "alias-looking.name"] {
        assert_eq!(error_name(&f, XksOperation::GetKeyMetadata, unknown, meta()), not_found);
    }
    // Aliases and ARNs are not external key ids; characters outside the spec's set are invalid.
    assert_eq!(
        error_name(&f, XksOperation::GetKeyMetadata, "alias%2Fx", meta()),
        (400, "ValidationException".to_owned())
    );
}

#[test]
fn wrong_aad_tampering_and_moved_ciphertexts_are_invalid_ciphertext() {
    let f = fixture();
    let key = xks_key(&f);
    let other = xks_key(&f);
    let aad = b"context";
    let sealed = encrypt(&f, &key, b"data key bytes", Some(aad));
    assert_eq!(decrypt(&f, &key, decrypt_body(&sealed, Some(b"contexT"))), invalid_ciphertext());
    assert_eq!(decrypt(&f, &key, decrypt_body(&sealed, None)), invalid_ciphertext());
    assert_eq!(decrypt(&f, &other, decrypt_body(&sealed, Some(aad))), invalid_ciphertext(), "bound to its key");
    for field in ["ciphertext", "initializationVector", "authenticationTag", "ciphertextMetadata"] {
        let mut bytes = B64.decode(sealed[field].as_str().unwrap()).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        let mut body = decrypt_body(&sealed, Some(aad));
        body[field] = json!(B64.encode(&bytes));
        assert_eq!(decrypt(&f, &key, body), invalid_ciphertext(), "{field} flipped");
    }
    // The spec's trap: metadata passed as AAD and no metadata must not open.
    let no_aad = encrypt(&f, &key, b"k", None);
    let mut body = decrypt_body(&no_aad, None);
    body["additionalAuthenticatedData"] = no_aad["ciphertextMetadata"].clone();
    body.as_object_mut().unwrap().remove("ciphertextMetadata");
    assert_eq!(decrypt(&f, &key, body), invalid_ciphertext());
    // Metadata naming a material version the key does not have.
    let mut meta = B64.decode(sealed["ciphertextMetadata"].as_str().unwrap()).unwrap();
    meta[1..5].copy_from_slice(&7u32.to_be_bytes());
    let mut body = decrypt_body(&sealed, Some(aad));
    body["ciphertextMetadata"] = json!(B64.encode(&meta));
    assert_eq!(decrypt(&f, &key, body), invalid_ciphertext());
    // A 16-byte IV is allowed by the spec but never written by us.
    let mut body = decrypt_body(&sealed, Some(aad));
    body["initializationVector"] = json!(B64.encode([0u8; 16]));
    assert_eq!(decrypt(&f, &key, body), invalid_ciphertext());
}

#[test]
fn rotation_new_encrypts_use_new_material_old_ones_still_decrypt() {
    let f = fixture();
    let key = xks_key(&f);
    let before = encrypt(&f, &key, b"v1", None);
    kms(&f, "RotateKeyOnDemand", json!({"KeyId": key}));
    let after = encrypt(&f, &key, b"v2", None);
    let version = |sealed: &Value| {
        let m = B64.decode(sealed["ciphertextMetadata"].as_str().unwrap()).unwrap();
        u32::from_be_bytes(m[1..5].try_into().unwrap())
    };
    assert_eq!((version(&before), version(&after)), (1, 2));
    assert_eq!(decrypt(&f, &key, decrypt_body(&before, None)).unwrap(), b"v1");
    assert_eq!(decrypt(&f, &key, decrypt_body(&after, None)).unwrap(), b"v2");
    let (_, _, summary) = call(&f, XksOperation::Decrypt, Some(&key), decrypt_body(&before, None));
    let materials = f.kms.materials(&key).unwrap();
    assert_eq!(summary.key_material_id.as_deref(), Some(materials[0].material_id.as_str()));
}

#[test]
fn disabled_and_pending_deletion_keys_are_invalid_state_and_deleted_keys_are_gone() {
    let f = fixture();
    let key = xks_key(&f);
    let sealed = encrypt(&f, &key, b"secret", None);
    let meta = || json!({"requestMetadata": metadata("DescribeKey")});
    let invalid_state = (400, "InvalidStateException".to_owned());
    kms(&f, "DisableKey", json!({"KeyId": key}));
    assert_eq!(call(&f, XksOperation::GetKeyMetadata, Some(&key), meta()).1["keyStatus"], "DISABLED");
    let enc = json!({"requestMetadata": metadata("Encrypt"), "plaintext": "AA==", "encryptionAlgorithm": "AES_GCM"});
    assert_eq!(error_name(&f, XksOperation::Encrypt, &key, enc.clone()), invalid_state);
    assert_eq!(decrypt(&f, &key, decrypt_body(&sealed, None)), Err(invalid_state.clone()));
    kms(&f, "EnableKey", json!({"KeyId": key}));
    assert_eq!(decrypt(&f, &key, decrypt_body(&sealed, None)).unwrap(), b"secret");
    kms(&f, "ScheduleKeyDeletion", json!({"KeyId": key, "PendingWindowInDays": 7}));
    assert_eq!(call(&f, XksOperation::GetKeyMetadata, Some(&key), meta()).1["keyStatus"], "DISABLED");
    assert_eq!(error_name(&f, XksOperation::Encrypt, &key, enc), invalid_state);
    assert_eq!(decrypt(&f, &key, decrypt_body(&sealed, None)), Err(invalid_state));
    f.clock.advance_days(8);
    assert_eq!(f.kms.purge_deleted_keys().unwrap(), std::slice::from_ref(&key));
    assert_eq!(decrypt(&f, &key, decrypt_body(&sealed, None)), Err((404, "KeyNotFoundException".into())));
}

#[test]
fn cdiv_is_returned_when_asked_and_matches_appendix_c() {
    let f = fixture();
    let key = xks_key(&f);
    let aad = b"aad bytes";
    let body = json!({
        "requestMetadata": metadata("GenerateDataKey"),
        "plaintext": B64.encode(b"0123456789abcdef0123456789abcdef"),
        "additionalAuthenticatedData": B64.encode(aad),
        "encryptionAlgorithm": "AES_GCM",
        "ciphertextDataIntegrityValueAlgorithm": "SHA_256",
    });
    let (status, v, _) = call(&f, XksOperation::Encrypt, Some(&key), body.clone());
    assert_eq!(status, 200, "{v}");
    let part = |name: &str| B64.decode(v[name].as_str().unwrap()).unwrap();
    let want = xks::cdiv(
        aad,
        &part("ciphertextMetadata"),
        &part("initializationVector"),
        &part("ciphertext"),
        &part("authenticationTag"),
    );
    assert_eq!(part("ciphertextDataIntegrityValue"), want);
    let mut wrong = body;
    wrong["ciphertextDataIntegrityValueAlgorithm"] = json!("SHA_512");
    assert_eq!(error_name(&f, XksOperation::Encrypt, &key, wrong), (400, "ValidationException".into()));
    assert!(encrypt(&f, &key, b"x", None).get("ciphertextDataIntegrityValue").is_none(), "only when asked");
}

#[test]
fn malformed_requests_are_validation_errors_and_big_ones_unsupported() {
    let f = fixture();
    let key = xks_key(&f);
    let good = json!({"requestMetadata": metadata("Encrypt"), "plaintext": "SGk=", "encryptionAlgorithm": "AES_GCM"});
    let without = |field: &str| {
        let mut b = good.clone();
        b.as_object_mut().unwrap().remove(field);
        b
    };
    let with = |field: &str, v: Value| {
        let mut b = good.clone();
        b[field] = v;
        b
    };
    let mut no_request_id = good.clone();
    no_request_id["requestMetadata"].as_object_mut().unwrap().remove("kmsRequestId");
    let validation = (400, "ValidationException".to_owned());
    for bad in [
        without("requestMetadata"),
        without("plaintext"),
        without("encryptionAlgorithm"),
        no_request_id,
        with("requestMetadata", json!("x")),
        with("plaintext", json!(5)),
        with("plaintext", json!("not base64!")),
        with("plaintext", json!("SGk")),
        with("encryptionAlgorithm", json!("AES_CBC")),
        with("additionalAuthenticatedData", json!("%%%")),
    ] {
        assert_eq!(error_name(&f, XksOperation::Encrypt, &key, bad.clone()), validation, "{bad}");
    }
    let (reply, _) = xks::handle(&f.kms, XksOperation::Encrypt, Some(&key), b"not json");
    assert_eq!(reply.status, 400);
    let (reply, _) = xks::handle(&f.kms, XksOperation::Encrypt, Some(&key), b"[1]");
    assert_eq!(reply.status, 400);
    // Unknown kmsOperations and extra fields are accepted (spec: MUST NOT reject).
    let mut future = good.clone();
    future["requestMetadata"]["kmsOperation"] = json!("BulkEncrypt");
    future["requestMetadata"]["somethingNew"] = json!({"nested": true});
    future["newTopLevelField"] = json!(1);
    assert_eq!(call(&f, XksOperation::Encrypt, Some(&key), future).0, 200);

    let sealed = encrypt(&f, &key, b"x", None);
    for (field, value) in [
        ("initializationVector", B64.encode([0u8; 13])),
        ("authenticationTag", B64.encode([0u8; 15])),
        ("ciphertextMetadata", B64.encode([1u8; 21])),
    ] {
        let mut body = decrypt_body(&sealed, None);
        body[field] = json!(value);
        assert_eq!(decrypt(&f, &key, body), Err(validation.clone()), "{field}");
    }
    let mut no_metadata = decrypt_body(&sealed, None);
    no_metadata.as_object_mut().unwrap().remove("ciphertextMetadata");
    assert_eq!(decrypt(&f, &key, no_metadata), invalid_ciphertext(), "we always write metadata");

    let unsupported = (501, "UnsupportedOperationException".to_owned());
    let huge = B64.encode(vec![0u8; xks::MAX_DATA + 1]);
    assert_eq!(error_name(&f, XksOperation::Encrypt, &key, with("plaintext", json!(huge))), unsupported);
    let huge_aad = B64.encode(vec![0u8; xks::MAX_AAD + 1]);
    assert_eq!(
        error_name(&f, XksOperation::Encrypt, &key, with("additionalAuthenticatedData", json!(huge_aad))),
        unsupported
    );
}

#[test]
fn health_is_a_deep_check_with_the_specs_fields() {
    let f = fixture();
    let (status, v, summary) = call(
        &f,
        XksOperation::GetHealthStatus,
        None,
        json!({"requestMetadata": {"kmsRequestId": "r-1", "kmsOperation": "KmsHealthCheck"}}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["xksProxyFleetSize"], 1);
    for field in ["xksProxyVendor", "xksProxyModel", "ekmVendor"] {
        assert!(!v[field].as_str().unwrap().is_empty(), "{field}");
    }
    let fleet = v["ekmFleetDetails"].as_array().unwrap();
    assert_eq!(fleet.len(), 1);
    assert_eq!(fleet[0]["healthStatus"], "ACTIVE");
    assert!(fleet[0]["id"].is_string() && fleet[0]["model"].is_string());
    assert_eq!(summary.metadata_str("kmsOperation"), Some("KmsHealthCheck"));
    // GetHealthStatus never answers ValidationException: an unreadable body still gets a status.
    let (reply, _) = xks::handle(&f.kms, XksOperation::GetHealthStatus, None, b"garbage");
    assert_eq!(reply.status, 200);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
    #[test]
    fn arbitrary_bodies_never_panic_and_get_a_spec_error(
        op in proptest::sample::select(vec![XksOperation::GetKeyMetadata, XksOperation::Encrypt, XksOperation::Decrypt]),
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
    ) {
        static SHARED: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
        let f = SHARED.get_or_init(fixture);
        let (reply, _) = xks::handle(&f.kms, op, Some("k"), &body);
        let v: Value = serde_json::from_slice(&reply.body).unwrap();
        proptest::prop_assert!(reply.status == 400 || reply.status == 404, "{} {}", reply.status, v);
        proptest::prop_assert!(v["errorName"].is_string());
    }
}
