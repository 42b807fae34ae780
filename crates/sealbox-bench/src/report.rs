//! The results: a markdown table for people, JSON for scripts.

use std::fmt::Write;

use serde::Serialize;

use crate::disk::RawDisk;
use crate::measure::{BigObject, Cell, KmsRate, ModeResult, Rate};
use crate::opts::format_size;
use crate::server::Memory;
use crate::xks::XksLatency;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub quick: bool,
    pub cores: usize,
    pub endpoint: String,
    pub server_started_by_bench: bool,
    pub raw_disk: RawDisk,
    /// Server memory right after it answered /health/live (or at attach).
    pub server_memory_at_start: Option<Memory>,
    pub modes: Vec<ModeResult>,
    pub kms: Vec<KmsRate>,
    /// The key service library called directly, one core (no HTTP, no SigV4).
    pub kms_in_process: Vec<KmsRate>,
    pub kms_note: Option<String>,
    /// XKS proxy API Encrypt latency at 16 clients.
    pub xks: Option<XksLatency>,
    pub xks_note: Option<String>,
    pub big_object: Option<BigObject>,
    pub big_object_note: Option<String>,
    pub total_secs: f64,
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

fn rate(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

impl Report {
    /// The cells of every measured mode at one (size, concurrency), in column order.
    fn row(&self, size: u64, concurrency: usize) -> Vec<Option<&Cell>> {
        self.modes.iter().map(|m| m.cells.iter().find(|c| c.size == size && c.concurrency == concurrency)).collect()
    }

    fn row_keys(&self) -> Vec<(u64, usize, usize)> {
        let mut keys: Vec<(u64, usize, usize)> = Vec::new();
        for cell in self.modes.iter().flat_map(|m| &m.cells) {
            if !keys.iter().any(|&(s, c, _)| s == cell.size && c == cell.concurrency) {
                keys.push((cell.size, cell.concurrency, cell.count));
            }
        }
        keys
    }

    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let d = &self.raw_disk;
        let _ = writeln!(
            out,
            "# sealbox bench ({} run, {} cores, {}{})\n",
            if self.quick { "quick" } else { "full" },
            self.cores,
            self.endpoint,
            if self.server_started_by_bench { ", server started by the bench" } else { "" }
        );
        let _ = writeln!(
            out,
            "Raw disk under the data dir ({}): write + fsync **{:.0} MiB/s**, read {:.0} MiB/s{}, 4 KiB write + fdatasync {:.0}/s\n",
            format_size(d.bytes),
            d.write_mib_s,
            d.read_mib_s,
            if d.read_from_device { "" } else { " (page cache)" },
            d.fsync_4k_per_s
        );
        let header: Vec<&str> = self.modes.iter().map(|m| m.mode.label()).collect();
        let table_head = |out: &mut String| {
            let _ = writeln!(out, "| op | size | conc | objects | {} |", header.join(" | "));
            let _ = writeln!(out, "|---|---|---|---|{}", "---|".repeat(header.len()));
        };
        let _ = writeln!(out, "## Throughput, MiB/s (objects ≥ 1 MiB: × raw disk write + fsync)\n");
        table_head(&mut out);
        for (size, conc, count) in self.row_keys() {
            for (op, pick) in [("PUT", (|c: &Cell| c.put) as fn(&Cell) -> Option<Rate>), ("GET", |c: &Cell| c.get)] {
                let cells: Vec<String> = self
                    .row(size, conc)
                    .iter()
                    .map(|c| match c.and_then(pick) {
                        // Small objects are bound by fsyncs, not bandwidth: their ratio is in the next table.
                        Some(r) if size < 1 << 20 => rate(r.mib_s),
                        Some(r) => format!("{} ({:.2}×)", rate(r.mib_s), r.mib_s / d.write_mib_s),
                        None => "n/a".into(),
                    })
                    .collect();
                let _ = writeln!(out, "| {op} | {} | {conc} | {count} | {} |", format_size(size), cells.join(" | "));
            }
        }
        let _ = writeln!(out, "\n## Requests per second (small PUTs: × raw 4 KiB write + fdatasync per second)\n");
        table_head(&mut out);
        for (size, conc, count) in self.row_keys() {
            for (op, pick) in [("PUT", (|c: &Cell| c.put) as fn(&Cell) -> Option<Rate>), ("GET", |c: &Cell| c.get)] {
                let cells: Vec<String> = self
                    .row(size, conc)
                    .iter()
                    .map(|c| match c.and_then(pick) {
                        Some(r) if op == "PUT" && size < 1 << 20 => {
                            format!("{} ({:.2}×)", rate(r.ops_s), r.ops_s / d.fsync_4k_per_s)
                        }
                        Some(r) => rate(r.ops_s),
                        None => "n/a".into(),
                    })
                    .collect();
                let _ = writeln!(out, "| {op} | {} | {conc} | {count} | {} |", format_size(size), cells.join(" | "));
            }
        }
        let notes: Vec<String> = self
            .modes
            .iter()
            .flat_map(|m| {
                let failed = m.cells.iter().filter_map(|c| {
                    c.error
                        .as_ref()
                        .map(|e| format!("- {} {} conc {}: n/a: {e}", m.mode, format_size(c.size), c.concurrency))
                });
                m.unavailable
                    .iter()
                    .map(|r| format!("- {}: n/a: {r}", m.mode))
                    .chain(m.note.iter().map(|n| format!("- {}: {n}", m.mode)))
                    .chain(failed)
                    .collect::<Vec<_>>()
            })
            .collect();
        if !notes.is_empty() {
            let _ = writeln!(out, "\n{}", notes.join("\n"));
        }
        if !self.kms.is_empty() || !self.kms_in_process.is_empty() {
            let _ = writeln!(
                out,
                "\n## KMS (ops/s)\n\n| operation | HTTP conc 1 | HTTP conc 16 | in-process, 1 core |\n|---|---|---|---|"
            );
            for op in ["GenerateDataKey", "Decrypt"] {
                let at = |rates: &[KmsRate], c: usize| {
                    rates
                        .iter()
                        .find(|r| r.operation == op && r.concurrency == c)
                        .map_or("n/a".into(), |r| format!("{:.0}", r.ops_s))
                };
                let _ = writeln!(
                    out,
                    "| {op} | {} | {} | {} |",
                    at(&self.kms, 1),
                    at(&self.kms, 16),
                    at(&self.kms_in_process, 1)
                );
            }
        }
        if let Some(note) = &self.kms_note {
            let _ = writeln!(out, "\nKMS: {note}");
        }
        if let Some(x) = &self.xks {
            let _ = writeln!(
                out,
                "\n## XKS proxy API latency ({} clients)\n\n| operation | calls | p50 | p99 | max | ops/s | budget |\n|---|---|---|---|---|---|---|",
                x.clients
            );
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {} | {:.0} ms: p99 {} |",
                x.operation,
                x.calls,
                x.p50_ms,
                x.p99_ms,
                x.max_ms,
                rate(x.ops_s),
                x.budget_ms,
                if x.within_budget() { "within" } else { "OVER" }
            );
        }
        if let Some(note) = &self.xks_note {
            let _ = writeln!(out, "\nXKS: {note}");
        }
        let _ = writeln!(out, "\n## Big object (streamed both ways; server memory)\n");
        if let Some(b) = &self.big_object {
            let _ = writeln!(
                out,
                "| size | SSE | PUT MiB/s | GET MiB/s | server RSS at start | RSS before | peak RSS during |\n|---|---|---|---|---|---|---|"
            );
            let show = |m: Option<u64>| m.map_or("n/a".to_owned(), mib);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {}{} |",
                format_size(b.size),
                b.mode,
                rate(b.put.mib_s),
                rate(b.get.mib_s),
                show(self.server_memory_at_start.map(|m| m.rss)),
                show(b.before.map(|m| m.rss)),
                show(b.peak_rss),
                if b.peak_from_hwm || b.peak_rss.is_none() { "" } else { " (sampled)" }
            );
        }
        if let Some(note) = &self.big_object_note {
            let _ = writeln!(out, "{note}");
        }
        let _ = writeln!(out, "\nTotal {:.0} s.", self.total_secs);
        out
    }
}
