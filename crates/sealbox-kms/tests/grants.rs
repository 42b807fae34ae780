//! Grants through the JSON API: wire shapes, idempotency by Name, retire and revoke, bad input,
//! and what a grant tells the authoriser (grants allow, with their constraints; the server's
//! policy evaluation, where a Deny still wins, is tested in the sealbox crate and end to end).

mod common;

use std::sync::Mutex;

use common::*;
use sealbox_kms::api::AuthzRequest;
use sealbox_kms::KmsError;
use serde_json::{json, Value};

const ALICE: &str = "arn:aws:iam::000000000000:user/alice";
const BOB: &str = "arn:aws:iam::000000000000:user/bob";
const ADMIN: &str = "arn:aws:iam::000000000000:user/admin";
const ROOT: &str = "arn:aws:iam::000000000000:root";

/// An authoriser for a principal no policy allows: only a grant lets it through.
fn grants_only(r: &AuthzRequest<'_>) -> Result<(), KmsError> {
    if (r.grant_allows)()? {
        Ok(())
    } else {
        Err(KmsError::AccessDenied(format!("{} denied", r.action)))
    }
}

fn as_user(f: &Fixture, who: &str, op: &str, body: Value) -> String {
    let (status, v, _) = call_with(f, who, &grants_only, op, body);
    if status == 200 {
        "ok".into()
    } else {
        v["__type"].as_str().unwrap().to_owned()
    }
}

