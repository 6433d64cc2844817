//! Catch-up after an outage: a 2.4 M-read backlog (an hour at a busy finish) in the edge's
//! outbox, delivered by the real uplink to a real aggregator on loopback and acknowledged.
//! Target: under 10 s (the Chronokeep portal drained ~130,000 rows/s on this kind of machine).
//!
//! Run: `cargo bench -p edge-daemon --bench catchup` (`CATCHUP_READS=…` to change the size).

use std::sync::Arc;
use std::time::{Duration, Instant};

use edge_daemon::uplink::{UplinkConfig, UplinkStats, run_uplink};
use edge_store::{NewRead, Outbox};
use firmware_sim::clock::SystemClock;
use reader_protocol::ReaderTime;
use timing_core::{ChipId, Line, PointId, Read, ReaderId, Rssi, Timestamp};

const TOKEN: &str = "finish-token-for-the-benchmark";

fn main() {
    let n: u64 = std::env::var("CATCHUP_READS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_400_000);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let outbox_path = dir.path().join("edge.sqlite");
    let t0 = Instant::now();
    {
        let mut o = Outbox::open(&outbox_path).unwrap();
        let point = PointId::new("finish");
        let reader = ReaderId::new("finish-main");
        let mut k = 0u64;
        while k < n {
            let batch: Vec<NewRead> = (k..(k + 50_000).min(n))
                .map(|i| {
                    let at = Timestamp::from_micros(1_723_329_667_000_000 + i as i64 * 1_500);
                    NewRead {
                        read: Read {
                            chip: ChipId::new(&format!("E200{:08X}", i / 50)),
                            at,
                            point: point.clone(),
                            line: Line::Main,
                            reader: reader.clone(),
                            antenna: (i % 4) as u16 + 1,
                            rssi: Some(Rssi(-600)),
                            reader_seq: Some(i + 1),
                        },
                        reader_time: ReaderTime::Utc(at),
                        session: Some(1),
                        hits: None,
                        received_at: at,
                    }
                })
                .collect();
            o.append(&batch).unwrap();
            k += 50_000;
        }
    }
    println!("backlog of {n} reads written in {:.1} s", t0.elapsed().as_secs_f64());

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let event_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/demo");
        let scope = aggregator::UploadScope::load_dir(&event_dir).unwrap();
        let tokens = aggregator::Tokens::load(&scope, None, |var| {
            (var == "RACETIME_EDGE_TOKEN_FINISH").then(|| TOKEN.to_string())
        })
        .unwrap();
        let store = aggregator::AggregatorStore::open(&dir.path().join("aggregator.sqlite")).unwrap();
        let state = aggregator::AppState::new(
            store,
            scope,
            tokens,
            aggregator::IngestConfig::default(),
            aggregator::SystemClock,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(aggregator::serve(listener, state, std::future::pending()));

        let stats = Arc::new(UplinkStats::default());
        let (_durable_tx, durable) = tokio::sync::watch::channel(n);
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let config = UplinkConfig {
            url,
            edge: "finish".into(),
            token: TOKEN.into(),
            batch_max: 10_000,
            request_timeout: Duration::from_secs(30),
        };
        let t0 = Instant::now();
        tokio::spawn(run_uplink(config, outbox_path.clone(), durable, stats.clone(), Arc::new(SystemClock), stop));
        while stats.acked_seq.load(std::sync::atomic::Ordering::Relaxed) < n {
            assert!(t0.elapsed() < Duration::from_secs(300), "catch-up stalled");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "catch-up: {n} reads delivered and acknowledged in {secs:.2} s ({:.0} reads/s, {} requests)",
            n as f64 / secs,
            stats.n_requests.load(std::sync::atomic::Ordering::Relaxed)
        );
    });
}
