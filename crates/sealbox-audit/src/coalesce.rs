//! Flood coalescing for records a client can cause at will: requests refused before or at
//! authentication (anonymous and denied, a bad signature, an unknown access key) and denials.
//!
//! Every such request is audited, but a client must not be able to fill the disk with them. Per
//! [`FloodKey`] (source IP, error code, claimed access key) the first `per_key` requests of a
//! one-`window` span are recorded one by one; after that the key is *flooding*: its requests are
//! only counted, and one summary record (`RequestsSuppressed`, with the count) is written when the
//! key has been quiet for a `window`, and at least every `summary_interval` while it goes on.
//! At most `total` records per `window` are written one by one over all keys, and at most
//! `max_keys` keys are tracked; requests beyond either limit are counted too (in their key's entry,
//! or in one overflow count), so every request is in exactly one record or one count.
//!
//! Pure logic with the time passed in, so it is tested without sleeping (the writer thread drives
//! [`Coalescer::due`] from its timer).

use std::collections::HashMap;
use std::time::Duration;

use time::OffsetDateTime;

/// The bounds; [`FloodLimits::default`] is what the server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodLimits {
    /// The span `per_key` and `total` count over, and how long a key must be quiet to be done.
    pub window: Duration,
    /// Records written one by one per key per window before the key counts as flooding.
    pub per_key: u32,
    /// Records written one by one per window over all keys.
    pub total: u32,
    /// Keys tracked at once; requests of further keys go to the overflow count.
    pub max_keys: usize,
    /// Longest time a flooding key's count waits for its summary record.
    pub summary_interval: Duration,
}

impl Default for FloodLimits {
    fn default() -> Self {
        FloodLimits {
            window: Duration::from_secs(1),
            per_key: 10,
            total: 100,
            max_keys: 1024,
            summary_interval: Duration::from_secs(60),
        }
    }
}

/// What makes two refused requests "identical" for coalescing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FloodKey {
    pub source_ip: String,
    pub error_code: String,
    /// The access key the request named (not proven: the signature may be bad); empty if none.
    pub access_key_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Write this request's record.
    Record,
    /// Counted: it will be part of a `RequestsSuppressed` summary.
    Suppress,
}

/// Requests that were counted instead of recorded, for one summary record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppressed {
    /// `None`: the overflow count (keys beyond `max_keys`).
    pub key: Option<FloodKey>,
    pub count: u64,
    pub first: OffsetDateTime,
    pub last: OffsetDateTime,
}

#[derive(Debug)]
struct Entry {
    window_start: OffsetDateTime,
    in_window: u32,
    flooding: bool,
    suppressed: u64,
    first_suppressed: Option<OffsetDateTime>,
    last_seen: OffsetDateTime,
    last_summary: OffsetDateTime,
}

impl Entry {
    fn new(now: OffsetDateTime) -> Self {
        Entry {
            window_start: now,
            in_window: 0,
            flooding: false,
            suppressed: 0,
            first_suppressed: None,
            last_seen: now,
            last_summary: now,
        }
    }

    fn suppress(&mut self, now: OffsetDateTime) -> Admission {
        self.flooding = true;
        self.suppressed += 1;
        self.first_suppressed.get_or_insert(now);
        Admission::Suppress
    }

    /// Takes the count for a summary if one is due (`force`: at shutdown).
    fn take_summary(
        &mut self,
        key: Option<&FloodKey>,
        now: OffsetDateTime,
        limits: &FloodLimits,
        force: bool,
    ) -> Option<Suppressed> {
        let quiet = now - self.last_seen >= limits.window;
        let overdue = now - self.last_summary >= limits.summary_interval;
        if self.suppressed == 0 || !(force || quiet || overdue) {
            return None;
        }
        let summary = Suppressed {
            key: key.cloned(),
            count: self.suppressed,
            first: self.first_suppressed.unwrap_or(self.last_seen),
            last: self.last_seen,
        };
        self.suppressed = 0;
        self.first_suppressed = None;
        self.last_summary = now;
        Some(summary)
    }
}

