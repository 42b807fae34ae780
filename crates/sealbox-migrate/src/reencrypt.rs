//! `migrate reencrypt`: rewrite objects server-side under new encryption by copying each object
//! onto itself with new SSE headers (MetadataDirective COPY) — how AWS re-encrypts in place
//! (shared reference C.5). No byte leaves the server.

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_s3::types::{MetadataDirective, ServerSideEncryption};
use futures::StreamExt;

use crate::checkpoint::{Checkpoint, DoneRecord};
use crate::cli::{ReencryptArgs, SseArg};
use crate::conn::{Conn, Endpoint};
use crate::copy::{ensure_bucket, folder_prefix, Source, SourceObject, SseSpec};
use crate::error::{classify, MigrateError, Side};
use crate::location::Location;
use crate::progress::{Progress, Throttle};

/// CopyObject's single-request limit; bigger objects need UploadPartCopy.
const MAX_COPY: u64 = 5 * 1024 * 1024 * 1024;

/// The bucket's current default encryption as request headers.
async fn bucket_default(conn: &Conn, bucket: &str) -> Result<SseSpec, MigrateError> {
    let resp = conn
        .s3
        .get_bucket_encryption()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| classify(conn.site("GetBucketEncryption", bucket, None), e))?;
    let rule = resp.server_side_encryption_configuration().and_then(|c| c.rules().first());
    let Some(default) = rule.and_then(|r| r.apply_server_side_encryption_by_default()) else {
        return Ok(SseSpec { algorithm: Some(SseArg::Aes256), ..SseSpec::default() });
    };
    let algorithm = match default.sse_algorithm() {
        ServerSideEncryption::AwsKms => SseArg::AwsKms,
        ServerSideEncryption::AwsKmsDsse => SseArg::AwsKmsDsse,
        _ => SseArg::Aes256,
    };
    Ok(SseSpec {
        algorithm: Some(algorithm),
        kms_key: default.kms_master_key_id().map(str::to_owned),
        bucket_key: algorithm == SseArg::AwsKms && rule.and_then(|r| r.bucket_key_enabled()) == Some(true),
    })
}

fn describe(sse: &SseSpec) -> String {
    let alg = sse.header().map(|h| h.as_str().to_owned()).unwrap_or_default();
    format!(
        "{alg}{}{}",
        sse.kms_key.as_deref().map(|k| format!(" {k}")).unwrap_or_default(),
        if sse.bucket_key { " bucket-key" } else { "" }
    )
}

async fn reencrypt_one(conn: &Conn, bucket: &str, sse: &SseSpec, o: &SourceObject) -> Result<DoneRecord, MigrateError> {
    if o.size > MAX_COPY {
        return Err(MigrateError::BadArgument(format!(
            "{}: objects over 5 GiB need UploadPartCopy, which reencrypt does not do yet",
            o.key
        )));
    }
    let resp = conn
        .s3
        .copy_object()
        .bucket(bucket)
        .key(&o.key)
        .copy_source(format!("{bucket}/{}", urlencoding::encode(&o.key)))
        // Only copy if the object is still the version we listed: a concurrent writer wins.
        .copy_source_if_match(&o.tag)
        .metadata_directive(MetadataDirective::Copy)
        .set_server_side_encryption(sse.header())
        .set_ssekms_key_id(sse.kms_key.clone())
        .set_bucket_key_enabled(sse.bucket_key.then_some(true))
        .send()
        .await
        .map_err(|e| classify(conn.site("CopyObject", bucket, Some(&o.key)), e))?;
    let head = conn
        .s3
        .head_object()
        .bucket(bucket)
        .key(&o.key)
        .send()
        .await
        .map_err(|e| classify(conn.site("HeadObject", bucket, Some(&o.key)), e))?;
    let wanted: Option<ServerSideEncryption> = sse.header();
    // AWS reports the encryption on every CopyObject and HEAD; a rewrite nobody confirms is not
    // counted done.
    let reported = head.server_side_encryption().or(resp.server_side_encryption());
    if reported != wanted.as_ref() {
        return Err(MigrateError::VerifyFailed {
            key: o.key.clone(),
            mode: "encryption",
            reason: format!("object reports {reported:?} after the rewrite, wanted {wanted:?}"),
        });
    }
    let etag = resp.copy_object_result().and_then(|r| r.e_tag()).or(head.e_tag()).unwrap_or("").to_owned();
    Ok(DoneRecord {
        dst_bucket: bucket.to_owned(),
        dst_key: o.key.clone(),
        src_key: o.key.clone(),
        src_tag: o.tag.clone(),
        size: o.size,
        sha256: String::new(),
        dst_etag: etag,
        dst_checksum: head.checksum_sha256().map(str::to_owned),
        resumed_parts: 0,
    })
}

