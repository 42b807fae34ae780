//! The audit log writer: one thread owns the files; requests hand it records through a bounded
//! channel and (for durable records) wait until the batch holding theirs is fsynced.
//!
//! Why a single writer: the chain needs a total order anyway, and one fdatasync can commit every
//! record that arrived while the previous one ran (group commit), so concurrent requests never
//! queue behind each other's fsyncs (the disk does ~7,300 fsyncs/s, design.md).

use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context as TaskContext, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aws_lc_rs::digest::{Context, SHA256};
use time::OffsetDateTime;

use crate::chain::{self, RawLine, GENESIS_PREV};
use crate::coalesce::{Admission, Coalescer, FloodKey, FloodLimits, Suppressed};
use crate::digest::{self, DigestDocument, DigestHead, DigestLogFile, HASH_ALGORITHM, SIGNATURE_ALGORITHM};
use crate::record::{AuditRecord, EventSource, RECOVERED_EVENT};
use crate::signer::AuditSigner;
use crate::{fsutil, redact, time_fmt, AuditError};

/// Time, injected so digest times can be tested without sleeping.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// How far `append` goes before returning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// On disk (fdatasync) before `append` returns: management events, so the record exists
    /// before the response does.
    Durable,
    /// Handed to the OS at once, fdatasynced within `flush_interval`: data events.
    Buffered,
}

#[derive(Clone)]
pub struct AuditConfig {
    /// The server's data directory; the log goes to `<data_dir>/audit/`.
    pub data_dir: PathBuf,
    /// `awsAccountId` of digests.
    pub account_id: String,
    /// A log file is sealed before it grows past this (a single larger record still fits).
    pub max_file_bytes: u64,
    /// Digests are written this often (and on close); each seals the current log file.
    pub digest_interval: Duration,
    /// Longest time a buffered record waits for its fdatasync.
    pub flush_interval: Duration,
    /// Records waiting for the writer before `append` blocks (backpressure, bounded memory).
    pub queue_capacity: usize,
    /// `awsRegion` of the records sealbox writes about itself.
    pub region: String,
    /// How often a failed writer checks whether the disk takes writes again.
    pub retry_interval: Duration,
    /// Bounds on the records clients can cause at will ([`AuditLog::admit`]).
    pub flood: FloodLimits,
    pub clock: Arc<dyn Clock>,
}

impl AuditConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        AuditConfig {
            data_dir: data_dir.into(),
            account_id: "000000000000".to_owned(),
            max_file_bytes: 64 << 20,
            digest_interval: Duration::from_secs(3600),
            flush_interval: Duration::from_secs(1),
            queue_capacity: 16_384,
            region: "us-east-1".to_owned(),
            retry_interval: Duration::from_secs(1),
            flood: FloodLimits::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Counters of what the writer did since `open`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    pub records: u64,
    /// fdatasyncs of log files (group commits and periodic flushes).
    pub fsyncs: u64,
    pub digests: u64,
    pub files_created: u64,
}

#[derive(Default)]
struct Counters {
    records: AtomicU64,
    fsyncs: AtomicU64,
    digests: AtomicU64,
    files_created: AtomicU64,
}

/// A one-shot answer from the writer, awaited either by blocking or as a future.
struct Slot<T> {
    value: Option<Result<T, AuditError>>,
    waker: Option<Waker>,
}

struct Completion<T> {
    slot: Mutex<Slot<T>>,
    ready: Condvar,
}

type Done<T> = Arc<Completion<T>>;

