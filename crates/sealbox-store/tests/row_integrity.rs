//! Configuration rows carry MACs: an edit of meta.db behind the store's back (a changed, moved,
//! nulled or deleted row) is refused and reported, never read as "no policy".

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use sealbox_store::*;

/// A keyed test authenticator: the store's logic is under test here, not the MAC (the server's
/// HMAC-SHA256 one is tested in sealbox-s3).
#[derive(Default)]
struct TestAuth {
    reports: Mutex<Vec<String>>,
}

impl RowAuthenticator for TestAuth {
    fn mac(&self, row: &[u8]) -> Vec<u8> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        b"test key".hash(&mut h);
        row.hash(&mut h);
        h.finish().to_be_bytes().to_vec()
    }
    fn verify(&self, row: &[u8], mac: &[u8]) -> bool {
        self.mac(row) == mac
    }
    fn report(&self, what: &str) {
        self.reports.lock().unwrap().push(what.to_owned());
    }
}

fn store() -> (tempfile::TempDir, MetaStore, Arc<TestAuth>) {
    let dir = tempfile::tempdir().unwrap();
    let meta = MetaStore::open(&dir.path().join("m.db")).unwrap();
    let auth = Arc::new(TestAuth::default());
    meta.set_row_authenticator(auth.clone());
    (dir, meta, auth)
}

/// Edits meta.db the way an attacker with the file would: another connection, plain SQL.
fn sql(dir: &tempfile::TempDir, statement: &str) {
    let conn = rusqlite::Connection::open(dir.path().join("m.db")).unwrap();
    conn.execute_batch(statement).unwrap();
}

fn tampered<T: std::fmt::Debug>(r: Result<T, StoreError>) -> String {
    match r {
        Err(StoreError::Tampered(what)) => what,
        other => panic!("expected Tampered, got {other:?}"),
    }
}

const DENY: &str = r#"{"Statement":[{"Effect":"Deny"}]}"#;