#[test]
fn grant_lifecycle_and_wire_shapes() {
    let f = fixture();
    let k = key(&f, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT");
    let arn = format!("arn:aws:kms:us-east-1:000000000000:key/{k}");
    let g = ok(
        &f,
        "CreateGrant",
        json!({"KeyId": arn, "GranteePrincipal": ALICE, "RetiringPrincipal": ADMIN, "Name": "app-grant",
               "Operations": ["Decrypt", "GenerateDataKey", "DescribeKey"],
               "Constraints": {"EncryptionContextSubset": {"app": "billing"}}}),
    );
    let id = g["GrantId"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 64);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    let token = g["GrantToken"].as_str().unwrap().to_owned();
    // Same Name, same parameters: the same grant, a new token.
    let again = ok(
        &f,
        "CreateGrant",
        json!({"KeyId": k, "GranteePrincipal": ALICE, "RetiringPrincipal": ADMIN, "Name": "app-grant",
               "Operations": ["DescribeKey", "GenerateDataKey", "Decrypt"],
               "Constraints": {"EncryptionContextSubset": {"app": "billing"}}}),
    );
    assert_eq!(again["GrantId"], id.as_str());
    assert_ne!(again["GrantToken"], token.as_str());
    let other = ok(&f, "CreateGrant", json!({"KeyId": k, "GranteePrincipal": BOB, "Operations": ["Encrypt"]}));
    let list = ok(&f, "ListGrants", json!({"KeyId": k}));
    assert_eq!(list["Truncated"], false);
    let grants = list["Grants"].as_array().unwrap();
    assert_eq!(grants.len(), 2);
    // Listed by creation date then id; both were made at the same (fake) instant.
    let first = grants.iter().find(|g| g["GrantId"] == id.as_str()).unwrap();
    let second = grants.iter().find(|g| g["GrantId"] == other["GrantId"]).unwrap();
    assert_eq!(first["KeyId"], arn.as_str());
    assert_eq!(first["GrantId"], id.as_str());
    assert_eq!(first["Name"], "app-grant");
    assert_eq!(first["GranteePrincipal"], ALICE);
    assert_eq!(first["RetiringPrincipal"], ADMIN);
    assert_eq!(first["IssuingAccount"], ROOT);
    assert_eq!(first["CreationDate"].as_f64().unwrap() as i64, T0);
    assert_eq!(first["Constraints"], json!({"EncryptionContextSubset": {"app": "billing"}}));
    let mut ops: Vec<&str> = first["Operations"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    ops.sort();
    assert_eq!(ops, ["Decrypt", "DescribeKey", "GenerateDataKey"]);
    assert!(second.get("Name").is_none() && second.get("RetiringPrincipal").is_none());
    // Filters and paging.
    assert_eq!(
        ok(&f, "ListGrants", json!({"KeyId": k, "GranteePrincipal": BOB}))["Grants"].as_array().unwrap().len(),
        1
    );
    assert_eq!(ok(&f, "ListGrants", json!({"KeyId": k, "GrantId": id}))["Grants"][0]["GrantId"], id.as_str());
    let p1 = ok(&f, "ListGrants", json!({"KeyId": k, "Limit": 1}));
    assert_eq!(p1["Truncated"], true);
    let p2 = ok(&f, "ListGrants", json!({"KeyId": k, "Limit": 1, "Marker": p1["NextMarker"]}));
    assert_eq!(p2["Truncated"], false);
    let mut paged = vec![p1["Grants"][0]["GrantId"].clone(), p2["Grants"][0]["GrantId"].clone()];
    paged.sort_by_key(|v| v.to_string());
    let mut all = vec![json!(id), other["GrantId"].clone()];
    all.sort_by_key(|v| v.to_string());
    assert_eq!(paged, all);
    assert_eq!(outcome(&f, "ListGrants", json!({"KeyId": k, "GrantId": "nope"})), "InvalidGrantIdException");
    assert_eq!(outcome(&f, "ListGrants", json!({"KeyId": k, "Limit": 101})), "ValidationException");
    assert_eq!(outcome(&f, "ListGrants", json!({"KeyId": "alias/none"})), "NotFoundException");
    let retirable = ok(&f, "ListRetirableGrants", json!({"RetiringPrincipal": ADMIN}));
    assert_eq!(retirable["Grants"].as_array().unwrap().len(), 1);
    assert_eq!(retirable["Grants"][0]["GrantId"], id.as_str());
    // Retire by token; revoke by id; both gone afterwards.
    ok(&f, "RetireGrant", json!({"GrantToken": token}));
    assert_eq!(outcome(&f, "RetireGrant", json!({"GrantToken": token})), "NotFoundException");
    assert_eq!(outcome(&f, "RevokeGrant", json!({"KeyId": k, "GrantId": id})), "NotFoundException");
    let bob_grant = other["GrantId"].as_str().unwrap();
    let k2 = key(&f, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT");
    assert_eq!(
        outcome(&f, "RevokeGrant", json!({"KeyId": k2, "GrantId": bob_grant})),
        "NotFoundException",
        "another key's grant"
    );
    let (status, v) = call(&f, "RevokeGrant", json!({"KeyId": k, "GrantId": bob_grant, "DryRun": true}));
    assert_eq!((status, v["__type"].as_str()), (412, Some("DryRunOperationException")));
    ok(&f, "RevokeGrant", json!({"KeyId": k, "GrantId": bob_grant}));
    assert!(ok(&f, "ListGrants", json!({"KeyId": k}))["Grants"].as_array().unwrap().is_empty());
}

#[test]
fn create_grant_refuses_what_aws_refuses() {
    let f = fixture();
    let sym = key(&f, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT");
    let signer = key(&f, "ECC_NIST_P256", "SIGN_VERIFY");
    let base = |k: &str, ops: Value| json!({"KeyId": k, "GranteePrincipal": ALICE, "Operations": ops});
    let cases: Vec<(Value, &str)> = vec![
        (base(&sym, json!(["Sign"])), "ValidationException"),
        (base(&signer, json!(["GenerateDataKey"])), "ValidationException"),
        (base(&sym, json!(["Launch"])), "ValidationException"),
        (base(&sym, json!([])), "ValidationException"),
        (json!({"KeyId": sym, "GranteePrincipal": ALICE}), "ValidationException"),
        (json!({"KeyId": sym, "Operations": ["Decrypt"]}), "ValidationException"),
        (json!({"KeyId": sym, "GranteePrincipal": "bob", "Operations": ["Decrypt"]}), "InvalidArnException"),
        (
            json!({"KeyId": sym, "GranteePrincipal": "arn:aws:iam::00:user/x", "Operations": ["Decrypt"]}),
            "InvalidArnException",
        ),
        (json!({"KeyId": sym, "GranteePrincipal": "has space", "Operations": ["Decrypt"]}), "ValidationException"),
        (
            json!({"KeyId": signer, "GranteePrincipal": ALICE, "Operations": ["Sign"], "Constraints": {"EncryptionContextEquals": {"a": "b"}}}),
            "ValidationException",
        ),
        (
            json!({"KeyId": sym, "GranteePrincipal": ALICE, "Operations": ["Decrypt"], "Constraints": {"EncryptionContextSubset":
                {"1": "a", "2": "a", "3": "a", "4": "a", "5": "a", "6": "a", "7": "a", "8": "a", "9": "a"}}}),
            "ValidationException",
        ),
        (
            json!({"KeyId": sym, "GranteePrincipal": ALICE, "Operations": ["Decrypt"], "Name": "bad name"}),
            "ValidationException",
        ),
        (json!({"KeyId": "alias/x", "GranteePrincipal": ALICE, "Operations": ["Decrypt"]}), "NotFoundException"),
        (
            json!({"KeyId": sym, "GranteePrincipal": ALICE, "Operations": ["Decrypt"], "GrantTokens": vec!["x"; 11]}),
            "ValidationException",
        ),
        (
            json!({"KeyId": sym, "GranteePrincipal": ALICE, "Operations": ["Decrypt"], "DryRun": true}),
            "DryRunOperationException",
        ),
    ];
    for (body, want) in cases {
        let (status, v) = call(&f, "CreateGrant", body.clone());
        assert_ne!(status, 200, "{body}");
        assert_eq!(v["__type"], want, "{body}: {v}");
    }
    // Service principals and roles are valid grantees; DescribeKey and RetireGrant may carry a
    // constraint on a symmetric key.
    ok(&f, "CreateGrant", json!({"KeyId": sym, "GranteePrincipal": "s3.amazonaws.com", "Operations": ["Decrypt"]}));
    ok(
        &f,
        "CreateGrant",
        json!({"KeyId": sym, "GranteePrincipal": "arn:aws:iam::000000000000:role/app", "Operations": ["Decrypt", "DescribeKey", "RetireGrant"],
               "Constraints": {"EncryptionContextEquals": {"a": "b"}}}),
    );
    assert_eq!(
        ok(&f, "ListGrants", json!({"KeyId": sym}))["Grants"].as_array().unwrap().len(),
        2,
        "the dry run made nothing"
    );
    for (body, want) in [
        (json!({}), "ValidationException"),
        (json!({"GrantToken": "garbage"}), "InvalidGrantTokenException"),
        (json!({"KeyId": sym, "GrantId": "xyz"}), "InvalidGrantIdException"),
        (json!({"KeyId": sym, "GrantId": "0".repeat(64)}), "NotFoundException"),
    ] {
        assert_eq!(outcome(&f, "RetireGrant", body.clone()), want, "{body}");
    }
}

/// A grant lets its grantee (and nobody else) perform its operations, within its constraints;
/// it lets the grantee create narrower grants only; it says who may retire it; grant tokens are
/// accepted by every operation that takes them.
#[test]
fn grants_decide_for_principals_no_policy_allows() {
    let f = fixture();
    let k = key(&f, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT");
    let signer = key(&f, "RSA_2048", "SIGN_VERIFY");
    let ctx = json!({"app": "billing", "tenant": "7"});
    let gdk = |c: &Value| json!({"KeyId": k, "KeySpec": "AES_256", "EncryptionContext": c});
    assert_eq!(as_user(&f, ALICE, "GenerateDataKey", gdk(&ctx)), "AccessDeniedException", "no grant yet");
    let g = ok(
        &f,
        "CreateGrant",
        json!({"KeyId": k, "GranteePrincipal": ALICE, "Operations": ["GenerateDataKey", "Decrypt", "CreateGrant"],
               "Constraints": {"EncryptionContextSubset": {"app": "billing"}}}),
    );
    let token = g["GrantToken"].as_str().unwrap();
    let (_, dk, _) = call_with(&f, ALICE, &grants_only, "GenerateDataKey", gdk(&ctx));
    assert_eq!(
        as_user(
            &f,
            ALICE,
            "Decrypt",
            json!({"CiphertextBlob": dk["CiphertextBlob"], "EncryptionContext": ctx, "GrantTokens": [token]})
        ),
        "ok"
    );
    assert_eq!(
        as_user(&f, ALICE, "GenerateDataKey", gdk(&json!({"app": "payroll"}))),
        "AccessDeniedException",
        "constraint"
    );
    assert_eq!(as_user(&f, ALICE, "GenerateDataKey", gdk(&json!({}))), "AccessDeniedException", "constraint");
    assert_eq!(
        as_user(&f, ALICE, "Encrypt", json!({"KeyId": k, "Plaintext": "eA==", "EncryptionContext": ctx})),
        "AccessDeniedException"
    );
    assert_eq!(as_user(&f, ALICE, "DescribeKey", json!({"KeyId": k})), "AccessDeniedException");
    assert_eq!(as_user(&f, BOB, "GenerateDataKey", gdk(&ctx)), "AccessDeniedException", "another principal");
    assert_eq!(
        as_user(
            &f,
            ALICE,
            "Sign",
            json!({"KeyId": signer, "Message": "eA==", "SigningAlgorithm": "RSASSA_PSS_SHA_256"})
        ),
        "AccessDeniedException",
        "another key"
    );
    // Grants through the grant: a subset of operations, equally or more constrained.
    let child =
        |ops: Value, c: Value| json!({"KeyId": k, "GranteePrincipal": BOB, "Operations": ops, "Constraints": c});
    assert_eq!(
        as_user(
            &f,
            ALICE,
            "CreateGrant",
            child(json!(["Decrypt"]), json!({"EncryptionContextEquals": {"app": "billing", "tenant": "7"}}))
        ),
        "ok"
    );
    assert_eq!(
        as_user(
            &f,
            ALICE,
            "CreateGrant",
            child(json!(["Decrypt"]), json!({"EncryptionContextSubset": {"tenant": "7"}}))
        ),
        "AccessDeniedException"
    );
    assert_eq!(
        as_user(
            &f,
            ALICE,
            "CreateGrant",
            child(json!(["Encrypt"]), json!({"EncryptionContextSubset": {"app": "billing"}}))
        ),
        "AccessDeniedException"
    );
    assert_eq!(
        as_user(&f, BOB, "Decrypt", json!({"CiphertextBlob": dk["CiphertextBlob"], "EncryptionContext": ctx})),
        "ok",
        "the child grant works"
    );
    // Retiring: the retiring principal, the grantee with RetireGrant, the account; nobody else.
    let retirable = ok(
        &f,
        "CreateGrant",
        json!({"KeyId": k, "GranteePrincipal": ALICE, "RetiringPrincipal": ADMIN, "Operations": ["Decrypt"]}),
    );
    let rid = retirable["GrantId"].as_str().unwrap();
    assert_eq!(as_user(&f, BOB, "RetireGrant", json!({"KeyId": k, "GrantId": rid})), "AccessDeniedException");
    assert_eq!(
        as_user(&f, ALICE, "RetireGrant", json!({"KeyId": k, "GrantId": rid})),
        "AccessDeniedException",
        "no RetireGrant in the grant"
    );
    assert_eq!(
        as_user(&f, ADMIN, "RetireGrant", json!({"KeyId": k, "GrantId": rid, "DryRun": true})),
        "DryRunOperationException"
    );
    assert_eq!(as_user(&f, ADMIN, "RetireGrant", json!({"KeyId": k, "GrantId": rid})), "ok");
    let self_retiring =
        ok(&f, "CreateGrant", json!({"KeyId": k, "GranteePrincipal": ALICE, "Operations": ["Decrypt", "RetireGrant"]}));
    assert_eq!(as_user(&f, ALICE, "RetireGrant", json!({"GrantToken": self_retiring["GrantToken"]})), "ok");
    let by_root = ok(&f, "CreateGrant", json!({"KeyId": k, "GranteePrincipal": ALICE, "Operations": ["Decrypt"]}));
    assert_eq!(as_user(&f, ROOT, "RetireGrant", json!({"KeyId": k, "GrantId": by_root["GrantId"]})), "ok");
    // Retired means gone: Alice's first grant still stands, the others do not.
    let left: Vec<String> = ok(&f, "ListGrants", json!({"KeyId": k, "GranteePrincipal": ALICE}))["Grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["GrantId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left, vec![g["GrantId"].as_str().unwrap().to_owned()]);
}

/// (action, condition keys, grant allows) of one authorisation request.
type Asked = (String, Vec<(String, String)>, bool);

/// What the authoriser is asked: the encryption context and algorithm as condition keys, the
/// grant parameters of CreateGrant, and the key's spec/usage/origin.
#[test]
fn authorisation_requests_carry_aws_condition_keys() {
    let f = fixture();
    let k = key(&f, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT");
    let seen: Mutex<Vec<Asked>> = Mutex::new(Vec::new());
    let record = |r: &AuthzRequest<'_>| {
        seen.lock().unwrap().push((r.action.to_owned(), r.conditions.to_vec(), (r.grant_allows)()?));
        Ok(())
    };
    call_with(
        &f,
        ALICE,
        &record,
        "Encrypt",
        json!({"KeyId": k, "Plaintext": "eA==", "EncryptionContext": {"app": "x"}}),
    );
    call_with(
        &f,
        ALICE,
        &record,
        "CreateGrant",
        json!({"KeyId": k, "GranteePrincipal": BOB, "RetiringPrincipal": ADMIN, "Operations": ["Decrypt", "Encrypt"],
               "Constraints": {"EncryptionContextSubset": {"app": "x"}}}),
    );
    let seen = seen.into_inner().unwrap();
    let has = |i: usize, k: &str, v: &str| seen[i].1.iter().any(|(a, b)| a == k && b == v);
    assert_eq!(seen[0].0, "kms:Encrypt");
    assert!(has(0, "kms:EncryptionContext:app", "x") && has(0, "kms:EncryptionContextKeys", "app"));
    assert!(has(0, "kms:EncryptionAlgorithm", "SYMMETRIC_DEFAULT") && has(0, "kms:KeySpec", "SYMMETRIC_DEFAULT"));
    assert!(has(0, "kms:KeyOrigin", "AWS_KMS") && has(0, "kms:KeyUsage", "ENCRYPT_DECRYPT"));
    assert_eq!(seen[1].0, "kms:CreateGrant");
    assert!(has(1, "kms:GrantOperations", "Decrypt") && has(1, "kms:GrantOperations", "Encrypt"));
    assert!(has(1, "kms:GranteePrincipal", BOB) && has(1, "kms:RetiringPrincipal", ADMIN));
    assert!(
        has(1, "kms:GrantIsForAWSResource", "false") && has(1, "kms:GrantConstraintType", "EncryptionContextSubset")
    );
    assert!(!seen[1].2, "Alice holds no grant to create grants");
}

/// Grants die with their key.
#[test]
fn purged_keys_take_their_grants() {
    let f = fixture();
    let k = key(&f, "HMAC_256", "GENERATE_VERIFY_MAC");
    let g = ok(
        &f,
        "CreateGrant",
        json!({"KeyId": k, "GranteePrincipal": ALICE, "RetiringPrincipal": ADMIN, "Operations": ["GenerateMac"]}),
    );
    ok(&f, "ScheduleKeyDeletion", json!({"KeyId": k, "PendingWindowInDays": 7}));
    assert_eq!(ok(&f, "ListGrants", json!({"KeyId": k}))["Grants"].as_array().unwrap().len(), 1, "kept while pending");
    f.clock.advance_days(8);
    assert_eq!(f.kms.purge_deleted_keys().unwrap(), vec![k.clone()]);
    assert!(f.kms.grant(g["GrantId"].as_str().unwrap()).unwrap().is_none());
    assert!(ok(&f, "ListRetirableGrants", json!({"RetiringPrincipal": ADMIN}))["Grants"]
        .as_array()
        .unwrap()
        .is_empty());
    let _ = DAY;
}