fn completion<T>() -> Done<T> {
    Arc::new(Completion { slot: Mutex::new(Slot { value: None, waker: None }), ready: Condvar::new() })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned slot only means a waiter panicked; the value inside is still sound.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<T> Completion<T> {
    fn complete(&self, value: Result<T, AuditError>) {
        let waker = {
            let mut slot = lock(&self.slot);
            slot.value = Some(value);
            slot.waker.take()
        };
        self.ready.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn wait(&self) -> Result<T, AuditError> {
        let mut slot = lock(&self.slot);
        loop {
            if let Some(v) = slot.value.take() {
                return v;
            }
            slot = self.ready.wait(slot).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// `append_async`'s future: resolves when the record is durable (or handed over, for buffered).
pub struct AppendFuture {
    state: AppendState,
}

enum AppendState {
    Ready(Option<Result<(), AuditError>>),
    Waiting(Done<()>),
}

impl Future for AppendFuture {
    type Output = Result<(), AuditError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            AppendState::Ready(v) => Poll::Ready(v.take().unwrap_or(Err(AuditError::Closed))),
            AppendState::Waiting(done) => {
                let mut slot = lock(&done.slot);
                match slot.value.take() {
                    Some(v) => Poll::Ready(v),
                    None => {
                        slot.waker = Some(cx.waker().clone());
                        Poll::Pending
                    }
                }
            }
        }
    }
}

/// The writer's end of a completion. Dropping it unanswered (a writer that stopped or panicked
/// with the command still queued) answers `Closed`, so no caller ever waits forever.
struct Reply<T>(Option<Done<T>>);

impl<T> Reply<T> {
    fn new(done: &Done<T>) -> Self {
        Reply(Some(done.clone()))
    }

    fn complete(mut self, value: Result<T, AuditError>) {
        if let Some(done) = self.0.take() {
            done.complete(value);
        }
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        if let Some(done) = self.0.take() {
            done.complete(Err(AuditError::Closed));
        }
    }
}

enum Command {
    Append { record: Box<AuditRecord>, done: Option<Reply<()>> },
    Flush(Reply<()>),
    Digest(Reply<PathBuf>),
    Shutdown(Reply<()>),
}

/// The audit trail's write side. Cheap to share (`Arc<AuditLog>`); all methods take `&self`.
pub struct AuditLog {
    tx: SyncSender<Command>,
    writer: Mutex<Option<JoinHandle<()>>>,
    failed: Arc<AtomicBool>,
    /// Why the writer failed (for readiness checks), while it is failed.
    failure: Arc<Mutex<Option<AuditError>>>,
    coalescer: Arc<Mutex<Coalescer>>,
    clock: Arc<dyn Clock>,
    counters: Arc<Counters>,
    audit_dir: PathBuf,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").field("audit_dir", &self.audit_dir).finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens (or creates) `<data_dir>/audit/`, continues the existing chain and digest chain, and
    /// starts the writer thread. A torn last line left by a crash is cut off and the cut is itself
    /// recorded (`AuditLogRepaired`); a log shorter than the newest digest says is refused.
    pub fn open(config: AuditConfig, signer: AuditSigner) -> Result<AuditLog, AuditError> {
        let audit_dir = crate::audit_dir(&config.data_dir);
        let digests_dir = audit_dir.join(chain::DIGESTS_DIR);
        fs::create_dir_all(&digests_dir).map_err(|e| AuditError::io(&digests_dir, e))?;
        let lock = lock_writer(&audit_dir)?;
        let digest_head = digest::load_head(&audit_dir)?;
        let covered_seq = digest_head.as_ref().map_or(0, |h| h.chain_head_seq);
        let recovered = recover(&audit_dir, covered_seq)?;
        if covered_seq > recovered.last_seq {
            return Err(AuditError::ChainBehindDigest { digest_seq: covered_seq, log_seq: recovered.last_seq });
        }
        let sealed = recovered.files.into_iter().filter(|f| f.first_seq > covered_seq).collect();
        let now = config.clock.now();
        let digest_start = digest_head.as_ref().map_or_else(|| time_fmt::iso_seconds(now), |h| h.end_time.clone());

        let failed = Arc::new(AtomicBool::new(false));
        let failure = Arc::new(Mutex::new(None));
        let coalescer = Arc::new(Mutex::new(Coalescer::new(config.flood)));
        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::sync_channel(config.queue_capacity.max(1));
        let writer = Writer {
            _lock: lock,
            audit_dir: audit_dir.clone(),
            account_id: config.account_id.clone(),
            region: config.region.clone(),
            max_file_bytes: config.max_file_bytes,
            digest_interval: config.digest_interval,
            flush_interval: config.flush_interval,
            clock: config.clock.clone(),
            signer,
            next_seq: recovered.last_seq + 1,
            synced_seq: recovered.last_seq,
            synced_hash: recovered.last_hash.clone(),
            prev_hash: recovered.last_hash,
            active: None,
            broken: None,
            sealed,
            digest_head,
            digest_start,
            dirty_since: None,
            next_digest_at: Instant::now() + config.digest_interval,
            failure: None,
            retry_interval: config.retry_interval,
            next_retry_at: Instant::now(),
            failed: failed.clone(),
            failure_slot: failure.clone(),
            coalescer: coalescer.clone(),
            flood_window: config.flood.window,
            counters: counters.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("sealbox-audit-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| AuditError::io(&audit_dir, e))?;
        let log = AuditLog {
            tx,
            writer: Mutex::new(Some(handle)),
            failed,
            failure,
            coalescer,
            clock: config.clock.clone(),
            counters,
            audit_dir,
        };
        if let Some(repair) = recovered.repair {
            let record = AuditRecord::service_event(
                &config.account_id,
                &config.region,
                now,
                EventSource::Sealbox,
                "AuditLogRepaired",
            )
            .with_service_event_details(serde_json::json!({
                "file": repair.file,
                "truncatedAtByte": repair.offset,
                "discardedBytes": repair.discarded_bytes,
                "discardedSha256": repair.discarded_sha256,
            }));
            log.append(record, Durability::Durable)?;
        }
        Ok(log)
    }

    /// Redacts and appends `record`. `Durable`: returns once it is fsynced. `Buffered`: returns once
    /// the writer has it queued. An error means the record may not be stored: the caller must
    /// refuse the request it describes.
    pub fn append(&self, record: AuditRecord, mode: Durability) -> Result<(), AuditError> {
        match self.submit(record, mode)? {
            None => Ok(()),
            Some(done) => done.wait(),
        }
    }

    /// `append` for async callers: the wait for the fsync does not block an executor thread.
    /// (Queueing can still block briefly when `queue_capacity` records are already waiting.)
    pub fn append_async(&self, record: AuditRecord, mode: Durability) -> AppendFuture {
        let state = match self.submit(record, mode) {
            Ok(None) => AppendState::Ready(Some(Ok(()))),
            Ok(Some(done)) => AppendState::Waiting(done),
            Err(e) => AppendState::Ready(Some(Err(e))),
        };
        AppendFuture { state }
    }

    fn submit(&self, mut record: AuditRecord, mode: Durability) -> Result<Option<Done<()>>, AuditError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(self.failure().unwrap_or(AuditError::Closed));
        }
        redact::redact(&mut record);
        let done = (mode == Durability::Durable).then(completion);
        self.tx
            .send(Command::Append { record: Box::new(record), done: done.as_ref().map(Reply::new) })
            .map_err(|_| AuditError::Closed)?;
        Ok(done)
    }

    /// Makes every record appended so far durable.
    pub fn flush(&self) -> Result<(), AuditError> {
        let done = completion();
        self.tx.send(Command::Flush(Reply::new(&done))).map_err(|_| AuditError::Closed)?;
        done.wait()
    }

    /// Writes pending flood counts, seals the current log file and writes a signed digest now;
    /// returns the digest's path.
    pub fn write_digest_now(&self) -> Result<PathBuf, AuditError> {
        let done = completion();
        self.tx.send(Command::Digest(Reply::new(&done))).map_err(|_| AuditError::Closed)?;
        done.wait()
    }

    /// Flushes, writes a final digest and stops the writer.
    pub fn close(self) -> Result<(), AuditError> {
        self.shutdown()
    }

    fn shutdown(&self) -> Result<(), AuditError> {
        let Some(handle) = lock(&self.writer).take() else { return Ok(()) };
        let done = completion();
        let result = match self.tx.send(Command::Shutdown(Reply::new(&done))) {
            Ok(()) => done.wait(),
            Err(_) => Err(AuditError::Closed),
        };
        // The writer exits right after answering; a panic there has already been reported.
        let _ = handle.join();
        result
    }

    pub fn stats(&self) -> AuditStats {
        AuditStats {
            records: self.counters.records.load(Ordering::Relaxed),
            fsyncs: self.counters.fsyncs.load(Ordering::Relaxed),
            digests: self.counters.digests.load(Ordering::Relaxed),
            files_created: self.counters.files_created.load(Ordering::Relaxed),
        }
    }

    /// True while the writer is failed (a write or fsync failed): every append is refused until
    /// the writer has recovered (it retries every `retry_interval`, and succeeds once the disk
    /// takes writes again; see `Writer::try_recover`).
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// The error that failed the writer, while it is failed.
    pub fn failure(&self) -> Option<AuditError> {
        if !self.has_failed() {
            return None;
        }
        lock(&self.failure).clone()
    }

    /// Flood coalescing for a record a client can cause at will (a refused request): `Record` means
    /// append it; `Suppress` means it was counted and will be part of a `RequestsSuppressed`
    /// summary the writer appends (see [`crate::coalesce`]).
    pub fn admit(&self, key: &FloodKey) -> Admission {
        let now = self.clock.now();
        lock(&self.coalescer).admit(key, now)
    }

    pub fn audit_dir(&self) -> &Path {
        &self.audit_dir
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // Best effort: a dropped log still gets its records synced and a closing digest.
        let _ = self.shutdown();
    }
}

/// The file being appended to.
struct ActiveFile {
    name: String,
    out: BufWriter<File>,
    bytes: u64,
    /// Bytes made durable by the last successful fsync.
    synced_bytes: u64,
    hasher: Context,
    first_seq: u64,
    last_seq: u64,
    oldest: OffsetDateTime,
    newest: OffsetDateTime,
}

impl ActiveFile {
    fn summary(self) -> DigestLogFile {
        DigestLogFile {
            path: self.name,
            hash_value: hex::encode(self.hasher.finish()),
            hash_algorithm: HASH_ALGORITHM.to_owned(),
            bytes: self.bytes,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            newest_event_time: time_fmt::iso_seconds(self.newest),
            oldest_event_time: time_fmt::iso_seconds(self.oldest),
        }
    }
}

/// Most commands handled per batch, so one batch never holds replies back for long.
const MAX_BATCH: usize = 4096;

struct Writer {
    /// Held for the writer's life: a second writer would fork the chain.
    _lock: File,
    audit_dir: PathBuf,
    account_id: String,
    region: String,
    max_file_bytes: u64,
    digest_interval: Duration,
    flush_interval: Duration,
    clock: Arc<dyn Clock>,
    signer: AuditSigner,
    next_seq: u64,
    prev_hash: String,
    /// The chain head at the last successful fsync: what recovery continues from.
    synced_seq: u64,
    synced_hash: String,
    active: Option<ActiveFile>,
    /// The file that was active when the writer failed, until recovery has cut it back.
    broken: Option<BrokenFile>,
    /// Sealed files no digest covers yet.
    sealed: Vec<DigestLogFile>,
    digest_head: Option<DigestHead>,
    digest_start: String,
    /// Buffered records reached the OS but not the disk since this instant.
    dirty_since: Option<Instant>,
    next_digest_at: Instant,
    failure: Option<AuditError>,
    retry_interval: Duration,
    next_retry_at: Instant,
    failed: Arc<AtomicBool>,
    failure_slot: Arc<Mutex<Option<AuditError>>>,
    coalescer: Arc<Mutex<Coalescer>>,
    flood_window: Duration,
    counters: Arc<Counters>,
}

/// A log file whose last write or fsync failed: only its first `synced_bytes` are known durable.
struct BrokenFile {
    name: String,
    file: File,
    synced_bytes: u64,
}

impl Writer {
    fn run(mut self, rx: Receiver<Command>) {
        loop {
            let wait = self.next_wakeup().saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(first) => {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(c) => batch.push(c),
                            Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                        }
                    }
                    if self.process(batch) {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    // Every AuditLog handle is gone without a shutdown: still leave a sound log.
                    let _ = self.close_out();
                    return;
                }
            }
            self.run_timers();
        }
    }

    fn next_wakeup(&self) -> Instant {
        let mut at = self.next_digest_at;
        if let Some(t) = self.dirty_since {
            at = at.min(t + self.flush_interval);
        }
        if self.failure.is_some() {
            at = at.min(self.next_retry_at);
        }
        if !lock(&self.coalescer).is_idle() {
            at = at.min(Instant::now() + self.flood_window);
        }
        at
    }

    fn run_timers(&mut self) {
        let now = Instant::now();
        if self.failure.is_some() && now >= self.next_retry_at {
            let _ = self.try_recover();
        }
        if self.failure.is_none() {
            let due = lock(&self.coalescer).due(self.clock.now());
            self.write_summaries(due);
        }
        if self.dirty_since.is_some_and(|t| t + self.flush_interval <= now) {
            let _ = self.commit(true);
        }
        if now >= self.next_digest_at {
            self.next_digest_at = now + self.digest_interval;
            // A digest that cannot be written (full or read-only disk) is retried at the next
            // interval; the records themselves are durable, so requests go on.
            let _ = self.write_digest();
        }
    }

    /// Appends flood summaries (buffered: fsynced by the flusher within `flush_interval`).
    fn write_summaries(&mut self, summaries: Vec<Suppressed>) {
        for s in summaries {
            let record = AuditRecord::requests_suppressed(&self.account_id, &self.region, &s);
            if self.write_record(&record).is_err() {
                return;
            }
        }
        let _ = self.commit(false);
    }

    /// Shutdown: recover if possible, record every pending flood count, sync, final digest.
    fn close_out(&mut self) -> Result<(), AuditError> {
        if self.failure.is_some() {
            self.try_recover()?;
        }
        let pending = lock(&self.coalescer).drain(self.clock.now());
        self.write_summaries(pending);
        self.commit(true)?;
        self.write_digest().map(|_| ())
    }

    /// Handles one batch; true when the writer must stop.
    fn process(&mut self, batch: Vec<Command>) -> bool {
        let mut waiting: Vec<Reply<()>> = Vec::new();
        for command in batch {
            match command {
                Command::Append { record, done } => match self.write_record(&record) {
                    Ok(()) => waiting.extend(done),
                    Err(e) => {
                        if let Some(d) = done {
                            d.complete(Err(e));
                        }
                    }
                },
                Command::Flush(done) => waiting.push(done),
                Command::Digest(done) => {
                    // Flood counts so far go into the records this digest covers.
                    if self.failure.is_none() {
                        let pending = lock(&self.coalescer).drain(self.clock.now());
                        self.write_summaries(pending);
                    }
                    let synced = self.commit(true);
                    answer(&mut waiting, &synced);
                    done.complete(synced.and_then(|()| self.write_digest()));
                }
                Command::Shutdown(done) => {
                    let synced = self.commit(true);
                    answer(&mut waiting, &synced);
                    done.complete(self.close_out());
                    // Commands queued behind the shutdown are answered `Closed` as they drop.
                    return true;
                }
            }
        }
        let must_sync = !waiting.is_empty();
        let result = self.commit(must_sync);
        answer(&mut waiting, &result);
        false
    }

    fn fail(&mut self, e: AuditError) -> AuditError {
        let e = self.failure.get_or_insert(e).clone();
        *lock(&self.failure_slot) = Some(e.clone());
        self.failed.store(true, Ordering::Release);
        self.next_retry_at = Instant::now() + self.retry_interval;
        e
    }

    /// After a failed write or fsync, once the disk takes writes again: cut the file that was
    /// being written back to what the last successful fsync made durable, continue the chain from
    /// that record, and record the repair (`AuditWriterRecovered`, with what was discarded).
    ///
    /// Retrying a failed fsync is not safe (the kernel may have dropped the dirty pages and report
    /// success the second time), so nothing written after the last good fsync is kept: durable
    /// callers of those records were answered with the error; buffered ones (data events, refused
    /// requests) are counted in the repair record.
    fn try_recover(&mut self) -> Result<(), AuditError> {
        let Some(cause) = self.failure.clone() else { return Ok(()) };
        self.next_retry_at = Instant::now() + self.retry_interval;
        if let Some(active) = self.active.take() {
            // Discard what is still buffered: it is past the durable length anyway.
            let (file, _unsynced) = active.out.into_parts();
            self.broken = Some(BrokenFile { name: active.name, file, synced_bytes: active.synced_bytes });
        }
        let cut = match &self.broken {
            Some(b) => Some(self.cut_back(b)?),
            None => None,
        };
        if let Some(Some(summary)) = &cut {
            self.sealed.push(summary.clone());
        }
        let broken = self.broken.take();
        let discarded = self.next_seq - 1 - self.synced_seq;
        self.next_seq = self.synced_seq + 1;
        self.prev_hash = self.synced_hash.clone();
        self.dirty_since = None;
        self.failure = None;
        let record = AuditRecord::service_event(
            &self.account_id,
            &self.region,
            self.clock.now(),
            EventSource::Sealbox,
            RECOVERED_EVENT,
        )
        .with_error("AuditWriteFailed", &cause.to_string())
        .with_service_event_details(serde_json::json!({
            "error": cause.to_string(),
            "discardedRecords": discarded,
            "firstDiscardedSeq": (discarded > 0).then_some(self.next_seq),
            "file": broken.as_ref().map(|b| b.name.clone()),
            "truncatedAtByte": broken.as_ref().map(|b| b.synced_bytes),
        }));
        self.write_record(&record)?;
        self.commit(true)?;
        *lock(&self.failure_slot) = None;
        self.failed.store(false, Ordering::Release);
        Ok(())
    }

    /// Cuts a broken file to its durable length (removing it if nothing in it was durable);
    /// returns its digest summary, if it keeps any record.
    fn cut_back(&self, b: &BrokenFile) -> Result<Option<DigestLogFile>, AuditError> {
        let path = self.audit_dir.join(&b.name);
        b.file.set_len(b.synced_bytes).and_then(|()| b.file.sync_all()).map_err(|e| AuditError::io(&path, e))?;
        if b.synced_bytes == 0 {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(AuditError::io(&path, e)),
            }
            fsutil::sync_dir(&self.audit_dir).map_err(|e| AuditError::io(&self.audit_dir, e))?;
            return Ok(None);
        }
        Ok(scan_file(&path, &b.name, false)?.summary)
    }

    fn write_record(&mut self, record: &AuditRecord) -> Result<(), AuditError> {
        if let Some(e) = &self.failure {
            return Err(e.clone());
        }
        let json = serde_json::to_string(record).map_err(|e| AuditError::Encode(e.to_string()))?;
        let (line, hash) = chain::encode_line(self.next_seq, &self.prev_hash, &json);
        self.append_line(&line, record.event_time).map_err(|e| self.fail(e))?;
        self.counters.records.fetch_add(1, Ordering::Relaxed);
        self.prev_hash = hash;
        self.next_seq += 1;
        Ok(())
    }

    fn append_line(&mut self, line: &[u8], event_time: OffsetDateTime) -> Result<(), AuditError> {
        let full =
            self.active.as_ref().is_some_and(|a| a.bytes > 0 && a.bytes + line.len() as u64 > self.max_file_bytes);
        if full {
            self.seal_active()?;
        }
        if self.active.is_none() {
            self.active = Some(self.create_file(event_time)?);
        }
        let Some(active) = self.active.as_mut() else { return Err(AuditError::Closed) };
        let path = self.audit_dir.join(&active.name);
        active.out.write_all(line).map_err(|e| AuditError::io(&path, e))?;
        active.hasher.update(line);
        active.bytes += line.len() as u64;
        active.last_seq = self.next_seq;
        active.oldest = active.oldest.min(event_time);
        active.newest = active.newest.max(event_time);
        Ok(())
    }

    fn create_file(&mut self, event_time: OffsetDateTime) -> Result<ActiveFile, AuditError> {
        let name = chain::log_file_name(self.clock.now(), self.next_seq);
        let path = self.audit_dir.join(&name);
        // create_new: an existing file of that name is never appended to or clobbered.
        let file =
            OpenOptions::new().append(true).create_new(true).open(&path).map_err(|e| AuditError::io(&path, e))?;
        fsutil::sync_dir(&self.audit_dir).map_err(|e| AuditError::io(&self.audit_dir, e))?;
        self.counters.files_created.fetch_add(1, Ordering::Relaxed);
        Ok(ActiveFile {
            name,
            out: BufWriter::with_capacity(256 << 10, file),
            bytes: 0,
            synced_bytes: 0,
            hasher: Context::new(&SHA256),
            first_seq: self.next_seq,
            last_seq: self.next_seq,
            oldest: event_time,
            newest: event_time,
        })
    }

    /// Hands written lines to the OS, and fdatasyncs them when `sync` (or leaves that to the
    /// flusher, within `flush_interval`).
    fn commit(&mut self, sync: bool) -> Result<(), AuditError> {
        if let Some(e) = &self.failure {
            return Err(e.clone());
        }
        let Some(active) = self.active.as_mut() else { return Ok(()) };
        let path = self.audit_dir.join(&active.name);
        let result = active.out.flush().and_then(|()| if sync { active.out.get_ref().sync_data() } else { Ok(()) });
        if let Err(e) = result {
            return Err(self.fail(AuditError::io(&path, e)));
        }
        if sync {
            active.synced_bytes = active.bytes;
            self.synced_seq = self.next_seq - 1;
            self.synced_hash.clone_from(&self.prev_hash);
            self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
            self.dirty_since = None;
        } else if active.bytes > 0 {
            self.dirty_since.get_or_insert_with(Instant::now);
        }
        Ok(())
    }

    fn seal_active(&mut self) -> Result<(), AuditError> {
        self.commit(true)?;
        if let Some(active) = self.active.take() {
            self.sealed.push(active.summary());
        }
        Ok(())
    }

    /// Seals the current file and writes the next digest over every sealed, uncovered file.
    fn write_digest(&mut self) -> Result<PathBuf, AuditError> {
        self.seal_active()?;
        let end = self.clock.now();
        let end_time = time_fmt::iso_seconds(end);
        let number = self.digest_head.as_ref().map_or(1, |h| h.number + 1);
        let name = chain::digest_file_name(end, number);
        let doc = DigestDocument {
            aws_account_id: self.account_id.clone(),
            digest_start_time: self.digest_start.clone(),
            digest_end_time: end_time.clone(),
            digest_file: name.clone(),
            digest_number: number,
            digest_public_key_fingerprint: self.signer.fingerprint(),
            digest_signature_algorithm: SIGNATURE_ALGORITHM.to_owned(),
            newest_event_time: self.sealed.iter().map(|f| f.newest_event_time.clone()).max(),
            oldest_event_time: self.sealed.iter().map(|f| f.oldest_event_time.clone()).min(),
            previous_digest_file: self.digest_head.as_ref().map(|h| h.file_name.clone()),
            previous_digest_hash_value: self.digest_head.as_ref().map(|h| h.sha256_hex.clone()),
            previous_digest_hash_algorithm: HASH_ALGORITHM.to_owned(),
            previous_digest_signature: self.digest_head.as_ref().map(|h| h.signature_hex.clone()),
            chain_head_seq: self.next_seq - 1,
            chain_head_hash: self.prev_hash.clone(),
            log_files: self.sealed.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&doc).map_err(|e| AuditError::Encode(e.to_string()))?;
        let sha = digest::sha256_hex(&bytes);
        let previous_signature = self.digest_head.as_ref().map(|h| h.signature_hex.as_str());
        let to_sign = digest::string_to_sign(&end_time, &name, &sha, previous_signature);
        let signature = hex::encode(self.signer.sign(to_sign.as_bytes()));
        let path = digest::write_digest_files(&self.audit_dir, &name, &bytes, &signature)?;
        self.digest_head = Some(DigestHead {
            number,
            file_name: name,
            sha256_hex: sha,
            signature_hex: signature,
            end_time: end_time.clone(),
            chain_head_seq: doc.chain_head_seq,
        });
        self.sealed.clear();
        self.digest_start = end_time;
        self.counters.digests.fetch_add(1, Ordering::Relaxed);
        Ok(path)
    }
}

