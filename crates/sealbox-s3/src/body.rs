//! How object bytes move between the network and the blob store. `store_body` is the only way
//! bytes reach a blob and `read_parts` the only way they come back, so sealing lives here.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use s3s::dto::StreamingBlob;
use s3s::{s3_error, S3Error, S3Result, StdError};
use sealbox_seal::{header_len, open_stream, plan_range, sealed_len, DataKey, Layers, ObjectSealer};
use sealbox_store::{BlobStore, StoredPart};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use crate::checksum::BodyHasher;
use crate::error::store_error;
use crate::sse::PlainKey;

/// A body that has been hashed and durably written as a blob (not yet named by any record).
pub(crate) struct StoredBody {
    pub blob: String,
    pub size: u64,
    /// Present when the caller asked for it (`need_md5`).
    pub md5: Option<[u8; 16]>,
    pub checksums: BTreeMap<String, String>,
}

/// Streams `body` into a new blob, hashing the plaintext and sealing it on the way: the blob
/// holds only sealed bytes. Memory use is bounded by the chunk sizes of the stream, one segment
/// and the writer's buffer, whatever the object size.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn store_body(
    blobs: &BlobStore,
    body: StreamingBlob,
    checksum_algorithms: &[&'static str],
    max_size: u64,
    expected_len: Option<u64>,
    idle_timeout: std::time::Duration,
    keys: &[PlainKey],
    part_number: Option<u32>,
    need_md5: bool,
) -> S3Result<StoredBody> {
    let data_keys = data_keys(keys, part_number)?;
    if data_keys.is_empty() {
        // Every write is sealed; reaching here would put plaintext on disk.
        return Err(crate::error::internal("store_body", "no data key for a write"));
    }
    let mut sealer = ObjectSealer::new(&data_keys).map_err(|e| crate::error::internal("sealer", e))?;
    let mut hasher = BodyHasher::new(checksum_algorithms, need_md5);
    let mut writer = blobs.create().await.map_err(store_error)?;
    let mut sealed: Vec<Bytes> = Vec::new();
    let mut size: u64 = 0;
    let mut body = body;
    loop {
        // A client that stops sending must not hold a connection and a temp file forever.
        let next = tokio::time::timeout(idle_timeout, body.next()).await.map_err(|_| {
            s3_error!(
                RequestTimeout,
                "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed."
            )
        })?;
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(body_error)?;
        size += chunk.len() as u64;
        if size > max_size {
            return Err(s3_error!(EntityTooLarge, "Your proposed upload exceeds the maximum allowed object size."));
        }
        hasher.update(&chunk);
        sealer.push(&chunk, &mut sealed).map_err(|e| crate::error::internal("seal", e))?;
        for b in sealed.drain(..) {
            writer.write(&b).await.map_err(store_error)?;
        }
    }
    if let Some(expected) = expected_len {
        if expected != size {
            return Err(s3_error!(
                IncompleteBody,
                "You did not provide the number of bytes specified by the Content-Length HTTP header."
            ));
        }
    }
    sealer.finish(&mut sealed).map_err(|e| crate::error::internal("seal", e))?;
    for b in sealed.drain(..) {
        writer.write(&b).await.map_err(store_error)?;
    }
    let blob = writer.commit().await.map_err(store_error)?;
    let (md5, checksums) = hasher.finish();
    Ok(StoredBody { blob, size, md5, checksums })
}

/// The keys that seal one blob. Parts of a multipart upload share the upload's data key, so each
/// part seals under a key bound to its part number: a part blob moved to another part's place
/// fails authentication instead of being served in the wrong order.
fn data_keys(keys: &[PlainKey], part_number: Option<u32>) -> S3Result<Vec<DataKey>> {
    keys.iter()
        .map(|k| {
            let key = DataKey::from_bytes(&k[..])?;
            match part_number {
                Some(n) => key.bound_to(format!("part {n}").as_bytes()),
                None => Ok(key),
            }
        })
        .collect::<Result<_, _>>()
        .map_err(|e| crate::error::internal("data key", e))
}

/// Reads and drops what is left of a small request body before an early error answer, so the
/// client (which may be waiting on `Expect: 100-continue`) gets a clean response on a connection
/// that stays in step. Large bodies are not read: the connection is closed instead.
pub(crate) async fn drain_small(body: &mut StreamingBlob) {
    const LIMIT: u64 = 8 << 20;
    let mut seen = 0u64;
    while seen <= LIMIT {
        match tokio::time::timeout(std::time::Duration::from_secs(5), body.next()).await {
            Ok(Some(Ok(chunk))) => seen += chunk.len() as u64,
            _ => return,
        }
    }
}

