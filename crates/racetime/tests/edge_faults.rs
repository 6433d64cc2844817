//! The edge under faults, with real processes: `racetime aggregator` and `racetime edge` as
//! child processes, a RACE RESULT decoder emulated in this process on a real TCP port, real
//! SQLite files. Every test ends the same way: every passing the decoder stored is in the
//! aggregator's store exactly once (by reader, file and passing number), and the edge's
//! outbox and the aggregator agree on the last seq.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use firmware_sim::clock::{ReaderClock, SharedClock, SystemClock};
use firmware_sim::readers::{Endpoint, ReaderHandle, ReaderSpec, spawn};
use firmware_sim::{Detection, Fault};
use timing_core::{Elapsed, Rssi};

const TOKEN: &str = "finish-token-for-tests-0123456789";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    fn signal(&self, sig: &str) {
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(self.0.id().to_string()).status().unwrap().success();
        assert!(ok, "kill -{sig}");
    }
    fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "the process did not exit within {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

struct World {
    dir: tempfile::TempDir,
    participants: PathBuf,
    edge_file: PathBuf,
    agg_db: PathBuf,
    agg_url: String,
    aggregator: Option<Proc>,
    edge: Option<Proc>,
    reader: Option<ReaderHandle>,
    reader_spec: ReaderSpec,
    serial: bool,
    /// A start-gun input module, when the test wires one.
    gun: Option<firmware_sim::modbus::DeviceHandle>,
    clock: SharedClock,
    n_detections: u64,
}

impl World {
    async fn new() -> World {
        World::with_reader(false).await
    }

    /// With `serial`, the decoder sits on a serial line (a pty at a stable path) and keeps its
    /// passing file on disk, so it can be unplugged and plugged back.
    async fn with_reader(serial: bool) -> World {
        let dir = tempfile::tempdir().unwrap();
        let event_text = std::fs::read_to_string(repo().join("config/demo/event.toml")).unwrap();
        let event = event_config::parse_event("demo", &event_text).unwrap();
        let race = race_sim::generate(&event, &race_sim::Scenario::clean(1, vec![20, 10]));
        let participants = dir.path().join("participants.csv");
        std::fs::write(&participants, &race.participants_csv).unwrap();
        let clock: SharedClock = Arc::new(SystemClock);
        let reader_spec = ReaderSpec {
            id: "finish-main".into(),
            protocol: event_config::edge::Protocol::Raceresult,
            endpoint: if serial {
                Endpoint::Serial { link: dir.path().join("tty/finish-main") }
            } else {
                Endpoint::Listen("127.0.0.1:0".parse().unwrap())
            },
            clock: ReaderClock::exact(),
            time_zone: "Europe/Paris".parse().unwrap(),
            store: serial.then(|| dir.path().join("decoder-passings.txt")),
        };
        let reader = spawn(reader_spec.clone(), clock.clone()).await.unwrap();
        // The event folder the processes see: the demo's event, and one edge at the finish.
        let event_dir = dir.path().join("event");
        std::fs::create_dir_all(&event_dir).unwrap();
        std::fs::write(event_dir.join("event.toml"), &event_text).unwrap();
        let agg_db = dir.path().join("aggregator.sqlite");
        let w = World {
            participants,
            edge_file: event_dir.join("edge-finish.toml"),
            agg_db,
            agg_url: String::new(),
            aggregator: None,
            edge: None,
            reader: Some(reader),
            reader_spec,
            serial,
            gun: None,
            clock,
            n_detections: 0,
            dir,
        };
        w.write_edge_file("http://127.0.0.1:9");
        w
    }

    fn reader(&self) -> &ReaderHandle {
        self.reader.as_ref().expect("the decoder is plugged in")
    }

    /// Unplugs the decoder (its pty disappears with it).
    async fn unplug_reader(&mut self) {
        self.reader.take().expect("plugged").shutdown().await;
    }

    /// Plugs it back: a power cycle, so a new passing file, the old ones kept.
    async fn plug_reader(&mut self) {
        self.reader = Some(spawn(self.reader_spec.clone(), self.clock.clone()).await.unwrap());
    }

