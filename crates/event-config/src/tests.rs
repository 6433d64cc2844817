use std::path::PathBuf;

use super::*;
use timing_core::{Correction, Gender, Line, StatusOverride};

fn config_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

fn demo() -> EventConfig {
    let src = std::fs::read_to_string(config_dir().join("demo/event.toml")).unwrap();
    parse_event("demo/event.toml", &src).unwrap()
}

#[test]
fn every_shipped_event_folder_validates() {
    let mut n = 0;
    for entry in std::fs::read_dir(config_dir()).unwrap() {
        let dir = entry.unwrap().path();
        let event_file = dir.join("event.toml");
        if !event_file.exists() {
            continue;
        }
        let src = std::fs::read_to_string(&event_file).unwrap();
        let event = parse_event(&event_file.display().to_string(), &src).unwrap_or_else(|e| panic!("{e}"));
        for file in ["participants.csv", "participants-sample.csv"] {
            let path = dir.join(file);
            if path.exists() {
                let csv = std::fs::read_to_string(&path).unwrap();
                let ps =
                    parse_participants(&path.display().to_string(), &csv, &event).unwrap_or_else(|e| panic!("{e}"));
                assert!(!ps.is_empty(), "{} is empty", path.display());
            }
        }
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("edge-") && name.ends_with(".toml") {
                let edge = parse_edge(&path.display().to_string(), &std::fs::read_to_string(&path).unwrap(), &event)
                    .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(
                    format!("edge-{}.toml", event.course.point(edge.point).id),
                    name,
                    "one edge file per point, named after it"
                );
            }
        }
        let corrections = dir.join("corrections.toml");
        if corrections.exists() {
            parse_corrections("corrections.toml", &std::fs::read_to_string(&corrections).unwrap(), &event)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        n += 1;
    }
    assert!(n >= 2, "expected config/demo and config/paris-2024");
}

#[test]
fn paris_models_the_marathon_pour_tous() {
    let src = std::fs::read_to_string(config_dir().join("paris-2024/event.toml")).unwrap();
    let e = parse_event("event.toml", &src).unwrap();
    let c = &e.course;
    assert_eq!(e.time_zone.name(), "Europe/Paris");
    let marathon = c.race(c.race_by_id("marathon").unwrap());
    let tenk = c.race(c.race_by_id("10k").unwrap());
    assert_eq!((marathon.distance_m, marathon.ranked, marathon.splits.len()), (42195, false, 11));
    assert_eq!(c.waves.iter().filter(|w| w.race == c.race_by_id("marathon").unwrap()).count(), 8);
    // 21:00 in Paris in August is 19:00 UTC; the last 10 km corral starts after midnight.
    assert_eq!(units::format_utc(c.waves[0].scheduled_start), "2024-08-10T19:00:00.000000Z");
    assert_eq!(units::format_utc(c.waves.last().unwrap().scheduled_start), "2024-08-10T22:00:00.000000Z");
    // Shared points: start, km 7 and finish serve both races.
    for p in ["start", "km7", "finish"] {
        let pi = c.point_by_id(p).unwrap();
        assert!(marathon.split_of(pi).is_some() && tenk.split_of(pi).is_some(), "{p}");
    }
    assert!(tenk.split_of(c.point_by_id("km10").unwrap()).is_none());
    assert_eq!(e.point_lines[c.point_by_id("finish").unwrap().idx()], vec![Line::Main, Line::Backup]);
}

#[test]
fn malformed_toml_names_file_line_and_column() {
    let err = parse_event("bad.toml", "[event]\nname = \"x\"\ntime_zone = \n").unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("bad.toml:3:"), "{msg}");
    let err = parse_event("bad.toml", "[event]\nname = \"x\"\ncolour = 1\n").unwrap_err().to_string();
    assert!(err.contains("bad.toml:3:1") && err.contains("unknown field `colour`"), "{err}");
}

#[test]
fn semantic_errors_are_all_reported_with_positions() {
    let src = std::fs::read_to_string(config_dir().join("demo/event.toml")).unwrap();
    let broken = src
        .replace("time_zone = \"Europe/Paris\"", "time_zone = \"Europe/Pariss\"")
        .replacen("{ point = \"km21\", distance_m = 21097 }", "{ point = \"km55\", distance_m = 21097 }", 1)
        .replacen("scheduled_start = \"2024-08-10T21:00:00\"", "scheduled_start = \"21h00\"", 1);
    let errs = parse_event("demo/event.toml", &broken).unwrap_err();
    let msgs: Vec<String> = errs.0.iter().map(|e| e.to_string()).collect();
    assert_eq!(msgs.len(), 3, "{msgs:#?}");
    assert!(msgs[0].contains("unknown IANA time zone \"Europe/Pariss\""), "{}", msgs[0]);
    let line_of = |needle: &str| broken.lines().position(|l| l.contains(needle)).unwrap() + 1;
    assert!(msgs[1].starts_with(&format!("demo/event.toml:{}:", line_of("km55"))), "{}", msgs[1]);
    assert!(msgs[1].contains("unknown point \"km55\""));
    assert!(msgs[2].starts_with(&format!("demo/event.toml:{}:", line_of("21h00"))), "{}", msgs[2]);
}