/// The coalescing state (one per audit log, behind a mutex).
#[derive(Debug)]
pub struct Coalescer {
    limits: FloodLimits,
    entries: HashMap<FloodKey, Entry>,
    overflow: Option<Entry>,
    window_start: Option<OffsetDateTime>,
    recorded_in_window: u32,
}

impl Coalescer {
    pub fn new(limits: FloodLimits) -> Self {
        Coalescer { limits, entries: HashMap::new(), overflow: None, window_start: None, recorded_in_window: 0 }
    }

    pub fn limits(&self) -> &FloodLimits {
        &self.limits
    }

    /// Decides whether the request described by `key` gets its own record.
    pub fn admit(&mut self, key: &FloodKey, now: OffsetDateTime) -> Admission {
        let window = self.limits.window;
        if self.window_start.is_none_or(|s| now - s >= window || now < s) {
            self.window_start = Some(now);
            self.recorded_in_window = 0;
        }
        let total_left = self.recorded_in_window < self.limits.total;
        let room = self.entries.len() < self.limits.max_keys;
        let entry = match self.entries.get_mut(key) {
            Some(e) => e,
            None if room => self.entries.entry(key.clone()).or_insert_with(|| Entry::new(now)),
            None => {
                let o = self.overflow.get_or_insert_with(|| Entry::new(now));
                o.last_seen = now;
                return o.suppress(now);
            }
        };
        if now - entry.window_start >= window || now < entry.window_start {
            entry.window_start = now;
            entry.in_window = 0;
        }
        entry.in_window = entry.in_window.saturating_add(1);
        entry.last_seen = now;
        if !entry.flooding && entry.in_window <= self.limits.per_key && total_left {
            self.recorded_in_window += 1;
            return Admission::Record;
        }
        entry.suppress(now)
    }

    /// Summaries that are due at `now` (a key quiet for a window, or one flooding for a whole
    /// `summary_interval`); keys quiet for a window are forgotten, so their next request is
    /// recorded again.
    pub fn due(&mut self, now: OffsetDateTime) -> Vec<Suppressed> {
        self.collect(now, false)
    }

    /// Every pending count, at once (shutdown).
    pub fn drain(&mut self, now: OffsetDateTime) -> Vec<Suppressed> {
        self.collect(now, true)
    }

    /// Nothing tracked: the writer need not wake up for summaries.
    pub fn is_idle(&self) -> bool {
        self.entries.is_empty() && self.overflow.is_none()
    }

    fn collect(&mut self, now: OffsetDateTime, force: bool) -> Vec<Suppressed> {
        let limits = self.limits;
        let mut out = Vec::new();
        self.entries.retain(|key, e| {
            out.extend(e.take_summary(Some(key), now, &limits, force));
            let quiet = now - e.last_seen >= limits.window;
            !(force || quiet)
        });
        if let Some(o) = &mut self.overflow {
            out.extend(o.take_summary(None, now, &limits, force));
            if o.suppressed == 0 {
                self.overflow = None;
            }
        }
        // Oldest first, so the summaries read in the order the floods happened.
        out.sort_by_key(|s| s.first);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration as TimeDuration;

    fn t(ms: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_795_500_000).unwrap() + TimeDuration::milliseconds(ms)
    }

    fn key(ip: &str, code: &str, akid: &str) -> FloodKey {
        FloodKey { source_ip: ip.into(), error_code: code.into(), access_key_id: akid.into() }
    }

    fn limits() -> FloodLimits {
        FloodLimits { per_key: 3, total: 5, max_keys: 4, ..FloodLimits::default() }
    }

    /// Records + every summary's count must equal the requests made: nothing lost, nothing twice.
    fn accounted(records: u64, summaries: &[Suppressed]) -> u64 {
        records + summaries.iter().map(|s| s.count).sum::<u64>()
    }

