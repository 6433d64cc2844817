//! An edge process at a realistic busy finish: 50 crossings a second with 50 reads each (2,500
//! reads/s from an Ultra-protocol decoder, which reports every read) for 20 s, synced to a real
//! aggregator. Reports the edge process's CPU (share of one core, from /proc utime + stime) and
//! resident memory (peak and current). Targets: under 5 % of one core, under 50 MiB.
//!
//! Run: `cargo bench -p racetime --bench edge_steady`

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use firmware_sim::Detection;
use firmware_sim::clock::{ReaderClock, SharedClock, SystemClock};
use firmware_sim::readers::{Endpoint, ReaderSpec, spawn};
use timing_core::{Elapsed, Rssi};

const TOKEN: &str = "finish-token-for-the-benchmark";

fn proc_cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn proc_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let clock: SharedClock = Arc::new(SystemClock);
        let reader = spawn(
            ReaderSpec {
                id: "finish-main".into(),
                protocol: event_config::edge::Protocol::Ultra,
                endpoint: Endpoint::Listen("127.0.0.1:0".parse().unwrap()),
                clock: ReaderClock::exact(),
                time_zone: "Europe/Paris".parse().unwrap(),
                store: None,
            },
            clock.clone(),
        )
        .await
        .unwrap();
        let event_dir = dir.path().join("event");
        std::fs::create_dir_all(&event_dir).unwrap();
        std::fs::copy(repo.join("config/demo/event.toml"), event_dir.join("event.toml")).unwrap();
        let event = event_config::parse_event("demo", &std::fs::read_to_string(event_dir.join("event.toml")).unwrap()).unwrap();
        let race = race_sim::generate(&event, &race_sim::Scenario::clean(1, vec![20, 10]));
        std::fs::write(dir.path().join("participants.csv"), &race.participants_csv).unwrap();

        // The aggregator learns the event's edges from the edge files: write it before starting it
        // (the uplink URL is filled in once the aggregator has its port).
        let edge_file = event_dir.join("edge-finish.toml");
        let write_edge = |url: &str| {
            std::fs::write(
                &edge_file,
                format!(
                    "[edge]\nid = \"finish\"\npoint = \"finish\"\n[uplink]\nurl = \"{url}\"\ntoken_env = \"RACETIME_EDGE_TOKEN_FINISH\"\n\
                     [store]\npath = \"{}\"\n[status]\nlisten = \"127.0.0.1:0\"\n[[readers]]\nid = \"finish-main\"\nline = \"main\"\n\
                     protocol = \"ultra\"\ntransport = \"tcp\"\naddress = \"{}\"\n",
                    dir.path().join("edge.sqlite").display(),
                    reader.local_addr().unwrap()
                ),
            )
            .unwrap()
        };
        write_edge("http://127.0.0.1:9");
        let mut agg = Command::new(env!("CARGO_BIN_EXE_racetime"))
            .args(["aggregator", "--event"])
            .arg(&event_dir)
            .arg("--participants")
            .arg(dir.path().join("participants.csv"))
            .arg("--db")
            .arg(dir.path().join("agg.sqlite"))
            .args(["--listen", "127.0.0.1:0"])
            .env("RACETIME_EDGE_TOKEN_FINISH", TOKEN)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(agg.stdout.take().unwrap()), &mut line).unwrap();
        let url = line.trim().trim_start_matches("aggregator listening on ").to_string();
        write_edge(&url);
        let mut edge = Command::new(env!("CARGO_BIN_EXE_racetime"))
            .args(["edge", "--config"])
            .arg(&edge_file)
            .env("RACETIME_EDGE_TOKEN_FINISH", TOKEN)
            .env("RUST_LOG", "error")
            .spawn()
            .unwrap();
        let pid = edge.id();
        // Warm up for 3 s, then measure 20 s: 50 crossings/s × 50 reads, 20 ms apart within a crossing.
        let feed = |secs: u64| {
            let reader = &reader;
            let clock = clock.clone();
            async move {
                let start = Instant::now();
                let mut chip = 0u64;
                while start.elapsed() < Duration::from_secs(secs) {
                    let now = timing_core::time::Clock::now(&*clock);
                    for c in 0..5 {
                        for h in 0..50 {
                            reader.detect(Detection {
                                chip: format!("E200{:08X}", chip + c),
                                at: now + Elapsed::from_millis(h * 2),
                                antenna: 1 + (h % 4) as u16,
                                rssi: Rssi(-600),
                            });
                        }
                    }
                    chip += 5;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        feed(3).await;
        let ticks0 = proc_cpu_ticks(pid);
        let t0 = Instant::now();
        feed(20).await;
        let ticks1 = proc_cpu_ticks(pid);
        let wall = t0.elapsed().as_secs_f64();
        let hz = 100.0; // USER_HZ on Linux
        let cpu = (ticks1 - ticks0) as f64 / hz / wall * 100.0;
        println!(
            "edge steady state at 2,500 reads/s: CPU {cpu:.1} % of one core over {wall:.0} s, RSS {:.1} MiB (peak {:.1} MiB), {} reads stored by the decoder",
            proc_kib(pid, "VmRSS:") as f64 / 1024.0,
            proc_kib(pid, "VmHWM:") as f64 / 1024.0,
            reader.stats().records_stored
        );
        let _ = edge.kill();
        let _ = agg.kill();
        let _ = edge.wait();
        let _ = agg.wait();
    });
}
