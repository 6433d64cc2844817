//! Decode throughput per text codec over a buffer of 100 000 tag-read records (records/s).
//!
//! Each codec's buffer is built with its own encoder from varied records, then decoded with the
//! slice API (`decode_slice` plus an offset), which is what a reader link does after each socket read.
//! `raceresult_vec_64k` shows the `decode(&mut Vec)` path fed in 64 KiB reads for comparison.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use reader_protocol::rfid::{chronotrack, ipico, jchip, mylaps, raceresult, ultra};
use reader_protocol::{DecodeError, Decoded};

const N: usize = 100_000;

fn build<M>(make: impl Fn(usize) -> M, encode: impl Fn(&M, &mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..N {
        encode(&make(i), &mut out);
    }
    out
}

/// Decodes the whole buffer, returning the number of messages.
fn count<M>(bytes: &[u8], decode_slice: fn(&[u8]) -> Decoded<M>) -> usize {
    let mut pos = 0;
    let mut n = 0;
    loop {
        let d = decode_slice(&bytes[pos..]);
        pos += d.consumed;
        match d.result {
            Ok(Some(m)) => {
                black_box(m);
                n += 1;
            }
            Ok(None) => return n,
            Err(e) => panic!("benchmark input must decode: {e}"),
        }
    }
}

fn raceresult_stream() -> Vec<u8> {
    build(
        |i| {
            let date = raceresult::DecoderDate { year: 2024, month: 6, day: 2 };
            let mut p = raceresult::Passing::new(i as u64 + 1, "ZICAD30", Some(date), 34_265_123_000 + i as u64 * 1000);
            p.event_id = Some(0);
            p.hits = Some(40 + (i % 50) as u32);
            p.max_rssi = Some(-50 - (i % 30) as i32);
            p.is_active = Some(false);
            p.box_name = "D-5432".into();
            p.file_no = Some(3);
            p.max_rssi_antenna = Some((i % 8) as u8 + 1);
            p.box_id = "D-5432".into();
            p.n_fields = 20;
            raceresult::Message::PushedPassing(p)
        },
        raceresult::Message::encode,
    )
}

/// A codec's name, its encoded records, and a function that decodes and counts them.
type Stream = (&'static str, Vec<u8>, fn(&[u8]) -> usize);

fn streams() -> Vec<Stream> {
    vec![
        ("raceresult", raceresult_stream(), |b| count(b, raceresult::decode_slice)),
        (
            "ultra",
            build(
                |i| {
                    ultra::Message::Read(ultra::ChipRead {
                        kind: 0,
                        chip: format!("{}", 1000 + i % 5000),
                        seconds_since_1980: 1_401_357_123 + i as u64 / 100,
                        millis: (i % 1000) as u16,
                        antenna: (i % 4) as u8 + 1,
                        rssi: -60 - (i % 20) as i16,
                        rewind: false,
                        reader_no: 1,
                        ultra_id: 1,
                        reader_time: "0000000000000000".into(),
                        start_time: 0,
                        log_id: i as u64 + 1,
                    })
                },
                ultra::Message::encode,
            ),
            |b| count(b, ultra::decode_slice),
        ),
        (
            "ipico",
            build(
                |i| {
                    ipico::Message::Tag(ipico::TagRecord {
                        reader_id: 0,
                        tag_id: format!("0580001{:05x}", i % 5000),
                        i_count: (i % 40) as u8,
                        q_count: (i % 37) as u8,
                        time: ipico::IpicoClock {
                            year: 26,
                            month: 3,
                            day: 6,
                            weekday: 0,
                            hour: 9,
                            minute: (i / 6000 % 60) as u8,
                            second: (i / 100 % 60) as u8,
                            centis: (i % 100) as u8,
                        },
                        tto: None,
                    })
                },
                ipico::Message::encode,
            ),
            |b| count(b, ipico::decode_slice),
        ),
        (
            "jchip",
            build(
                |i| {
                    jchip::Message::Data(jchip::Record {
                        kind: b'J',
                        tag: format!("{:06X}", 0x400000 + i % 5000),
                        time_of_day_us: 36_000_000_000 + i as u64 * 10_000,
                        flag: b'1',
                        day: 0,
                        index: Some(i as u32),
                        column: Some("C7".into()),
                        date: None,
                    })
                },
                jchip::Message::encode,
            ),
            |b| count(b, jchip::decode_slice),
        ),
        (
            "mylaps",
            build(
                |i| {
                    let mut p = mylaps::Passing::new(&format!("{:07}", i % 5000), 47_490_904_000 + i as u64 * 1000);
                    p.chip_type = Some("UH".into());
                    p.date = Some(mylaps::MylapsDate { year: 12, month: 6, day: 6 });
                    p.lap = Some(3);
                    p.device = Some(4);
                    p.reader = Some(0);
                    p.antennas = Some("00001111".into());
                    p.group = Some(0);
                    p.bib = Some(format!("{}", i % 5000));
                    p.bib_text = p.bib.clone();
                    mylaps::Message::Passings { name: "10KM".into(), passings: vec![p], counter: i as u64 }
                },
                mylaps::Message::encode,
            ),
            |b| count(b, mylaps::decode_slice),
        ),
        (
            "chronotrack",
            build(
                |i| {
                    chronotrack::Message::Read(chronotrack::CtRecord {
                        format: "CT01_33".into(),
                        seq: i as u64 + 1,
                        location: "finish".into(),
                        tag: format!("{}", 1000 + i % 5000),
                        time: chronotrack::CtTime::TimeOfDay(50_535_310_000 + i as u64 * 10_000),
                        field5: "0".into(),
                        reader_id: "0F2A38".into(),
                        field7: "1".into(),
                    })
                },
                chronotrack::Message::encode,
            ),
            |b| count(b, chronotrack::decode_slice),
        ),
    ]
}

fn decode_text(c: &mut Criterion) {
    for (name, bytes, run) in streams() {
        assert_eq!(run(&bytes), N, "{name}: every record decodes");
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(N as u64));
        g.bench_function("decode_slice", |b| b.iter(|| run(black_box(&bytes))));
        g.finish();
    }

    // The Vec API, fed as a socket would: 64 KiB at a time, drained after each read.
    let bytes = raceresult_stream();
    let mut g = c.benchmark_group("raceresult_vec_64k");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut buf = Vec::with_capacity(128 * 1024);
            let mut n = 0;
            for chunk in bytes.chunks(64 * 1024) {
                buf.extend_from_slice(chunk);
                while let Some(m) = raceresult::decode(&mut buf).unwrap_or_else(|e: DecodeError| panic!("{e}")) {
                    black_box(m);
                    n += 1;
                }
            }
            assert_eq!(n, N);
        })
    });
    g.finish();
}

criterion_group!(benches, decode_text);
criterion_main!(benches);
