//! `GET /metrics`: Prometheus text exposition (version 0.0.4), written by hand.
//!
//! Counters are totals since start (Prometheus computes rates); gauges are read at scrape time.
//! Per edge: reads, batches, duplicates, refusals, the edge's own backlog and its age (from its
//! telemetry), and the age of its last upload. Live feed: clients, messages, bytes, resyncs,
//! drops. Race task: batches and reads applied, apply latency as a histogram.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::AppState;
use crate::live::Hub;

/// Upper bounds of the latency buckets, in microseconds.
/// Finer between 50 and 250 ms, where the live feed's delivery targets are.
const BUCKETS_US: [u64; 18] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 75_000, 100_000, 150_000, 200_000, 250_000,
    500_000, 1_000_000, 2_500_000,
];

/// A fixed-bucket latency histogram, lock-free.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS_US.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        if let Some(i) = BUCKETS_US.iter().position(|&b| us <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, b) in BUCKETS_US.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{}\"}} {cumulative}", *b as f64 / 1e6);
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_us.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Label values escaped per the exposition format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The whole exposition.
pub fn render(state: &AppState, hub: &Hub) -> String {
    let mut out = String::with_capacity(8 << 10);
    let edges: Vec<String> = state.edge_ids().map(str::to_string).collect();
    let now_us = state.wall_now().as_micros();
    let counts: Vec<_> = edges.iter().map(|e| (e, state.edge_counts(e).unwrap_or_default())).collect();
    let per_edge = |out: &mut String, name: &str, kind: &str, help: &str, f: &dyn Fn(&crate::EdgeCounts) -> u64| {
        family(out, name, kind, help);
        for (e, c) in &counts {
            let _ = writeln!(out, "{name}{{edge=\"{}\"}} {}", label(e), f(c));
        }
    };
    per_edge(&mut out, "racetime_ingest_reads_total", "counter", "Reads newly stored, per edge.", &|c| c.n_reads);
    per_edge(&mut out, "racetime_ingest_batches_total", "counter", "Uploads stored, per edge.", &|c| c.n_batches);
    per_edge(&mut out, "racetime_ingest_signals_total", "counter", "Gun signals newly stored, per edge.", &|c| {
        c.n_signals
    });
    per_edge(
        &mut out,
        "racetime_ingest_duplicates_total",
        "counter",
        "Reads and signals received again (harmless replays), per edge.",
        &|c| c.n_duplicates,
    );
    per_edge(&mut out, "racetime_ingest_refusals_total", "counter", "Authenticated uploads refused, per edge.", &|c| {
        c.n_refusals
    });
    family(
        &mut out,
        "racetime_ingest_unauthenticated_total",
        "counter",
        "Requests refused for a missing or unknown token.",
    );
    let _ = writeln!(out, "racetime_ingest_unauthenticated_total {}", state.n_unauthenticated());

    family(&mut out, "racetime_edge_last_upload_age_seconds", "gauge", "Time since the edge's last stored upload.");
    for e in &edges {
        if let Some(us) = state.last_batch_us(e) {
            let _ = writeln!(
                out,
                "racetime_edge_last_upload_age_seconds{{edge=\"{}\"}} {}",
                label(e),
                (now_us - us) as f64 / 1e6
            );
        }
    }
    family(
        &mut out,
        "racetime_edge_backlog_reads",
        "gauge",
        "Reads the edge holds that the aggregator has not acknowledged (edge telemetry).",
    );
    let telemetry: Vec<_> = edges.iter().filter_map(|e| state.telemetry(e).map(|t| (e, t))).collect();
    for (e, t) in &telemetry {
        if let Some(b) = t.status.get("backlog").and_then(serde_json::Value::as_u64) {
            let _ = writeln!(out, "racetime_edge_backlog_reads{{edge=\"{}\"}} {b}", label(e));
        }
    }
    family(
        &mut out,
        "racetime_edge_backlog_oldest_seconds",
        "gauge",
        "Age of the edge's oldest unacknowledged read (edge telemetry).",
    );
    for (e, t) in &telemetry {
        if let Some(us) = t.status.get("oldest_unsynced_us").and_then(serde_json::Value::as_i64) {
            let _ = writeln!(
                out,
                "racetime_edge_backlog_oldest_seconds{{edge=\"{}\"}} {}",
                label(e),
                ((t.at_us - us).max(0)) as f64 / 1e6
            );
        }
    }
    family(&mut out, "racetime_edge_alarms", "gauge", "Alarms the edge reports.");
    for (e, t) in &telemetry {
        let n = t.status.get("alarms").and_then(serde_json::Value::as_array).map_or(0, Vec::len);
        let _ = writeln!(out, "racetime_edge_alarms{{edge=\"{}\"}} {n}", label(e));
    }

    let s = &hub.stats;
    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
    for (name, kind, help, v) in [
        ("racetime_live_clients", "gauge", "Open live-feed WebSocket connections.", g(&s.clients)),
        ("racetime_live_connections_total", "counter", "Live-feed connections accepted.", g(&s.connections_total)),
        ("racetime_live_topics", "gauge", "Topics with subscribers.", hub.n_topics() as u64),
        ("racetime_live_published_total", "counter", "Messages published to topics.", g(&s.published)),
        ("racetime_live_messages_sent_total", "counter", "Messages sent to clients.", g(&s.messages_sent)),
        ("racetime_live_bytes_sent_total", "counter", "Bytes of messages sent to clients.", g(&s.bytes_sent)),
        ("racetime_live_resyncs_total", "counter", "Snapshots resent to clients that fell behind.", g(&s.resyncs)),
        ("racetime_live_dropped_slow_total", "counter", "Connections dropped for being too slow.", g(&s.dropped_slow)),
        ("racetime_live_closed_flood_total", "counter", "Connections closed for flooding.", g(&s.closed_flood)),
        (
            "racetime_live_closed_garbage_total",
            "counter",
            "Connections closed for sending garbage.",
            g(&s.closed_garbage),
        ),
        (
            "racetime_live_refused_total",
            "counter",
            "Connections refused by the total or per-IP limit.",
            g(&s.refused_limit),
        ),
    ] {
        family(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    }
    family(
        &mut out,
        "racetime_engine_applied_reads_total",
        "counter",
        "Reads the race engine applied from the live feed.",
    );
    let _ = writeln!(out, "racetime_engine_applied_reads_total {}", state.n_applied_reads());
    family(
        &mut out,
        "racetime_engine_feed_reads",
        "gauge",
        "Reads stored but not yet taken by the race engine (beyond the feed's bound it rebuilds from the store).",
    );
    let _ = writeln!(out, "racetime_engine_feed_reads {}", state.feed().n_reads());
    hub.stats.delivery.render(
        &mut out,
        "racetime_live_delivery_seconds",
        "From a live message's making by the race task to its write to a subscriber's socket.",
    );
    state.apply_histogram().render(
        &mut out,
        "racetime_engine_apply_seconds",
        "Time the race task takes to apply one stored upload and publish its changes.",
    );
    out
}
