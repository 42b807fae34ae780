//! `migrate plan` / `migrate apply`: splitting a mixed secrets bucket into category buckets.

mod common;

use common::*;

const OBJECTS: &[(&str, usize)] = &[
    ("db/prod/postgres.json", 120),
    ("db/staging/mysql.json", 90),
    ("api-keys/stripe.txt", 40),
    ("api-keys/github.txt", 41),
    ("certs/site.pem", 1500),
    ("certs/internal/ca.pem", 1300),
    ("README.md", 10),
];

fn rules(with_kms: bool) -> String {
    let kms = |alias: &str| if with_kms { format!("kms_key = \"{alias}\"\n") } else { String::new() };
    format!(
        r#"# split the old secrets bucket by category
[[rule]]
match = {{ prefix = "db/" }}
bucket = "db-credentials"
strip_prefix = "db/"
{}readers = ["app"]
writers = ["dba"]

[[rule]]
match = {{ regex = "^api-keys/.*\\.txt$" }}
bucket = "api-keys"
{}readers = ["app", "ci"]

[[rule]]
match = {{ glob = "certs/**/*.pem" }}
bucket = "certificates"
dest_prefix = "pem/"
{}writers = ["pki"]
"#,
        kms("db-credentials"),
        kms("api-keys"),
        kms("certificates"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_splits_a_secrets_bucket_into_three_categories() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let c = server.client();
    create_bucket(&c, "secrets").await;
    for (i, (k, n)) in OBJECTS.iter().enumerate() {
        put(&c, "secrets", k, bytes(i as u64, *n)).await;
    }
    let with_kms = match server.kms().list_keys().send().await {
        Ok(_) => true,
        Err(e) => {
            eprintln!("SKIP KMS part: the server's KMS API is not available: {}", short_error(&e));
            false
        }
    };
    let rules_path = work.path().join("rules.toml");
    std::fs::write(&rules_path, rules(with_kms)).unwrap();
    let creds = credentials_file(work.path(), &[("sb", &server)]);
    let cp = work.path().join("cp.sqlite");
    let report = work.path().join("r.json");
    let conn = [
        "--src-endpoint",
        &server.endpoint,
        "--src-profile",
        "sb",
        "--dst-endpoint",
        &server.endpoint,
        "--dst-profile",
        "sb",
        "--credentials-file",
        creds.to_str().unwrap(),
    ];
    let mut plan = vec!["plan", "--plan", rules_path.to_str().unwrap(), "s3://secrets"];
    plan.extend(conn.iter().take(6).copied());
    plan.extend(&conn[8..]);
    assert_eq!(migrate(&plan).await.unwrap(), 0);

    // Without --create-buckets the missing buckets are an error, not a silent skip.
    let mut apply =
        vec!["apply", "--plan", rules_path.to_str().unwrap(), "s3://secrets", "--checkpoint", cp.to_str().unwrap()];
    apply.extend(conn);
    apply.extend(["--report", report.to_str().unwrap()]);
    let err = migrate(&apply).await.unwrap_err().to_string();
    assert!(err.contains("--create-buckets"), "{err}");

    apply.push("--create-buckets");
    assert_eq!(migrate(&apply).await.unwrap(), 0);
    let mut db = list(&c, "db-credentials").await;
    db.sort();
    assert_eq!(db, ["prod/postgres.json", "staging/mysql.json"]);
    assert_eq!(list(&c, "api-keys").await.len(), 2);
    let mut pem = list(&c, "certificates").await;
    pem.sort();
    assert_eq!(pem, ["pem/certs/internal/ca.pem", "pem/certs/site.pem"]);
    assert_eq!(get(&c, "db-credentials", "prod/postgres.json").await, bytes(0, 120));
    let r = read_json(&report);
    assert_eq!(r["summary"]["copied"], 6);
    assert_eq!(r["unmatched"], serde_json::json!(["README.md"]));
    assert_eq!(list(&c, "secrets").await.len(), OBJECTS.len(), "apply never deletes the source");

    if with_kms {
        let enc = c.get_bucket_encryption().bucket("db-credentials").send().await.unwrap();
        let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
        let default = rule.apply_server_side_encryption_by_default().unwrap();
        assert_eq!(default.sse_algorithm().as_str(), "aws:kms");
        let key = server.kms().describe_key().key_id("alias/db-credentials").send().await.unwrap();
        let key_id = key.key_metadata().unwrap().key_id().to_owned();
        assert!(default.kms_master_key_id().unwrap().contains(&key_id));
        assert_eq!(rule.bucket_key_enabled(), Some(true));
        let rot = server.kms().get_key_rotation_status().key_id(&key_id).send().await.unwrap();
        assert!(rot.key_rotation_enabled());
        let other = server.kms().describe_key().key_id("alias/certificates").send().await.unwrap();
        assert_ne!(other.key_metadata().unwrap().key_id(), key_id, "one key per category");
    }
    match c.get_bucket_policy().bucket("db-credentials").send().await {
        Ok(p) => {
            let policy = p.policy().unwrap_or_default();
            assert!(policy.contains("arn:aws:iam::000000000000:user/app"), "{policy}");
            assert!(policy.contains("user/dba") && !policy.contains("user/pki"), "{policy}");
        }
        Err(e) => eprintln!("note: bucket policy not readable on this server: {}", short_error(&e)),
    }

    // Running the plan again changes nothing.
    assert_eq!(migrate(&apply).await.unwrap(), 0);
    assert_eq!(read_json(&report)["summary"]["skipped"], 6);
}

#[tokio::test]
async fn invalid_plan_files_report_the_line() {
    let work = tempfile::tempdir().unwrap();
    let rules = work.path().join("rules.toml");
    std::fs::write(&rules, "[[rule]]\nmatch = { prefix = \"a/\" }\nbucket = \"ok-bucket\"\nsse = \"rot13\"\n").unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let err =
        migrate(&["plan", "--plan", rules.to_str().unwrap(), src.to_str().unwrap()]).await.unwrap_err().to_string();
    assert!(err.contains("rules.toml:4:") && err.contains("sse must be"), "{err}");
}
