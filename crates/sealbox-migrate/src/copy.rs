//! The copy engine: list, stream each object in bounded parts while hashing it, write it with the
//! SHA-256 the destination must store, verify, and only then record it done.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_lc_rs::digest;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::checkpoint::{Checkpoint, DoneRecord, OpenUpload, UploadedPart};
use crate::cli::{CopyArgs, SseArg, TransferOpts, VerifyMode};
use crate::conn::{Conn, Endpoint};
use crate::error::{classify, MigrateError, Side};
use crate::location::Location;
use crate::progress::{human_bytes, Progress, Throttle};
use crate::report::{ObjectReport, Outcome, Report};

const MIB: u64 = 1024 * 1024;

/// One object found at the source.
#[derive(Debug, Clone)]
pub(crate) struct SourceObject {
    /// Key (S3) or relative path with `/` separators (folder) as stored at the source.
    pub key: String,
    /// The key relative to SRC (what rules match and destinations append).
    pub rel: String,
    pub size: u64,
    /// What identifies this version: ETag (S3) or `size:mtime_ns` (files).
    pub tag: String,
}

/// Encryption requested for a destination object; all `None` leaves the bucket default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SseSpec {
    pub algorithm: Option<SseArg>,
    pub kms_key: Option<String>,
    pub bucket_key: bool,
}

impl SseSpec {
    pub(crate) fn header(&self) -> Option<ServerSideEncryption> {
        self.algorithm.map(|a| match a {
            SseArg::Aes256 => ServerSideEncryption::Aes256,
            SseArg::AwsKms => ServerSideEncryption::AwsKms,
            SseArg::AwsKmsDsse => ServerSideEncryption::AwsKmsDsse,
        })
    }

    pub(crate) fn validate(&self) -> Result<(), MigrateError> {
        let kms = matches!(self.algorithm, Some(SseArg::AwsKms | SseArg::AwsKmsDsse));
        if self.kms_key.is_some() && !kms {
            return Err(MigrateError::BadArgument("--kms-key needs --sse aws:kms or aws:kms:dsse".into()));
        }
        if self.bucket_key && self.algorithm != Some(SseArg::AwsKms) {
            return Err(MigrateError::BadArgument("--bucket-key needs --sse aws:kms".into()));
        }
        Ok(())
    }

    fn bucket_key_header(&self) -> Option<bool> {
        self.bucket_key.then_some(true)
    }
}

/// One planned object copy.
#[derive(Debug, Clone)]
pub(crate) struct Transfer {
    pub src: SourceObject,
    pub dst_bucket: String,
    pub dst_key: String,
    pub sse: SseSpec,
}

/// Headers carried over from the source object.
#[derive(Debug, Clone, Default)]
struct ObjectAttrs {
    content_type: Option<String>,
    cache_control: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    metadata: Option<HashMap<String, String>>,
    tagging: Option<String>,
}

type Body = Pin<Box<dyn AsyncRead + Send>>;

/// Where objects are read from.
#[derive(Clone)]
pub(crate) enum Source {
    Local { root: PathBuf },
    S3 { conn: Conn, bucket: String, prefix: String },
}

/// `s3://b/dir` means the folder `dir/`, as `aws s3 cp --recursive` reads it.
pub(crate) fn folder_prefix(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    }
}

impl Source {
    pub(crate) async fn connect(loc: &Location, conn: &crate::cli::ConnOpts) -> Result<Self, MigrateError> {
        Ok(match loc {
            Location::Local(root) => {
                let meta = std::fs::metadata(root).map_err(|source| MigrateError::Io { path: root.clone(), source })?;
                if !meta.is_dir() {
                    return Err(MigrateError::BadArgument(format!("{} is not a folder", root.display())));
                }
                Source::Local { root: root.clone() }
            }
            Location::S3 { bucket, prefix } => Source::S3 {
                conn: Conn::connect(&Endpoint::for_side(conn, Side::Source), Side::Source).await,
                bucket: bucket.clone(),
                prefix: folder_prefix(prefix),
            },
        })
    }

