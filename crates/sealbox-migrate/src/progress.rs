//! Progress on stderr: an indicatif bar on a terminal, plain log lines every few seconds otherwise
//! (CI logs and pipes should not fill with carriage returns).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const LOG_EVERY: Duration = Duration::from_secs(2);

pub(crate) struct Progress {
    label: &'static str,
    bar: Option<ProgressBar>,
    total_objects: u64,
    total_bytes: u64,
    objects: AtomicU64,
    bytes: AtomicU64,
    started: Instant,
    last_log: Mutex<Instant>,
}

pub(crate) fn human_bytes(n: u64) -> String {
    indicatif::BinaryBytes(n).to_string()
}

impl Progress {
    pub(crate) fn new(label: &'static str, total_objects: u64, total_bytes: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} \
                 {binary_bytes_per_sec} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(label);
            bar
        });
        let p = Progress {
            label,
            bar,
            total_objects,
            total_bytes,
            objects: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            started: Instant::now(),
            last_log: Mutex::new(Instant::now()),
        };
        p.refresh(true);
        p
    }

    pub(crate) fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        self.refresh(false);
    }

    pub(crate) fn object_done(&self) {
        self.objects.fetch_add(1, Ordering::Relaxed);
        self.refresh(false);
    }

    fn refresh(&self, force: bool) {
        let objects = self.objects.load(Ordering::Relaxed);
        let bytes = self.bytes.load(Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_position(bytes.min(self.total_bytes));
            bar.set_message(format!("objects {objects}/{}", self.total_objects));
            return;
        }
        let mut last = self.last_log.lock().unwrap_or_else(|p| p.into_inner());
        if !force && last.elapsed() < LOG_EVERY {
            return;
        }
        *last = Instant::now();
        eprintln!("{}", self.line(objects, bytes));
    }

    fn line(&self, objects: u64, bytes: u64) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = bytes as f64 / secs;
        let eta = if rate > 0.0 && self.total_bytes > bytes {
            format!("{:.0}s", (self.total_bytes - bytes) as f64 / rate)
        } else {
            "-".into()
        };
        format!(
            "{}: {objects}/{} objects, {}/{}, {}/s, {:.1} objects/s, ETA {eta}",
            self.label,
            self.total_objects,
            human_bytes(bytes),
            human_bytes(self.total_bytes),
            human_bytes(rate as u64),
            objects as f64 / secs,
        )
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        } else {
            eprintln!("{}", self.line(self.objects.load(Ordering::Relaxed), self.bytes.load(Ordering::Relaxed)));
        }
    }
}

/// Spaces out starts to at most `per_sec` per second (shared by all workers).
pub(crate) struct Throttle {
    interval: Option<Duration>,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl Throttle {
    pub(crate) fn new(per_sec: Option<f64>) -> Self {
        let interval = per_sec.filter(|r| *r > 0.0).map(|r| Duration::from_secs_f64(1.0 / r));
        Throttle { interval, next: tokio::sync::Mutex::new(tokio::time::Instant::now()) }
    }

    pub(crate) async fn wait(&self) {
        let Some(interval) = self.interval else { return };
        let mut next = self.next.lock().await;
        let now = tokio::time::Instant::now();
        if *next > now {
            tokio::time::sleep_until(*next).await;
        }
        *next = (*next).max(now) + interval;
    }
}
