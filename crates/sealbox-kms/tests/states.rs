//! The key-state table (contract D.3) cell by cell, rotation schedules over years with a fake
//! clock (contract E), crypto-shredding down to the bytes of the database file, concurrency, and
//! the root key providers at open.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sealbox_kms::api::handle;
use sealbox_kms::{Caller, FakeClock, Kms, KmsConfig, KmsError, RootKey};
use serde_json::{json, Value};

const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

struct Fixture {
    dir: tempfile::TempDir,
    kms: Kms,
    clock: Arc<FakeClock>,
}

fn config() -> KmsConfig {
    KmsConfig { account_id: "000000000000".into(), region: "us-east-1".into() }
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FakeClock::at(T0));
    let root = RootKey::load_or_create_file(&dir.path().join("root.key")).unwrap();
    let kms = Kms::open(&dir.path().join("kms.db"), root, clock.clone(), config()).unwrap();
    Fixture { dir, kms, clock }
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

/// "ok" or the error's `__type`.
fn outcome(f: &Fixture, op: &str, body: Value) -> String {
    let (status, v) = call(f, op, body);
    if status == 200 {
        "ok".into()
    } else {
        assert_eq!(status, 400, "{op}: {v}");
        assert!(v["message"].is_string(), "{op}: {v}");
        v["__type"].as_str().unwrap().to_owned()
    }
}