/// Rewrites one object unless the checkpoint shows it rewritten and untouched since (its ETag is
/// still the one the rewrite produced). `Ok(true)` = rewritten now.
async fn reencrypt_if_needed(
    conn: &Conn,
    checkpoint: &Checkpoint,
    throttle: &Throttle,
    sse: &SseSpec,
    bucket: &str,
    o: &SourceObject,
) -> Result<bool, MigrateError> {
    if checkpoint.done(bucket, &o.key)?.is_some_and(|d| d.dst_etag == o.tag) {
        return Ok(false);
    }
    throttle.wait().await;
    let rec = reencrypt_one(conn, bucket, sse, o).await?;
    checkpoint.mark_done(&rec)?;
    Ok(true)
}

/// `migrate reencrypt s3://bucket[/prefix]`.
pub(crate) async fn run_reencrypt(args: ReencryptArgs) -> anyhow::Result<i32> {
    let started = Instant::now();
    let (bucket, prefix) = Location::parse_s3(&args.target)?;
    let ep = Endpoint {
        url: args.endpoint.clone(),
        profile: args.profile.clone(),
        region: args.region.clone(),
        credentials_file: args.credentials_file.clone(),
    };
    // Reads and writes go to the same store: one connection, named "destination" in errors.
    let conn = Conn::connect(&ep, Side::Destination).await;
    ensure_bucket(&conn, &bucket).await?;
    let sse = match args.sse {
        Some(a) => SseSpec { algorithm: Some(a), kms_key: args.kms_key.clone(), bucket_key: args.bucket_key },
        None if args.kms_key.is_some() || args.bucket_key => {
            return Err(MigrateError::BadArgument("--kms-key / --bucket-key need --sse".into()).into())
        }
        None => bucket_default(&conn, &bucket).await?,
    };
    sse.validate()?;
    let target = describe(&sse);
    let checkpoint = Checkpoint::open(&args.checkpoint, &format!("reencrypt {} to {target}", args.target))?;
    let lister = Source::S3 { conn: conn.clone(), bucket: bucket.clone(), prefix: folder_prefix(&prefix) };
    let objects = lister.list("").await?;
    let total: u64 = objects.iter().map(|o| o.size).sum();
    println!("re-encrypting {} object(s) in {} to {target}", objects.len(), args.target);
    let progress = Progress::new("reencrypt", objects.len() as u64, total);
    let throttle = Throttle::new(args.rate);
    let shared = Arc::new((conn, checkpoint, progress, throttle, sse, bucket));
    let results = futures::stream::iter(objects.into_iter().map(|o| {
        let shared = Arc::clone(&shared);
        async move {
            let (conn, checkpoint, progress, throttle, sse, bucket) = &*shared;
            let outcome = reencrypt_if_needed(conn, checkpoint, throttle, sse, bucket, &o).await;
            progress.add_bytes(o.size);
            progress.object_done();
            outcome.map_err(|e| format!("{}: {e}", o.key))
        }
    }))
    .buffer_unordered(args.parallel.max(1))
    .collect::<Vec<_>>()
    .await;
    shared.2.finish();
    let rewritten = results.iter().filter(|r| matches!(r, Ok(true))).count();
    let skipped = results.iter().filter(|r| matches!(r, Ok(false))).count();
    let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    println!(
        "re-encrypted {rewritten}, skipped {skipped} (done earlier), failed {} in {:.1}s",
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    for f in failed.iter().take(50) {
        println!("  FAILED {f}");
    }
    Ok(if failed.is_empty() { 0 } else { 1 })
}