fn answer(waiting: &mut Vec<Reply<()>>, result: &Result<(), AuditError>) {
    for done in waiting.drain(..) {
        done.complete(result.clone());
    }
}

/// Takes `<audit dir>/writer.lock` (an advisory lock the OS drops with the process).
fn lock_writer(audit_dir: &Path) -> Result<File, AuditError> {
    let path = audit_dir.join("writer.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| AuditError::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(AuditError::Locked { path }),
        Err(std::fs::TryLockError::Error(e)) => Err(AuditError::io(&path, e)),
    }
}

/// A torn last line cut off at open.
struct Repair {
    file: String,
    offset: u64,
    discarded_bytes: u64,
    discarded_sha256: String,
}

/// What is on disk at open: the chain head and a summary of every log file.
struct Recovered {
    last_seq: u64,
    last_hash: String,
    files: Vec<DigestLogFile>,
    repair: Option<Repair>,
}

/// Scans the files no digest covers yet, and the newest file (for the chain head). Files wholly
/// covered by a digest are skipped, so start-up time does not grow with the log's age.
fn recover(audit_dir: &Path, covered_seq: u64) -> Result<Recovered, AuditError> {
    let names = chain::list_log_files(audit_dir).map_err(|e| AuditError::io(audit_dir, e))?;
    let mut out = Recovered { last_seq: 0, last_hash: GENESIS_PREV.to_owned(), files: Vec::new(), repair: None };
    let count = names.len();
    for (i, (_, name)) in names.iter().enumerate() {
        let is_last = i + 1 == count;
        let wholly_covered = names.get(i + 1).is_some_and(|(next_first, _)| *next_first <= covered_seq + 1);
        if wholly_covered {
            continue;
        }
        let path = audit_dir.join(name);
        let scan = scan_file(&path, name, is_last)?;
        if let Some(repair) = scan.repair {
            out.repair = Some(repair);
        }
        let Some(summary) = scan.summary else {
            // Only a crash right after creating the file leaves it empty: nothing to keep.
            fs::remove_file(&path).map_err(|e| AuditError::io(&path, e))?;
            continue;
        };
        out.last_seq = summary.last_seq;
        out.last_hash = scan.last_hash;
        out.files.push(summary);
    }
    Ok(out)
}