    fn write_edge_file(&self, url: &str) {
        let link = if self.serial {
            format!(
                "transport = \"serial\"\ndevice = \"{}\"\nbaud = 19200\n",
                self.dir.path().join("tty/finish-main").display()
            )
        } else {
            format!("transport = \"tcp\"\naddress = \"{}\"\n", self.reader().local_addr().unwrap())
        };
        let store = self.dir.path().join("edge.sqlite");
        std::fs::write(
            &self.edge_file,
            format!(
                "[edge]\nid = \"finish\"\npoint = \"finish\"\n[uplink]\nurl = \"{url}\"\ntoken_env = \"RACETIME_EDGE_TOKEN_FINISH\"\n\
                 [store]\npath = \"{}\"\n[status]\nlisten = \"127.0.0.1:0\"\n\
                 [[readers]]\nid = \"finish-main\"\nline = \"main\"\nprotocol = \"raceresult\"\n{link}",
                store.display()
            ) + &self.gun_section(),
        )
        .unwrap();
    }

    fn gun_section(&self) -> String {
        match &self.gun {
            None => String::new(),
            Some(g) => format!(
                "[[devices]]\nid = \"start-gun\"\nkind = \"digital_input\"\ntransport = \"tcp\"\naddress = \"{}\"\n\
                 register_map = \"{}\"\npoll_ms = 10\nstart_guns = [{{ channel = 0, waves = [\"marathon/sas1\"] }}, {{ channel = 1, waves = [\"10k/sas1\", \"10k/sas2\"] }}]\n",
                g.local_addr().unwrap(),
                repo().join("hardware/modbus/adam-6050.toml").display()
            ),
        }
    }

    async fn wire_start_gun(&mut self) {
        let text = std::fs::read_to_string(repo().join("hardware/modbus/adam-6050.toml")).unwrap();
        let map = event_config::modbus_map::parse_register_map("adam-6050.toml", &text).unwrap();
        let spec = firmware_sim::modbus::DeviceSpec {
            id: "start-gun".into(),
            kind: event_config::edge::DeviceKind::DigitalInput,
            unit: 1,
            map,
            endpoint: firmware_sim::modbus::ModbusEndpoint::Tcp("127.0.0.1:0".parse().unwrap()),
        };
        self.gun = Some(firmware_sim::modbus::spawn_device(spec, self.clock.clone()).await.unwrap());
    }

