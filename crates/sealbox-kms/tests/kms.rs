//! The key service through its JSON API, with a fake clock: lifecycle, rotation, deletion,
//! context binding, tampering, bad input.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sealbox_kms::api::handle;
use sealbox_kms::{Caller, FakeClock, Kms, KmsConfig, KmsError, RootKey};
use serde_json::{json, Value};

struct Fixture {
    _dir: tempfile::TempDir,
    kms: Kms,
    clock: Arc<FakeClock>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FakeClock::at(1_800_000_000));
    let root = RootKey::load_or_create_file(&dir.path().join("root.key")).unwrap();
    let kms = Kms::open(
        &dir.path().join("kms.db"),
        root,
        clock.clone(),
        KmsConfig { account_id: "000000000000".into(), region: "us-east-1".into() },
    )
    .unwrap();
    Fixture { _dir: dir, kms, clock }
}

fn allow(_: &sealbox_kms::api::AuthzRequest<'_>) -> Result<(), KmsError> {
    Ok(())
}

fn call(f: &Fixture, op: &str, body: Value) -> (u16, Value) {
    let (reply, _) = handle(&f.kms, op, body.to_string().as_bytes(), &Caller::default(), &allow);
    (reply.status, serde_json::from_slice(&reply.body).unwrap())
}

fn ok(f: &Fixture, op: &str, body: Value) -> Value {
    let (status, v) = call(f, op, body);
    assert_eq!(status, 200, "{op}: {v}");
    v
}

fn err_type(f: &Fixture, op: &str, body: Value) -> String {
    let (status, v) = call(f, op, body);
    assert_ne!(status, 200, "{op} should fail: {v}");
    v["__type"].as_str().unwrap().to_owned()
}

#[test]
fn key_lifecycle_aliases_and_states() {
    let f = fixture();
    let md = ok(&f, "CreateKey", json!({"Description": "app", "Tags": [{"TagKey": "team", "TagValue": "blue"}]}))
        ["KeyMetadata"]
        .clone();
    let id = md["KeyId"].as_str().unwrap().to_owned();
    assert_eq!(md["KeyState"], "Enabled");
    assert_eq!(md["KeyManager"], "CUSTOMER");
    assert!(md["Arn"].as_str().unwrap().ends_with(&format!(":key/{id}")));
    assert!(md["CreationDate"].is_number());
    ok(&f, "CreateAlias", json!({"AliasName": "alias/app", "TargetKeyId": id}));
    assert_eq!(
        err_type(&f, "CreateAlias", json!({"AliasName": "alias/app", "TargetKeyId": id})),
        "AlreadyExistsException"
    );
    assert_eq!(
        err_type(&f, "CreateAlias", json!({"AliasName": "alias/aws/mine", "TargetKeyId": id})),
        "InvalidAliasNameException"
    );
    assert_eq!(err_type(&f, "CreateAlias", json!({"AliasName": "nope", "TargetKeyId": id})), "ValidationException");
    assert_eq!(ok(&f, "DescribeKey", json!({"KeyId": "alias/app"}))["KeyMetadata"]["KeyId"], id);
    let arn = md["Arn"].as_str().unwrap();
    assert_eq!(ok(&f, "DescribeKey", json!({"KeyId": arn}))["KeyMetadata"]["KeyId"], id);
    assert_eq!(
        ok(&f, "DescribeKey", json!({"KeyId": "arn:aws:kms:us-east-1:000000000000:alias/app"}))["KeyMetadata"]["KeyId"],
        id
    );
    assert_eq!(err_type(&f, "DescribeKey", json!({"KeyId": "alias/none"})), "NotFoundException");
    let enc = ok(&f, "Encrypt", json!({"KeyId": "alias/app", "Plaintext": B64.encode(b"hi")}));
    ok(&f, "DisableKey", json!({"KeyId": id}));
    assert_eq!(err_type(&f, "Encrypt", json!({"KeyId": id, "Plaintext": B64.encode(b"hi")})), "DisabledException");
    assert_eq!(err_type(&f, "Decrypt", json!({"CiphertextBlob": enc["CiphertextBlob"]})), "DisabledException");
    ok(&f, "EnableKey", json!({"KeyId": id}));
    let sched = ok(&f, "ScheduleKeyDeletion", json!({"KeyId": id, "PendingWindowInDays": 7}));
    assert_eq!(sched["KeyState"], "PendingDeletion");
    assert_eq!(err_type(&f, "Decrypt", json!({"CiphertextBlob": enc["CiphertextBlob"]})), "KMSInvalidStateException");
    assert_eq!(err_type(&f, "EnableKey", json!({"KeyId": id})), "KMSInvalidStateException");
    assert_eq!(ok(&f, "CancelKeyDeletion", json!({"KeyId": id}))["KeyId"], arn);
    assert_eq!(ok(&f, "DescribeKey", json!({"KeyId": id}))["KeyMetadata"]["KeyState"], "Disabled");
    assert_eq!(err_type(&f, "CancelKeyDeletion", json!({"KeyId": id})), "KMSInvalidStateException");
    assert_eq!(
        err_type(&f, "ScheduleKeyDeletion", json!({"KeyId": id, "PendingWindowInDays": 3})),
        "ValidationException"
    );
    let tags = ok(&f, "ListResourceTags", json!({"KeyId": id}));
    assert_eq!(tags["Tags"][0]["TagKey"], "team");
}

