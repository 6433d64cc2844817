//! Ingest benchmarks (figures go to BENCHMARKS.md).
//!
//! - `store/batch_10k`: reads/s stored through `AggregatorStore::ingest`, 10,000 reads per batch
//!   (one transaction, `synchronous=FULL`, on the machine's disk under the temp dir).
//! - `http/one_edge_10k`: the same through `POST /api/v1/ingest` from a local reqwest client
//!   (JSON serialisation is done before timing; parsing, checks and storing are timed).
//! - `http/four_edges_10k`: four edges uploading 10,000 reads each at once.
//!
//! Before the criterion groups, `medians` times the same operations one by one with `Instant`
//! and prints their medians, and drains a backlog of `AGG_BENCH_BACKLOG` reads (default
//! 2,400,000) from one edge through HTTP in batches of 10,000, as an edge does after an outage.
//! Targets for later: ≥ 100,000 reads/s from 4 concurrent edges; a 2.4 M-read backlog in < 10 s.
//!
//! Run: `cargo bench -p aggregator --bench ingest`

use std::path::Path;
use std::time::{Duration, Instant};

use aggregator::{AggregatorStore, AppState, IngestConfig, SystemClock, Tokens, TokensFile, UploadScope};
use criterion::{BatchSize, Criterion, Throughput};
use timing_core::Timestamp;
use timing_wire::{Ack, Batch, UPLINK_VERSION, WireLine, WireRead, WireReaderTime};

const BATCH: u64 = 10_000;
const EDGES: [&str; 4] = ["start", "km7", "km21", "finish"];
/// The edge of the one-edge runs (its own seq series).
const ONE_EDGE: &str = "km35";

fn token(edge: &str) -> String {
    format!("{edge}-bench-token-0123456789")
}

fn reads(point: &str, first_seq: u64, n: u64) -> Vec<WireRead> {
    (first_seq..first_seq + n)
        .map(|seq| WireRead {
            seq,
            chip: format!("E2000017{:08X}", seq % 40_000),
            at_us: 1_723_329_667_250_000 + seq as i64 * 997,
            point: point.to_string(),
            line: if seq % 5 == 0 { WireLine::Backup } else { WireLine::Main },
            reader: format!("{point}-main"),
            antenna: (seq % 4) as u16 + 1,
            rssi: Some(-600 - (seq % 100) as i16),
            reader_seq: Some(seq),
            session: Some(1),
            hits: Some(3),
            reader_time: WireReaderTime::TimeOfDay(67_250_000 + seq as i64 * 997),
            received_at_us: 1_723_329_667_400_000 + seq as i64 * 997,
        })
        .collect()
}

fn body(edge: &str, first_seq: u64, n: u64) -> Vec<u8> {
    let batch = Batch { v: UPLINK_VERSION, edge: edge.to_string(), reads: reads(edge, first_seq, n), signals: vec![] };
    serde_json::to_vec(&batch).unwrap()
}

fn state(path: &Path) -> AppState {
    let scope = UploadScope::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/demo")).unwrap();
    let text: String = EDGES.iter().chain([&ONE_EDGE]).map(|e| format!("{e} = \"{}\"\n", token(e))).collect();
    let tokens = Tokens::load(&scope, Some(&TokensFile::parse("bench", &text).unwrap()), |_| None).unwrap();
    AppState::new(AggregatorStore::open(path).unwrap(), scope, tokens, IngestConfig::default(), SystemClock)
}

