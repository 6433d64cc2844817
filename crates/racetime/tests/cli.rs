//! The `racetime` binary as a person uses it: real files in, standings or a clear error out.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn racetime(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_racetime")).args(args).output().expect("racetime runs")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A generated race in a temporary folder.
fn generated(seed: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let event = repo().join("config/demo");
    let out = racetime(&[
        "generate",
        "--event",
        s(&event),
        "--seed",
        &seed.to_string(),
        "--runners",
        "120,80",
        "--out",
        s(dir.path()),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    dir
}

#[test]
fn results_from_generated_files_equal_the_truth_file() {
    let dir = generated(3);
    let d = dir.path();
    let event = repo().join("config/demo");
    let standings = d.join("standings.csv");
    let out = racetime(&[
        "results",
        "--event",
        s(&event),
        "--participants",
        s(&d.join("participants.csv")),
        "--reads",
        s(&d.join("reads.csv")),
        "--corrections",
        s(&d.join("guns.toml")),
        "--out",
        s(&standings),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(std::fs::read_to_string(&standings).unwrap(), std::fs::read_to_string(d.join("truth.csv")).unwrap());
    for needle in ["reads in:", "crossings:", "unknown chips:", "strays:", "wrong-race:", "reviews:"] {
        assert!(stderr.contains(needle), "summary lacks {needle:?}:\n{stderr}");
    }
    let header = std::fs::read_to_string(&standings).unwrap().lines().next().unwrap().to_string();
    assert!(header.starts_with(
        "race,place,gender_place,category_place,bib,first_name,last_name,gender,category,wave,nation,club,status,gun_time,chip_time,split_start,"
    ));
    assert!(header.ends_with(",split_finish,flags"));
}

#[test]
fn json_output_keeps_full_resolution() {
    let dir = generated(4);
    let d = dir.path();
    let out = racetime(&[
        "results",
        "--event",
        s(&repo().join("config/demo")),
        "--participants",
        s(&d.join("participants.csv")),
        "--reads",
        s(&d.join("reads.csv")),
        "--format",
        "json",
        "--precision",
        "ms",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["precision"], "ms");
    let first = &doc["results"][0];
    let us = first["gun_time_us"].as_i64().unwrap();
    let shown = first["gun_time"].as_str().unwrap();
    // Published at ms precision, rounded up from the microsecond value.
    let ms = (us + 999) / 1000;
    assert_eq!(shown, format!("{}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000));
    // Without the actual guns, times use the scheduled starts and say so.
    assert!(first["flags"].as_array().unwrap().iter().any(|f| f == "gun_scheduled"));
}

#[test]
fn garbage_read_lines_are_counted_by_line_and_the_rest_is_processed() {
    let dir = generated(5);
    let d = dir.path();
    let reads = std::fs::read_to_string(d.join("reads.csv")).unwrap();
    let mut lines: Vec<&str> = reads.lines().collect();
    lines.insert(3, "not,a,read");
    lines.insert(10, "2024-08-10T19:00:00Z,E2000001,km99,main,x,1,-60,");
    std::fs::write(d.join("dirty.csv"), lines.join("\n")).unwrap();
    let out = racetime(&[
        "results",
        "--event",
        s(&repo().join("config/demo")),
        "--participants",
        s(&d.join("participants.csv")),
        "--reads",
        s(&d.join("dirty.csv")),
        "--corrections",
        s(&d.join("guns.toml")),
        "--out",
        s(&d.join("standings.csv")),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("dirty.csv:4: bad timestamp \"not\""), "{stderr}");
    assert!(stderr.contains("dirty.csv:11: unknown timing point \"km99\""), "{stderr}");
    assert!(stderr.contains("bad lines: 2"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(d.join("standings.csv")).unwrap(),
        std::fs::read_to_string(d.join("truth.csv")).unwrap()
    );
}

#[test]
fn bad_config_or_participants_exit_2_with_position_and_write_nothing() {
    let dir = generated(6);
    let d = dir.path();
    let bad_event = d.join("bad-event");
    std::fs::create_dir_all(&bad_event).unwrap();
    let text = std::fs::read_to_string(repo().join("config/demo/event.toml")).unwrap().replacen(
        "distance_m = 42195",
        "distance_m = \"far\"",
        1,
    );
    std::fs::write(bad_event.join("event.toml"), text).unwrap();
    let standings = d.join("standings.csv");
    let run = |event: &Path, participants: &Path| {
        racetime(&[
            "results",
            "--event",
            s(event),
            "--participants",
            s(participants),
            "--reads",
            s(&d.join("reads.csv")),
            "--out",
            s(&standings),
        ])
    };
    let out = run(&bad_event, &d.join("participants.csv"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("event.toml:") && stderr.contains("invalid type"), "{stderr}");
    assert!(!standings.exists());

    let people = std::fs::read_to_string(d.join("participants.csv")).unwrap();
    let mut lines: Vec<String> = people.lines().map(String::from).collect();
    lines[2] = lines[2].replace(",marathon,", ",ultra,");
    std::fs::write(d.join("bad-people.csv"), lines.join("\n")).unwrap();
    let out = run(&repo().join("config/demo"), &d.join("bad-people.csv"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad-people.csv:3:7 (column race): unknown race \"ultra\""), "{stderr}");
    assert!(!standings.exists());
}

/// A decoder's own backup file (RACE RESULT passing records, local date and time) for the finish
/// main line, beside a neutral CSV for everything else: the standings still equal the truth.
#[test]
fn a_raceresult_backup_file_for_one_line_gives_the_same_standings() {
    use reader_protocol::rfid::raceresult::{DecoderDate, Passing};
    let dir = generated(8);
    let d = dir.path();
    let parsed = reader_protocol::files::neutral::parse(&std::fs::read(d.join("reads.csv")).unwrap());
    let paris: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
    let (finish_main, rest): (Vec<_>, Vec<_>) = parsed
        .reads
        .into_iter()
        .map(|(_, r)| r)
        .partition(|r| r.point.as_str() == "finish" && r.line == timing_core::Line::Main);
    assert!(finish_main.len() > 100);
    let mut rr = Vec::new();
    for (i, r) in finish_main.iter().enumerate() {
        let local = reader_protocol::time::local_date_time(r.at, paris).unwrap();
        let date = chrono::DateTime::from_timestamp_micros(local).unwrap().date_naive();
        use chrono::Datelike;
        let tod = local.rem_euclid(86_400_000_000) as u64;
        let date = DecoderDate { year: date.year() as u16, month: date.month() as u8, day: date.day() as u8 };
        Passing::new(i as u64 + 1, r.chip.as_str(), Some(date), tod).write(&mut rr);
        rr.extend_from_slice(b"\r\n");
    }
    std::fs::write(d.join("finish-main.txt"), rr).unwrap();
    let mut csv = format!("{}\n", reader_protocol::files::neutral::HEADER);
    for r in &rest {
        reader_protocol::files::neutral::write_row(r, &mut csv);
    }
    std::fs::write(d.join("rest.csv"), csv).unwrap();

    let base = |reads: &[&str]| {
        let mut args = vec![
            "results".to_string(),
            "--event".into(),
            s(&repo().join("config/demo")).into(),
            "--participants".into(),
            s(&d.join("participants.csv")).into(),
            "--corrections".into(),
            s(&d.join("guns.toml")).into(),
            "--out".into(),
            s(&d.join("standings.csv")).into(),
            "--reads".into(),
        ];
        args.extend(reads.iter().map(|r| r.to_string()));
        racetime(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let finish_arg = format!("finish:main:finish-rr={}", s(&d.join("finish-main.txt")));
    let out = base(&[s(&d.join("rest.csv")), &finish_arg]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(d.join("standings.csv")).unwrap(),
        std::fs::read_to_string(d.join("truth.csv")).unwrap()
    );

    // Without its place, a decoder file is refused with a clear message and nothing is written.
    std::fs::remove_file(d.join("standings.csv")).unwrap();
    let out = base(&[s(&d.join("finish-main.txt"))]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("does not say where it was recorded; name its place: --reads POINT[:LINE]="), "{stderr}");
    assert!(!d.join("standings.csv").exists());
}