fn new_key(f: &Fixture) -> String {
    ok(f, "CreateKey", json!({}))["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned()
}

const DISABLED: &str = "DisabledException";
const INVALID: &str = "KMSInvalidStateException";

/// Every row of D.3 for every state: the expected outcome of an operation on a fresh key in
/// that state.
#[test]
fn key_state_table() {
    let f = fixture();
    let other = new_key(&f);
    let blob_of = |id: &str| {
        // Encrypted while the key was enabled.
        let b = ok(&f, "Encrypt", json!({"KeyId": id, "Plaintext": B64.encode(b"x")}))["CiphertextBlob"].clone();
        b.as_str().unwrap().to_owned()
    };
    type Case = (&'static str, fn(&str, &str, &str) -> Value, [&'static str; 3]);
    let cases: Vec<Case> = vec![
        ("Encrypt", |id, _, _| json!({"KeyId": id, "Plaintext": "eA=="}), ["ok", DISABLED, INVALID]),
        ("Decrypt", |_, blob, _| json!({"CiphertextBlob": blob}), ["ok", DISABLED, INVALID]),
        (
            "ReEncrypt",
            |_, blob, other| json!({"CiphertextBlob": blob, "DestinationKeyId": other}),
            ["ok", DISABLED, INVALID],
        ),
        ("GenerateDataKey", |id, _, _| json!({"KeyId": id, "KeySpec": "AES_256"}), ["ok", DISABLED, INVALID]),
        (
            "GenerateDataKeyWithoutPlaintext",
            |id, _, _| json!({"KeyId": id, "NumberOfBytes": 16}),
            ["ok", DISABLED, INVALID],
        ),
        ("DescribeKey", |id, _, _| json!({"KeyId": id}), ["ok", "ok", "ok"]),
        ("GetKeyPolicy", |id, _, _| json!({"KeyId": id, "PolicyName": "default"}), ["ok", "ok", "ok"]),
        (
            "PutKeyPolicy",
            |id, _, _| {
                json!({"KeyId": id, "PolicyName": "default",
                "Policy": r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kms:*","Resource":"*"}]}"#})
            },
            ["ok", "ok", "ok"],
        ),
        ("ListResourceTags", |id, _, _| json!({"KeyId": id}), ["ok", "ok", "ok"]),
        ("ListAliases", |id, _, _| json!({"KeyId": id}), ["ok", "ok", "ok"]),
        ("ListKeyPolicies", |id, _, _| json!({"KeyId": id}), ["ok", "ok", "ok"]),
        ("GetKeyRotationStatus", |id, _, _| json!({"KeyId": id}), ["ok", "ok", "ok"]),
        ("ListKeyRotations", |id, _, _| json!({"KeyId": id}), ["ok", "ok", "ok"]),
        (
            "TagResource",
            |id, _, _| json!({"KeyId": id, "Tags": [{"TagKey": "k", "TagValue": "v"}]}),
            ["ok", "ok", INVALID],
        ),
        ("UntagResource", |id, _, _| json!({"KeyId": id, "TagKeys": ["k"]}), ["ok", "ok", INVALID]),
        ("UpdateKeyDescription", |id, _, _| json!({"KeyId": id, "Description": "d"}), ["ok", "ok", INVALID]),
        (
            "CreateAlias",
            |id, _, _| json!({"AliasName": format!("alias/a-{id}"), "TargetKeyId": id}),
            ["ok", "ok", INVALID],
        ),
        ("EnableKeyRotation", |id, _, _| json!({"KeyId": id}), ["ok", DISABLED, INVALID]),
        ("DisableKeyRotation", |id, _, _| json!({"KeyId": id}), ["ok", DISABLED, INVALID]),
        ("RotateKeyOnDemand", |id, _, _| json!({"KeyId": id}), ["ok", DISABLED, INVALID]),
        ("CancelKeyDeletion", |id, _, _| json!({"KeyId": id}), [INVALID, INVALID, "ok"]),
        ("EnableKey", |id, _, _| json!({"KeyId": id}), ["ok", "ok", INVALID]),
        ("DisableKey", |id, _, _| json!({"KeyId": id}), ["ok", "ok", INVALID]),
        ("ScheduleKeyDeletion", |id, _, _| json!({"KeyId": id, "PendingWindowInDays": 7}), ["ok", "ok", INVALID]),
    ];
    for (op, body, expected) in cases {
        for (state, want) in ["Enabled", "Disabled", "PendingDeletion"].into_iter().zip(expected) {
            let id = new_key(&f);
            let blob = blob_of(&id);
            match state {
                "Disabled" => {
                    ok(&f, "DisableKey", json!({"KeyId": id}));
                }
                "PendingDeletion" => {
                    ok(&f, "ScheduleKeyDeletion", json!({"KeyId": id, "PendingWindowInDays": 7}));
                }
                _ => {}
            }
            let got = outcome(&f, op, body(&id, &blob, &other));
            assert_eq!(got, want, "{op} on a {state} key");
        }
    }
}

#[test]
fn state_transitions_and_their_outputs() {
    let f = fixture();
    let id = new_key(&f);
    let arn = format!("arn:aws:kms:us-east-1:000000000000:key/{id}");
    let md = |f: &Fixture| ok(f, "DescribeKey", json!({"KeyId": id}))["KeyMetadata"].clone();
    assert_eq!((md(&f)["KeyState"].as_str(), md(&f)["Enabled"].as_bool()), (Some("Enabled"), Some(true)));
    ok(&f, "DisableKey", json!({"KeyId": id}));
    assert_eq!((md(&f)["KeyState"].as_str(), md(&f)["Enabled"].as_bool()), (Some("Disabled"), Some(false)));
    // Default window: 30 days; output names the key by ARN, dates are epoch numbers.
    let s = ok(&f, "ScheduleKeyDeletion", json!({"KeyId": id}));
    assert_eq!(s["KeyId"], arn.as_str());
    assert_eq!(s["KeyState"], "PendingDeletion");
    assert_eq!(s["PendingWindowInDays"], 30);
    assert_eq!(s["DeletionDate"].as_f64().unwrap() as i64, T0 + 30 * DAY);
    let m = md(&f);
    assert_eq!(m["DeletionDate"].as_f64().unwrap() as i64, T0 + 30 * DAY);
    assert_eq!(m["PendingDeletionWindowInDays"], 30);
    assert_eq!(m["Enabled"], false);
    ok(&f, "CancelKeyDeletion", json!({"KeyId": id}));
    let m = md(&f);
    assert_eq!(m["KeyState"], "Disabled");
    assert!(m.get("DeletionDate").is_none() && m.get("PendingDeletionWindowInDays").is_none());
    for days in [6, 31, 0, -1] {
        assert_eq!(
            outcome(&f, "ScheduleKeyDeletion", json!({"KeyId": id, "PendingWindowInDays": days})),
            "ValidationException"
        );
    }
    assert_eq!(md(&f)["KeyState"], "Disabled", "a refused schedule changes nothing");
    // Key-management operations do not take aliases.
    ok(&f, "EnableKey", json!({"KeyId": id}));
    ok(&f, "CreateAlias", json!({"AliasName": "alias/m", "TargetKeyId": id}));
    assert_eq!(outcome(&f, "DisableKey", json!({"KeyId": "alias/m"})), "NotFoundException");
    assert_eq!(
        outcome(&f, "CreateAlias", json!({"AliasName": "alias/n", "TargetKeyId": "alias/m"})),
        "NotFoundException"
    );
    ok(&f, "DisableKey", json!({"KeyId": arn}));
    let (_, v) = call(&f, "DescribeKey", json!({"KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab"}));
    assert_eq!(
        v["message"],
        "Key 'arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab' does not exist"
    );
}

#[test]
fn key_metadata_has_every_field_aws_clients_read() {
    let f = fixture();
    let m = ok(&f, "CreateKey", json!({"Description": "d"}))["KeyMetadata"].clone();
    for field in [
        "AWSAccountId",
        "KeyId",
        "Arn",
        "CreationDate",
        "Enabled",
        "Description",
        "KeyUsage",
        "KeyState",
        "Origin",
        "KeyManager",
        "CustomerMasterKeySpec",
        "KeySpec",
        "EncryptionAlgorithms",
        "MultiRegion",
        "CurrentKeyMaterialId",
    ] {
        assert!(m.get(field).is_some(), "KeyMetadata.{field} missing: {m}");
    }
    assert_eq!(m["AWSAccountId"], "000000000000");
    assert_eq!(m["CreationDate"].as_f64().unwrap() as i64, T0);
    assert_eq!(m["KeySpec"], "SYMMETRIC_DEFAULT");
    assert_eq!(m["EncryptionAlgorithms"], json!(["SYMMETRIC_DEFAULT"]));
    assert_eq!(m["CurrentKeyMaterialId"].as_str().unwrap().len(), 64);
    // The default key policy gives the account root kms:*.
    let p: Value =
        serde_json::from_str(ok(&f, "GetKeyPolicy", json!({"KeyId": m["KeyId"]}))["Policy"].as_str().unwrap()).unwrap();
    assert_eq!(p["Statement"][0]["Principal"]["AWS"], "arn:aws:iam::000000000000:root");
    assert_eq!(p["Statement"][0]["Action"], "kms:*");
    // Asymmetric and HMAC specs need their KeyUsage, and only the usages AWS allows for them.
    for spec in ["RSA_2048", "HMAC_256", "ECC_NIST_P256"] {
        assert_eq!(outcome(&f, "CreateKey", json!({"KeySpec": spec})), "ValidationException");
    }
    assert_eq!(outcome(&f, "CreateKey", json!({"KeyUsage": "SIGN_VERIFY"})), "ValidationException");
    assert_eq!(
        outcome(&f, "CreateKey", json!({"KeySpec": "ECC_NIST_P256", "KeyUsage": "ENCRYPT_DECRYPT"})),
        "ValidationException"
    );
    assert_eq!(
        outcome(&f, "CreateKey", json!({"KeySpec": "HMAC_256", "KeyUsage": "SIGN_VERIFY"})),
        "ValidationException"
    );
    assert_eq!(outcome(&f, "CreateKey", json!({"KeyUsage": "KEY_AGREEMENT"})), "UnsupportedOperationException");
    assert_eq!(outcome(&f, "CreateKey", json!({"Origin": "AWS_CLOUDHSM"})), "UnsupportedOperationException");
    assert_eq!(outcome(&f, "CreateKey", json!({"Origin": "EXTERNAL"})), "ok");
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*"}]}"#;
    assert_eq!(outcome(&f, "CreateKey", json!({ "Policy": policy })), "ok");
    assert_eq!(
        outcome(
            &f,
            "CreateKey",
            json!({"Policy": "{\"Statement\": [{\"Effect\": \"Maybe\", \"Action\": \"kms:*\", \"Resource\": \"*\", \"Principal\": \"*\"}]}"})
        ),
        "MalformedPolicyDocumentException"
    );
    assert_eq!(outcome(&f, "CreateKey", json!({"Policy": "[]"})), "MalformedPolicyDocumentException");
}

#[test]
fn aliases_follow_aws_rules() {
    let f = fixture();
    let (a, b) = (new_key(&f), new_key(&f));
    ok(&f, "CreateAlias", json!({"AliasName": "alias/app", "TargetKeyId": a}));
    ok(&f, "CreateAlias", json!({"AliasName": "alias/app-2", "TargetKeyId": a}));
    let list = ok(&f, "ListAliases", json!({"KeyId": a}))["Aliases"].clone();
    assert_eq!(list.as_array().unwrap().len(), 2, "a key may have many aliases");
    assert_eq!(list[0]["AliasArn"], "arn:aws:kms:us-east-1:000000000000:alias/app");
    assert_eq!(list[0]["TargetKeyId"], a.as_str());
    assert!(list[0]["CreationDate"].is_number() && list[0]["LastUpdatedDate"].is_number());
    assert_eq!(ok(&f, "ListAliases", json!({"KeyId": b}))["Aliases"], json!([]));
    // UpdateAlias: the old target may be pending deletion, the new one may not.
    ok(&f, "ScheduleKeyDeletion", json!({"KeyId": a, "PendingWindowInDays": 7}));
    ok(&f, "UpdateAlias", json!({"AliasName": "alias/app", "TargetKeyId": b}));
    assert_eq!(ok(&f, "DescribeKey", json!({"KeyId": "alias/app"}))["KeyMetadata"]["KeyId"], b.as_str());
    assert_eq!(outcome(&f, "UpdateAlias", json!({"AliasName": "alias/app", "TargetKeyId": a})), INVALID);
    assert_eq!(outcome(&f, "UpdateAlias", json!({"AliasName": "alias/none", "TargetKeyId": b})), "NotFoundException");
    // DeleteAlias works whatever the state of the key behind it.
    ok(&f, "DeleteAlias", json!({"AliasName": "alias/app-2"}));
    assert_eq!(outcome(&f, "DeleteAlias", json!({"AliasName": "alias/app-2"})), "NotFoundException");
    assert_eq!(outcome(&f, "DeleteAlias", json!({"AliasName": "app"})), "ValidationException");
    f.kms.s3_default_key().unwrap();
    assert_eq!(outcome(&f, "DeleteAlias", json!({"AliasName": "alias/aws/s3"})), "InvalidAliasNameException");
    for bad in ["alias/", "alias/sp ace", "alias/é", &format!("alias/{}", "x".repeat(251))] {
        assert_eq!(
            outcome(&f, "CreateAlias", json!({"AliasName": bad, "TargetKeyId": b})),
            "ValidationException",
            "{bad}"
        );
    }
    // The internal SSE-S3 key is never listed, nor its alias.
    f.kms.generate_sse_s3_key().unwrap();
    let names: Vec<String> = ok(&f, "ListAliases", json!({}))["Aliases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["AliasName"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["alias/app", "alias/aws/s3"]);
}

#[test]
fn tags_are_all_or_nothing() {
    let f = fixture();
    let id = new_key(&f);
    let tags: Vec<Value> = (0..50).map(|i| json!({"TagKey": format!("k{i:02}"), "TagValue": "v"})).collect();
    ok(&f, "TagResource", json!({"KeyId": id, "Tags": tags}));
    let more = json!({"KeyId": id, "Tags": [{"TagKey": "x", "TagValue": "1"}, {"TagKey": "y", "TagValue": "2"}]});
    assert_eq!(outcome(&f, "TagResource", more), "LimitExceededException");
    assert_eq!(f.kms.tags(&id).unwrap().len(), 50, "the refused request added nothing");
    // Paging of tags.
    let page = ok(&f, "ListResourceTags", json!({"KeyId": id, "Limit": 20}));
    assert_eq!(page["Tags"].as_array().unwrap().len(), 20);
    assert_eq!(page["Truncated"], true);
    ok(&f, "UntagResource", json!({"KeyId": id, "TagKeys": ["k00", "k01"]}));
    assert_eq!(f.kms.tags(&id).unwrap().len(), 48);
    assert_eq!(
        outcome(&f, "TagResource", json!({"KeyId": id, "Tags": [{"TagKey": "", "TagValue": "v"}]})),
        "TagException"
    );
}

#[test]
fn automatic_rotation_over_years() {
    let f = fixture();
    let id = new_key(&f);
    ok(&f, "EnableKeyRotation", json!({"KeyId": id}));
    let mut blobs = vec![];
    for year in 1..=3 {
        blobs.push(
            ok(&f, "Encrypt", json!({"KeyId": id, "Plaintext": B64.encode([year as u8])}))["CiphertextBlob"].clone(),
        );
        f.clock.advance_days(365);
        let ev = f.kms.rotate_due_keys().unwrap();
        assert_eq!(ev.len(), 1, "year {year}");
        assert_eq!(ev[0].version, year + 1);
        assert!(f.kms.rotate_due_keys().unwrap().is_empty(), "once per period");
    }
    // Every old ciphertext still decrypts; each names the version that made it.
    for (i, b) in blobs.iter().enumerate() {
        let raw = B64.decode(b.as_str().unwrap()).unwrap();
        assert_eq!(Kms::blob_key_info(&raw).unwrap(), (id.clone(), i as u32 + 1));
        let d = ok(&f, "Decrypt", json!({"CiphertextBlob": b}));
        assert_eq!(B64.decode(d["Plaintext"].as_str().unwrap()).unwrap(), [i as u8 + 1]);
        assert_eq!(d["KeyMaterialId"], f.kms.materials(&id).unwrap()[i].material_id.as_str());
    }
    let newest = ok(&f, "Encrypt", json!({"KeyId": id, "Plaintext": "eA=="}))["CiphertextBlob"].clone();
    assert_eq!(Kms::blob_key_info(&B64.decode(newest.as_str().unwrap()).unwrap()).unwrap().1, 4);
    // Down for three periods: one rotation at start, the schedule restarts from now.
    f.clock.advance_days(3 * 365 + 10);
    assert_eq!(f.kms.rotate_due_keys().unwrap().len(), 1);
    let st = ok(&f, "GetKeyRotationStatus", json!({"KeyId": id}));
    let now = T0 + (6 * 365 + 10) * DAY;
    assert_eq!(st["NextRotationDate"].as_f64().unwrap() as i64, now + 365 * DAY);
    // The longest period.
    ok(&f, "EnableKeyRotation", json!({"KeyId": id, "RotationPeriodInDays": 2560}));
    assert_eq!(
        outcome(&f, "EnableKeyRotation", json!({"KeyId": id, "RotationPeriodInDays": 2561})),
        "ValidationException"
    );
    assert_eq!(
        outcome(&f, "EnableKeyRotation", json!({"KeyId": id, "RotationPeriodInDays": 89})),
        "ValidationException"
    );
    f.clock.advance_days(2559);
    assert!(f.kms.rotate_due_keys().unwrap().is_empty());
    f.clock.advance_days(1);
    assert_eq!(f.kms.rotate_due_keys().unwrap().len(), 1);
    let rotations = ok(&f, "ListKeyRotations", json!({"KeyId": id}))["Rotations"].clone();
    assert_eq!(rotations.as_array().unwrap().len(), 5);
    assert!(rotations
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["RotationType"] == "AUTOMATIC" && r["RotationDate"].is_number()));
    // DisableKeyRotation stops it.
    ok(&f, "DisableKeyRotation", json!({"KeyId": id}));
    f.clock.advance_days(3000);
    assert!(f.kms.rotate_due_keys().unwrap().is_empty());
    assert_eq!(ok(&f, "GetKeyRotationStatus", json!({"KeyId": id}))["KeyRotationEnabled"], false);
}

#[test]
fn disabled_and_pending_keys_do_not_rotate_and_re_enabled_overdue_keys_do() {
    let f = fixture();
    let id = new_key(&f);
    ok(&f, "EnableKeyRotation", json!({"KeyId": id, "RotationPeriodInDays": 90}));
    ok(&f, "DisableKey", json!({"KeyId": id}));
    f.clock.advance_days(100);
    assert!(f.kms.rotate_due_keys().unwrap().is_empty());
    // Still reported enabled while disabled (D.3: status unchanged).
    assert_eq!(ok(&f, "GetKeyRotationStatus", json!({"KeyId": id}))["KeyRotationEnabled"], true);
    ok(&f, "EnableKey", json!({"KeyId": id}));
    assert_eq!(f.kms.materials(&id).unwrap().len(), 2, "overdue: rotates on re-enable");
    let ev = f.kms.rotate_due_keys().unwrap();
    assert_eq!(ev.len(), 1, "the rotation EnableKey did is reported once: {ev:?}");
    assert_eq!((ev[0].version, ev[0].rotation_type.as_str()), (2, "AUTOMATIC"));
    assert!(f.kms.rotate_due_keys().unwrap().is_empty());
    // Not overdue: re-enabling keeps the schedule.
    ok(&f, "DisableKey", json!({"KeyId": id}));
    ok(&f, "EnableKey", json!({"KeyId": id}));
    assert_eq!(f.kms.materials(&id).unwrap().len(), 2);
    // Pending deletion: no rotation, status false; cancelling restores the setting.
    ok(&f, "ScheduleKeyDeletion", json!({"KeyId": id, "PendingWindowInDays": 30}));
    assert_eq!(ok(&f, "GetKeyRotationStatus", json!({"KeyId": id}))["KeyRotationEnabled"], false);
    f.clock.advance_days(95);
    assert!(f.kms.rotate_due_keys().unwrap().is_empty());
    ok(&f, "CancelKeyDeletion", json!({"KeyId": id}));
    assert_eq!(ok(&f, "GetKeyRotationStatus", json!({"KeyId": id}))["KeyRotationEnabled"], true);
}

#[test]
fn on_demand_rotation_limits() {
    let f = fixture();
    let id = new_key(&f);
    for _ in 0..25 {
        ok(&f, "RotateKeyOnDemand", json!({"KeyId": id}));
    }
    assert_eq!(outcome(&f, "RotateKeyOnDemand", json!({"KeyId": id})), "LimitExceededException");
    let r = ok(&f, "ListKeyRotations", json!({"KeyId": id, "Limit": 10}));
    assert_eq!(r["Rotations"].as_array().unwrap().len(), 10);
    assert_eq!(r["Truncated"], true);
    assert_eq!(r["Rotations"][0]["RotationType"], "ON_DEMAND");
    let all = ok(&f, "ListKeyRotations", json!({"KeyId": id, "IncludeKeyMaterial": "ALL_KEY_MATERIAL", "Limit": 100}));
    let rows = all["Rotations"].as_array().unwrap();
    assert_eq!(rows.len(), 26);
    assert!(rows[0].get("RotationType").is_none(), "the original material has no rotation");
    assert_eq!(rows[25]["KeyMaterialState"], "CURRENT");
    assert_eq!(rows[0]["KeyMaterialState"], "NON_CURRENT");
    // On demand does not shift the automatic schedule, and conflicts with an imminent one.
    let k2 = new_key(&f);
    ok(&f, "EnableKeyRotation", json!({"KeyId": k2, "RotationPeriodInDays": 90}));
    let next = ok(&f, "GetKeyRotationStatus", json!({"KeyId": k2}))["NextRotationDate"].clone();
    ok(&f, "RotateKeyOnDemand", json!({"KeyId": k2}));
    assert_eq!(ok(&f, "GetKeyRotationStatus", json!({"KeyId": k2}))["NextRotationDate"], next);
    f.clock.advance_secs(90 * DAY - 10 * 60);
    assert_eq!(outcome(&f, "RotateKeyOnDemand", json!({"KeyId": k2})), "ConflictException");
}

/// After the waiting period the material is gone: not in the key store, not in the database
/// file's bytes (free pages or WAL), and every ciphertext under the key is dead.
#[test]
fn purge_shreds_material_down_to_the_file() {
    let f = fixture();
    let id = new_key(&f);
    let keep = new_key(&f);
    ok(&f, "RotateKeyOnDemand", json!({"KeyId": id}));
    let wrapped: Vec<Vec<u8>> = {
        let c = rusqlite::Connection::open(f.dir.path().join("kms.db")).unwrap();
        let mut st = c.prepare("SELECT wrapped FROM key_material WHERE key_id = ?1").unwrap();
        let rows = st.query_map([&id], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    };
    assert_eq!(wrapped.len(), 2);
    let ctx = BTreeMap::from([("aws:s3:arn".to_owned(), "arn:aws:s3:::b/o".to_owned())]);
    let dek = f.kms.generate_data_key(Some(&id), &ctx).unwrap();
    ok(&f, "CreateAlias", json!({"AliasName": "alias/doomed", "TargetKeyId": id}));
    ok(&f, "TagResource", json!({"KeyId": id, "Tags": [{"TagKey": "a", "TagValue": "b"}]}));
    ok(&f, "ScheduleKeyDeletion", json!({"KeyId": id, "PendingWindowInDays": 7}));
    f.clock.advance_days(7);
    assert_eq!(f.kms.purge_deleted_keys().unwrap(), vec![id.clone()]);
    assert!(f.kms.purge_deleted_keys().unwrap().is_empty());
    let describe = outcome(&f, "DescribeKey", json!({"KeyId": id}));
    assert_eq!(describe, "NotFoundException");
    assert_eq!(outcome(&f, "DescribeKey", json!({"KeyId": "alias/doomed"})), "NotFoundException");
    let e = f.kms.decrypt_data_key(&dek.ciphertext_blob, &ctx).err().unwrap();
    assert!(matches!(e, KmsError::InvalidCiphertext(_) | KmsError::NotFound(_)), "{e:?}");
    assert!(f.kms.materials(&id).unwrap().is_empty());
    assert!(f.kms.tags(&id).unwrap().is_empty());
    assert_eq!(ok(&f, "ListKeys", json!({}))["Keys"].as_array().unwrap().len(), 1);
    for file in ["kms.db", "kms.db-wal"] {
        let bytes = std::fs::read(f.dir.path().join(file)).unwrap_or_default();
        for w in &wrapped {
            assert!(!bytes.windows(w.len()).any(|win| win == &w[..]), "wrapped material still in {file}");
        }
    }
    ok(&f, "Encrypt", json!({"KeyId": keep, "Plaintext": "eA=="}));
}

#[test]
fn concurrent_first_use_makes_one_aws_s3_key() {
    let f = fixture();
    let kms = Arc::new(f.kms);
    let ctx = BTreeMap::new();
    let arns: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let (kms, ctx) = (&kms, &ctx);
                s.spawn(move || kms.generate_data_key(None, ctx).unwrap().key_arn)
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(arns.windows(2).all(|w| w[0] == w[1]), "{arns:?}");
    assert_eq!(kms.list_keys().unwrap().len(), 1);
    let sse: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4).map(|_| s.spawn(|| kms.generate_sse_s3_key().unwrap().key_arn)).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(sse.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(kms.list_keys().unwrap().len(), 1, "the SSE-S3 key is not listed");
}

#[test]
fn concurrent_rotations_and_state_changes_lose_nothing() {
    let f = fixture();
    let kms = Arc::new(f.kms);
    let ids: Vec<String> = (0..4).map(|_| kms.create_key("", None, &[]).unwrap().key_id).collect();
    std::thread::scope(|s| {
        for id in &ids {
            let kms = &kms;
            s.spawn(move || {
                for _ in 0..10 {
                    let rec = kms.key(id).unwrap().unwrap();
                    kms.rotate_on_demand(&rec).unwrap();
                }
            });
            s.spawn(move || {
                for i in 0..10 {
                    let rec = kms.key(id).unwrap().unwrap();
                    kms.set_description(&rec, &format!("d{i}")).unwrap();
                }
            });
        }
    });
    for id in &ids {
        let rec = kms.key(id).unwrap().unwrap();
        assert_eq!(rec.on_demand_rotations, 10, "no rotation count lost to a concurrent update");
        assert_eq!(rec.description, "d9");
        let versions: Vec<u32> = kms.materials(id).unwrap().iter().map(|m| m.version).collect();
        assert_eq!(versions, (1..=11).collect::<Vec<_>>());
    }
}

#[test]
fn passphrase_root_key_and_wrong_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kms.db");
    let clock = Arc::new(FakeClock::at(T0));
    let salt = Kms::passphrase_salt(&db).unwrap();
    assert_eq!(salt.len(), 16);
    assert_eq!(Kms::passphrase_salt(&db).unwrap(), salt, "the salt is stored once");
    let kms =
        Kms::open(&db, RootKey::from_passphrase(b"correct horse", &salt).unwrap(), clock.clone(), config()).unwrap();
    let key = kms.create_key("p", None, &[]).unwrap();
    let (blob, _) = kms.encrypt_with(&key, b"data", &BTreeMap::new()).unwrap();
    drop(kms);
    let before = std::fs::read(&db).unwrap();
    let wrong = Kms::open(&db, RootKey::from_passphrase(b"wrong horse", &salt).unwrap(), clock.clone(), config());
    assert!(matches!(wrong, Err(KmsError::WrongRootKey)));
    assert_eq!(std::fs::read(&db).unwrap(), before, "a wrong root key touches nothing");
    let kms = Kms::open(&db, RootKey::from_passphrase(b"correct horse", &salt).unwrap(), clock, config()).unwrap();
    assert_eq!(&kms.decrypt_data_key(&blob, &BTreeMap::new()).unwrap().plaintext[..], b"data");
}

#[test]
fn root_key_change_keeps_everything_readable() {
    let f = fixture();
    let id = new_key(&f);
    ok(&f, "RotateKeyOnDemand", json!({"KeyId": id}));
    let blob = ok(&f, "Encrypt", json!({"KeyId": id, "Plaintext": B64.encode(b"before")}))["CiphertextBlob"].clone();
    let sealed = f.kms.seal_secret(b"an access key secret", "iam").unwrap();
    let ids_before = f.kms.materials(&id).unwrap();
    let (old, n) = f.kms.change_root_key(RootKey::from_bytes(&[9u8; 32]).unwrap()).unwrap();
    assert_eq!(n, 2);
    assert_eq!(f.kms.materials(&id).unwrap(), ids_before, "material ids do not change");
    let resealed = f.kms.reseal_secret(&old, &sealed, "iam").unwrap();
    assert_eq!(&f.kms.open_secret(&resealed, "iam").unwrap()[..], b"an access key secret");
    assert!(f.kms.open_secret(&sealed, "iam").is_err());
    drop(f.kms);
    // The old key file no longer opens the store; the new key does, and old blobs decrypt.
    let old_file = RootKey::load_or_create_file(&f.dir.path().join("root.key")).unwrap();
    let db = f.dir.path().join("kms.db");
    assert!(matches!(Kms::open(&db, old_file, f.clock.clone(), config()), Err(KmsError::WrongRootKey)));
    let kms = Kms::open(&db, RootKey::from_bytes(&[9u8; 32]).unwrap(), f.clock.clone(), config()).unwrap();
    let f = Fixture { dir: f.dir, kms, clock: f.clock };
    let d = ok(&f, "Decrypt", json!({"CiphertextBlob": blob}));
    assert_eq!(B64.decode(d["Plaintext"].as_str().unwrap()).unwrap(), b"before");
    ok(&f, "Encrypt", json!({"KeyId": id, "Plaintext": "eA=="}));
}

#[test]
fn root_key_file_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("root.key");
    RootKey::load_or_create_file(&p).unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read(&p).unwrap().len(), 32);
    for mode in [0o640, 0o604, 0o644, 0o660] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        let e = RootKey::load_or_create_file(&p).unwrap_err();
        assert!(matches!(e, KmsError::RootKey(ref m) if m.contains("chmod 600")), "{mode:o}: {e:?}");
    }
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400)).unwrap();
    RootKey::load_or_create_file(&p).unwrap();
    let short = dir.path().join("short.key");
    std::fs::write(&short, [0u8; 31]).unwrap();
    std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(RootKey::load_or_create_file(&short).is_err());
}

