//! Random sequences of lifecycle operations, time jumps, rotations and purges, checked against a
//! small model of the key-state table: every answer is the one the model predicts, every blob
//! decrypts exactly while its key is enabled, and nothing ever answers 500.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use proptest::prelude::*;
use sealbox_kms::api::handle;
use sealbox_kms::{Caller, FakeClock, Kms, KmsConfig, KmsError, RootKey};
use serde_json::{json, Value};

const KEYS: usize = 3;
const DAY: i64 = 86_400;

#[derive(Debug, Clone)]
enum Op {
    Disable(usize),
    Enable(usize),
    Schedule(usize, i64),
    Cancel(usize),
    EnableRotation(usize, i64),
    RotateNow(usize),
    Encrypt(usize, u8),
    Decrypt(usize),
    Advance(i64),
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0..KEYS;
    prop_oneof![
        k.clone().prop_map(Op::Disable),
        k.clone().prop_map(Op::Enable),
        (k.clone(), 5i64..33).prop_map(|(k, d)| Op::Schedule(k, d)),
        k.clone().prop_map(Op::Cancel),
        (k.clone(), 80i64..2600).prop_map(|(k, d)| Op::EnableRotation(k, d)),
        k.clone().prop_map(Op::RotateNow),
        (k.clone(), any::<u8>()).prop_map(|(k, b)| Op::Encrypt(k, b)),
        (0usize..64).prop_map(Op::Decrypt),
        (0i64..400).prop_map(Op::Advance),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Enabled,
    Disabled,
    Pending { deletion: i64 },
    Gone,
}

fn allow(_: &sealbox_kms::api::AuthzRequest<'_>) -> Result<(), KmsError> {
    Ok(())
}

fn call(kms: &Kms, op: &str, body: Value) -> (String, Value) {
    let (r, _) = handle(kms, op, body.to_string().as_bytes(), &Caller::default(), &allow);
    assert!(r.status == 200 || r.status == 400, "{op}: status {}", r.status);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    let outcome = if r.status == 200 { "ok".to_owned() } else { v["__type"].as_str().unwrap().to_owned() };
    (outcome, v)
}

/// What a cryptographic or key-management call answers in each state (contract D.3).
fn crypto_outcome(s: State) -> &'static [&'static str] {
    match s {
        State::Enabled => &["ok"],
        State::Disabled => &["DisabledException"],
        State::Pending { .. } => &["KMSInvalidStateException"],
        State::Gone => &["NotFoundException"],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]
    #[test]
    fn lifecycle_matches_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FakeClock::at(1_800_000_000));
        let mut now = 1_800_000_000i64;
        let kms = Kms::open(
            &dir.path().join("kms.db"),
            RootKey::from_bytes(&[3u8; 32]).unwrap(),
            clock.clone(),
            KmsConfig { account_id: "000000000000".into(), region: "us-east-1".into() },
        )
        .unwrap();
        let ids: Vec<String> = (0..KEYS).map(|_| kms.create_key("", None, &[]).unwrap().key_id).collect();
        let mut state = [State::Enabled; KEYS];
        let mut blobs: Vec<(usize, String, u8)> = Vec::new();
        for op in ops {
            match op {
                Op::Disable(k) | Op::Enable(k) => {
                    let name = if matches!(op, Op::Disable(_)) { "DisableKey" } else { "EnableKey" };
                    let (got, _) = call(&kms, name, json!({"KeyId": ids[k]}));
                    let want = match state[k] {
                        State::Enabled | State::Disabled => "ok",
                        State::Pending { .. } => "KMSInvalidStateException",
                        State::Gone => "NotFoundException",
                    };
                    prop_assert_eq!(&got, want, "{:?} in {:?}", op, state[k]);
                    if got == "ok" {
                        state[k] = if name == "DisableKey" { State::Disabled } else { State::Enabled };
                    }
                }
                Op::Schedule(k, days) => {
                    let (got, v) = call(&kms, "ScheduleKeyDeletion", json!({"KeyId": ids[k], "PendingWindowInDays": days}));
                    let want = match state[k] {
                        State::Gone => "NotFoundException",
                        _ if !(7..=30).contains(&days) => "ValidationException",
                        State::Pending { .. } => "KMSInvalidStateException",
                        _ => "ok",
                    };
                    prop_assert_eq!(&got, want, "{:?} in {:?}", op, state[k]);
                    if got == "ok" {
                        prop_assert_eq!(v["DeletionDate"].as_f64().unwrap() as i64, now + days * DAY);
                        state[k] = State::Pending { deletion: now + days * DAY };
                    }
                }
                Op::Cancel(k) => {
                    let (got, _) = call(&kms, "CancelKeyDeletion", json!({"KeyId": ids[k]}));
                    let want = match state[k] {
                        State::Pending { .. } => "ok",
                        State::Gone => "NotFoundException",
                        _ => "KMSInvalidStateException",
                    };
                    prop_assert_eq!(&got, want, "{:?} in {:?}", op, state[k]);
                    if got == "ok" {
                        state[k] = State::Disabled;
                    }
                }
                Op::EnableRotation(k, days) => {
                    let (got, _) = call(&kms, "EnableKeyRotation", json!({"KeyId": ids[k], "RotationPeriodInDays": days}));
                    let want = match state[k] {
                        State::Enabled if !(90..=2560).contains(&days) => "ValidationException",
                        s => crypto_outcome(s)[0],
                    };
                    prop_assert_eq!(&got, want, "{:?} in {:?}", op, state[k]);
                }
                Op::RotateNow(k) => {
                    let (got, _) = call(&kms, "RotateKeyOnDemand", json!({"KeyId": ids[k]}));
                    let allowed: &[&str] = match state[k] {
                        State::Enabled => &["ok", "LimitExceededException", "ConflictException"],
                        s => crypto_outcome(s),
                    };
                    prop_assert!(allowed.contains(&got.as_str()), "{:?} in {:?}: {}", op, state[k], got);
                }
                Op::Encrypt(k, byte) => {
                    let (got, v) = call(&kms, "Encrypt", json!({"KeyId": ids[k], "Plaintext": B64.encode([byte])}));
                    prop_assert_eq!(&got, crypto_outcome(state[k])[0], "{:?} in {:?}", op, state[k]);
                    if got == "ok" {
                        let blob = v["CiphertextBlob"].as_str().unwrap().to_owned();
                        blobs.push((k, blob, byte));
                    }
                }
                Op::Decrypt(i) => {
                    let Some((k, blob, byte)) = blobs.get(i % blobs.len().max(1)).cloned() else { continue };
                    let (got, v) = call(&kms, "Decrypt", json!({"CiphertextBlob": blob}));
                    let want = match state[k] {
                        State::Gone => "InvalidCiphertextException",
                        s => crypto_outcome(s)[0],
                    };
                    prop_assert_eq!(&got, want, "Decrypt under key {} in {:?}", k, state[k]);
                    if got == "ok" {
                        prop_assert_eq!(B64.decode(v["Plaintext"].as_str().unwrap()).unwrap(), vec![byte]);
                    }
                }
                Op::Advance(days) => {
                    clock.advance_days(days);
                    now += days * DAY;
                    kms.rotate_due_keys().unwrap();
                    let mut purged = kms.purge_deleted_keys().unwrap();
                    let mut expired = Vec::new();
                    for (k, s) in state.iter_mut().enumerate() {
                        if let State::Pending { deletion } = *s {
                            if deletion <= now {
                                *s = State::Gone;
                                expired.push(ids[k].clone());
                            }
                        }
                    }
                    purged.sort();
                    expired.sort();
                    prop_assert_eq!(purged, expired, "exactly the keys past their deletion date are destroyed");
                }
            }
            // DescribeKey agrees with the model after every step.
            for k in 0..KEYS {
                let (got, v) = call(&kms, "DescribeKey", json!({"KeyId": ids[k]}));
                match state[k] {
                    State::Gone => prop_assert_eq!(got, "NotFoundException"),
                    s => {
                        let want = match s {
                            State::Enabled => "Enabled",
                            State::Disabled => "Disabled",
                            _ => "PendingDeletion",
                        };
                        prop_assert_eq!(v["KeyMetadata"]["KeyState"].as_str(), Some(want));
                    }
                }
            }
        }
        // Material versions only ever grow by one at a time, from 1.
        for id in &ids {
            let versions: Vec<u32> = kms.materials(id).unwrap().iter().map(|m| m.version).collect();
            prop_assert!(versions.iter().enumerate().all(|(i, v)| *v == i as u32 + 1));
        }
    }
}
