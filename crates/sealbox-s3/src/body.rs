//! How object bytes move between the network and the blob store. `store_body` is the only way
//! bytes reach a blob and `read_parts` the only way they come back, so sealing lives here.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Seek, SeekFrom};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use s3s::dto::StreamingBlob;
use s3s::{s3_error, S3Error, S3Result, StdError};
use sealbox_store::{BlobStore, StoredPart};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use crate::checksum::BodyHasher;
use crate::error::store_error;

/// A body that has been hashed and durably written as a blob (not yet named by any record).
pub(crate) struct StoredBody {
    pub blob: String,
    pub size: u64,
    pub md5: [u8; 16],
    pub checksums: BTreeMap<String, String>,
}

/// Streams `body` into a new blob, hashing the plaintext on the way. Memory use is bounded by the
/// chunk sizes of the stream and the writer's buffer, whatever the object size.
pub(crate) async fn store_body(
    blobs: &BlobStore,
    body: StreamingBlob,
    checksum_algorithms: &[&'static str],
    max_size: u64,
    expected_len: Option<u64>,
    idle_timeout: std::time::Duration,
) -> S3Result<StoredBody> {
    let mut hasher = BodyHasher::new(checksum_algorithms);
    let mut writer = blobs.create().await.map_err(store_error)?;
    let mut size: u64 = 0;
    let mut body = body;
    loop {
        // A client that stops sending must not hold a connection and a temp file forever.
        let next = tokio::time::timeout(idle_timeout, body.next()).await.map_err(|_| {
            s3_error!(RequestTimeout, "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.")
        })?;
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(body_error)?;
        size += chunk.len() as u64;
        if size > max_size {
            return Err(s3_error!(
                EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed object size."
            ));
        }
        hasher.update(&chunk);
        writer.write(&chunk).await.map_err(store_error)?;
    }
    if let Some(expected) = expected_len {
        if expected != size {
            return Err(s3_error!(
                IncompleteBody,
                "You did not provide the number of bytes specified by the Content-Length HTTP header."
            ));
        }
    }
    let blob = writer.commit().await.map_err(store_error)?;
    let (md5, checksums) = hasher.finish();
    Ok(StoredBody {
        blob,
        size,
        md5,
        checksums,
    })
}

/// An error from the request body: a client that went away, or a bad chunk signature / trailer
/// that s3s detected while decoding aws-chunked framing.
fn body_error(err: StdError) -> S3Error {
    match err.downcast::<S3Error>() {
        Ok(s3) => *s3,
        Err(other) => {
            tracing::debug!(error = %other, "request body ended early");
            s3_error!(IncompleteBody, "The request body terminated unexpectedly")
        }
    }
}

/// One contiguous slice of one stored blob.
struct Slice {
    path: PathBuf,
    offset: u64,
    len: u64,
}

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
                offset: from,
                len: to - from,
            });
        }
        part_start = part_end;
        if part_start >= end {
            break;
        }
    }
    out
}

/// The plaintext bytes `[start, end)` of an object made of `parts`, as a stream.
pub(crate) fn read_parts(
    blobs: &BlobStore,
    parts: &[StoredPart],
    start: u64,
    end: u64,
) -> StreamingBlob {
    let reader = PartsReader {
        slices: plan_slices(blobs, parts, start, end),
        current: None,
        remaining: end - start,
    };
    StreamingBlob::new(reader)
}

/// Reads slices one after another. Opening a local file is a short syscall, done inline.
struct PartsReader {
    slices: VecDeque<Slice>,
    current: Option<ReaderStream<tokio::io::Take<tokio::fs::File>>>,
    remaining: u64,
}

impl PartsReader {
    fn open_next(&mut self) -> std::io::Result<bool> {
        let Some(slice) = self.slices.pop_front() else {
            return Ok(false);
        };
        let mut file = std::fs::File::open(&slice.path)?;
        file.seek(SeekFrom::Start(slice.offset))?;
        let file = tokio::fs::File::from_std(file).take(slice.len);
        self.current = Some(ReaderStream::with_capacity(file, 256 * 1024));
        Ok(true)
    }
}

impl Stream for PartsReader {
    type Item = Result<Bytes, StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(cur) = self.current.as_mut() {
                match cur.poll_next_unpin(cx) {
                    Poll::Ready(Some(Ok(bytes))) => {
                        self.remaining = self.remaining.saturating_sub(bytes.len() as u64);
                        return Poll::Ready(Some(Ok(bytes)));
                    }
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(Box::new(e)))),
                    Poll::Ready(None) => self.current = None,
                    Poll::Pending => return Poll::Pending,
                }
            }
            match self.open_next() {
                Ok(true) => continue,
                Ok(false) => {
                    if self.remaining > 0 {
                        // A blob shorter than its record says: never end the body silently short.
                        self.remaining = 0;
                        return Poll::Ready(Some(Err(
                            "stored object is shorter than its metadata".into(),
                        )));
                    }
                    return Poll::Ready(None);
                }
                Err(e) => return Poll::Ready(Some(Err(Box::new(e)))),
            }
        }
    }
}

impl s3s::stream::ByteStream for PartsReader {
    fn remaining_length(&self) -> s3s::stream::RemainingLength {
        s3s::stream::RemainingLength::new_exact(self.remaining as usize)
    }
}
