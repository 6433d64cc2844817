use proptest::prelude::*;

use super::*;

fn read(chip: &str, us: i64, reader: &str, seq: Option<u64>, session: Option<u32>) -> NewRead {
    NewRead {
        read: Read {
            chip: ChipId::new(chip),
            at: Timestamp::from_micros(us),
            point: PointId::new("finish"),
            line: Line::Backup,
            reader: ReaderId::new(reader),
            antenna: 3,
            rssi: Some(Rssi(-615)),
            reader_seq: seq,
        },
        reader_time: ReaderTime::LocalDateTime(us + 7_200_000_000),
        session,
        hits: Some(12),
        received_at: Timestamp::from_micros(us + 150_000),
    }
}

#[test]
fn migrations_are_valid() {
    migrations().validate().unwrap();
}

#[test]
fn a_batch_round_trips_with_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = Outbox::open(&dir.path().join("edge.sqlite")).unwrap();
    let mut b = vec![read("E1", 1_000, "fin-b", Some(1), Some(4)), read("E2", 2_000, "fin-b", Some(2), Some(4))];
    b[1].read.rssi = None;
    b[1].reader_time = ReaderTime::TimeOfDay(42);
    b[1].session = None;
    let a = o.append(&b).unwrap();
    assert_eq!(a, Appended { first_seq: 1, n_stored: 2, n_duplicates: 0 });
    let back = o.read_after(0, 10).unwrap();
    assert_eq!(back.iter().map(|s| s.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(back[0].read, b[0]);
    assert_eq!(back[1].read, b[1]);
    assert_eq!(o.read_after(1, 10).unwrap().len(), 1);
    assert_eq!(o.read_after(0, 1).unwrap().len(), 1);
}

#[test]
fn replayed_passings_are_dropped_but_a_new_session_is_new() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = Outbox::open(&dir.path().join("edge.sqlite")).unwrap();
    o.append(&[read("E1", 1, "rr", Some(1), Some(1)), read("E2", 2, "rr", Some(2), Some(1))]).unwrap();
    // The reader reconnects and replays 1..=3: only 3 is new.
    let a = o
        .append(&[
            read("E1", 1, "rr", Some(1), Some(1)),
            read("E2", 2, "rr", Some(2), Some(1)),
            read("E3", 3, "rr", Some(3), Some(1)),
        ])
        .unwrap();
    assert_eq!(a, Appended { first_seq: 3, n_stored: 1, n_duplicates: 2 });
    // After a reboot the decoder opens file 2 and numbers from 1 again.
    let a = o.append(&[read("E4", 4, "rr", Some(1), Some(2))]).unwrap();
    assert_eq!((a.first_seq, a.n_stored), (4, 1));
    assert_eq!(o.last_passing("rr", Some(1)).unwrap(), Some(3));
    assert_eq!(o.last_passing("rr", Some(2)).unwrap(), Some(1));
    assert_eq!(o.last_session("rr").unwrap(), Some(2));
    // Readers without passing numbers: an exact copy (the reader's memory replayed) is dropped,
    // in one batch and across batches; a read differing in any field the reader sent is kept.
    let a = o.append(&[read("E5", 5, "llrp", None, None), read("E5", 5, "llrp", None, None)]).unwrap();
    assert_eq!((a.n_stored, a.n_duplicates), (1, 1));
    assert_eq!(o.append(&[read("E5", 5, "llrp", None, None)]).unwrap().n_duplicates, 1);
    let mut other_antenna = read("E5", 5, "llrp", None, None);
    other_antenna.read.antenna = 4;
    let mut no_rssi = read("E5", 5, "llrp", None, None);
    no_rssi.read.rssi = None;
    let mut later = read("E5", 5, "llrp", None, None);
    later.reader_time = ReaderTime::LocalDateTime(5 + 7_200_000_000 + 10_000);
    let a = o.append(&[other_antenna, no_rssi.clone(), later, read("E5", 5, "ipico", None, None)]).unwrap();
    assert_eq!((a.n_stored, a.n_duplicates), (4, 0));
    // NULL RSSI compares equal to NULL RSSI.
    assert_eq!(o.append(&[no_rssi]).unwrap().n_duplicates, 1);
    // The corrected instant is not what identifies the read: a replay after the edge's clock
    // estimate moved is still the same read.
    let mut shifted = read("E5", 5, "llrp", None, None);
    shifted.read.at = Timestamp::from_micros(5 + 3_000_000);
    assert_eq!(o.append(&[shifted]).unwrap().n_duplicates, 1);
    // Without a session, passing numbers still deduplicate.
    o.append(&[read("E6", 6, "ultra", Some(9), None)]).unwrap();
    assert_eq!(o.append(&[read("E6", 6, "ultra", Some(9), None)]).unwrap().n_duplicates, 1);
}

#[test]
fn seq_and_the_uplink_cursor_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.sqlite");
    {
        let mut o = Outbox::open(&path).unwrap();
        o.append(&(1..=5).map(|i| read("E", i, "r", Some(i as u64), None)).collect::<Vec<_>>()).unwrap();
        o.set_acked(3).unwrap();
        o.set_acked(2).unwrap(); // an older ack is ignored
        assert_eq!(
            o.backlog().unwrap(),
            Backlog { n_reads: 2, oldest_received_at: Some(Timestamp::from_micros(4 + 150_000)) }
        );
    }
    let mut o = Outbox::open(&path).unwrap();
    assert_eq!((o.last_seq(), o.acked()), (5, 3));
    let a = o.append(&[read("F", 6, "r", Some(6), None)]).unwrap();
    assert_eq!(a.first_seq, 6);
    o.set_acked(6).unwrap();
    assert_eq!(o.backlog().unwrap(), Backlog::default());
}