#[test]
fn encrypt_decrypt_context_and_tamper() {
    let f = fixture();
    let id = ok(&f, "CreateKey", json!({}))["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let other = ok(&f, "CreateKey", json!({}))["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let ctx = json!({"purpose": "test", "a": "b"});
    let enc = ok(&f, "Encrypt", json!({"KeyId": id, "Plaintext": B64.encode(b"secret"), "EncryptionContext": ctx}));
    let blob = enc["CiphertextBlob"].as_str().unwrap().to_owned();
    let dec = ok(&f, "Decrypt", json!({"CiphertextBlob": blob, "EncryptionContext": ctx}));
    assert_eq!(B64.decode(dec["Plaintext"].as_str().unwrap()).unwrap(), b"secret");
    assert!(dec["KeyId"].as_str().unwrap().ends_with(&id));
    assert_eq!(err_type(&f, "Decrypt", json!({"CiphertextBlob": blob})), "InvalidCiphertextException");
    assert_eq!(
        err_type(&f, "Decrypt", json!({"CiphertextBlob": blob, "EncryptionContext": {"purpose": "other", "a": "b"}})),
        "InvalidCiphertextException"
    );
    assert_eq!(
        err_type(&f, "Decrypt", json!({"CiphertextBlob": blob, "EncryptionContext": ctx, "KeyId": other})),
        "IncorrectKeyException"
    );
    let raw = B64.decode(&blob).unwrap();
    for i in 0..raw.len() {
        let mut t = raw.clone();
        t[i] ^= 0x40;
        let ty = err_type(&f, "Decrypt", json!({"CiphertextBlob": B64.encode(&t), "EncryptionContext": ctx}));
        assert!(ty == "InvalidCiphertextException" || ty == "NotFoundException", "byte {i}: {ty}");
    }
    // An empty blob is out of the model's range (1..6144): ValidationException, as AWS.
    assert_eq!(err_type(&f, "Decrypt", json!({"CiphertextBlob": ""})), "ValidationException");
    for cut in [1, 10, 24, 56, raw.len() - 1] {
        assert_eq!(
            err_type(&f, "Decrypt", json!({"CiphertextBlob": B64.encode(&raw[..cut])})),
            "InvalidCiphertextException"
        );
    }
    let re =
        ok(&f, "ReEncrypt", json!({"CiphertextBlob": blob, "SourceEncryptionContext": ctx, "DestinationKeyId": other}));
    assert!(re["KeyId"].as_str().unwrap().ends_with(&other));
    let back = ok(&f, "Decrypt", json!({"CiphertextBlob": re["CiphertextBlob"]}));
    assert_eq!(B64.decode(back["Plaintext"].as_str().unwrap()).unwrap(), b"secret");
    let gdk = ok(&f, "GenerateDataKey", json!({"KeyId": id, "KeySpec": "AES_256"}));
    assert_eq!(B64.decode(gdk["Plaintext"].as_str().unwrap()).unwrap().len(), 32);
    assert!(ok(&f, "GenerateDataKeyWithoutPlaintext", json!({"KeyId": id, "NumberOfBytes": 64}))
        .get("Plaintext")
        .is_none());
    assert_eq!(err_type(&f, "GenerateDataKey", json!({"KeyId": id})), "ValidationException");
    assert_eq!(
        err_type(&f, "GenerateDataKey", json!({"KeyId": id, "KeySpec": "AES_256", "NumberOfBytes": 32})),
        "ValidationException"
    );
    assert_eq!(
        err_type(&f, "Encrypt", json!({"KeyId": id, "Plaintext": B64.encode(vec![0u8; 4097])})),
        "ValidationException"
    );
    assert_eq!(
        B64.decode(ok(&f, "GenerateRandom", json!({"NumberOfBytes": 17}))["Plaintext"].as_str().unwrap())
            .unwrap()
            .len(),
        17
    );
}

#[test]
fn rotation_keeps_old_ciphertexts_and_uses_new_material() {
    let f = fixture();
    let id = ok(&f, "CreateKey", json!({}))["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let old = ok(&f, "Encrypt", json!({"KeyId": id, "Plaintext": B64.encode(b"v1")}))["CiphertextBlob"].clone();
    assert_eq!(ok(&f, "GetKeyRotationStatus", json!({"KeyId": id}))["KeyRotationEnabled"], false);
    assert_eq!(
        err_type(&f, "EnableKeyRotation", json!({"KeyId": id, "RotationPeriodInDays": 30})),
        "ValidationException"
    );
    ok(&f, "EnableKeyRotation", json!({"KeyId": id}));
    let st = ok(&f, "GetKeyRotationStatus", json!({"KeyId": id}));
    assert_eq!(st["RotationPeriodInDays"], 365);
    assert_eq!(st["NextRotationDate"].as_f64().unwrap() as i64, 1_800_000_000 + 365 * 86_400);
    f.clock.advance_days(364);
    assert!(f.kms.rotate_due_keys().unwrap().is_empty());
    f.clock.advance_days(2);
    let events = f.kms.rotate_due_keys().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].rotation_type, "AUTOMATIC");
    let new = ok(&f, "Encrypt", json!({"KeyId": id, "Plaintext": B64.encode(b"v2")}))["CiphertextBlob"].clone();
    let old_info = Kms::blob_key_info(&B64.decode(old.as_str().unwrap()).unwrap()).unwrap();
    let new_info = Kms::blob_key_info(&B64.decode(new.as_str().unwrap()).unwrap()).unwrap();
    assert_eq!((old_info.1, new_info.1), (1, 2));
    assert_eq!(
        B64.decode(ok(&f, "Decrypt", json!({"CiphertextBlob": old}))["Plaintext"].as_str().unwrap()).unwrap(),
        b"v1"
    );
    ok(&f, "RotateKeyOnDemand", json!({"KeyId": id}));
    let rotations = ok(&f, "ListKeyRotations", json!({"KeyId": id}))["Rotations"].clone();
    let kinds: Vec<&str> = rotations.as_array().unwrap().iter().map(|r| r["RotationType"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["AUTOMATIC", "ON_DEMAND"]);
    assert_eq!(
        ok(&f, "ListKeyRotations", json!({"KeyId": id, "IncludeKeyMaterial": "ALL_KEY_MATERIAL"}))["Rotations"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // 2560-day periods and disabled keys.
    ok(&f, "EnableKeyRotation", json!({"KeyId": id, "RotationPeriodInDays": 2560}));
    ok(&f, "DisableKey", json!({"KeyId": id}));
    f.clock.advance_days(2561);
    assert!(f.kms.rotate_due_keys().unwrap().is_empty(), "disabled keys do not rotate");
    ok(&f, "EnableKey", json!({"KeyId": id}));
    assert_eq!(f.kms.materials(&id).unwrap().len(), 4, "an overdue key rotates when re-enabled");
}

#[test]
fn deletion_destroys_material_for_good() {
    let f = fixture();
    let id = ok(&f, "CreateKey", json!({}))["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    ok(&f, "CreateAlias", json!({"AliasName": "alias/doomed", "TargetKeyId": id}));
    let blob = ok(&f, "Encrypt", json!({"KeyId": id, "Plaintext": B64.encode(b"gone")}))["CiphertextBlob"].clone();
    ok(&f, "ScheduleKeyDeletion", json!({"KeyId": id, "PendingWindowInDays": 7}));
    f.clock.advance_days(6);
    assert!(f.kms.purge_deleted_keys().unwrap().is_empty());
    f.clock.advance_days(2);
    assert_eq!(f.kms.purge_deleted_keys().unwrap(), vec![id.clone()]);
    assert_eq!(err_type(&f, "DescribeKey", json!({"KeyId": id})), "NotFoundException");
    assert_eq!(err_type(&f, "DescribeKey", json!({"KeyId": "alias/doomed"})), "NotFoundException");
    assert_eq!(err_type(&f, "Decrypt", json!({"CiphertextBlob": blob})), "InvalidCiphertextException");
}

#[test]
fn aws_managed_s3_key_rules() {
    let f = fixture();
    let g = f.kms.generate_data_key(None, &BTreeMap::new()).unwrap();
    let md = ok(&f, "DescribeKey", json!({"KeyId": "alias/aws/s3"}))["KeyMetadata"].clone();
    assert_eq!(md["KeyManager"], "AWS");
    assert!(g.key_arn.ends_with(md["KeyId"].as_str().unwrap()));
    let id = md["KeyId"].as_str().unwrap();
    assert_eq!(err_type(&f, "DisableKey", json!({"KeyId": id})), "UnsupportedOperationException");
    assert_eq!(err_type(&f, "ScheduleKeyDeletion", json!({"KeyId": id})), "UnsupportedOperationException");
    assert_eq!(err_type(&f, "DisableKeyRotation", json!({"KeyId": id})), "UnsupportedOperationException");
    assert_eq!(ok(&f, "GetKeyRotationStatus", json!({"KeyId": id}))["KeyRotationEnabled"], true);
    // The SSE-S3 service key is not a customer key: not listed, not usable through the API.
    let sse = f.kms.generate_sse_s3_key().unwrap();
    assert_eq!(f.kms.list_keys().unwrap().len(), 1);
    assert_eq!(
        err_type(&f, "Decrypt", json!({"CiphertextBlob": B64.encode(&sse.ciphertext_blob)})),
        "InvalidCiphertextException"
    );
    assert_eq!(&f.kms.decrypt_sse_s3_key(&sse.ciphertext_blob).unwrap().plaintext[..], &sse.plaintext[..]);
}

#[test]
fn wrong_root_key_is_refused_before_anything_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = KmsConfig { account_id: "000000000000".into(), region: "us-east-1".into() };
    let clock = Arc::new(FakeClock::at(0));
    let kms =
        Kms::open(&dir.path().join("kms.db"), RootKey::from_bytes(&[1u8; 32]).unwrap(), clock.clone(), cfg.clone())
            .unwrap();
    kms.create_key("x", None, &[]).unwrap();
    drop(kms);
    let wrong =
        Kms::open(&dir.path().join("kms.db"), RootKey::from_bytes(&[2u8; 32]).unwrap(), clock.clone(), cfg.clone());
    assert!(matches!(wrong, Err(KmsError::WrongRootKey)));
    // Changing the root key re-wraps everything.
    let kms =
        Kms::open(&dir.path().join("kms.db"), RootKey::from_bytes(&[1u8; 32]).unwrap(), clock.clone(), cfg.clone())
            .unwrap();
    let key = kms.list_keys().unwrap().remove(0);
    let (blob, _) = kms.encrypt_with(&key, b"kept", &BTreeMap::new()).unwrap();
    let (_old, n) = kms.change_root_key(RootKey::from_bytes(&[3u8; 32]).unwrap()).unwrap();
    assert_eq!(n, 1);
    // The running service keeps working under the new root key.
    assert_eq!(&kms.decrypt_data_key(&blob, &BTreeMap::new()).unwrap().plaintext[..], b"kept");
    kms.create_key("made after the change", None, &[]).unwrap();
    drop(kms);
    let kms = Kms::open(&dir.path().join("kms.db"), RootKey::from_bytes(&[3u8; 32]).unwrap(), clock, cfg).unwrap();
    assert_eq!(&kms.decrypt_data_key(&blob, &BTreeMap::new()).unwrap().plaintext[..], b"kept");
    assert_eq!(kms.list_keys().unwrap().len(), 2);
}

#[test]
fn bad_input_never_panics() {
    let f = fixture();
    assert_eq!(err_type(&f, "NoSuchOp", json!({})), "UnknownOperationException");
    let (status, v) = {
        let (r, _) = handle(&f.kms, "CreateKey", b"{not json", &Caller::default(), &allow);
        (r.status, serde_json::from_slice::<Value>(&r.body).unwrap())
    };
    assert_eq!((status, v["__type"].as_str().unwrap()), (400, "SerializationException"));
    assert_eq!(err_type(&f, "DescribeKey", json!({})), "ValidationException");
    assert_eq!(err_type(&f, "DescribeKey", json!({"KeyId": 5})), "SerializationException");
    // An asymmetric key needs its KeyUsage; specs AWS has and sealbox does not are unsupported.
    assert_eq!(err_type(&f, "CreateKey", json!({"KeySpec": "RSA_2048"})), "ValidationException");
    assert_eq!(err_type(&f, "CreateKey", json!({"KeySpec": "SM2"})), "UnsupportedOperationException");
    assert_eq!(err_type(&f, "CreateKey", json!({"KeySpec": "RSA_1024"})), "ValidationException");
    assert_eq!(err_type(&f, "PutKeyPolicy", json!({"KeyId": "x", "Policy": "{"})), "NotFoundException");
    let id = ok(&f, "CreateKey", json!({}))["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    assert_eq!(
        err_type(&f, "PutKeyPolicy", json!({"KeyId": id, "Policy": "{\"Statement\": 3}"})),
        "MalformedPolicyDocumentException"
    );
    assert_eq!(err_type(&f, "ListKeys", json!({"Limit": 0})), "ValidationException");
    assert_eq!(err_type(&f, "ListKeys", json!({"Marker": "zz"})), "InvalidMarkerException");
    for op in
        ["CreateKey", "Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "ListAliases", "TagResource", "ListKeys"]
    {
        for body in [&b"[]"[..], b"null", b"{\"KeyId\": {}}", b"{\"Plaintext\": \"***\"}", b"\xff\xfe"] {
            let (r, _) = handle(&f.kms, op, body, &Caller::default(), &allow);
            assert!(r.status == 400 || r.status == 200, "{op}");
        }
    }
}

#[test]
fn paging_lists_every_key_once() {
    let f = fixture();
    for _ in 0..7 {
        ok(&f, "CreateKey", json!({}));
    }
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut body = json!({"Limit": 3});
        if let Some(m) = &marker {
            body["Marker"] = json!(m);
        }
        let page = ok(&f, "ListKeys", body);
        seen.extend(page["Keys"].as_array().unwrap().iter().map(|k| k["KeyId"].as_str().unwrap().to_owned()));
        if page["Truncated"] == false {
            break;
        }
        marker = Some(page["NextMarker"].as_str().unwrap().to_owned());
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 7);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
    /// Any body for any operation: a 200 or a 400 with a JSON `__type`, never a panic or a 500.
    #[test]
    fn arbitrary_bodies_never_panic(op in proptest::sample::select(vec!["CreateKey", "Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey",
            "CreateAlias", "ListAliases", "TagResource", "ListKeys", "ScheduleKeyDeletion", "PutKeyPolicy", "EnableKeyRotation", "Nope"]),
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        json_body in "\\{(\"(KeyId|Plaintext|CiphertextBlob|Limit|Marker|Tags|Policy|AliasName|TargetKeyId|NumberOfBytes|KeySpec)\": ?(\"[a-zA-Z0-9/+=:_-]{0,40}\"|-?[0-9]{1,6}|true|null|\\[\\]|\\{\\}),? ?){0,4}\\}") {
        let f = fixture();
        for b in [body.as_slice(), json_body.as_bytes()] {
            let (r, _) = handle(&f.kms, op, b, &Caller::default(), &allow);
            proptest::prop_assert!(r.status == 200 || r.status == 400, "{} -> {}", op, r.status);
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            if r.status == 400 {
                proptest::prop_assert!(v["__type"].is_string());
            }
        }
    }
}