#[test]
fn s3_facing_api() {
    let f = fixture();
    let id = new_key(&f);
    ok(&f, "CreateAlias", json!({"AliasName": "alias/bucket-key", "TargetKeyId": id}));
    let arn = f.kms.key_arn(&id);
    let ctx = BTreeMap::from([("aws:s3:arn".to_owned(), "arn:aws:s3:::b".to_owned())]);
    for r in [id.as_str(), arn.as_str(), "alias/bucket-key", "arn:aws:kms:us-east-1:000000000000:alias/bucket-key"] {
        let g = f.kms.generate_data_key(Some(r), &ctx).unwrap();
        assert_eq!(g.key_arn, arn);
        assert_eq!(g.plaintext.len(), 32);
        let d = f.kms.decrypt_data_key(&g.ciphertext_blob, &ctx).unwrap();
        assert_eq!(&d.plaintext[..], &g.plaintext[..]);
        assert_eq!(d.material_id, g.material_id);
        assert!(f.kms.decrypt_data_key(&g.ciphertext_blob, &BTreeMap::new()).is_err(), "context is bound");
    }
    assert!(matches!(
        f.kms.generate_data_key(Some("arn:aws:kms:eu-west-1:000000000000:key/x"), &ctx),
        Err(KmsError::NotFound(_))
    ));
    let before = f.kms.stats.generate_data_key.load(std::sync::atomic::Ordering::Relaxed);
    f.kms.generate_data_key(None, &ctx).unwrap();
    assert_eq!(f.kms.stats.generate_data_key.load(std::sync::atomic::Ordering::Relaxed), before + 1);
    // An SSE-S3 blob is not a customer blob, and a customer blob is not an SSE-S3 blob.
    let sse = f.kms.generate_sse_s3_key().unwrap();
    assert!(f.kms.decrypt_data_key(&sse.ciphertext_blob, &BTreeMap::new()).is_err());
    let cust = f.kms.generate_data_key(Some(&id), &BTreeMap::new()).unwrap();
    assert!(f.kms.decrypt_sse_s3_key(&cust.ciphertext_blob).is_err());
    // The hidden key rotates yearly like aws/s3.
    f.clock.advance_days(366);
    let ev = f.kms.rotate_due_keys().unwrap();
    assert_eq!(ev.len(), 2, "aws/s3 and the SSE-S3 service key: {ev:?}");
    let sse2 = f.kms.generate_sse_s3_key().unwrap();
    assert_eq!(Kms::blob_key_info(&sse2.ciphertext_blob).unwrap().1, 2);
    assert_eq!(&f.kms.decrypt_sse_s3_key(&sse.ciphertext_blob).unwrap().plaintext[..], &sse.plaintext[..]);
    // Disabled keys refuse data keys with the error S3 maps to KMS.DisabledException.
    ok(&f, "DisableKey", json!({"KeyId": id}));
    let e = f.kms.generate_data_key(Some(&id), &ctx).err().unwrap();
    assert_eq!((e.aws_type(), e.status()), ("DisabledException", 400));
}

