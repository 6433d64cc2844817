use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;

use super::*;

fn read(seq: u64, chip: &str) -> WireRead {
    WireRead {
        seq,
        chip: chip.to_string(),
        at_us: 1_723_329_667_250_000 + seq as i64,
        point: "finish".into(),
        line: WireLine::Backup,
        reader: "finish-backup".into(),
        antenna: 2,
        rssi: Some(-615),
        reader_seq: Some(seq + 40),
        session: Some(3),
        hits: Some(12),
        reader_time: WireReaderTime::TimeOfDay(2_467_250_000),
        received_at_us: 1_723_329_667_400_000,
    }
}

fn reads(seqs: std::ops::RangeInclusive<u64>) -> Vec<WireRead> {
    seqs.map(|s| read(s, "E1")).collect()
}

fn gun(seq: u64, wave: &str) -> Signal {
    Signal::GunTime {
        seq,
        race: "marathon".into(),
        wave: wave.into(),
        at_us: 1_723_320_000_000_000,
        source: "modbus:start-gun:0".into(),
        jitter_us: 5_000,
    }
}

const NOW: Timestamp = Timestamp::from_micros(1_723_329_668_000_000);

fn open(dir: &tempfile::TempDir) -> AggregatorStore {
    AggregatorStore::open(&dir.path().join("aggregator.sqlite")).unwrap()
}

#[test]
fn migrations_are_valid() {
    migrations().validate().unwrap();
}

#[test]
fn every_field_round_trips_and_the_ingest_time_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let mut b = vec![read(1, "E1"), read(2, "E2")];
    b[1].rssi = None;
    b[1].reader_seq = Some(u64::MAX); // stored bit for bit in a signed column
    b[1].session = None;
    b[1].hits = None;
    b[1].line = WireLine::Main;
    b[1].reader_time = WireReaderTime::Utc(-5);
    let got = store.ingest("finish", &b, &[gun(1, "elite")], NOW).unwrap();
    assert_eq!((got.acked_seq, got.acked_signal_seq, got.n_duplicates), (2, 1, 0));
    assert_eq!(got.new_reads, b);
    let mut back = Vec::new();
    store.for_each_read(|edge, r| back.push((edge.to_string(), r))).unwrap();
    assert_eq!(back, vec![("finish".to_string(), b[0].clone()), ("finish".to_string(), b[1].clone())]);
    let mut signals = Vec::new();
    store.for_each_signal(|edge, s| signals.push((edge.to_string(), s))).unwrap();
    assert_eq!(signals, vec![("finish".to_string(), gun(1, "elite"))]);
    let at: i64 = store.conn.query_row("SELECT MIN(ingested_at_us) FROM reads", [], |r| r.get(0)).unwrap();
    assert_eq!(at, NOW.as_micros());
    assert_eq!(store.counts().unwrap(), Counts { n_edges: 1, n_reads: 2, n_signals: 1 });
}

#[test]
fn the_cursor_moves_over_runs_made_contiguous_by_late_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let a = store.ingest("finish", &reads(1..=100), &[], NOW).unwrap();
    let b = store.ingest("finish", &reads(201..=300), &[], NOW).unwrap();
    let c = store.ingest("finish", &reads(101..=200), &[], NOW).unwrap();
    assert_eq!((a.acked_seq, b.acked_seq, c.acked_seq), (100, 100, 300));
    assert_eq!(store.cursor("finish"), Cursor { acked_seq: 300, acked_signal_seq: 0 });
    // Each edge has its own series, and signals theirs.
    let d = store.ingest("km7", &reads(2..=3), &[gun(2, "w"), gun(1, "v")], NOW).unwrap();
    assert_eq!((d.acked_seq, d.acked_signal_seq), (0, 2));
    assert_eq!(store.cursor("nowhere"), Cursor::default());
    assert_eq!(
        store.cursors(),
        vec![
            ("finish".to_string(), Cursor { acked_seq: 300, acked_signal_seq: 0 }),
            ("km7".to_string(), Cursor { acked_seq: 0, acked_signal_seq: 2 })
        ]
    );
}

#[test]
fn duplicates_are_ignored_counted_and_conflicts_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    store.ingest("finish", &reads(1..=3), &[gun(1, "w")], NOW).unwrap();
    let again = store.ingest("finish", &reads(1..=3), &[gun(1, "w")], NOW).unwrap();
    assert_eq!(again, Ingested { acked_seq: 3, acked_signal_seq: 1, n_duplicates: 4, ..Ingested::default() });
    // An edge whose outbox was wiped numbers from 1 again: the stored reads stay.
    let wiped = store.ingest("finish", &[read(2, "OTHER"), read(4, "E4")], &[gun(1, "x")], NOW).unwrap();
    assert_eq!((wiped.n_duplicates, wiped.n_conflicts, wiped.acked_seq), (2, 2, 4));
    assert_eq!(wiped.new_reads, vec![read(4, "E4")]);
    // A seq repeated inside one batch is stored once.
    let twice = store.ingest("finish", &[read(5, "E5"), read(5, "E5")], &[], NOW).unwrap();
    assert_eq!((twice.new_reads.len(), twice.n_duplicates, twice.n_conflicts), (1, 1, 0));
    assert_eq!(store.counts().unwrap().n_reads, 5);
}

#[test]
fn an_invalid_seq_refuses_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let err = store.ingest("finish", &[read(1, "E1"), read(0, "E0")], &[], NOW).unwrap_err();
    assert_eq!(err.to_string(), "read seq 0 of edge finish is out of range (1..=9223372036854775807)");
    let err = store.ingest("finish", &[read(1, "E1")], &[gun(1 << 63, "w")], NOW).unwrap_err();
    assert!(matches!(err, StoreError::InvalidSeq { what: "signal", .. }), "{err}");
    assert_eq!(store.counts().unwrap(), Counts::default());
}

