//! `apply --create-buckets`: one bucket per category with its own KMS key (rotation on), default
//! encryption with bucket keys, and a bucket policy naming only the category's readers/writers.

use std::collections::BTreeMap;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};

use crate::cli::SseArg;
use crate::conn::Conn;
use crate::error::{classify, status_of, MigrateError};
use crate::plan::{Plan, Rule};

/// What one bucket should look like (rules naming the same bucket are merged).
#[derive(Debug, Default)]
struct BucketSpec {
    kms_key: Option<String>,
    sse: Option<SseArg>,
    readers: Vec<String>,
    writers: Vec<String>,
}

fn bucket_specs(plan: &Plan) -> BTreeMap<String, BucketSpec> {
    let mut out: BTreeMap<String, BucketSpec> = BTreeMap::new();
    for Rule { bucket, kms_key, sse, readers, writers, .. } in &plan.rules {
        let spec = out.entry(bucket.clone()).or_default();
        spec.kms_key = spec.kms_key.take().or_else(|| kms_key.clone());
        spec.sse = spec.sse.or(*sse);
        for r in readers {
            if !spec.readers.contains(r) {
                spec.readers.push(r.clone());
            }
        }
        for w in writers {
            if !spec.writers.contains(w) {
                spec.writers.push(w.clone());
            }
        }
    }
    out
}

/// Creates what the plan needs; returns one line per action for the operator.
pub(crate) async fn provision(conn: &Conn, plan: &Plan, account_id: &str) -> Result<Vec<String>, MigrateError> {
    let mut log = Vec::new();
    for (bucket, spec) in bucket_specs(plan) {
        create_bucket(conn, &bucket, &mut log).await?;
        let key_arn = match &spec.kms_key {
            Some(alias) => Some(ensure_kms_key(conn, alias, &bucket, &mut log).await?),
            None => None,
        };
        put_default_encryption(conn, &bucket, &spec, key_arn.as_deref(), &mut log).await?;
        if !spec.readers.is_empty() || !spec.writers.is_empty() {
            let policy = bucket_policy(&bucket, account_id, &spec.readers, &spec.writers);
            match conn.s3.put_bucket_policy().bucket(&bucket).policy(policy).send().await {
                Ok(_) => log.push(format!(
                    "bucket {bucket}: policy set (readers {:?}, writers {:?})",
                    spec.readers, spec.writers
                )),
                Err(e) if status_of(&e) == Some(501) || e.code() == Some("NotImplemented") => log.push(format!(
                    "WARNING bucket {bucket}: the server does not implement PutBucketPolicy yet; \
                     the policy for readers {:?} / writers {:?} was NOT applied (re-run apply --create-buckets later)",
                    spec.readers, spec.writers
                )),
                Err(e) => return Err(classify(conn.site("PutBucketPolicy", &bucket, None), e)),
            }
        }
    }
    Ok(log)
}

async fn create_bucket(conn: &Conn, bucket: &str, log: &mut Vec<String>) -> Result<(), MigrateError> {
    match conn.s3.create_bucket().bucket(bucket).send().await {
        Ok(_) => log.push(format!("bucket {bucket}: created")),
        Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => log.push(format!("bucket {bucket}: exists")),
        Err(e) => return Err(classify(conn.site("CreateBucket", bucket, None), e)),
    }
    Ok(())
}