#[test]
fn kms_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Kms>();
}

/// The remaining lines of WIRE.md that no other test states.
#[test]
fn wire_md_details() {
    let f = fixture();
    let id = new_key(&f);
    let enc = ok(&f, "Encrypt", json!({"KeyId": id, "Plaintext": B64.encode(b"secret")}));
    assert_eq!(B64.decode(enc["CiphertextBlob"].as_str().unwrap()).unwrap().len(), 72 + 6);
    let g = ok(&f, "GenerateDataKey", json!({"KeyId": id, "KeySpec": "AES_256"}));
    assert_eq!(B64.decode(g["CiphertextBlob"].as_str().unwrap()).unwrap().len(), 104);
    assert_eq!(g["KeyMaterialId"].as_str().unwrap().len(), 64);
    for n in [0, 1025] {
        assert_eq!(outcome(&f, "GenerateDataKey", json!({"KeyId": id, "NumberOfBytes": n})), "ValidationException");
        assert_eq!(outcome(&f, "GenerateRandom", json!({ "NumberOfBytes": n })), "ValidationException");
    }
    assert_eq!(outcome(&f, "Encrypt", json!({"KeyId": id, "Plaintext": ""})), "ValidationException");
    assert_eq!(outcome(&f, "ListKeys", json!({"Limit": 1001})), "ValidationException");
    assert_eq!(
        outcome(&f, "Sign", json!({"KeyId": id, "Message": "eA==", "SigningAlgorithm": "ECDSA_SHA_256"})),
        "InvalidKeyUsageException"
    );
    assert_eq!(outcome(&f, "DeriveSharedSecret", json!({"KeyId": id})), "UnsupportedOperationException");
    assert_eq!(outcome(&f, "CreateKey", json!({"MultiRegion": true})), "UnsupportedOperationException");
    assert_eq!(ok(&f, "ListKeyPolicies", json!({"KeyId": id}))["PolicyNames"], json!(["default"]));
    // alias/aws/s3 is made by describing it, and is AWS-managed.
    let s3 =
        ok(&f, "DescribeKey", json!({"KeyId": "alias/aws/s3"}))["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let policy = ok(&f, "GetKeyPolicy", json!({"KeyId": s3}))["Policy"].clone();
    for (op, body) in [
        ("EnableKeyRotation", json!({"KeyId": s3})),
        ("RotateKeyOnDemand", json!({"KeyId": s3})),
        ("PutKeyPolicy", json!({"KeyId": s3, "Policy": policy})),
        ("CreateAlias", json!({"AliasName": "alias/mine", "TargetKeyId": s3})),
    ] {
        assert_eq!(outcome(&f, op, body), "UnsupportedOperationException", "{op}");
    }
    assert_eq!(ok(&f, "ListKeys", json!({}))["Keys"].as_array().unwrap().len(), 2);
}

#[test]
fn dry_run_checks_everything_and_does_nothing() {
    let f = fixture();
    let id = new_key(&f);
    let blob = ok(&f, "Encrypt", json!({"KeyId": id, "Plaintext": "eA=="}))["CiphertextBlob"].clone();
    let before = f.kms.stats.generate_data_key.load(std::sync::atomic::Ordering::Relaxed);
    for (op, body) in [
        ("Encrypt", json!({"KeyId": id, "Plaintext": "eA==", "DryRun": true})),
        ("Decrypt", json!({"CiphertextBlob": blob, "DryRun": true})),
        ("ReEncrypt", json!({"CiphertextBlob": blob, "DestinationKeyId": id, "DryRun": true})),
        ("GenerateDataKey", json!({"KeyId": id, "KeySpec": "AES_256", "DryRun": true})),
        ("GenerateDataKeyWithoutPlaintext", json!({"KeyId": id, "KeySpec": "AES_256", "DryRun": true})),
    ] {
        let (status, v) = call(&f, op, body);
        assert_eq!((status, v["__type"].as_str()), (412, Some("DryRunOperationException")), "{op}");
        assert!(v.get("Plaintext").is_none());
    }
    assert_eq!(f.kms.stats.generate_data_key.load(std::sync::atomic::Ordering::Relaxed), before);
    // A request that would fail still fails with its own error.
    ok(&f, "DisableKey", json!({"KeyId": id}));
    assert_eq!(outcome(&f, "Encrypt", json!({"KeyId": id, "Plaintext": "eA==", "DryRun": true})), DISABLED);
    assert_eq!(outcome(&f, "Decrypt", json!({"CiphertextBlob": blob, "DryRun": true})), DISABLED);
}

/// A "list a page, delete what it showed, fetch the next page" loop (boto3 paginators fetch
/// lazily) must see every alias exactly once.
#[test]
fn paging_while_deleting_skips_nothing() {
    let f = fixture();
    let id = new_key(&f);
    for i in 0..7 {
        ok(&f, "CreateAlias", json!({"AliasName": format!("alias/a{i}"), "TargetKeyId": id}));
    }
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut body = json!({"Limit": 2});
        if let Some(m) = &marker {
            body["Marker"] = json!(m);
        }
        let page = ok(&f, "ListAliases", body);
        for a in page["Aliases"].as_array().unwrap() {
            let name = a["AliasName"].as_str().unwrap().to_owned();
            ok(&f, "DeleteAlias", json!({ "AliasName": name }));
            seen.push(name);
        }
        if page["Truncated"] == false {
            break;
        }
        marker = Some(page["NextMarker"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen, (0..7).map(|i| format!("alias/a{i}")).collect::<Vec<_>>());
    assert_eq!(outcome(&f, "ListAliases", json!({"Marker": "not hex"})), "InvalidMarkerException");
    // Keys and rotations page the same way.
    for _ in 0..4 {
        ok(&f, "RotateKeyOnDemand", json!({"KeyId": id}));
    }
    let p1 = ok(&f, "ListKeyRotations", json!({"KeyId": id, "Limit": 3}));
    let p2 = ok(&f, "ListKeyRotations", json!({"KeyId": id, "Limit": 3, "Marker": p1["NextMarker"]}));
    assert_eq!((p1["Rotations"].as_array().unwrap().len(), p2["Rotations"].as_array().unwrap().len()), (3, 1));
    assert_eq!(p2["Truncated"], false);
    assert!(p2.get("NextMarker").is_none());
}

#[test]
fn algorithms_and_blob_bounds() {
    let f = fixture();
    let id = new_key(&f);
    let blob = ok(&f, "Encrypt", json!({"KeyId": id, "Plaintext": "eA==", "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}))
        ["CiphertextBlob"]
        .clone();
    for (alg, want) in [("RSAES_OAEP_SHA_256", "InvalidKeyUsageException"), ("AES_GCM", "ValidationException")] {
        assert_eq!(outcome(&f, "Encrypt", json!({"KeyId": id, "Plaintext": "eA==", "EncryptionAlgorithm": alg})), want);
        assert_eq!(outcome(&f, "Decrypt", json!({"CiphertextBlob": blob, "EncryptionAlgorithm": alg})), want);
        assert_eq!(
            outcome(
                &f,
                "ReEncrypt",
                json!({"CiphertextBlob": blob, "DestinationKeyId": id, "DestinationEncryptionAlgorithm": alg})
            ),
            want
        );
    }
    assert_eq!(outcome(&f, "Decrypt", json!({"CiphertextBlob": ""})), "ValidationException");
    assert_eq!(outcome(&f, "Decrypt", json!({"CiphertextBlob": B64.encode(vec![0u8; 6145])})), "ValidationException");
    assert_eq!(
        outcome(&f, "Decrypt", json!({"CiphertextBlob": B64.encode(vec![0u8; 6144])})),
        "InvalidCiphertextException"
    );
    assert_eq!(outcome(&f, "Decrypt", json!({})), "ValidationException");
}