const HEADER: &str = "bib,chip,first_name,last_name,gender,birth_date,race,wave,nation,club,division,email";

#[test]
fn participants_import_with_dual_tags_categories_and_divisions() {
    let e = demo();
    let csv = format!(
        "{HEADER}\n\
         1,E001 E001B,Ana,Lopez,F,1990-05-01,marathon,sas1,ESP,Club A,,ana@example.org\n\
         2,E002,Marc,Durand,M,1984-12-31,marathon,sas2,FRA,,,\n\
         3,E003,Lea,Roux,F,2008-12-31,10k,sas1,FRA,,wheelchair,\n"
    );
    let ps = parse_participants("p.csv", &csv, &e).unwrap();
    assert_eq!(ps.len(), 3);
    assert_eq!(ps[0].chips.len(), 2);
    let cat = |i: usize| ps[i].category.map(|c| e.course.categories[c.idx()].code.clone());
    // Ages on 31 December 2024 (FFA): 34 → SE, 40 → M1, 16 → a wheelchair category.
    assert_eq!((ps[0].age, cat(0).as_deref()), (Some(34), Some("SE-F")));
    assert_eq!((ps[1].age, cat(1).as_deref()), (Some(40), Some("M1-M")));
    assert_eq!((ps[2].division.as_str(), cat(2).as_deref()), ("wheelchair", Some("HANDI-FAUTEUIL")));
    assert_eq!(ps[1].gender, Gender::Male);
}

#[test]
fn age_reference_changes_eligibility() {
    // Born 2008-12-31: 15 on race day (2024-08-10), 16 on 31 December 2024.
    let src = std::fs::read_to_string(config_dir().join("demo/event.toml")).unwrap();
    let csv = format!("{HEADER}\n1,E1,A,B,F,2008-12-31,10k,sas1,FRA,,,\n");
    assert!(parse_participants("p.csv", &csv, &parse_event("e", &src).unwrap()).is_ok());
    let race_day = parse_event("e", &src.replace("age_reference = \"dec31\"", "age_reference = \"race_day\"")).unwrap();
    let err = parse_participants("p.csv", &csv, &race_day).unwrap_err().to_string();
    assert!(err.contains("is 15 on 2024-08-10, under the minimum age 16"), "{err}");
}

#[test]
fn a_bad_participant_file_names_every_problem_and_imports_nothing() {
    let e = demo();
    let csv = format!(
        "{HEADER}\n\
         1,E001,Ana,Lopez,F,1990-05-01,marathon,sas1,ESP,,,\n\
         1,E002,Dup,Bib,M,1990-05-01,marathon,sas1,FRA,,,\n\
         3,E001,Same,Chip,M,1990-05-01,marathon,sas1,FRA,,,\n\
         4,E004,Bad,Race,M,1990-05-01,ultra,sas1,FRA,,,\n\
         5,E005,Bad,Wave,M,1990-05-01,marathon,sas9,FRA,,,\n\
         6,E006,Too,Young,F,2010-01-01,marathon,sas1,FRA,,,\n\
         7,E007,Bad,Date,M,31/12/1990,marathon,sas1,FRA,,,\n\
         8,E008,Bad,Gender,Q,1990-01-01,marathon,sas1,FRA,,,\n"
    );
    let errs = parse_participants("people.csv", &csv, &e).unwrap_err();
    let msgs: Vec<String> = errs.0.iter().map(|e| e.to_string()).collect();
    let expect = [
        "people.csv:3:1 (column bib): duplicate bib 1 (first on line 2)",
        "people.csv:4:2 (column chip): chip E001 is on bib 1 (line 2) and bib 3",
        "people.csv:5:7 (column race): unknown race \"ultra\"",
        "people.csv:6:8 (column wave): unknown wave \"sas9\" for race \"marathon\"",
        "people.csv:7:6 (column birth_date): bib 6 is 14 on 2024-12-31, under the minimum age 20 for race \"marathon\"",
        "people.csv:8:6 (column birth_date): unparseable birth date \"31/12/1990\": expected YYYY-MM-DD",
        "people.csv:9:5 (column gender): unknown gender \"Q\": expected M, F or X",
    ];
    for (got, want) in msgs.iter().zip(expect) {
        assert_eq!(got, want);
    }
    assert!(msgs.len() >= expect.len(), "{msgs:#?}");
    let missing = parse_participants("p.csv", "bib,chip,name\n1,2,3\n", &e).unwrap_err().to_string();
    assert!(
        missing.contains("missing column(s) first_name, last_name, gender, birth_date, race, wave, nation, club"),
        "{missing}"
    );
}