/// Finds the alias's key or creates key + alias; either way turns rotation on. Returns the key ARN.
async fn ensure_kms_key(conn: &Conn, alias: &str, bucket: &str, log: &mut Vec<String>) -> Result<String, MigrateError> {
    let kms_err = |op: &'static str, e: String| MigrateError::Request {
        side: conn.side,
        op,
        what: alias.to_owned(),
        code: "KMS".into(),
        status: 0,
        message: e,
    };
    let existing = match conn.kms.describe_key().key_id(alias).send().await {
        Ok(d) => d.key_metadata().map(|m| (m.key_id().to_owned(), m.arn().unwrap_or(m.key_id()).to_owned())),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => None,
        Err(e) => return Err(kms_err("DescribeKey", aws_sdk_kms::error::DisplayErrorContext(&e).to_string())),
    };
    let (key_id, arn) = match existing {
        Some(k) => {
            log.push(format!("kms {alias}: exists ({})", k.0));
            k
        }
        None if alias.starts_with("alias/") => {
            let created = conn
                .kms
                .create_key()
                .description(format!("sealbox migrate: default key of bucket {bucket}"))
                .send()
                .await
                .map_err(|e| kms_err("CreateKey", aws_sdk_kms::error::DisplayErrorContext(&e).to_string()))?;
            let meta =
                created.key_metadata().ok_or_else(|| kms_err("CreateKey", "the answer had no KeyMetadata".into()))?;
            let (id, arn) = (meta.key_id().to_owned(), meta.arn().unwrap_or(meta.key_id()).to_owned());
            conn.kms
                .create_alias()
                .alias_name(alias)
                .target_key_id(&id)
                .send()
                .await
                .map_err(|e| kms_err("CreateAlias", aws_sdk_kms::error::DisplayErrorContext(&e).to_string()))?;
            log.push(format!("kms {alias}: created key {id}"));
            (id, arn)
        }
        None => return Err(kms_err("DescribeKey", format!("key {alias} does not exist (only aliases are created)"))),
    };
    conn.kms
        .enable_key_rotation()
        .key_id(&key_id)
        .send()
        .await
        .map_err(|e| kms_err("EnableKeyRotation", aws_sdk_kms::error::DisplayErrorContext(&e).to_string()))?;
    log.push(format!("kms {alias}: rotation enabled"));
    Ok(arn)
}

async fn put_default_encryption(
    conn: &Conn,
    bucket: &str,
    spec: &BucketSpec,
    key_arn: Option<&str>,
    log: &mut Vec<String>,
) -> Result<(), MigrateError> {
    let (algorithm, bucket_key) = match (spec.sse, key_arn) {
        (Some(SseArg::AwsKmsDsse), _) => (ServerSideEncryption::AwsKmsDsse, false),
        (Some(SseArg::AwsKms), _) | (None, Some(_)) => (ServerSideEncryption::AwsKms, true),
        (Some(SseArg::Aes256), _) => (ServerSideEncryption::Aes256, false),
        (None, None) => return Ok(()),
    };
    let default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(algorithm.clone())
        .set_kms_master_key_id(key_arn.map(str::to_owned))
        .build()
        .map_err(|e| MigrateError::BadArgument(e.to_string()))?;
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(default)
        .bucket_key_enabled(bucket_key)
        .build();
    let config = ServerSideEncryptionConfiguration::builder()
        .rules(rule)
        .build()
        .map_err(|e| MigrateError::BadArgument(e.to_string()))?;
    conn.s3
        .put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(config)
        .send()
        .await
        .map_err(|e| classify(conn.site("PutBucketEncryption", bucket, None), e))?;
    log.push(format!(
        "bucket {bucket}: default encryption {}{}{}",
        algorithm.as_str(),
        key_arn.map(|k| format!(" with {k}")).unwrap_or_default(),
        if bucket_key { ", bucket keys on" } else { "" }
    ));
    Ok(())
}

/// Least privilege: readers may list and read; writers may also write and delete. Nobody else
/// is named, so only identity policies of the account's admins reach the bucket besides them.
pub(crate) fn bucket_policy(bucket: &str, account_id: &str, readers: &[String], writers: &[String]) -> String {
    let arns = |names: &[String]| -> Vec<String> {
        names.iter().map(|n| format!("arn:aws:iam::{account_id}:user/{n}")).collect()
    };
    let resources = serde_json::json!([format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")]);
    let mut statements = Vec::new();
    if !readers.is_empty() {
        statements.push(serde_json::json!({
            "Sid": "CategoryReaders",
            "Effect": "Allow",
            "Principal": {"AWS": arns(readers)},
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": resources,
        }));
    }
    if !writers.is_empty() {
        statements.push(serde_json::json!({
            "Sid": "CategoryWriters",
            "Effect": "Allow",
            "Principal": {"AWS": arns(writers)},
            "Action": ["s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
            "Resource": resources,
        }));
    }
    serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_only_the_category_users() {
        let p = bucket_policy("api-keys", "000000000000", &["app".into()], &["ops".into()]);
        let v: serde_json::Value = serde_json::from_str(&p).unwrap();
        let st = v["Statement"].as_array().unwrap();
        assert_eq!(st.len(), 2);
        assert_eq!(st[0]["Principal"]["AWS"][0], "arn:aws:iam::000000000000:user/app");
        assert_eq!(st[0]["Action"], serde_json::json!(["s3:GetObject", "s3:ListBucket"]));
        assert_eq!(st[1]["Principal"]["AWS"][0], "arn:aws:iam::000000000000:user/ops");
        assert!(!p.contains("\"*\""));
    }
}