    #[test]
    fn a_flood_from_one_client_is_a_few_records_and_one_summary_that_adds_up() {
        let mut c = Coalescer::new(FloodLimits::default());
        let k = key("10.0.0.9", "SignatureDoesNotMatch", "AKIAREAL");
        let mut records = 0;
        // 2,000 requests over ~4 seconds: the key floods for the whole time.
        for i in 0..2000 {
            if c.admit(&k, t(i * 2)) == Admission::Record {
                records += 1;
            }
        }
        assert_eq!(records, 10, "only the first window's per_key records are written");
        assert!(c.due(t(3999)).is_empty(), "still flooding, summary not yet due");
        let summaries = c.due(t(3998 + 1000));
        assert_eq!(summaries.len(), 1);
        assert_eq!(summaries[0].key.as_ref(), Some(&k));
        assert_eq!(summaries[0].first, t(20));
        assert_eq!(summaries[0].last, t(3998));
        assert_eq!(accounted(records, &summaries), 2000);
        assert!(c.is_idle(), "a quiet key is forgotten");
        assert_eq!(c.admit(&k, t(10_000)), Admission::Record, "after the flood, the next request is recorded again");
    }

    #[test]
    fn a_long_flood_gets_a_summary_every_interval() {
        let mut c = Coalescer::new(FloodLimits { summary_interval: Duration::from_secs(10), ..limits() });
        let k = key("10.0.0.9", "AccessDenied", "");
        let (mut records, mut summaries) = (0, Vec::new());
        for i in 0..300 {
            let now = t(i * 100);
            if c.admit(&k, now) == Admission::Record {
                records += 1;
            }
            summaries.extend(c.due(now));
        }
        assert_eq!(records, 3);
        // 30 s of flooding: one summary per 10 s interval, none more often.
        assert_eq!(summaries.len(), 2, "{summaries:?}");
        summaries.extend(c.drain(t(30_000)));
        assert_eq!(summaries.len(), 3);
        assert_eq!(accounted(records, &summaries), 300);
    }

    #[test]
    fn keys_are_independent_and_sporadic_failures_are_all_recorded() {
        let mut c = Coalescer::new(limits());
        let a = key("10.0.0.1", "SignatureDoesNotMatch", "AKIAA");
        let b = key("10.0.0.2", "SignatureDoesNotMatch", "AKIAA");
        let other_code = key("10.0.0.1", "InvalidAccessKeyId", "AKIAA");
        for k in [&a, &b, &other_code] {
            assert_eq!(c.admit(k, t(0)), Admission::Record);
        }
        // One request every two seconds never floods.
        for i in 1..20 {
            assert_eq!(c.admit(&a, t(i * 2000)), Admission::Record);
            assert!(c.due(t(i * 2000)).is_empty());
        }
    }

    #[test]
    fn the_total_per_window_and_the_key_table_are_bounded() {
        let mut c = Coalescer::new(limits());
        let mut records = 0;
        let n = 50;
        // 50 different source addresses in one window: 5 records (total), 4 keys tracked, the rest
        // in the overflow count.
        for i in 0..n {
            if c.admit(&key(&format!("10.0.1.{i}"), "AccessDenied", ""), t(i)) == Admission::Record {
                records += 1;
            }
        }
        assert_eq!(records, 4, "max_keys bounds the keys that can be recorded in one window");
        let summaries = c.drain(t(100));
        assert!(summaries.iter().any(|s| s.key.is_none()), "overflow count present");
        assert!(summaries.len() <= limits().max_keys + 1);
        assert_eq!(accounted(records, &summaries), n as u64);
        assert!(c.is_idle());

        let mut c = Coalescer::new(FloodLimits { max_keys: 100, ..limits() });
        let mut records = 0;
        for i in 0..20 {
            if c.admit(&key(&format!("10.0.2.{i}"), "AccessDenied", ""), t(i)) == Admission::Record {
                records += 1;
            }
        }
        assert_eq!(records, 5, "total bounds records per window over all keys");
        let summaries = c.drain(t(100));
        assert_eq!(accounted(records, &summaries), 20);
    }

    #[test]
    fn a_clock_set_back_does_not_wedge_a_key() {
        let mut c = Coalescer::new(limits());
        let k = key("10.0.0.1", "AccessDenied", "");
        assert_eq!(c.admit(&k, t(5000)), Admission::Record);
        assert_eq!(c.admit(&k, t(0)), Admission::Record, "a new window starts");
        let summaries = c.drain(t(0));
        assert!(summaries.is_empty());
    }
}