#[test]
fn corrections_file() {
    let e = demo();
    let src = r#"
[[correction]]
kind = "gun_time"
race = "marathon"
wave = "sas1"
at = "2024-08-10T21:00:03.2"

[[correction]]
kind = "status"
bib = "12"
status = "DSQ"
reason = "course cut"

[[correction]]
kind = "clock_offset"
point = "finish"
offset_ms = -1500
"#;
    let cs = parse_corrections("c.toml", src, &e).unwrap();
    assert_eq!(cs.len(), 3);
    match &cs[0] {
        Correction::GunTime { at: Some(at), .. } => assert_eq!(units::format_utc(*at), "2024-08-10T19:00:03.200000Z"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(&cs[1], Correction::Status { status: Some(StatusOverride::Dsq), .. }));
    let bad = parse_corrections("c.toml", "[[correction]]\nkind = \"status\"\nbib = \"1\"\nstatus = \"LOST\"\n", &e)
        .unwrap_err()
        .to_string();
    assert!(bad.starts_with("c.toml:1:1") && bad.contains("unknown status \"LOST\""), "{bad}");
}

#[test]
fn edge_files_refuse_secrets_bad_transports_and_unknown_points() {
    let e = demo();
    let good = std::fs::read_to_string(config_dir().join("demo/edge-start.toml")).unwrap();
    let edge = parse_edge("edge-start.toml", &good, &e).unwrap();
    assert_eq!(edge.readers.len(), 2);
    assert_eq!(edge.readers[1].serial.as_ref().unwrap().baud, 19200);
    assert_eq!(edge.devices[0].start_guns.len(), 5);
    assert_eq!(edge.token, edge::TokenSource::Env("RACETIME_EDGE_TOKEN_START".into()));

    let bad = good
        .replace("point = \"start\"", "point = \"km99\"")
        .replace("protocol = \"llrp\"\ntransport = \"tcp\"", "protocol = \"llrp\"\ntransport = \"serial\"")
        .replace("{ channel = 4, waves = [\"10k/sas2\"] }", "{ channel = 4, waves = [\"10k/sas9\"] }");
    let msgs: Vec<String> =
        parse_edge("edge-start.toml", &bad, &e).unwrap_err().0.iter().map(|e| e.to_string()).collect();
    assert!(msgs[0].contains("edge-start.toml:7:") && msgs[0].contains("unknown timing point \"km99\""), "{msgs:#?}");
    assert!(msgs.iter().any(|m| m.contains("protocol llrp does not work over Serial")), "{msgs:#?}");
    assert!(msgs.iter().any(|m| m.contains("a serial reader needs `device`")), "{msgs:#?}");
    assert!(msgs.iter().any(|m| m.contains("start_guns wave \"10k/sas9\"")), "{msgs:#?}");

    let secret = good.replace("token_env = \"RACETIME_EDGE_TOKEN_START\"", "token = \"hunter2\"");
    let msg = parse_edge("edge-start.toml", &secret, &e).unwrap_err().to_string();
    assert!(msg.contains("unknown field `token`"), "{msg}");
}

#[test]
fn decoder_start_triggers_name_waves_of_the_event_and_need_a_decoder_that_reports_them() {
    let e = demo();
    let km35 = std::fs::read_to_string(config_dir().join("demo/edge-km35.toml")).unwrap();
    let with = km35.replace(
        "transport = \"listen\"",
        "transport = \"listen\"\ngun_waves = [\"marathon/sas1\", \"marathon/sas2\"]",
    );
    let edge = parse_edge("edge-km35.toml", &with, &e).unwrap();
    assert_eq!(
        edge.readers[0].gun_waves,
        vec![("marathon".to_string(), "sas1".to_string()), ("marathon".to_string(), "sas2".to_string())]
    );
    let unknown = km35.replace("transport = \"listen\"", "transport = \"listen\"\ngun_waves = [\"marathon/sas9\"]");
    let msg = parse_edge("edge-km35.toml", &unknown, &e).unwrap_err().to_string();
    assert!(msg.contains("gun_waves entry \"marathon/sas9\" is not a race/wave"), "{msg}");
    let start = std::fs::read_to_string(config_dir().join("demo/edge-start.toml")).unwrap();
    let llrp = start.replacen("protocol = \"llrp\"", "protocol = \"llrp\"\ngun_waves = [\"marathon/sas1\"]", 1);
    let msg = parse_edge("edge-start.toml", &llrp, &e).unwrap_err().to_string();
    assert!(msg.contains("gun_waves need a decoder that reports its start trigger"), "{msg}");
}
