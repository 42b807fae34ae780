//! Async adapters over the sync core, for request and response bodies. Built on `futures` only:
//! the crypto runs inline in `poll_next`, one segment (~5 µs) at a time, so no executor is needed.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures::Stream;

use crate::layout::{RangePlan, SEGMENT_SIZE};
use crate::{DataKey, ObjectSealer, SealError, SegmentOpener};

/// The error type of body streams (the same shape as s3s's and hyper's).
pub type StdError = Box<dyn std::error::Error + Send + Sync>;

/// Seals a plaintext body: yields the header, then each sealed segment. Input chunks may have any
/// size; a large chunk is sealed one segment per poll, so output never runs far ahead of the
/// consumer. Input errors are passed through unchanged (so the caller can downcast its own).
pub fn seal_stream<S>(keys: &[DataKey], plaintext: S) -> Result<SealStream<S>, SealError>
where
    S: Stream<Item = Result<Bytes, StdError>> + Send + 'static,
{
    Ok(SealStream {
        input: ExclusiveInput::new(plaintext),
        sealer: Some(ObjectSealer::new(keys)?),
        ready: VecDeque::new(),
        chunk: Bytes::new(),
    })
}

/// The stream returned by [`seal_stream`]: `Send + Sync + Unpin` whenever the input is `Send`
/// (s3s's `StreamingBlob` needs `Sync`).
pub struct SealStream<S> {
    input: ExclusiveInput<S>,
    /// `None` once finished or failed.
    sealer: Option<ObjectSealer>,
    ready: VecDeque<Bytes>,
    /// The part of the last input chunk not yet given to the sealer.
    chunk: Bytes,
}

impl<S> Stream for SealStream<S>
where
    S: Stream<Item = Result<Bytes, StdError>>,
{
    type Item = Result<Bytes, StdError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(sealed) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(sealed)));
            }
            let Some(sealer) = this.sealer.as_mut() else {
                return Poll::Ready(None);
            };
            if !this.chunk.is_empty() {
                let piece = this.chunk.split_to(SEGMENT_SIZE.min(this.chunk.len()));
                if let Err(err) = sealer.push(&piece, &mut this.ready) {
                    this.sealer = None;
                    this.ready.clear();
                    return Poll::Ready(Some(Err(err.into())));
                }
                continue;
            }
            match this.input.poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => this.chunk = chunk,
                Poll::Ready(Some(Err(err))) => {
                    this.sealer = None;
                    return Poll::Ready(Some(Err(err)));
                }
                Poll::Ready(None) => {
                    let finished = this.sealer.take().map(|sealer| sealer.finish(&mut this.ready));
                    if let Some(Err(err)) = finished {
                        this.ready.clear();
                        return Poll::Ready(Some(Err(err.into())));
                    }
                }
            }
        }
    }
}

/// Opens the plaintext range planned by `plan` from `sealed`, a stream of the sealed object's
/// bytes starting at `plan.sealed_range().start` (it may run on past the range's end; extra bytes
/// after a segment that is not the object's final one are ignored). `header` is the object's
/// header (its first `header_len` bytes).
///
/// Yields exactly `plan.plain_len()` bytes, one decrypted segment per item. Every byte yielded
/// has been authenticated; on tampering, short input or bytes after the final segment the stream
/// yields a [`SealError`] (boxed) and ends. Input errors are passed through unchanged.
pub fn open_stream<S>(keys: &[DataKey], header: &[u8], sealed: S, plan: RangePlan) -> Result<OpenStream<S>, SealError>
where
    S: Stream<Item = Result<Bytes, StdError>> + Send + 'static,
{
    let opener = SegmentOpener::new(keys, header)?;
    if opener.header().layers() != plan.layers() {
        return Err(SealError::BadHeader);
    }
    Ok(OpenStream {
        input: ExclusiveInput::new(sealed),
        opener,
        next_index: plan.first_segment(),
        skip: plan.skip(),
        remaining: plan.plain_len(),
        plan,
        segment: BytesMut::new(),
        chunk: Bytes::new(),
        is_input_ended: false,
        is_done: false,
    })
}

