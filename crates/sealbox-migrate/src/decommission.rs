//! `migrate decommission`: delete the source only when a report AND a fresh look at every
//! destination object vouch for it. Any doubt refuses the whole run before anything is deleted.

use std::io::{BufRead, Write};
use std::path::Path;

use aws_sdk_s3::types::ChecksumMode;

use crate::cli::DecommissionArgs;
use crate::conn::{Conn, Endpoint};
use crate::copy::Source;
use crate::error::{classify, status_of, MigrateError, Side};
use crate::location::Location;
use crate::progress::human_bytes;
use crate::report::{ObjectReport, Outcome, Report};

/// Why one object cannot be vouched for.
async fn destination_problem(dst: &Conn, o: &ObjectReport) -> Result<Option<String>, MigrateError> {
    let head = match dst
        .s3
        .head_object()
        .bucket(&o.dst_bucket)
        .key(&o.dst_key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
    {
        Ok(h) => h,
        Err(e) if status_of(&e) == Some(404) => {
            return Ok(Some(format!("s3://{}/{} no longer exists at the destination", o.dst_bucket, o.dst_key)))
        }
        Err(e) => return Err(classify(dst.site("HeadObject", &o.dst_bucket, Some(&o.dst_key)), e)),
    };
    let what = format!("s3://{}/{}", o.dst_bucket, o.dst_key);
    if head.content_length() != Some(o.size as i64) {
        return Ok(Some(format!("{what}: size {:?} differs from the verified {}", head.content_length(), o.size)));
    }
    match (&o.dst_etag, head.e_tag()) {
        (Some(want), Some(got)) if want == got => {}
        (want, got) => return Ok(Some(format!("{what}: ETag {got:?} differs from the verified {want:?}"))),
    }
    if let Some(want) = &o.dst_checksum {
        if head.checksum_sha256() != Some(want.as_str()) {
            return Ok(Some(format!("{what}: SHA-256 {:?} differs from the verified {want}", head.checksum_sha256())));
        }
    }
    Ok(None)
}

/// Whether the source still holds the version that was copied (`Ok(None)`: already gone).
async fn source_state(source: &Source, o: &ObjectReport) -> Result<Option<bool>, MigrateError> {
    match source {
        Source::Local { root } => {
            let path = root.join(&o.src_key);
            match std::fs::metadata(&path) {
                Ok(m) => {
                    let mtime = m
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map(|d| d.as_nanos())
                        .unwrap_or(0);
                    Ok(Some(format!("{}:{mtime}", m.len()) == o.src_tag))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(MigrateError::Io { path, source }),
            }
        }
        Source::S3 { conn, bucket, .. } => match conn.s3.head_object().bucket(bucket).key(&o.src_key).send().await {
            Ok(h) => Ok(Some(h.e_tag() == Some(o.src_tag.as_str()) && h.content_length() == Some(o.size as i64))),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(classify(conn.site("HeadObject", bucket, Some(&o.src_key)), e)),
        },
    }
}

fn confirm(prompt: &str) -> bool {
    eprint!("{prompt} Type 'yes' to delete: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).is_ok() && line.trim() == "yes"
}

fn remove_empty_dirs(root: &Path, file: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// Whether the report's SRC and this SRC name the same place (`./x` and `x` are one folder).
fn same_source(reported: &str, given: &str) -> bool {
    if reported == given {
        return true;
    }
    match (Location::parse(reported), Location::parse(given)) {
        (Ok(Location::Local(a)), Ok(Location::Local(b))) => {
            matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(a), Ok(b)) if a == b)
        }
        (Ok(Location::S3 { bucket: a, prefix: p }), Ok(Location::S3 { bucket: b, prefix: q })) => {
            a == b && crate::copy::folder_prefix(&p) == crate::copy::folder_prefix(&q)
        }
        _ => false,
    }
}

/// `migrate decommission SRC --report FILE.json [--yes]`.
pub(crate) async fn run_decommission(args: DecommissionArgs) -> anyhow::Result<i32> {
    let report = Report::read(&args.report)?;
    if !same_source(&report.source, &args.src) {
        return Err(MigrateError::DecommissionRefused(format!(
            "the report is for {}, not {}",
            report.source, args.src
        ))
        .into());
    }
    let failed = report.objects.iter().filter(|o| o.outcome == Outcome::Failed).count();
    if failed > 0 || !report.all_verified || report.summary.failed > 0 {
        return Err(MigrateError::DecommissionRefused(format!(
            "the report shows {failed} object(s) not verified; fix them (re-run the copy) and use the new report"
        ))
        .into());
    }
    if report.objects.iter().any(|o| o.dst_etag.is_none() || o.sha256.is_none()) {
        return Err(
            MigrateError::DecommissionRefused("the report lists objects without verification data".into()).into()
        );
    }
    let loc = Location::parse(&args.src)?;
    let source = Source::connect(&loc, &args.conn).await?;
    let dst = Conn::connect(&Endpoint::for_side(&args.conn, Side::Destination), Side::Destination).await;

    let mut problems = Vec::new();
    let mut to_delete = Vec::new();
    for o in &report.objects {
        if let Some(p) = destination_problem(&dst, o).await? {
            problems.push(p);
            continue;
        }
        match source_state(&source, o).await? {
            Some(true) => to_delete.push(o),
            Some(false) => problems.push(format!("{} changed at the source after it was copied", o.src_key)),
            None => {}
        }
    }
    if !problems.is_empty() {
        let mut msg = format!("{} object(s) failed the re-check, nothing was deleted:", problems.len());
        for p in problems.iter().take(20) {
            msg.push_str(&format!("\n  {p}"));
        }
        return Err(MigrateError::DecommissionRefused(msg).into());
    }
    let bytes: u64 = to_delete.iter().map(|o| o.size).sum();
    println!("{} verified object(s), {}, can be deleted from {}", to_delete.len(), human_bytes(bytes), args.src);
    if !args.yes && !confirm(&format!("Delete {} object(s) from {}?", to_delete.len(), args.src)) {
        println!("not confirmed; nothing deleted");
        return Ok(2);
    }
    let mut deleted = 0u64;
    match &source {
        Source::Local { root } => {
            for o in &to_delete {
                let path = root.join(&o.src_key);
                std::fs::remove_file(&path).map_err(|source| MigrateError::Io { path: path.clone(), source })?;
                remove_empty_dirs(root, &path);
                deleted += 1;
            }
        }
        Source::S3 { conn, bucket, prefix } => {
            for o in &to_delete {
                conn.s3
                    .delete_object()
                    .bucket(bucket)
                    .key(&o.src_key)
                    .send()
                    .await
                    .map_err(|e| classify(conn.site("DeleteObject", bucket, Some(&o.src_key)), e))?;
                deleted += 1;
            }
            // The bucket goes only when the whole bucket was migrated and nothing else is left.
            if prefix.is_empty() {
                let left = conn
                    .s3
                    .list_objects_v2()
                    .bucket(bucket)
                    .max_keys(1)
                    .send()
                    .await
                    .map_err(|e| classify(conn.site("ListObjectsV2", bucket, None), e))?;
                if left.contents().is_empty() {
                    conn.s3
                        .delete_bucket()
                        .bucket(bucket)
                        .send()
                        .await
                        .map_err(|e| classify(conn.site("DeleteBucket", bucket, None), e))?;
                    println!("bucket {bucket} was empty and is deleted");
                } else {
                    println!("bucket {bucket} still holds objects that were not migrated; kept");
                }
            }
        }
    }
    println!("deleted {deleted} object(s), {}", human_bytes(bytes));
    Ok(0)
}