    /// Every object under SRC whose relative key starts with `rel_prefix`, in key order.
    pub(crate) async fn list(&self, rel_prefix: &str) -> Result<Vec<SourceObject>, MigrateError> {
        match self {
            Source::Local { root } => {
                let root = root.clone();
                let rel_prefix = rel_prefix.to_owned();
                let mut out = tokio::task::spawn_blocking(move || list_folder(&root))
                    .await
                    .map_err(|e| MigrateError::BadArgument(format!("listing task failed: {e}")))??;
                out.retain(|o| o.rel.starts_with(&rel_prefix));
                Ok(out)
            }
            Source::S3 { conn, bucket, prefix } => {
                let full = format!("{prefix}{rel_prefix}");
                let mut out = Vec::new();
                let mut token: Option<String> = None;
                loop {
                    let resp = conn
                        .s3
                        .list_objects_v2()
                        .bucket(bucket)
                        .prefix(&full)
                        .set_continuation_token(token.take())
                        .send()
                        .await
                        .map_err(|e| classify(conn.site("ListObjectsV2", bucket, None), e))?;
                    for o in resp.contents() {
                        let Some(key) = o.key() else { continue };
                        out.push(SourceObject {
                            key: key.to_owned(),
                            rel: key[prefix.len()..].to_owned(),
                            size: o.size().unwrap_or(0).max(0) as u64,
                            tag: o.e_tag().unwrap_or("").to_owned(),
                        });
                    }
                    match resp.next_continuation_token() {
                        Some(t) if resp.is_truncated() == Some(true) => token = Some(t.to_owned()),
                        _ => break,
                    }
                }
                Ok(out)
            }
        }
    }

    /// Opens the object for reading; a missing object is [`MigrateError::Vanished`].
    async fn open(&self, obj: &SourceObject) -> Result<(Body, ObjectAttrs), MigrateError> {
        match self {
            Source::Local { root } => {
                let path = root.join(&obj.key);
                let file = tokio::fs::File::open(&path).await.map_err(|source| {
                    if source.kind() == std::io::ErrorKind::NotFound {
                        MigrateError::Vanished { key: obj.key.clone() }
                    } else {
                        MigrateError::Io { path: path.clone(), source }
                    }
                })?;
                let attrs = ObjectAttrs { content_type: guess_content_type(&obj.key), ..ObjectAttrs::default() };
                Ok((Box::pin(file), attrs))
            }
            Source::S3 { conn, bucket, .. } => {
                // If-Match: a version written after the listing is not the one we planned to copy.
                let resp = conn
                    .s3
                    .get_object()
                    .bucket(bucket)
                    .key(&obj.key)
                    .set_if_match((!obj.tag.is_empty()).then(|| obj.tag.clone()))
                    .send()
                    .await
                    .map_err(|e| match crate::error::status_of(&e) {
                        Some(412) => MigrateError::VerifyFailed {
                            key: obj.key.clone(),
                            mode: "size",
                            reason: "the source changed after it was listed".into(),
                        },
                        _ => classify(conn.site("GetObject", bucket, Some(&obj.key)), e),
                    })?;
                // Tags are optional: a server (or a permission set) without tagging still migrates.
                let tagging = match conn.s3.get_object_tagging().bucket(bucket).key(&obj.key).send().await {
                    Ok(t) if !t.tag_set().is_empty() => Some(
                        t.tag_set()
                            .iter()
                            .map(|t| format!("{}={}", urlencoding::encode(t.key()), urlencoding::encode(t.value())))
                            .collect::<Vec<_>>()
                            .join("&"),
                    ),
                    _ => None,
                };
                let attrs = ObjectAttrs {
                    content_type: resp.content_type().map(str::to_owned),
                    cache_control: resp.cache_control().map(str::to_owned),
                    content_encoding: resp.content_encoding().map(str::to_owned),
                    content_disposition: resp.content_disposition().map(str::to_owned),
                    content_language: resp.content_language().map(str::to_owned),
                    metadata: resp.metadata().filter(|m| !m.is_empty()).cloned(),
                    tagging,
                };
                Ok((Box::pin(resp.body.into_async_read()), attrs))
            }
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Source::Local { root } => root.display().to_string(),
            Source::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}"),
        }
    }
}

