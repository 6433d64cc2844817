//! Decoding throughput of LLRP `RO_ACCESS_REPORT`s, in tag reports per second.
//!
//! A busy start line has a few hundred tags in the field and a reader reporting every tag, so
//! reports come both one tag at a time (the `N = 1` ROSpec racetime uses) and in large batches
//! (an end-of-AISpec report). Both shapes are measured, over a stream of several messages.

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use reader_protocol::rfid::llrp::{self, Body, Epc, Message, TagReportData};

fn tag(i: u32) -> TagReportData {
    let mut epc = [0u8; 12];
    epc[0] = 0xe2;
    epc[8..].copy_from_slice(&i.to_be_bytes());
    let mut t = TagReportData::new(Epc::Epc96(epc));
    t.antenna_id = Some((i % 4) as u16 + 1);
    t.peak_rssi_dbm = Some(-40 - (i % 40) as i8);
    t.first_seen_utc_us = Some(1_717_320_000_000_000 + u64::from(i) * 1_000);
    t.tag_seen_count = Some((i % 50) as u16 + 1);
    t
}

/// `n_messages` reports of `tags_per_message` tags each, as one byte stream.
fn stream(n_messages: u32, tags_per_message: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for m in 0..n_messages {
        let tags = (0..tags_per_message).map(|i| tag(m * tags_per_message + i)).collect();
        llrp::encode(&Message::new(m, Body::RoAccessReport(tags)), &mut out).unwrap();
    }
    out
}

fn decode_stream(bytes: &[u8]) -> usize {
    let mut buf = bytes.to_vec();
    let mut n_tags = 0;
    while let Some(m) = llrp::decode(&mut buf).unwrap() {
        if let Body::RoAccessReport(tags) = m.body {
            n_tags += tags.len();
        }
    }
    n_tags
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("llrp_ro_access_report");
    for (n_messages, tags_per_message) in [(1000u32, 1u32), (10, 100), (1, 1000)] {
        let bytes = stream(n_messages, tags_per_message);
        let n_tags = u64::from(n_messages * tags_per_message);
        assert_eq!(decode_stream(&bytes) as u64, n_tags);
        group.throughput(Throughput::Elements(n_tags));
        group.bench_with_input(
            BenchmarkId::new("decode", format!("{n_messages}x{tags_per_message}")),
            &bytes,
            |b, bytes| b.iter(|| decode_stream(black_box(bytes))),
        );
        group.bench_with_input(
            BenchmarkId::new("decode_prefix", format!("{n_messages}x{tags_per_message}")),
            &bytes,
            |b, bytes| {
                b.iter(|| {
                    let mut rest: &[u8] = black_box(bytes);
                    let mut n_tags = 0;
                    loop {
                        let (consumed, result) = llrp::decode_prefix(rest);
                        match result.unwrap() {
                            Some(Message { body: Body::RoAccessReport(tags), .. }) => n_tags += tags.len(),
                            Some(_) => {}
                            None => break,
                        }
                        rest = &rest[consumed..];
                    }
                    n_tags
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("decode_to_tag_reads", format!("{n_messages}x{tags_per_message}")),
            &bytes,
            |b, bytes| {
                b.iter(|| {
                    let mut buf = black_box(bytes).to_vec();
                    let mut n = 0;
                    while let Some(m) = llrp::decode(&mut buf).unwrap() {
                        n += m.tag_reads().count();
                    }
                    n
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