/// The stream returned by [`open_stream`]: `Send + Sync + Unpin` whenever the input is `Send`.
pub struct OpenStream<S> {
    input: ExclusiveInput<S>,
    opener: SegmentOpener,
    plan: RangePlan,
    next_index: u64,
    /// Plaintext bytes still to drop from the next opened segment.
    skip: usize,
    /// Plaintext bytes still to yield.
    remaining: u64,
    /// Sealed bytes of segment `next_index` gathered so far.
    segment: BytesMut,
    /// The part of the last input chunk not yet moved into `segment`.
    chunk: Bytes,
    is_input_ended: bool,
    is_done: bool,
}

impl<S> OpenStream<S> {
    /// Plaintext bytes still to be yielded (for an exact `Content-Length` / remaining length).
    pub fn remaining(&self) -> u64 {
        if self.is_done {
            0
        } else {
            self.remaining
        }
    }
}

impl<S> OpenStream<S>
where
    S: Stream<Item = Result<Bytes, StdError>>,
{
    fn fail(&mut self, err: SealError) -> Poll<Option<Result<Bytes, StdError>>> {
        self.is_done = true;
        Poll::Ready(Some(Err(err.into())))
    }

    /// Polls the input for more bytes; `Some` is what `poll_next` must return now.
    fn poll_input(&mut self, cx: &mut Context<'_>) -> Option<Poll<Option<Result<Bytes, StdError>>>> {
        match self.input.poll_next(cx) {
            Poll::Pending => Some(Poll::Pending),
            Poll::Ready(Some(Ok(chunk))) => {
                self.chunk = chunk;
                None
            }
            Poll::Ready(Some(Err(err))) => {
                self.is_done = true;
                Some(Poll::Ready(Some(Err(err))))
            }
            Poll::Ready(None) => {
                self.is_input_ended = true;
                None
            }
        }
    }

    /// Opens the gathered segment and returns the part of its plaintext the range wants.
    fn open_gathered(&mut self, is_final: bool) -> Result<Bytes, SealError> {
        let sealed = std::mem::take(&mut self.segment);
        let plain = self.opener.open_segment(self.next_index, is_final, sealed)?;
        self.next_index += 1;
        let start = std::mem::take(&mut self.skip).min(plain.len());
        let len = ((plain.len() - start) as u64).min(self.remaining) as usize;
        self.remaining -= len as u64;
        Ok(plain.slice(start..start + len))
    }
}

impl<S> Stream for OpenStream<S>
where
    S: Stream<Item = Result<Bytes, StdError>>,
{
    type Item = Result<Bytes, StdError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.is_done || this.next_index > this.plan.last_segment() {
                this.is_done = true;
                return Poll::Ready(None);
            }
            let want = this.plan.sealed_segment_len(this.next_index);
            if this.segment.len() < want {
                if !this.chunk.is_empty() {
                    let take = (want - this.segment.len()).min(this.chunk.len());
                    this.segment.reserve(want - this.segment.len());
                    this.segment.extend_from_slice(&this.chunk[..take]);
                    this.chunk.advance(take);
                    continue;
                }
                if this.is_input_ended {
                    let segment = this.next_index;
                    return this.fail(SealError::Truncated { segment });
                }
                if let Some(ready) = this.poll_input(cx) {
                    return ready;
                }
                continue;
            }
            let is_final = this.next_index == this.plan.final_segment();
            if is_final {
                // Anything after the final segment is an extension: refuse before yielding the end.
                if !this.chunk.is_empty() {
                    return this.fail(SealError::TooLong);
                }
                if !this.is_input_ended {
                    if let Some(ready) = this.poll_input(cx) {
                        return ready;
                    }
                    continue;
                }
            }
            match this.open_gathered(is_final) {
                Ok(plain) if plain.is_empty() => continue,
                Ok(plain) => return Poll::Ready(Some(Ok(plain))),
                Err(err) => return this.fail(err),
            }
        }
    }
}

/// The input stream, behind a `Mutex` that is never locked: polling takes `&mut self`, so
/// `Mutex::get_mut` reaches the stream without locking. It only makes the adapters `Sync` for
/// inputs that are merely `Send` (the input is never shared between threads).
struct ExclusiveInput<S>(Mutex<Pin<Box<S>>>);

impl<S: Stream> ExclusiveInput<S> {
    fn new(stream: S) -> Self {
        Self(Mutex::new(Box::pin(stream)))
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.0.get_mut().unwrap_or_else(PoisonError::into_inner).as_mut().poll_next(cx)
    }
}