struct Scan {
    summary: Option<DigestLogFile>,
    last_hash: String,
    repair: Option<Repair>,
}

/// Reads a log file once: its hash, seq range, times and last record hash. In the newest file a
/// last line without its `\n` is a write torn by a crash: it is cut off (recorded by the caller).
fn scan_file(path: &Path, name: &str, is_last: bool) -> Result<Scan, AuditError> {
    let file = File::open(path).map_err(|e| AuditError::io(path, e))?;
    let mut reader = BufReader::new(file);
    let mut hasher = Context::new(&SHA256);
    let mut line = Vec::new();
    let (mut offset, mut line_no) = (0u64, 0u64);
    let mut summary: Option<DigestLogFile> = None;
    let mut last_hash = GENESIS_PREV.to_owned();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(|e| AuditError::io(path, e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if line.last() != Some(&b'\n') {
            if !is_last {
                return Err(AuditError::CorruptLog {
                    file: name.to_owned(),
                    line: line_no,
                    reason: "line without newline".into(),
                });
            }
            let repair = Repair {
                file: name.to_owned(),
                offset,
                discarded_bytes: line.len() as u64,
                discarded_sha256: digest::sha256_hex(&line),
            };
            cut_file(path, offset)?;
            return Ok(Scan { summary: finish(summary, hasher, offset), last_hash, repair: Some(repair) });
        }
        let parsed = RawLine::parse(&line[..line.len() - 1]).map_err(|reason| AuditError::CorruptLog {
            file: name.to_owned(),
            line: line_no,
            reason,
        })?;
        let time = parsed.event_time().unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let t = time_fmt::iso_seconds(time);
        let s = summary.get_or_insert_with(|| DigestLogFile {
            path: name.to_owned(),
            hash_value: String::new(),
            hash_algorithm: HASH_ALGORITHM.to_owned(),
            bytes: 0,
            first_seq: parsed.seq,
            last_seq: parsed.seq,
            newest_event_time: t.clone(),
            oldest_event_time: t.clone(),
        });
        s.last_seq = parsed.seq;
        s.newest_event_time = s.newest_event_time.clone().max(t.clone());
        s.oldest_event_time = s.oldest_event_time.clone().min(t);
        last_hash = parsed.hash;
        hasher.update(&line);
        offset += n as u64;
    }
    Ok(Scan { summary: finish(summary, hasher, offset), last_hash, repair: None })
}

fn finish(summary: Option<DigestLogFile>, hasher: Context, bytes: u64) -> Option<DigestLogFile> {
    summary.map(|mut s| {
        s.hash_value = hex::encode(hasher.finish());
        s.bytes = bytes;
        s
    })
}

fn cut_file(path: &Path, len: u64) -> Result<(), AuditError> {
    let f = OpenOptions::new().write(true).open(path).map_err(|e| AuditError::io(path, e))?;
    f.set_len(len).and_then(|()| f.sync_all()).map_err(|e| AuditError::io(path, e))
}