fn list_folder(root: &Path) -> Result<Vec<SourceObject>, MigrateError> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| MigrateError::Io { path: dir.clone(), source })?;
        for entry in entries {
            let entry = entry.map_err(|source| MigrateError::Io { path: dir.clone(), source })?;
            let path = entry.path();
            let meta = entry.metadata().map_err(|source| MigrateError::Io { path: path.clone(), source })?;
            if meta.is_dir() {
                stack.push(path);
                continue;
            }
            if !meta.is_file() {
                continue;
            }
            let Ok(rel) = path.strip_prefix(root) else { continue };
            let Some(rel) = rel.to_str() else {
                eprintln!("skipping {}: the name is not UTF-8", path.display());
                continue;
            };
            let rel = rel.replace(std::path::MAIN_SEPARATOR, "/");
            let mtime = meta
                .modified()
                .ok()
                .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            out.push(SourceObject { key: rel.clone(), rel, size: meta.len(), tag: format!("{}:{mtime}", meta.len()) });
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

fn guess_content_type(key: &str) -> Option<String> {
    let ext = key.rsplit_once('.')?.1.to_ascii_lowercase();
    let t = match ext.as_str() {
        "json" => "application/json",
        "txt" | "log" => "text/plain",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "js" => "text/javascript",
        "csv" => "text/csv",
        "xml" => "application/xml",
        "pem" | "crt" | "cer" => "application/x-pem-file",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gz" => "application/gzip",
        "zip" => "application/zip",
        "pdf" => "application/pdf",
        _ => return None,
    };
    Some(t.to_owned())
}

/// Engine settings shared by every transfer of a run.
pub(crate) struct Engine {
    pub source: Source,
    pub dst: Conn,
    pub checkpoint: Checkpoint,
    pub verify: VerifyMode,
    pub resume: bool,
    pub part_size: u64,
    pub threshold: u64,
    pub throttle: Throttle,
    pub progress: Progress,
    out_of_space: AtomicBool,
    /// Uploads a killed run left open, reusable by `--resume` (keyed by destination bucket, key).
    resumable: Mutex<HashMap<(String, String), OpenUpload>>,
}

impl Engine {
    pub(crate) async fn new(
        source: Source,
        dst: Conn,
        checkpoint: Checkpoint,
        opts: &TransferOpts,
        totals: (u64, u64),
    ) -> Result<Self, MigrateError> {
        let engine = Engine {
            source,
            dst,
            checkpoint,
            verify: opts.verify,
            resume: opts.resume,
            part_size: opts.part_size_mib * MIB,
            threshold: opts.multipart_threshold_mib.max(1) * MIB,
            throttle: Throttle::new(opts.rate),
            progress: Progress::new("copy", totals.0, totals.1),
            out_of_space: AtomicBool::new(false),
            resumable: Mutex::new(HashMap::new()),
        };
        let leftovers = engine.checkpoint.open_uploads()?;
        if engine.resume {
            let mut map = engine.resumable.lock().unwrap_or_else(|p| p.into_inner());
            for u in leftovers {
                map.insert((u.dst_bucket.clone(), u.dst_key.clone()), u);
            }
        } else {
            for u in leftovers {
                engine.abort_upload(&u).await?;
            }
        }
        Ok(engine)
    }

    /// Aborts an upload (best effort: one the server forgot is gone anyway) and forgets it.
    async fn abort_upload(&self, u: &OpenUpload) -> Result<(), MigrateError> {
        let _ = self
            .dst
            .s3
            .abort_multipart_upload()
            .bucket(&u.dst_bucket)
            .key(&u.dst_key)
            .upload_id(&u.upload_id)
            .send()
            .await;
        self.checkpoint.remove_upload(u)
    }

    /// The open upload of an earlier run for this very source version and part size, if any;
    /// one for another version is aborted (its parts hold other bytes).
    async fn take_resumable(&self, t: &Transfer) -> Result<Option<OpenUpload>, MigrateError> {
        let found =
            self.resumable.lock().unwrap_or_else(|p| p.into_inner()).remove(&(t.dst_bucket.clone(), t.dst_key.clone()));
        match found {
            Some(u) if u.src_tag == t.src.tag && u.part_size == self.part_size => Ok(Some(u)),
            Some(u) => {
                self.abort_upload(&u).await?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Runs every transfer, `parallel` at a time; one failure never stops the others (except
    /// running out of space, after which nothing is attempted).
    pub(crate) async fn execute(self: &Arc<Self>, transfers: Vec<Transfer>, parallel: usize) -> Vec<ObjectReport> {
        let results = futures::stream::iter(transfers.into_iter().map(|t| {
            let engine = Arc::clone(self);
            async move {
                let outcome = engine.transfer(&t).await;
                engine.progress.object_done();
                to_report(t, outcome)
            }
        }))
        .buffer_unordered(parallel.max(1))
        .collect::<Vec<_>>()
        .await;
        self.progress.finish();
        // Open uploads of a killed run that no object of this run took over.
        let unused: Vec<OpenUpload> =
            self.resumable.lock().unwrap_or_else(|p| p.into_inner()).drain().map(|(_, u)| u).collect();
        for u in unused {
            let _ = self.abort_upload(&u).await;
        }
        let mut results = results;
        results.sort_by(|a, b| (&a.dst_bucket, &a.dst_key).cmp(&(&b.dst_bucket, &b.dst_key)));
        results
    }

    async fn transfer(&self, t: &Transfer) -> Result<(Outcome, DoneRecord), MigrateError> {
        if let Some(rec) = self.already_done(t).await? {
            self.progress.add_bytes(t.src.size);
            return Ok((Outcome::Skipped, rec));
        }
        self.throttle.wait().await;
        if self.out_of_space.load(Ordering::Relaxed) {
            return Err(MigrateError::OutOfSpace { key: format!("{} (not attempted)", t.dst_key) });
        }
        let result = self.copy_and_verify(t).await;
        if let Err(e) = &result {
            if e.is_out_of_space() {
                self.out_of_space.store(true, Ordering::Relaxed);
            }
        }
        let rec = result?;
        self.checkpoint.mark_done(&rec)?;
        Ok((Outcome::Copied, rec))
    }

    /// The checkpoint's record if it describes this very source version and (unless `--resume`
    /// trusts it) the destination still holds what was verified.
    async fn already_done(&self, t: &Transfer) -> Result<Option<DoneRecord>, MigrateError> {
        let Some(rec) = self.checkpoint.done(&t.dst_bucket, &t.dst_key)? else { return Ok(None) };
        if rec.src_tag != t.src.tag || rec.size != t.src.size {
            return Ok(None);
        }
        if self.resume {
            return Ok(Some(rec));
        }
        match self.dst.s3.head_object().bucket(&t.dst_bucket).key(&t.dst_key).send().await {
            Ok(h) if h.content_length() == Some(rec.size as i64) && h.e_tag() == Some(rec.dst_etag.as_str()) => {
                Ok(Some(rec))
            }
            Ok(_) => Ok(None),
            Err(e) if crate::error::status_of(&e) == Some(404) => {
                self.checkpoint.forget(&t.dst_bucket, &t.dst_key)?;
                Ok(None)
            }
            Err(e) => Err(classify(self.dst.site("HeadObject", &t.dst_bucket, Some(&t.dst_key)), e)),
        }
    }

    async fn copy_and_verify(&self, t: &Transfer) -> Result<DoneRecord, MigrateError> {
        let (mut body, attrs) = self.source.open(&t.src).await?;
        let written = if t.src.size <= self.threshold {
            self.put_single(t, &mut body, &attrs).await?
        } else {
            self.put_multipart(t, &mut body, &attrs).await?
        };
        let (dst_etag, dst_checksum) = self.verify_destination(t, &written).await?;
        Ok(DoneRecord {
            dst_bucket: t.dst_bucket.clone(),
            dst_key: t.dst_key.clone(),
            src_key: t.src.key.clone(),
            src_tag: t.src.tag.clone(),
            size: t.src.size,
            sha256: hex::encode(&written.sha256),
            dst_etag,
            dst_checksum,
            resumed_parts: written.reused_parts,
        })
    }

    /// Reads exactly `want` bytes (less only at the real end of the source).
    async fn read_part(&self, key: &str, body: &mut Body, want: usize) -> Result<Vec<u8>, MigrateError> {
        let mut buf = vec![0u8; want];
        let mut filled = 0;
        while filled < want {
            let n = body.read(&mut buf[filled..]).await.map_err(|e| source_read_error(key, e))?;
            if n == 0 {
                break;
            }
            filled += n;
            self.progress.add_bytes(n as u64);
        }
        buf.truncate(filled);
        Ok(buf)
    }

    /// The source must end exactly where its listing said; otherwise it changed under us and what
    /// we wrote is not the object we listed.
    async fn expect_end(&self, key: &str, body: &mut Body, got: u64, listed: u64) -> Result<(), MigrateError> {
        let mut probe = [0u8; 1];
        let extra = body.read(&mut probe).await.map_err(|e| source_read_error(key, e))?;
        if got != listed || extra != 0 {
            return Err(MigrateError::VerifyFailed {
                key: key.to_owned(),
                mode: "size",
                reason: format!("the source changed during the copy (listed {listed} bytes, read {got}+)"),
            });
        }
        Ok(())
    }

    async fn put_single(&self, t: &Transfer, body: &mut Body, attrs: &ObjectAttrs) -> Result<Written, MigrateError> {
        let data = self.read_part(&t.src.key, body, t.src.size as usize).await?;
        self.expect_end(&t.src.key, body, data.len() as u64, t.src.size).await?;
        let sha = digest::digest(&digest::SHA256, &data).as_ref().to_vec();
        let checksum = B64.encode(&sha);
        let resp = self
            .dst
            .s3
            .put_object()
            .bucket(&t.dst_bucket)
            .key(&t.dst_key)
            .body(ByteStream::from(data))
            .checksum_sha256(&checksum)
            .set_content_type(attrs.content_type.clone())
            .set_cache_control(attrs.cache_control.clone())
            .set_content_encoding(attrs.content_encoding.clone())
            .set_content_disposition(attrs.content_disposition.clone())
            .set_content_language(attrs.content_language.clone())
            .set_metadata(attrs.metadata.clone())
            .set_tagging(attrs.tagging.clone())
            .set_server_side_encryption(t.sse.header())
            .set_ssekms_key_id(t.sse.kms_key.clone())
            .set_bucket_key_enabled(t.sse.bucket_key_header())
            .send()
            .await
            .map_err(|e| classify(self.dst.site("PutObject", &t.dst_bucket, Some(&t.dst_key)), e))?;
        Ok(Written { sha256: sha, expected_checksum: checksum, etag: resp.e_tag().map(str::to_owned), reused_parts: 0 })
    }

    async fn put_multipart(&self, t: &Transfer, body: &mut Body, attrs: &ObjectAttrs) -> Result<Written, MigrateError> {
        let (upload, done_parts) = match self.take_resumable(t).await? {
            Some(u) => {
                let parts = self.checkpoint.parts(&u.upload_id)?;
                (u, parts)
            }
            None => (self.create_upload(t, attrs).await?, Vec::new()),
        };
        let result = self.upload_parts(t, body, &upload, done_parts).await;
        if result.is_err() {
            // Best effort: an abort that fails leaves the row, and the next run aborts it.
            let aborted = self
                .dst
                .s3
                .abort_multipart_upload()
                .bucket(&upload.dst_bucket)
                .key(&upload.dst_key)
                .upload_id(&upload.upload_id)
                .send()
                .await;
            if aborted.is_ok() {
                self.checkpoint.remove_upload(&upload)?;
            }
        } else {
            self.checkpoint.remove_upload(&upload)?;
        }
        result
    }

    async fn create_upload(&self, t: &Transfer, attrs: &ObjectAttrs) -> Result<OpenUpload, MigrateError> {
        let created = self
            .dst
            .s3
            .create_multipart_upload()
            .bucket(&t.dst_bucket)
            .key(&t.dst_key)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .set_content_type(attrs.content_type.clone())
            .set_cache_control(attrs.cache_control.clone())
            .set_content_encoding(attrs.content_encoding.clone())
            .set_content_disposition(attrs.content_disposition.clone())
            .set_content_language(attrs.content_language.clone())
            .set_metadata(attrs.metadata.clone())
            .set_tagging(attrs.tagging.clone())
            .set_server_side_encryption(t.sse.header())
            .set_ssekms_key_id(t.sse.kms_key.clone())
            .set_bucket_key_enabled(t.sse.bucket_key_header())
            .send()
            .await
            .map_err(|e| classify(self.dst.site("CreateMultipartUpload", &t.dst_bucket, Some(&t.dst_key)), e))?;
        let upload = OpenUpload {
            dst_bucket: t.dst_bucket.clone(),
            dst_key: t.dst_key.clone(),
            upload_id: created.upload_id().unwrap_or_default().to_owned(),
            src_tag: t.src.tag.clone(),
            part_size: self.part_size,
        };
        self.checkpoint.add_upload(&upload)?;
        Ok(upload)
    }

    /// Streams the parts; a part an earlier run already uploaded is read and hashed again (the
    /// whole-object hash needs its bytes) but only re-sent if its bytes differ.
    async fn upload_parts(
        &self,
        t: &Transfer,
        body: &mut Body,
        upload: &OpenUpload,
        done_parts: Vec<UploadedPart>,
    ) -> Result<Written, MigrateError> {
        let done: HashMap<i32, UploadedPart> = done_parts.into_iter().map(|p| (p.number, p)).collect();
        let mut reused_parts = 0u32;
        let mut whole = digest::Context::new(&digest::SHA256);
        let mut part_digests = Vec::new();
        let mut parts = Vec::new();
        let mut sent = 0u64;
        let site = |op| self.dst.site(op, &t.dst_bucket, Some(&t.dst_key));
        while sent < t.src.size {
            let want = self.part_size.min(t.src.size - sent) as usize;
            let data = self.read_part(&t.src.key, body, want).await?;
            if data.len() < want {
                self.expect_end(&t.src.key, body, sent + data.len() as u64, t.src.size).await?;
            }
            sent += data.len() as u64;
            whole.update(&data);
            let part_sha = digest::digest(&digest::SHA256, &data).as_ref().to_vec();
            let part_checksum = B64.encode(&part_sha);
            part_digests.extend_from_slice(&part_sha);
            let number = parts.len() as i32 + 1;
            if let Some(p) = done.get(&number).filter(|p| p.sha256_b64 == part_checksum) {
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .e_tag(p.etag.clone())
                        .checksum_sha256(part_checksum)
                        .build(),
                );
                reused_parts += 1;
                continue;
            }
            let resp = self
                .dst
                .s3
                .upload_part()
                .bucket(&t.dst_bucket)
                .key(&t.dst_key)
                .upload_id(&upload.upload_id)
                .part_number(number)
                .checksum_sha256(&part_checksum)
                .body(ByteStream::from(data))
                .send()
                .await
                .map_err(|e| classify(site("UploadPart"), e))?;
            let etag = resp.e_tag().unwrap_or_default().to_owned();
            self.checkpoint.add_part(
                &upload.upload_id,
                &UploadedPart { number, etag: etag.clone(), sha256_b64: part_checksum.clone() },
            )?;
            parts.push(CompletedPart::builder().part_number(number).e_tag(etag).checksum_sha256(part_checksum).build());
        }
        self.expect_end(&t.src.key, body, sent, t.src.size).await?;
        let n = parts.len();
        let resp = self
            .dst
            .s3
            .complete_multipart_upload()
            .bucket(&t.dst_bucket)
            .key(&t.dst_key)
            .upload_id(&upload.upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|e| classify(site("CompleteMultipartUpload"), e))?;
        // S3's composite checksum: SHA-256 over the concatenated part digests, suffixed -N.
        let composite = B64.encode(digest::digest(&digest::SHA256, &part_digests).as_ref());
        Ok(Written {
            sha256: whole.finish().as_ref().to_vec(),
            expected_checksum: format!("{composite}-{n}"),
            etag: resp.e_tag().map(str::to_owned),
            reused_parts,
        })
    }

    /// Returns the destination's (ETag, checksum) once they prove the write.
    async fn verify_destination(&self, t: &Transfer, w: &Written) -> Result<(String, Option<String>), MigrateError> {
        let fail =
            |mode: &'static str, reason: String| MigrateError::VerifyFailed { key: t.dst_key.clone(), mode, reason };
        let head = self
            .dst
            .s3
            .head_object()
            .bucket(&t.dst_bucket)
            .key(&t.dst_key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| classify(self.dst.site("HeadObject", &t.dst_bucket, Some(&t.dst_key)), e))?;
        let size = head.content_length().unwrap_or(-1);
        if size != t.src.size as i64 {
            return Err(fail("size", format!("destination has {size} bytes, source {}", t.src.size)));
        }
        if let (Some(wanted), Some(got)) = (t.sse.header(), head.server_side_encryption()) {
            if wanted != *got {
                return Err(fail("encryption", format!("destination reports {got:?}, asked for {wanted:?}")));
            }
        }
        let etag = head.e_tag().or(w.etag.as_deref()).unwrap_or("").to_owned();
        let checksum = head.checksum_sha256().map(str::to_owned);
        let mut read_back = self.verify == VerifyMode::Full;
        if self.verify != VerifyMode::Size {
            match &checksum {
                Some(c) if same_checksum(c, &w.expected_checksum) => {}
                Some(c) => {
                    return Err(fail("checksum", format!("destination SHA-256 {c}, expected {}", w.expected_checksum)))
                }
                // A store that keeps no checksum can still be verified: read it back.
                None => read_back = true,
            }
        }
        if read_back {
            let got = self.read_back_sha256(t).await?;
            if got != w.sha256 {
                return Err(fail(
                    "full",
                    format!("read-back SHA-256 {} differs from source {}", hex::encode(got), hex::encode(&w.sha256)),
                ));
            }
        }
        Ok((etag, checksum))
    }

    async fn read_back_sha256(&self, t: &Transfer) -> Result<Vec<u8>, MigrateError> {
        let resp = self
            .dst
            .s3
            .get_object()
            .bucket(&t.dst_bucket)
            .key(&t.dst_key)
            .send()
            .await
            .map_err(|e| classify(self.dst.site("GetObject", &t.dst_bucket, Some(&t.dst_key)), e))?;
        let mut ctx = digest::Context::new(&digest::SHA256);
        let mut body = resp.body;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| MigrateError::VerifyFailed {
                key: t.dst_key.clone(),
                mode: "full",
                reason: format!("reading the destination back failed: {e}"),
            })?;
            ctx.update(&chunk);
        }
        Ok(ctx.finish().as_ref().to_vec())
    }
}

/// What a write produced, for verification.
struct Written {
    sha256: Vec<u8>,
    expected_checksum: String,
    etag: Option<String>,
    /// Multipart parts taken over from a killed run instead of being sent again.
    reused_parts: u32,
}

/// Compares x-amz-checksum values; a store may omit the `-N` part count of a composite checksum.
fn same_checksum(got: &str, expected: &str) -> bool {
    let base = |s: &str| s.split_once('-').map(|(b, _)| b.to_owned()).unwrap_or_else(|| s.to_owned());
    got == expected || (base(got) == base(expected) && (!got.contains('-') || !expected.contains('-')))
}

fn source_read_error(key: &str, e: std::io::Error) -> MigrateError {
    if e.kind() == std::io::ErrorKind::NotFound {
        MigrateError::Vanished { key: key.to_owned() }
    } else {
        MigrateError::Io { path: PathBuf::from(key), source: e }
    }
}

fn to_report(t: Transfer, outcome: Result<(Outcome, DoneRecord), MigrateError>) -> ObjectReport {
    let mut r = ObjectReport {
        src_key: t.src.key,
        src_tag: t.src.tag,
        dst_bucket: t.dst_bucket,
        dst_key: t.dst_key,
        size: t.src.size,
        outcome: Outcome::Failed,
        sha256: None,
        dst_etag: None,
        dst_checksum: None,
        resumed_parts: None,
        error: None,
    };
    match outcome {
        Ok((outcome, rec)) => {
            r.outcome = outcome;
            r.sha256 = Some(rec.sha256);
            r.dst_etag = Some(rec.dst_etag);
            r.dst_checksum = rec.dst_checksum;
            r.resumed_parts = (rec.resumed_parts > 0).then_some(rec.resumed_parts);
        }
        Err(e) => r.error = Some(e.to_string()),
    }
    r
}

/// Checks the destination bucket exists before streaming anything into it.
pub(crate) async fn ensure_bucket(conn: &Conn, bucket: &str) -> Result<(), MigrateError> {
    match conn.s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e) if crate::error::status_of(&e) == Some(404) => {
            Err(MigrateError::NoSuchBucket { side: conn.side, bucket: bucket.to_owned() })
        }
        // HEAD answers carry no error code; a GET tells wrong keys from missing permission.
        Err(e) if crate::error::status_of(&e) == Some(403) => match conn.s3.list_buckets().send().await {
            Err(e2) if crate::error::status_of(&e2) == Some(403) => {
                Err(classify(conn.site("ListBuckets", bucket, None), e2))
            }
            _ => Err(classify(conn.site("HeadBucket", bucket, None), e)),
        },
        Err(e) => Err(classify(conn.site("HeadBucket", bucket, None), e)),
    }
}