#[test]
fn cursors_and_reads_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(&dir);
        store.ingest("finish", &reads(1..=10), &[gun(1, "w")], NOW).unwrap();
        store.ingest("finish", &reads(12..=20), &[], NOW).unwrap();
    }
    let mut store = open(&dir);
    assert_eq!(store.cursor("finish"), Cursor { acked_seq: 10, acked_signal_seq: 1 });
    assert_eq!(store.for_each_read(|_, _| {}).unwrap(), 19);
    // The gap filled after the restart: the walk finds the rows stored before it.
    assert_eq!(store.ingest("finish", &reads(11..=11), &[], NOW).unwrap().acked_seq, 20);
}

/// What the store should hold, kept naively.
#[derive(Default)]
struct Model {
    reads: HashMap<(u8, u64), WireRead>,
    signals: HashMap<(u8, u64), Signal>,
    /// Everything stored, in ingest order.
    log: Vec<(u8, WireRead)>,
    signal_log: Vec<(u8, Signal)>,
}

impl Model {
    fn cursor(&self, edge: u8) -> Cursor {
        let mut c = Cursor::default();
        while self.reads.contains_key(&(edge, c.acked_seq + 1)) {
            c.acked_seq += 1;
        }
        while self.signals.contains_key(&(edge, c.acked_signal_seq + 1)) {
            c.acked_signal_seq += 1;
        }
        c
    }
}

#[derive(Clone, Debug)]
enum Action {
    /// An edge, reads as (seq, content variant), signals as (seq, variant).
    Ingest(u8, Vec<(u64, u8)>, Vec<(u64, u8)>),
    Reopen,
}

fn action() -> impl Strategy<Value = Action> {
    // Runs (first, length) make the batches look like an edge's: contiguous, overlapping, gapped.
    let run = (1u64..60, 0usize..25, 0u8..3).prop_map(|(first, n, variant)| {
        (first..first + n as u64).map(|s| (s, if variant == 2 { (s % 2) as u8 } else { 0 })).collect::<Vec<_>>()
    });
    let signals = proptest::collection::vec((1u64..8, 0u8..2), 0..4);
    prop_oneof![
        6 => (0u8..3, run, signals).prop_map(|(e, r, s)| Action::Ingest(e, r, s)),
        1 => Just(Action::Reopen),
    ]
}

fn edge_id(e: u8) -> String {
    format!("edge-{e}")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn behaves_like_a_set_per_edge_with_contiguous_cursors(actions in proptest::collection::vec(action(), 1..30)) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(&dir);
        let mut m = Model::default();
        for a in actions {
            match a {
                Action::Ingest(e, batch, signals) => {
                    let batch: Vec<WireRead> = batch.iter().map(|&(s, v)| read(s, &format!("C{v}"))).collect();
                    let signals: Vec<Signal> = signals.iter().map(|&(s, v)| gun(s, &format!("w{v}"))).collect();
                    let mut want = Ingested::default();
                    for r in &batch {
                        match m.reads.get(&(e, r.seq)) {
                            Some(stored) => {
                                want.n_duplicates += 1;
                                want.n_conflicts += usize::from(stored != r);
                            }
                            None => {
                                m.reads.insert((e, r.seq), r.clone());
                                m.log.push((e, r.clone()));
                                want.new_reads.push(r.clone());
                            }
                        }
                    }
                    for s in &signals {
                        let seq = match s { Signal::GunTime { seq, .. } => *seq };
                        match m.signals.get(&(e, seq)) {
                            Some(stored) => {
                                want.n_duplicates += 1;
                                want.n_conflicts += usize::from(stored != s);
                            }
                            None => {
                                m.signals.insert((e, seq), s.clone());
                                m.signal_log.push((e, s.clone()));
                                want.new_signals.push(s.clone());
                            }
                        }
                    }
                    let c = m.cursor(e);
                    want.acked_seq = c.acked_seq;
                    want.acked_signal_seq = c.acked_signal_seq;
                    let got = store.ingest(&edge_id(e), &batch, &signals, NOW).unwrap();
                    prop_assert_eq!(got, want);
                }
                Action::Reopen => {
                    drop(store);
                    store = open(&dir);
                }
            }
            for e in 0..3 {
                prop_assert_eq!(store.cursor(&edge_id(e)), m.cursor(e));
            }
        }
        let mut log = Vec::new();
        store.for_each_read(|edge, r| log.push((edge.to_string(), r))).unwrap();
        prop_assert_eq!(log, m.log.iter().map(|(e, r)| (edge_id(*e), r.clone())).collect::<Vec<_>>());
        let mut signal_log = Vec::new();
        store.for_each_signal(|edge, s| signal_log.push((edge.to_string(), s))).unwrap();
        prop_assert_eq!(signal_log, m.signal_log.iter().map(|(e, s)| (edge_id(*e), s.clone())).collect::<Vec<_>>());
        let edges: BTreeMap<u8, ()> = m.reads.keys().map(|k| (k.0, ())).chain(m.signals.keys().map(|k| (k.0, ()))).collect();
        let counts = store.counts().unwrap();
        prop_assert_eq!(counts.n_reads, m.reads.len() as u64);
        prop_assert_eq!(counts.n_signals, m.signals.len() as u64);
        prop_assert!(counts.n_edges >= edges.len() as u64);
    }
}