/// An error from the request body: a client that went away, or a bad chunk signature / trailer
/// that s3s detected while decoding aws-chunked framing.
fn body_error(err: StdError) -> S3Error {
    match err.downcast::<S3Error>() {
        Ok(s3) => *s3,
        Err(other) => {
            // s3s's body decoders (aws-chunked, signed payload) report by error type, which s3s
            // does not export: tell them apart by their names.
            let text = other.to_string();
            tracing::debug!(error = %text, "request body refused or ended early");
            if text.contains("SignatureMismatch") {
                s3_error!(
                    SignatureDoesNotMatch,
                    "The request signature we calculated does not match the signature you provided. Check your key and signing method."
                )
            } else if text.contains("Sha256Mismatch") {
                let mut e = S3Error::with_message(
                    s3s::S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                );
                e.set_status_code(http::StatusCode::BAD_REQUEST);
                e
            } else {
                s3_error!(IncompleteBody, "The request body terminated unexpectedly")
            }
        }
    }
}

/// The plaintext bytes `[from, to)` of one stored part.
struct Slice {
    path: PathBuf,
    part_number: Option<u32>,
    /// Plaintext size of the whole part (its final segment is found from it).
    part_size: u64,
    from: u64,
    to: u64,
    /// The blob, opened and checked before the response started (see [`read_parts`]).
    opened: Option<OpenedBlob>,
}

/// A blob opened for reading, its length checked against the format and its header read, all
/// through one descriptor: from here on its bytes stay readable even if an overwrite unlinks it.
struct OpenedBlob {
    file: std::fs::File,
    header: Vec<u8>,
}

/// At most this many blobs of a window are opened before the response starts (bounding the
/// descriptors one GET holds); the parts after them open as the stream reaches them, covered by
/// the blob store's deletion grace period alone. 64 parts are at least 320 MiB.
const OPEN_AHEAD: usize = 64;

/// Plans which bytes of which parts cover the plaintext range `[start, end)` of an object.
fn plan_slices(blobs: &BlobStore, parts: &[StoredPart], start: u64, end: u64) -> VecDeque<Slice> {
    let mut out = VecDeque::new();
    let mut part_start = 0u64;
    for part in parts {
        let part_end = part_start + part.size;
        if part_end > start && part_start < end {
            let from = start.max(part_start) - part_start;
            let to = end.min(part_end) - part_start;
            out.push_back(Slice {
                path: blobs.blob_path(&part.blob),
                part_number: part.part_number,
                part_size: part.size,
                from,
                to,
                opened: None,
            });
        }
        part_start = part_end;
        if part_start >= end {
            break;
        }
    }
    out
}

/// Called when stored bytes fail their integrity check during a read (for metrics and audit).
pub type IntegrityReporter = std::sync::Arc<dyn Fn(&str, &str) + Send + Sync>;

/// The plaintext bytes `[start, end)` of an object made of `parts`, as a stream that opens only
/// the segments the range needs. `keys` must not be empty: unsealed parts are never served.
///
/// The window's blobs (up to [`OPEN_AHEAD`]) are opened and checked *before* this returns, so
/// before the caller sends a status line: a read serves the version whose record it loaded, whole,
/// even if an overwrite replaces it meanwhile, and a missing or mis-sized blob is an error
/// response, never `200` followed by a truncated body.
pub(crate) async fn read_parts(
    blobs: &BlobStore,
    parts: &[StoredPart],
    start: u64,
    end: u64,
    keys: &[PlainKey],
    what: (&str, Option<&IntegrityReporter>),
) -> S3Result<StreamingBlob> {
    let (label, reporter) = what;
    let mut reader = PartsReader {
        label: label.to_owned(),
        reporter: reporter.cloned(),
        slices: plan_slices(blobs, parts, start, end),
        keys: keys.to_vec(),
        current: None,
        remaining: end - start,
    };
    let (reader, failure) = tokio::task::spawn_blocking(move || {
        let failure = reader.open_ahead().err();
        (reader, failure)
    })
    .await
    .map_err(|e| crate::error::internal("object read task", e))?;
    if let Some(e) = failure {
        reader.report(&e);
        return Err(crate::error::internal("object read", e));
    }
    Ok(StreamingBlob::new(SyncReader(sync_wrapper::SyncStream::new(reader), end - start)))
}

/// Opens one slice's blob; a sealed blob must be exactly as long as the format says for the
/// recorded size (bytes appended or cut off are tampering, reported before any plaintext).
fn open_blob(keys: &[PlainKey], slice: &Slice) -> Result<OpenedBlob, StdError> {
    if keys.is_empty() {
        // Every stored byte is sealed; callers check records first (`open_object`), and a record
        // without a data key is never streamed raw.
        return Err("refusing to serve an object without a data key".into());
    }
    let mut file = std::fs::File::open(&slice.path)?;
    let layers = Layers::try_from(keys.len())?;
    let on_disk = file.metadata()?.len();
    if on_disk != sealed_len(slice.part_size, layers) {
        return Err("stored object failed its integrity check (length)".into());
    }
    let mut header = vec![0u8; header_len(layers)];
    file.read_exact(&mut header)?;
    Ok(OpenedBlob { file, header })
}