    /// (race, wave, at_us, jitter_us) of every gun signal the aggregator stored.
    fn aggregator_guns(&self) -> Vec<(String, String, i64, i64)> {
        let c =
            rusqlite::Connection::open_with_flags(&self.agg_db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        let mut st = c.prepare("SELECT race, wave, at_us, jitter_us FROM signals ORDER BY race, wave").unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// Starts the aggregator on a free port (or on `port`, to come back where it was).
    fn start_aggregator(&mut self, port: u16) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_racetime"))
            .args(["aggregator", "--event"])
            .arg(self.edge_file.parent().unwrap())
            .arg("--participants")
            .arg(&self.participants)
            .arg("--db")
            .arg(&self.agg_db)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("RACETIME_EDGE_TOKEN_FINISH", TOKEN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("aggregator listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        self.agg_url = url;
        self.aggregator = Some(Proc(child));
    }

    fn agg_port(&self) -> u16 {
        self.agg_url.rsplit(':').next().unwrap().parse().unwrap()
    }

    fn start_edge(&mut self) {
        self.start_edge_with(&[]);
    }

    fn start_edge_with(&mut self, env: &[(&str, String)]) {
        self.write_edge_file(&self.agg_url.clone());
        let child = Command::new(env!("CARGO_BIN_EXE_racetime"))
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .args(["edge", "--config"])
            .arg(&self.edge_file)
            .env("RACETIME_EDGE_TOKEN_FINISH", TOKEN)
            .env("RUST_LOG", "warn")
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        self.edge = Some(Proc(child));
    }

    /// `n` detections of distinct chips, one RACE RESULT passing each.
    fn detect(&mut self, n: u64) {
        let now = self.clock.now();
        for _ in 0..n {
            let k = self.n_detections;
            self.reader().detect(Detection {
                chip: format!("F{k:011X}"),
                at: now + Elapsed::from_micros(k as i64),
                antenna: 1 + (k % 4) as u16,
                rssi: Rssi(-600),
            });
            self.n_detections += 1;
        }
    }

    /// Passings the decoder stored (crossings close after a second of quiet).
    async fn decoder_has_stored_everything(&self) {
        tokio::time::timeout(Duration::from_secs(30), self.reader().wait_for_records(self.n_detections))
            .await
            .expect("the decoder stores its passings");
    }

    /// (rows, distinct passings, max seq) of the finish edge in the aggregator's store.
    fn aggregator_holds(&self) -> (u64, u64, u64) {
        let c =
            rusqlite::Connection::open_with_flags(&self.agg_db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        c.query_row(
            "SELECT COUNT(*), COUNT(DISTINCT reader || ':' || COALESCE(session, -1) || ':' || reader_seq), COALESCE(MAX(seq), 0) FROM reads",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64)),
        )
        .unwrap_or((0, 0, 0))
    }

    /// Waits until the aggregator holds every passing, then checks it holds each exactly once.
    fn assert_exactly_once(&self, within: Duration) {
        let deadline = Instant::now() + within;
        let n = self.n_detections;
        loop {
            let (rows, distinct, max_seq) = self.aggregator_holds();
            if distinct >= n || Instant::now() > deadline {
                assert_eq!(distinct, n, "every passing the decoder stored is upstream");
                assert_eq!(rows, n, "and none of them twice");
                assert_eq!(max_seq, n, "edge seqs are contiguous: one per passing");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_ingest_then_restart_loses_nothing_and_duplicates_nothing() {
    let mut w = World::new().await;
    w.start_aggregator(0);
    w.start_edge();
    w.detect(20_000);
    // Let some of it through, then pull the plug.
    let deadline = Instant::now() + Duration::from_secs(30);
    while w.aggregator_holds().0 < 2_000 {
        assert!(Instant::now() < deadline, "nothing arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    w.edge.as_ref().unwrap().signal("KILL");
    w.edge.as_mut().unwrap().wait_exit(Duration::from_secs(5));
    w.detect(5_000); // the decoder keeps storing while the edge is dead
    w.decoder_has_stored_everything().await;
    w.start_edge();
    w.assert_exactly_once(Duration::from_secs(60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_and_a_restart_carries_on() {
    let mut w = World::new().await;
    w.start_aggregator(0);
    w.start_edge();
    w.detect(5_000);
    w.decoder_has_stored_everything().await;
    w.assert_exactly_once(Duration::from_secs(60));
    w.edge.as_ref().unwrap().signal("TERM");
    let status = w.edge.as_mut().unwrap().wait_exit(Duration::from_secs(15));
    assert!(status.success(), "a graceful stop exits 0: {status:?}");
    w.detect(1_000);
    w.decoder_has_stored_everything().await;
    w.start_edge();
    w.assert_exactly_once(Duration::from_secs(60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregator_outage_drains_after_it_comes_back() {
    let mut w = World::new().await;
    w.start_aggregator(0);
    let port = w.agg_port();
    w.start_edge();
    w.detect(1_000);
    w.decoder_has_stored_everything().await;
    w.assert_exactly_once(Duration::from_secs(60));
    // The aggregator goes away (kill -9) while the race goes on.
    w.aggregator.as_ref().unwrap().signal("KILL");
    w.aggregator.as_mut().unwrap().wait_exit(Duration::from_secs(5));
    w.detect(10_000);
    w.decoder_has_stored_everything().await;
    // Back on the same address, from its own store: the backlog drains.
    w.start_aggregator(port);
    w.assert_exactly_once(Duration::from_secs(60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_50000_with_the_edge_stopped_for_3_seconds() {
    let mut w = World::new().await;
    w.start_aggregator(0);
    w.start_edge();
    w.detect(100);
    w.decoder_has_stored_everything().await;
    w.assert_exactly_once(Duration::from_secs(60));
    w.edge.as_ref().unwrap().signal("STOP");
    w.detect(50_000);
    std::thread::sleep(Duration::from_secs(3)); // the fault itself: the daemon frozen for 3 s
    w.edge.as_ref().unwrap().signal("CONT");
    w.decoder_has_stored_everything().await;
    w.assert_exactly_once(Duration::from_secs(90));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_reader_connection_is_rewound_and_a_reboot_opens_a_new_file() {
    let mut w = World::new().await;
    w.start_aggregator(0);
    w.start_edge();
    w.detect(500);
    w.decoder_has_stored_everything().await;
    w.assert_exactly_once(Duration::from_secs(60));
    w.reader().fault(Fault::DropMidFrame);
    w.detect(500);
    w.reader().fault(Fault::Garbage(b"\x00\x13\xfe garbage".to_vec()));
    w.detect(500);
    w.decoder_has_stored_everything().await;
    w.assert_exactly_once(Duration::from_secs(60));
    w.reader().fault(Fault::Reboot);
    w.detect(500);
    w.decoder_has_stored_everything().await;
    w.assert_exactly_once(Duration::from_secs(60));
    assert_eq!(w.reader().stats().session, 2, "the reboot opened file 2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickle_is_uploaded_once() {
    let mut w = World::new().await;
    w.start_aggregator(0);
    w.start_edge();
    for _ in 0..5 {
        w.detect(1);
        w.decoder_has_stored_everything().await;
        w.assert_exactly_once(Duration::from_secs(30));
    }
    // Idle for a while (the uplink's idle heartbeat is 5 s): nothing is sent again.
    std::thread::sleep(Duration::from_secs(6));
    w.assert_exactly_once(Duration::from_secs(1));
    let fleet: Vec<aggregator::FleetEdge> =
        reqwest::get(format!("{}/api/v1/fleet", w.agg_url)).await.unwrap().json().await.unwrap();
    let finish = fleet.iter().find(|e| e.edge == "finish").unwrap();
    assert_eq!(finish.counts.n_reads, 5);
    assert_eq!(finish.counts.n_duplicates, 0, "nothing was uploaded twice");
    assert_eq!(finish.acked_seq, 5);
    // The edge's own status arrives as telemetry: its reader, connected, with the reads counted.
    let t = finish.telemetry.as_ref().expect("telemetry within a few seconds");
    assert_eq!(t.status["readers"][0]["id"], "finish-main");
    assert_eq!(t.status["readers"][0]["connected"], true);
    assert_eq!(t.status["readers"][0]["n_reads"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_gun_contact_becomes_gun_times_upstream_exactly_once() {
    let mut w = World::new().await;
    w.wire_start_gun().await;
    w.start_aggregator(0);
    w.start_edge();
    // The edge is polling once reads flow; then the marathon gun, then the 10 km gun.
    w.detect(10);
    w.decoder_has_stored_everything().await;
    w.assert_exactly_once(Duration::from_secs(30));
    let gun = w.gun.as_ref().unwrap();
    let before = w.clock.now();
    gun.pulse(0, Duration::from_millis(200));
    gun.pulse(1, Duration::from_millis(200));
    let pulsed = w.clock.now();
    let deadline = Instant::now() + Duration::from_secs(30);
    let guns = loop {
        let g = w.aggregator_guns();
        if g.len() >= 3 || Instant::now() > deadline {
            break g;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let waves: Vec<(&str, &str)> = guns.iter().map(|g| (g.0.as_str(), g.1.as_str())).collect();
    assert_eq!(waves, vec![("10k", "sas1"), ("10k", "sas2"), ("marathon", "sas1")], "one gun time per wave, once");
    for (_, _, at, jitter) in &guns {
        // The contacts closed somewhere in [before, pulsed]; the claim's interval holds that moment.
        assert!(
            at - jitter <= pulsed.as_micros() && at + jitter >= before.as_micros(),
            "the gun time's interval {}±{jitter} µs holds the closing in [{}, {}]",
            at,
            before.as_micros(),
            pulsed.as_micros()
        );
        assert!(*jitter > 0 && *jitter < 1_000_000, "jitter is half a polling interval: {jitter}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serial_decoder_unplugged_and_plugged_back_loses_nothing() {
    let mut w = World::with_reader(true).await;
    w.start_aggregator(0);
    w.start_edge();
    w.detect(300);
    w.decoder_has_stored_everything().await;
    w.assert_exactly_once(Duration::from_secs(30));
    // The cable comes out: the tty vanishes; the edge keeps trying to open it.
    w.unplug_reader().await;
    assert!(!w.dir.path().join("tty/finish-main").exists());
    // Back in, after a power cycle: a new passing file, more passings.
    w.plug_reader().await;
    assert_eq!(w.reader().stats().session, 2);
    w.detect(300);
    w.decoder_has_stored_everything().await;
    w.assert_exactly_once(Duration::from_secs(60));
}

/// Builds the disk-full shim (`tests/shims/disk_full.c`) with the system C compiler.
fn disk_full_shim(dir: &std::path::Path) -> PathBuf {
    let so = dir.join("disk_full.so");
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/shims/disk_full.c");
    let ok = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&so)
        .arg(&src)
        .arg("-ldl")
        .status()
        .unwrap()
        .success();
    assert!(ok, "building the disk-full shim needs a C compiler (cc)");
    so
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_holds_reads_in_memory_and_loses_none_when_space_returns() {
    let mut w = World::new().await;
    w.start_aggregator(0);
    let shim = disk_full_shim(w.dir.path());
    let flag = w.dir.path().join("disk-is-full");
    w.start_edge_with(&[
        ("LD_PRELOAD", shim.display().to_string()),
        ("DISK_FULL_WHILE", flag.display().to_string()),
        ("DISK_FULL_MATCH", "edge.sqlite".to_string()),
    ]);
    w.detect(500);
    w.decoder_has_stored_everything().await;
    w.assert_exactly_once(Duration::from_secs(30));
    // The disk fills up while passings keep coming.
    std::fs::write(&flag, b"").unwrap();
    w.detect(2_000);
    w.decoder_has_stored_everything().await;
    // Nothing new can reach the outbox, so nothing new goes upstream; nothing is dropped either.
    // Once the edge reports its store failing (in its telemetry), the reads are held.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let fleet: Vec<aggregator::FleetEdge> =
            reqwest::get(format!("{}/api/v1/fleet", w.agg_url)).await.unwrap().json().await.unwrap();
        let finish = fleet.iter().find(|e| e.edge == "finish").unwrap();
        if finish.telemetry.as_ref().is_some_and(|t| t.status["store_failing"] == true) {
            break;
        }
        assert!(Instant::now() < deadline, "the edge never reported its full disk");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(w.aggregator_holds().0, 500, "reads held, not half-written");
    // Space is back: every held read is committed and sent, once.
    std::fs::remove_file(&flag).unwrap();
    w.assert_exactly_once(Duration::from_secs(60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_clock_stepped_forward_and_back_neither_loses_nor_reorders() {
    let mut w = World::new().await;
    w.start_aggregator(0);
    let step = w.dir.path().join("edge-clock-step");
    firmware_sim::clock::SteppedClock::step_file(&step, Elapsed::ZERO).unwrap();
    w.write_edge_file(&w.agg_url.clone());
    let child = Command::new(env!("CARGO_BIN_EXE_racetime"))
        .args(["edge", "--config"])
        .arg(&w.edge_file)
        .arg("--sim-clock")
        .arg(format!("file:{}", step.display()))
        .env("RACETIME_EDGE_TOKEN_FINISH", TOKEN)
        .env("RUST_LOG", "warn")
        .current_dir(w.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    w.edge = Some(Proc(child));
    w.detect(1_000);
    w.decoder_has_stored_everything().await;
    w.assert_exactly_once(Duration::from_secs(30));
    for step_s in [3_600, -7_200, 0] {
        firmware_sim::clock::SteppedClock::step_file(&step, Elapsed::from_secs(step_s)).unwrap();
        w.detect(1_000);
        w.decoder_has_stored_everything().await;
        w.assert_exactly_once(Duration::from_secs(30));
    }
    // Edge seqs follow arrival, whatever the clock said: passing numbers rise with seq.
    let c = rusqlite::Connection::open_with_flags(&w.agg_db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let out_of_order: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM reads a JOIN reads b ON b.seq = a.seq + 1 WHERE b.session = a.session AND b.reader_seq < a.reader_seq",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(out_of_order, 0, "no read reordered by the clock steps");
}