/// Finishes a run: report file, human summary, exit code.
pub(crate) fn finish_run(
    source: String,
    opts: &TransferOpts,
    objects: Vec<ObjectReport>,
    unmatched: Vec<String>,
    started: Instant,
) -> Result<i32, MigrateError> {
    let report = Report::build(source, opts.verify, objects, unmatched, started.elapsed().as_secs_f64());
    if let Some(path) = &opts.report {
        report.write(path)?;
    }
    print!("{}", report.summary_text());
    Ok(if report.summary.failed > 0 { 1 } else { 0 })
}

pub(crate) fn dest_key(dst_prefix: &str, rel: &str) -> String {
    format!("{}{rel}", folder_prefix(dst_prefix))
}

/// `migrate copy SRC DST`.
pub(crate) async fn run_copy(args: CopyArgs) -> anyhow::Result<i32> {
    let started = Instant::now();
    let src_loc = Location::parse(&args.src)?;
    let (dst_bucket, dst_prefix) = Location::parse_s3(&args.dst)?;
    let sse = SseSpec { algorithm: args.sse, kms_key: args.kms_key.clone(), bucket_key: args.bucket_key };
    sse.validate()?;
    let opts = &args.opts;
    let source = Source::connect(&src_loc, &opts.conn).await?;
    let objects = source.list(opts.prefix.as_deref().unwrap_or("")).await?;
    let transfers: Vec<Transfer> = objects
        .into_iter()
        .map(|src| Transfer {
            dst_key: dest_key(&dst_prefix, &src.rel),
            dst_bucket: dst_bucket.clone(),
            sse: sse.clone(),
            src,
        })
        .collect();
    let total_bytes: u64 = transfers.iter().map(|t| t.src.size).sum();
    if opts.dry_run {
        for t in &transfers {
            println!("{} -> s3://{}/{} ({})", t.src.key, t.dst_bucket, t.dst_key, human_bytes(t.src.size));
        }
        println!("dry run: {} objects, {} would be copied", transfers.len(), human_bytes(total_bytes));
        return Ok(0);
    }
    let dst = Conn::connect(&Endpoint::for_side(&opts.conn, Side::Destination), Side::Destination).await;
    ensure_bucket(&dst, &dst_bucket).await?;
    let job = format!("copy {} -> {}", source.describe(), args.dst);
    let checkpoint = Checkpoint::open(&opts.checkpoint, &job)?;
    let engine = Arc::new(Engine::new(source, dst, checkpoint, opts, (transfers.len() as u64, total_bytes)).await?);
    let results = engine.execute(transfers, opts.parallel).await;
    Ok(finish_run(args.src.clone(), opts, results, Vec::new(), started)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_compare_with_or_without_part_count() {
        assert!(same_checksum("abc=-3", "abc=-3"));
        assert!(same_checksum("abc=", "abc=-3"));
        assert!(!same_checksum("abc=-2", "abc=-3"));
        assert!(!same_checksum("abd=", "abc="));
    }

    #[test]
    fn destination_keys_follow_folder_semantics() {
        assert_eq!(dest_key("", "a/b"), "a/b");
        assert_eq!(dest_key("x", "a"), "x/a");
        assert_eq!(dest_key("x/", "a"), "x/a");
    }
}