/// A server on port 0 and a client for it.
struct Server {
    runtime: tokio::runtime::Runtime,
    url: String,
    client: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Server {
    fn start(path: &Path) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let state = state(path);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let url = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/api/v1/ingest", listener.local_addr().unwrap());
            tokio::spawn(aggregator::serve(listener, state, async move {
                let _ = stopped.await;
            }));
            url
        });
        Server { runtime, url, client: reqwest::Client::new(), _stop: stop }
    }

    async fn upload(client: &reqwest::Client, url: &str, edge: &str, body: Vec<u8>) -> Ack {
        let response = client
            .post(url)
            .bearer_auth(token(edge))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        response.json().await.unwrap()
    }

    /// Uploads one body per edge at once.
    fn upload_all(&self, bodies: Vec<(&'static str, Vec<u8>)>) -> Vec<Ack> {
        self.runtime.block_on(async {
            let tasks: Vec<_> = bodies
                .into_iter()
                .map(|(edge, body)| {
                    let (client, url) = (self.client.clone(), self.url.clone());
                    tokio::spawn(async move { Server::upload(&client, &url, edge, body).await })
                })
                .collect();
            let mut acks = Vec::new();
            for t in tasks {
                acks.push(t.await.unwrap());
            }
            acks
        })
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn medians() {
    const RUNS: u64 = 15;
    let dir = tempfile::tempdir().unwrap();

    let mut store = AggregatorStore::open(&dir.path().join("store.sqlite")).unwrap();
    let mut rates = Vec::new();
    for i in 0..RUNS {
        let batch = reads("finish", 1 + i * BATCH, BATCH);
        let t = Instant::now();
        let got = store.ingest("finish", &batch, &[], Timestamp::from_micros(0)).unwrap();
        rates.push(BATCH as f64 / t.elapsed().as_secs_f64());
        assert_eq!(got.acked_seq, (i + 1) * BATCH);
    }
    println!("medians: store, batches of 10,000: {:.0} reads/s", median(rates));
    let mut rates = Vec::new();
    for i in 0..RUNS {
        let batch = reads("finish", 1 + i * BATCH, BATCH);
        let t = Instant::now();
        let got = store.ingest("finish", &batch, &[], Timestamp::from_micros(0)).unwrap();
        rates.push(BATCH as f64 / t.elapsed().as_secs_f64());
        assert_eq!(got.n_duplicates, BATCH as usize);
    }
    println!("medians: store, batches of 10,000 already stored (a re-sent batch): {:.0} reads/s", median(rates));
    drop(store);

    let server = Server::start(&dir.path().join("http.sqlite"));
    let mut one = Vec::new();
    let mut four = Vec::new();
    for i in 0..RUNS {
        let b = body(ONE_EDGE, 1 + i * BATCH, BATCH);
        let t = Instant::now();
        server.upload_all(vec![(ONE_EDGE, b)]);
        one.push(BATCH as f64 / t.elapsed().as_secs_f64());
        let bodies = EDGES.iter().map(|e| (*e, body(e, 1 + i * BATCH, BATCH))).collect();
        let t = Instant::now();
        server.upload_all(bodies);
        four.push(4.0 * BATCH as f64 / t.elapsed().as_secs_f64());
    }
    println!("medians: HTTP, one edge, batches of 10,000: {:.0} reads/s", median(one));
    println!("medians: HTTP, four edges at once, 10,000 each: {:.0} reads/s", median(four));

    let backlog: u64 = std::env::var("AGG_BENCH_BACKLOG").ok().and_then(|v| v.parse().ok()).unwrap_or(2_400_000);
    let server = Server::start(&dir.path().join("backlog.sqlite"));
    let mut timed = Duration::ZERO;
    let mut first = 1;
    while first <= backlog {
        let n = BATCH.min(backlog - first + 1);
        // The edge reads its outbox and serialises while the previous batch is in flight; here
        // that is left out, so the figure is the aggregator's side of the drain.
        let b = body("km7", first, n);
        let t = Instant::now();
        let ack = server.upload_all(vec![("km7", b)]);
        timed += t.elapsed();
        first += n;
        assert_eq!(ack[0].acked_seq, first - 1);
    }
    println!(
        "medians: backlog of {backlog} reads from one edge over HTTP: {:.2} s ({:.0} reads/s)",
        timed.as_secs_f64(),
        backlog as f64 / timed.as_secs_f64()
    );
}

fn store(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = AggregatorStore::open(&dir.path().join("store.sqlite")).unwrap();
    let mut g = c.benchmark_group("store");
    g.sample_size(10).measurement_time(Duration::from_secs(5)).throughput(Throughput::Elements(BATCH));
    let mut next = 1;
    g.bench_function("batch_10k", |b| {
        b.iter_batched(
            || {
                next += BATCH;
                reads("finish", next - BATCH, BATCH)
            },
            |batch| store.ingest("finish", &batch, &[], Timestamp::from_micros(0)).unwrap(),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn http(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("http.sqlite"));
    let mut g = c.benchmark_group("http");
    g.sample_size(10).measurement_time(Duration::from_secs(8)).throughput(Throughput::Elements(BATCH));
    let mut next = 1;
    g.bench_function("one_edge_10k", |b| {
        b.iter_batched(
            || {
                next += BATCH;
                vec![(ONE_EDGE, body(ONE_EDGE, next - BATCH, BATCH))]
            },
            |bodies| server.upload_all(bodies),
            BatchSize::PerIteration,
        )
    });
    g.throughput(Throughput::Elements(4 * BATCH));
    let mut next = 1;
    g.bench_function("four_edges_10k", |b| {
        b.iter_batched(
            || {
                next += BATCH;
                EDGES.iter().map(|e| (*e, body(e, next - BATCH, BATCH))).collect()
            },
            |bodies| server.upload_all(bodies),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn main() {
    // `cargo test --benches` runs this with `--test`-like flags but no `--bench`: only measure
    // under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    medians();
    let mut c = Criterion::default().configure_from_args();
    store(&mut c);
    http(&mut c);
    c.final_summary();
}