type DynBytes = Pin<Box<dyn Stream<Item = Result<Bytes, StdError>> + Send>>;

/// Reads slices one after another. Slices past [`OPEN_AHEAD`] open inline when reached (a short
/// syscall on a local file).
struct PartsReader {
    /// `bucket/key`, for reports.
    label: String,
    reporter: Option<IntegrityReporter>,
    slices: VecDeque<Slice>,
    keys: Vec<PlainKey>,
    current: Option<DynBytes>,
    remaining: u64,
}

/// `len` bytes of an open file from `offset`, as a byte stream.
fn file_stream(
    mut file: std::fs::File,
    offset: u64,
    len: u64,
) -> std::io::Result<ReaderStream<tokio::io::Take<tokio::fs::File>>> {
    file.seek(SeekFrom::Start(offset))?;
    Ok(ReaderStream::with_capacity(tokio::fs::File::from_std(file).take(len), 256 * 1024))
}

impl PartsReader {
    /// Opens the first [`OPEN_AHEAD`] blobs of the window (blocking).
    fn open_ahead(&mut self) -> Result<(), StdError> {
        for slice in self.slices.iter_mut().take(OPEN_AHEAD) {
            slice.opened = Some(open_blob(&self.keys, slice)?);
        }
        Ok(())
    }

    /// The slice's plaintext as a stream, from the blob opened up front or (past [`OPEN_AHEAD`])
    /// opened now.
    fn open_slice(&self, mut slice: Slice) -> Result<DynBytes, StdError> {
        let OpenedBlob { file, header } = match slice.opened.take() {
            Some(opened) => opened,
            None => open_blob(&self.keys, &slice)?,
        };
        let keys = data_keys(&self.keys, slice.part_number).map_err(|e| -> StdError { e.to_string().into() })?;
        let layers = Layers::for_keys(&keys)?;
        let plan = plan_range(slice.part_size, layers, slice.from, slice.to)?;
        let sealed = plan.sealed_range();
        let raw = file_stream(file, sealed.start, sealed.end - sealed.start)?.map(|r| r.map_err(StdError::from));
        Ok(Box::pin(open_stream(&keys, &header, raw, plan)?))
    }

    /// Logs and reports a failed read (integrity or I/O) for metrics and the audit trail.
    fn report(&self, e: &StdError) {
        tracing::error!(object = %self.label, error = %e, "object read failed (integrity or I/O)");
        if let Some(r) = &self.reporter {
            r(&self.label, &e.to_string());
        }
    }
}

impl Stream for PartsReader {
    type Item = Result<Bytes, StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(cur) = self.current.as_mut() {
                match cur.as_mut().poll_next(cx) {
                    Poll::Ready(Some(Ok(bytes))) => {
                        self.remaining = self.remaining.saturating_sub(bytes.len() as u64);
                        return Poll::Ready(Some(Ok(bytes)));
                    }
                    Poll::Ready(Some(Err(e))) => {
                        self.report(&e);
                        self.slices.clear();
                        self.current = None;
                        self.remaining = 0;
                        return Poll::Ready(Some(Err(e)));
                    }
                    Poll::Ready(None) => self.current = None,
                    Poll::Pending => return Poll::Pending,
                }
            }
            let Some(slice) = self.slices.pop_front() else {
                if self.remaining > 0 {
                    // A blob shorter than its record says: never end the body silently short.
                    self.remaining = 0;
                    return Poll::Ready(Some(Err("stored object is shorter than its metadata".into())));
                }
                return Poll::Ready(None);
            };
            match self.open_slice(slice) {
                Ok(s) => self.current = Some(s),
                Err(e) => {
                    self.report(&e);
                    self.slices.clear();
                    self.remaining = 0;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}

/// s3s wants `Sync` bodies; the decrypting stream is only `Send`, so it goes behind a SyncStream
/// (it is only ever polled through `&mut`). Also reports the exact remaining length.
struct SyncReader(sync_wrapper::SyncStream<PartsReader>, u64);

impl Stream for SyncReader {
    type Item = Result<Bytes, StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let r = Pin::new(&mut self.0).poll_next(cx);
        if let Poll::Ready(Some(Ok(b))) = &r {
            self.1 = self.1.saturating_sub(b.len() as u64);
        }
        r
    }
}

impl s3s::stream::ByteStream for SyncReader {
    fn remaining_length(&self) -> s3s::stream::RemainingLength {
        s3s::stream::RemainingLength::new_exact(self.1 as usize)
    }
}
