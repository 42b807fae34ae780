#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sealbox_audit::*;
use serde_json::json;
use time::OffsetDateTime;

/// 2026-11-24T06:00:00Z.
pub const T0: i64 = 1_795_500_000;

pub struct FakeClock(pub AtomicI64);

impl Clock for FakeClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.0.load(Ordering::SeqCst)).unwrap()
    }
}

impl FakeClock {
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

/// A data dir with the signing key kept beside it (outside `audit/`), as the server will.
pub struct Env {
    pub tmp: tempfile::TempDir,
    pub clock: Arc<FakeClock>,
}

impl Env {
    pub fn new() -> Self {
        Env { tmp: tempfile::tempdir().unwrap(), clock: Arc::new(FakeClock(AtomicI64::new(T0))) }
    }

    pub fn data(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    pub fn audit(&self) -> PathBuf {
        self.data().join("audit")
    }

    pub fn signer(&self) -> AuditSigner {
        AuditSigner::load_or_generate(&self.tmp.path().join("keys/audit-signing.pk8")).unwrap()
    }

    pub fn public_key(&self) -> AuditPublicKey {
        self.signer().public_key()
    }

    pub fn config(&self) -> AuditConfig {
        let mut c = AuditConfig::new(self.data());
        c.clock = self.clock.clone();
        c.digest_interval = Duration::from_secs(3600);
        c
    }

    pub fn open(&self) -> AuditLog {
        AuditLog::open(self.config(), self.signer()).unwrap()
    }

    pub fn verify(&self) -> Result<VerifyReport, VerifyError> {
        verify(&self.data(), &self.public_key())
    }

    /// Log file names in seq order.
    pub fn log_files(&self) -> Vec<String> {
        let mut names: Vec<(u64, String)> = fs::read_dir(self.audit())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".jsonl"))
            .map(|n| (n.rsplit('-').next().unwrap().trim_end_matches(".jsonl").parse().unwrap(), n))
            .collect();
        names.sort();
        names.into_iter().map(|(_, n)| n).collect()
    }

    pub fn digest_files(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.audit().join("digests"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort_by_key(|n| n.trim_end_matches(".json").rsplit('-').next().unwrap().parse::<u64>().unwrap());
        names
    }

    pub fn digest_path(&self, name: &str) -> PathBuf {
        self.audit().join("digests").join(name)
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.audit().join(name)
    }
}

pub fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path).unwrap().lines().map(str::to_owned).collect()
}

pub fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    if !lines.is_empty() {
        text.push('\n');
    }
    fs::write(path, text).unwrap();
}

pub fn principal(user: &str) -> Principal {
    Principal {
        identity_type: "IAMUser".into(),
        principal_id: format!("AIDA{}", user.to_uppercase()),
        arn: format!("arn:aws:iam::000000000000:user/{user}"),
        account_id: "000000000000".into(),
        access_key_id: format!("AKIA{}", user.to_uppercase()),
        user_name: Some(user.into()),
    }
}

pub fn ctx(at: i64, request_id: &str) -> RequestContext {
    RequestContext {
        time: OffsetDateTime::from_unix_timestamp(at).unwrap(),
        region: "us-east-1".into(),
        source_ip: "127.0.0.1".into(),
        user_agent: "aws-cli/2.0".into(),
        request_id: request_id.into(),
    }
}

pub fn key_arn(id: &str) -> String {
    format!("arn:aws:kms:us-east-1:000000000000:key/{id}")
}

/// A KMS call by alice, numbered so tests can recognise it.
pub fn sample(i: u64) -> AuditRecord {
    AuditRecord::api_call(&principal("alice"), &ctx(T0 + i as i64, &format!("req-{i}")), EventSource::Kms, "Decrypt")
        .with_request_parameters(json!({"keyId": key_arn("k1"), "n": i}))
        .with_resource("AWS::KMS::Key", &key_arn("k1"))
}

/// Two sealed, digested files (records 1-5 and 6-10) and three uncovered records (11-13).
pub fn two_digests(env: &Env) -> AuditLog {
    let log = env.open();
    for i in 1..=5 {
        log.append(sample(i), Durability::Durable).unwrap();
    }
    env.clock.advance(60);
    log.write_digest_now().unwrap();
    for i in 6..=10 {
        log.append(sample(i), Durability::Durable).unwrap();
    }
    env.clock.advance(60);
    log.write_digest_now().unwrap();
    for i in 11..=13 {
        log.append(sample(i), Durability::Durable).unwrap();
    }
    log
}