/// What the outbox should hold, kept naively.
#[derive(Default)]
struct Model {
    reads: Vec<NewRead>,
    keys: std::collections::HashSet<(String, i64, u64)>,
    /// Reads without a passing number, by everything the reader sent.
    unnumbered: std::collections::HashSet<String>,
    acked: u64,
}

#[derive(Clone, Debug)]
enum Action {
    Append(Vec<(u8, u8, Option<u8>, Option<u8>)>),
    Ack(u16),
    Reopen,
    ReadAfter(u16, u8),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => proptest::collection::vec((0u8..4, any::<u8>(), proptest::option::of(0u8..20), proptest::option::of(0u8..3)), 0..12).prop_map(Action::Append),
        1 => any::<u16>().prop_map(Action::Ack),
        1 => Just(Action::Reopen),
        2 => (any::<u16>(), 1u8..20).prop_map(|(a, l)| Action::ReadAfter(a, l)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn behaves_like_a_log_with_replays_and_copies_dropped(actions in proptest::collection::vec(action(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edge.sqlite");
        let mut o = Outbox::open(&path).unwrap();
        let mut m = Model::default();
        for a in actions {
            match a {
                Action::Append(batch) => {
                    let batch: Vec<NewRead> = batch.iter().map(|&(r, chip, seq, session)| {
                        read(&format!("C{chip}"), chip as i64 * 1000, &format!("r{r}"), seq.map(u64::from), session.map(u32::from))
                    }).collect();
                    let before = m.reads.len();
                    let mut dups = 0;
                    for n in &batch {
                        let fresh = match n.read.reader_seq {
                            Some(s) => m.keys.insert((n.read.reader.to_string(), n.session.map_or(-1, i64::from), s)),
                            None => {
                                let r = &n.read;
                                m.unnumbered.insert(format!("{} {} {:?} {:?} {} {:?}", r.reader, r.chip, n.reader_time, r.line, r.antenna, r.rssi))
                            }
                        };
                        if fresh { m.reads.push(n.clone()); } else { dups += 1; }
                    }
                    let got = o.append(&batch).unwrap();
                    prop_assert_eq!(got.n_stored, m.reads.len() - before);
                    prop_assert_eq!(got.n_duplicates, dups);
                    prop_assert_eq!(got.first_seq, before as u64 + 1);
                }
                Action::Ack(k) => {
                    let k = u64::from(k) % (m.reads.len() as u64 + 1);
                    o.set_acked(k).unwrap();
                    m.acked = m.acked.max(k);
                }
                Action::Reopen => {
                    drop(o);
                    o = Outbox::open(&path).unwrap();
                }
                Action::ReadAfter(after, limit) => {
                    let after = u64::from(after) % (m.reads.len() as u64 + 2);
                    let got = o.read_after(after, limit as usize).unwrap();
                    let want: Vec<StoredRead> = m.reads.iter().enumerate().skip(after as usize).take(limit as usize)
                        .map(|(i, r)| StoredRead { seq: i as u64 + 1, read: r.clone() }).collect();
                    prop_assert_eq!(got, want);
                }
            }
            prop_assert_eq!(o.last_seq(), m.reads.len() as u64);
            prop_assert_eq!(o.acked(), m.acked);
            prop_assert_eq!(o.backlog().unwrap().n_reads, m.reads.len() as u64 - m.acked);
        }
    }
}

#[test]
fn a_second_handle_reads_and_acks_while_the_first_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.sqlite");
    let mut writer = Outbox::open(&path).unwrap();
    let mut uplink = Outbox::open(&path).unwrap();
    writer.append(&(1..=3).map(|i| read("E", i, "r", Some(i as u64), None)).collect::<Vec<_>>()).unwrap();
    uplink.refresh().unwrap();
    assert_eq!(uplink.last_seq(), 3);
    assert_eq!(uplink.read_after(0, 10).unwrap().len(), 3);
    uplink.set_acked(2).unwrap();
    writer.append(&[read("F", 9, "r", Some(9), None)]).unwrap();
    uplink.refresh().unwrap();
    assert_eq!((uplink.last_seq(), uplink.acked()), (4, 2));
    assert_eq!(uplink.backlog().unwrap().n_reads, 2);
    drop((writer, uplink));
    let o = Outbox::open(&path).unwrap();
    assert_eq!((o.last_seq(), o.acked()), (4, 2));
}

#[test]
fn signals_have_their_own_series_and_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.sqlite");
    let gun = |w: &str, us: i64| NewSignal {
        race: "marathon".into(),
        wave: w.into(),
        at: Timestamp::from_micros(us),
        source: "modbus:start-gun:0".into(),
        jitter_us: 5_000,
        received_at: Timestamp::from_micros(us + 10_000),
    };
    {
        let mut o = Outbox::open(&path).unwrap();
        o.append(&[read("E1", 1, "r", Some(1), None)]).unwrap();
        assert_eq!(o.append_signal(&gun("sas1", 100)).unwrap(), 1);
        assert_eq!(o.append_signal(&gun("sas2", 200)).unwrap(), 2);
        o.set_acked_signals(1).unwrap();
        o.set_acked_signals(9).unwrap(); // beyond the last: ignored
    }
    let o = Outbox::open(&path).unwrap();
    assert_eq!(o.acked_signals().unwrap(), 1);
    let pending = o.signals_after(1, 10).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].seq, pending[0].signal.clone()), (2, gun("sas2", 200)));
    assert_eq!(o.last_seq(), 1, "reads keep their own series");
}