#[test]
fn bucket_settings_edited_nulled_or_moved_are_refused_and_can_be_replaced() {
    let (dir, meta, auth) = store();
    meta.create_bucket("a", 0).unwrap();
    meta.create_bucket("b", 0).unwrap();
    meta.set_bucket_config("a", BucketConfig::Policy, Some(DENY)).unwrap();
    meta.set_bucket_config("a", BucketConfig::Encryption, Some("{\"algorithm\":\"aws:kms\"}")).unwrap();
    assert_eq!(meta.bucket("a").unwrap().unwrap().policy.as_deref(), Some(DENY));
    assert!(meta.bucket("b").unwrap().unwrap().policy.is_none());

    for attack in [
        "UPDATE buckets SET policy = replace(policy, 'Deny', 'Allow') WHERE name = 'a'",
        "UPDATE buckets SET policy = NULL WHERE name = 'a'",
        "UPDATE buckets SET policy = NULL, policy_mac = NULL WHERE name = 'a'",
        // Another bucket's "no policy", MAC and all: bound to the bucket name.
        "UPDATE buckets SET policy = NULL, policy_mac = (SELECT policy_mac FROM buckets WHERE name = 'b') WHERE name = 'a'",
        "UPDATE buckets SET encryption = NULL WHERE name = 'a'",
    ] {
        let conn = rusqlite::Connection::open(dir.path().join("m.db")).unwrap();
        let saved: (Option<String>, Option<Vec<u8>>, Option<String>) = conn
            .query_row("SELECT policy, policy_mac, encryption FROM buckets WHERE name = 'a'", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        sql(&dir, attack);
        assert!(tampered(meta.bucket("a")).contains("bucket a"), "{attack}");
        assert!(meta.list_buckets().is_err(), "{attack}");
        conn.execute(
            "UPDATE buckets SET policy = ?1, policy_mac = ?2, encryption = ?3 WHERE name = 'a'",
            rusqlite::params![saved.0, saved.1, saved.2],
        )
        .unwrap();
        assert!(meta.bucket("a").is_ok(), "restored after {attack}");
    }
    assert_eq!(auth.reports.lock().unwrap().len(), 10);
    // Replacing the tampered setting through the store puts it right; the others stay checked.
    sql(&dir, "UPDATE buckets SET policy = 'forged' WHERE name = 'a'");
    assert!(meta.bucket_exists("a").unwrap());
    meta.set_bucket_config("a", BucketConfig::Policy, None).unwrap();
    assert!(meta.bucket("a").unwrap().unwrap().policy.is_none());
}

#[test]
fn user_policies_edited_or_deleted_are_refused() {
    let (dir, meta, _) = store();
    let user = UserRecord { name: "u".into(), user_id: "AIDA1".into(), path: "/".into(), created_ms: 1 };
    assert!(meta.create_user(&user).unwrap());
    meta.put_user_policy("u", "allow", r#"{"Statement":[{"Effect":"Allow"}]}"#).unwrap();
    meta.put_user_policy("u", "deny", DENY).unwrap();
    assert_eq!(meta.user_policies("u").unwrap().len(), 2);
    assert_eq!(meta.user("u").unwrap().unwrap(), user);

    sql(&dir, "UPDATE user_policies SET document = replace(document, 'Deny', 'Allow') WHERE policy_name = 'deny'");
    assert!(tampered(meta.user_policies("u")).contains("policy deny of IAM user u"));
    assert!(meta.user_policy("u", "deny").is_err());
    meta.put_user_policy("u", "deny", DENY).unwrap();
    assert_eq!(meta.user_policies("u").unwrap().len(), 2);

    // Dropping the Deny row (MAC and all) breaks the user's row, whose MAC covers its policy names.
    sql(&dir, "PRAGMA foreign_keys = OFF; DELETE FROM user_policies WHERE policy_name = 'deny'");
    assert!(tampered(meta.user_policies("u")).contains("IAM user u"));
    assert!(meta.user("u").is_err());
    assert!(meta.list_users().is_err());

    // A user row edited (another path changes the principal's ARN) is refused too.
    let (dir, meta, _) = store();
    meta.create_user(&user).unwrap();
    sql(&dir, "UPDATE users SET path = '/admins/' WHERE name = 'u'");
    assert!(meta.user("u").is_err());
}

#[test]
fn access_keys_moved_or_edited_are_left_out_and_reported() {
    let (dir, meta, auth) = store();
    for (name, id) in [("low", "AIDA1"), ("admin", "AIDA2")] {
        meta.create_user(&UserRecord { name: name.into(), user_id: id.into(), path: "/".into(), created_ms: 1 })
            .unwrap();
    }
    let key = |id: &str, user: &str| AccessKeyRecord {
        access_key_id: id.into(),
        user_name: user.into(),
        secret_wrapped: format!("sealed secret of {id}").into_bytes(),
        status: "Active".into(),
        created_ms: 1,
    };
    meta.put_access_key(&key("AKIALOW", "low")).unwrap();
    meta.put_access_key(&key("AKIAADMIN", "admin")).unwrap();
    assert_eq!(meta.list_access_keys(None).unwrap().len(), 2);
    // The low user's key made to sign as the admin; the admin's secret swapped in.
    sql(&dir, "UPDATE access_keys SET user_name = 'admin' WHERE access_key_id = 'AKIALOW'");
    let ids: Vec<String> = meta.list_access_keys(None).unwrap().into_iter().map(|k| k.access_key_id).collect();
    assert_eq!(ids, ["AKIAADMIN"]);
    sql(&dir, "UPDATE access_keys SET user_name = 'low' WHERE access_key_id = 'AKIALOW';
               UPDATE access_keys SET secret_wrapped = (SELECT secret_wrapped FROM access_keys WHERE access_key_id = 'AKIAADMIN') WHERE access_key_id = 'AKIALOW'");
    let ids: Vec<String> = meta.list_access_keys(None).unwrap().into_iter().map(|k| k.access_key_id).collect();
    assert_eq!(ids, ["AKIAADMIN"]);
    assert_eq!(auth.reports.lock().unwrap().as_slice(), ["access key AKIALOW", "access key AKIALOW"]);
}

#[test]
fn a_store_from_before_macs_is_authenticated_once_and_checked_after() {
    let dir = tempfile::tempdir().unwrap();
    {
        // Written as an older version would: no authenticator, so no MACs.
        let old = MetaStore::open(&dir.path().join("m.db")).unwrap();
        old.create_bucket("b", 0).unwrap();
        old.set_bucket_config("b", BucketConfig::Policy, Some(DENY)).unwrap();
        old.create_user(&UserRecord { name: "u".into(), user_id: "AIDA1".into(), path: "/".into(), created_ms: 1 })
            .unwrap();
        old.put_user_policy("u", "deny", DENY).unwrap();
        let mut rec = ObjectRecord {
            bucket: "b".into(),
            key: "k".into(),
            size: 0,
            etag: "e".into(),
            last_modified_ms: 1,
            generation: 0,
            content_type: None,
            content_encoding: None,
            content_disposition: None,
            content_language: None,
            cache_control: None,
            expires: None,
            website_redirect_location: None,
            // Values that merely mention the new fields do not make the store look authenticated.
            user_metadata: [("note".to_owned(), "\"row_mac\": binding".to_owned())].into(),
            checksums: Default::default(),
            checksum_type: None,
            parts: Vec::new(),
            sse: Some("{}".into()),
            tags: Default::default(),
            storage_class: None,
            restore: None,
            row_mac: None,
        };
        old.put_object(&rec, &WriteCondition::None).unwrap();
        rec.key = "pending".into();
        old.create_upload(&UploadRecord {
            upload_id: "u1".into(),
            bucket: "b".into(),
            key: "pending".into(),
            initiated_ms: 1,
            template: rec,
        })
        .unwrap();
    }
    let meta = MetaStore::open(&dir.path().join("m.db")).unwrap();
    assert!(meta.integrity_key().unwrap().is_none());
    assert!(!meta.has_authenticated_rows().unwrap());
    let auth = Arc::new(TestAuth::default());
    meta.set_row_authenticator(auth.clone());
    // Before the migration every old row is refused (no MAC).
    assert!(meta.bucket("b").is_err());
    let counts = meta
        .authenticate_legacy_rows(b"sealed", &|r| format!("mac of {}", r.key), &|u| format!("mac of {}", u.upload_id))
        .unwrap();
    assert_eq!(counts, LegacyCounts { config_rows: 3 + 1 + 1, objects: 1, uploads: 1 });
    assert_eq!(meta.integrity_key().unwrap().as_deref(), Some(&b"sealed"[..]));
    assert!(meta.has_authenticated_rows().unwrap());
    assert_eq!(meta.bucket("b").unwrap().unwrap().policy.as_deref(), Some(DENY));
    assert_eq!(meta.user_policies("u").unwrap().len(), 1);
    assert_eq!(meta.object("b", "k").unwrap().unwrap().row_mac.as_deref(), Some("mac of k"));
    assert_eq!(meta.upload("u1").unwrap().unwrap().template.row_mac.as_deref(), Some("mac of u1"));
    // The migration ran once: a second one would fail (the key is stored), and edits are caught.
    assert!(meta.authenticate_legacy_rows(b"again", &|_| String::new(), &|_| String::new()).is_err());
    sql(&dir, "UPDATE buckets SET policy = NULL, policy_mac = NULL");
    assert!(meta.bucket("b").is_err());
}
