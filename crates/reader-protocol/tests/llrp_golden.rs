//! Golden tests of the LLRP codec against frames it did not produce.
//!
//! Fixtures live in `test_data/llrp/` (see its README for provenance):
//! - `llrp_rs_*`: verbatim frames from a real reader and a real client (mchesser/llrp-rs tests);
//! - `spec_*`: frames hand-assembled from the LLRP 1.0.1 layout;
//! - `sllurp_*`: frames produced by sllurp's own encoder (`tests/interop/llrp_frames.py`);
//! - `ours_*`: frames our encoder produces, kept byte-stable here and decoded by sllurp in the
//!   interop script. Set `LLRP_BLESS=1` to rewrite them after a deliberate encoder change.

use std::path::PathBuf;

use reader_protocol::rfid::llrp::{
    self, AiSpecStopTrigger, AntennaEvent, Body, C1G2EpcMemorySelector, C1G2InventoryCommand, C1G2RfControl,
    C1G2SingulationControl, ContentSelector, Epc, EventNotificationState, EventTimestamp, Identification,
    KeepaliveSpec, LlrpStatus, Message, ReaderCapabilities, ReaderConfig, ReaderConfigResponse,
    ReaderEventNotificationData, RfTransmitter, RoReportSpec, RoSpecEvent, RoSpecStartTrigger, RoSpecStopTrigger,
    TagObservationTrigger, TagReportData, connection_attempt, event_type, status_code,
};
use reader_protocol::{ReaderTime, TagRead};
use timing_core::{Rssi, Timestamp};

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test_data/llrp").join(name)
}

/// The bytes of a fixture: hex pairs, `#` lines are comments.
fn fixture(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(path(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"));
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(str::split_whitespace)
        .map(|b| u8::from_str_radix(b, 16).unwrap_or_else(|e| panic!("{name}: bad hex {b:?}: {e}")))
        .collect()
}

/// Decodes a fixture as exactly one message and checks that re-encoding gives the same bytes.
#[track_caller]
fn decode_fixture(name: &str) -> Message {
    let bytes = fixture(name);
    let mut buf = bytes.clone();
    let m = llrp::decode(&mut buf).unwrap_or_else(|e| panic!("{name}: {e}")).expect("whole message");
    assert!(buf.is_empty(), "{name}: {} bytes left over", buf.len());
    let mut out = Vec::new();
    llrp::encode(&m, &mut out).unwrap();
    assert_eq!(out, bytes, "{name}: re-encoding differs");
    m
}

#[track_caller]
fn check(name: &str, want: Message) {
    assert_eq!(decode_fixture(name), want, "{name}");
}

// ---------------------------------------------------------------------------------------------
// Verbatim llrp-rs frames

#[test]
fn llrp_rs_reader_event_notification_from_a_reader() {
    let m = decode_fixture("llrp_rs_reader_event_notification.hex");
    let mut data = ReaderEventNotificationData::at(EventTimestamp::Utc(1_557_458_516_414_125));
    data.connection_attempt = Some(connection_attempt::SUCCESS);
    assert_eq!(m, Message::new(0x3afb_30a7, Body::ReaderEventNotification(data)));
    // 1557458516414125 us is 2019-05-10 03:21:56.414125 UTC, as the capture notes say.
    let t = chrono::DateTime::from_timestamp_micros(1_557_458_516_414_125).unwrap();
    assert_eq!(t.to_rfc3339(), "2019-05-10T03:21:56.414125+00:00");
}

#[test]
fn llrp_rs_add_rospec() {
    let Body::AddRoSpec(spec) = decode_fixture("llrp_rs_add_rospec.hex").body else {
        panic!("not an ADD_ROSPEC");
    };
    assert_eq!((spec.rospec_id, spec.priority, spec.current_state), (1, 0, 0));
    assert_eq!(spec.start_trigger, RoSpecStartTrigger::of_type(RoSpecStartTrigger::IMMEDIATE));
    assert_eq!(
        spec.stop_trigger,
        RoSpecStopTrigger { trigger_type: RoSpecStopTrigger::DURATION, duration_ms: 3000, gpi: None }
    );
    assert_eq!(spec.ai_specs.len(), 1);
    let ai = &spec.ai_specs[0];
    assert_eq!(ai.antenna_ids, vec![1]);
    assert_eq!(ai.stop_trigger, AiSpecStopTrigger::null());
    let ips = &ai.inventory_parameter_specs[0];
    assert_eq!((ips.spec_id, ips.protocol_id), (1234, 1));
    let ant = &ips.antenna_configurations[0];
    assert_eq!(ant.antenna_id, 1);
    assert_eq!(
        ant.inventory_commands,
        vec![C1G2InventoryCommand {
            tag_inventory_state_aware: false,
            rf_control: Some(C1G2RfControl { mode_index: 0, tari_ns: 0 }),
            singulation: Some(C1G2SingulationControl { session: 1, tag_population: 1, tag_transit_time_ms: 0 }),
        }]
    );
    assert_eq!(spec.report_spec, None);
}

// ---------------------------------------------------------------------------------------------
// Frames hand-assembled from the spec layout

#[test]
fn spec_bare_messages() {
    check("spec_keepalive.hex", Message::new(0, Body::Keepalive));
    check("spec_keepalive_ack.hex", Message::new(0, Body::KeepaliveAck));
    check("spec_enable_rospec.hex", Message::new(101, Body::EnableRoSpec { rospec_id: 1 }));
    check("spec_start_rospec.hex", Message::new(102, Body::StartRoSpec { rospec_id: 1 }));
    check(
        "spec_set_reader_config_keepalive.hex",
        Message::new(
            202,
            Body::SetReaderConfig {
                reset_to_factory_default: false,
                config: ReaderConfig { keepalive: Some(KeepaliveSpec::periodic(2000)), ..ReaderConfig::default() },
            },
        ),
    );
}

#[test]
fn spec_race_add_rospec() {
    let Body::AddRoSpec(spec) = decode_fixture("spec_add_rospec_race.hex").body else {
        panic!("not an ADD_ROSPEC");
    };
    assert_eq!(spec.stop_trigger, RoSpecStopTrigger::null());
    assert_eq!(spec.ai_specs[0].antenna_ids, vec![0], "all antennas");
    assert_eq!(
        spec.report_spec,
        Some(RoReportSpec {
            trigger: RoReportSpec::TRIGGER_N_TAGS_OR_END_OF_AI_SPEC,
            n: 1,
            content: ContentSelector::TIMING,
            epc_memory_selector: None,
        })
    );
}

#[test]
fn spec_ro_access_report_with_one_epc96_tag() {
    let m = decode_fixture("spec_ro_access_report_epc96.hex");
    let reads: Vec<TagRead> = m.tag_reads().collect();
    assert_eq!(
        reads,
        vec![TagRead {
            chip: "E2001018860B01290700D0D8".into(),
            time: ReaderTime::Utc(Timestamp::from_micros(1_717_320_000_123_456)),
            antenna: Some(2),
            rssi: Some(Rssi(-580)),
            passing_no: None,
            session: None,
            hits: Some(3),
        }]
    );
}

#[test]
fn fixtures_concatenated_decode_as_a_stream() {
    let names = [
        "llrp_rs_reader_event_notification.hex",
        "spec_ro_access_report_epc96.hex",
        "spec_keepalive.hex",
        "sllurp_add_rospec_vendor.hex",
        "spec_ro_access_report_epc96.hex",
    ];
    let mut stream: Vec<u8> = names.iter().flat_map(|n| fixture(n)).collect();
    let mut types = Vec::new();
    // Feed in 7-byte pieces, as a slow socket would.
    let mut buf = Vec::new();
    for piece in std::mem::take(&mut stream).chunks(7) {
        buf.extend_from_slice(piece);
        while let Some(m) = llrp::decode(&mut buf).unwrap() {
            types.push(m.msg_type());
        }
    }
    assert!(buf.is_empty());
    assert_eq!(types, vec![63, 61, 62, 20, 61]);
}

// ---------------------------------------------------------------------------------------------
// Frames encoded by sllurp 3.0.5

#[test]
fn sllurp_simple_requests() {
    check("sllurp_get_reader_capabilities.hex", Message::new(1, Body::GetReaderCapabilities { requested_data: 0 }));
    check(
        "sllurp_get_reader_config.hex",
        Message::new(2, Body::GetReaderConfig { antenna_id: 0, requested_data: 0, gpi_port: 0, gpo_port: 0 }),
    );
    check("sllurp_enable_rospec.hex", Message::new(8, Body::EnableRoSpec { rospec_id: 1 }));
    check("sllurp_start_rospec.hex", Message::new(9, Body::StartRoSpec { rospec_id: 1 }));
    check("sllurp_stop_rospec.hex", Message::new(10, Body::StopRoSpec { rospec_id: 1 }));
    check("sllurp_disable_rospec_all.hex", Message::new(11, Body::DisableRoSpec { rospec_id: 0 }));
    check("sllurp_delete_rospec_all.hex", Message::new(12, Body::DeleteRoSpec { rospec_id: 0 }));
    check("sllurp_enable_events_and_reports.hex", Message::new(13, Body::EnableEventsAndReports));
    check("sllurp_keepalive_ack.hex", Message::new(14, Body::KeepaliveAck));
    check("sllurp_close_connection.hex", Message::new(15, Body::CloseConnection));
}

#[test]
fn sllurp_get_reader_config_swaps_antenna_and_requested_data() {
    // sllurp was asked for AntennaID 1, RequestedData 8 but packs RequestedData first; read by
    // the spec's field order the frame says antenna 0x0800, data 1. Harmless in practice:
    // sllurp's client only ever sends all-zero fields (see `sllurp_simple_requests`).
    check(
        "sllurp_get_reader_config_antenna1_keepalive.hex",
        Message::new(3, Body::GetReaderConfig { antenna_id: 0x0800, requested_data: 1, gpi_port: 0, gpo_port: 0 }),
    );
}

#[test]
fn sllurp_set_reader_config() {
    let states = (0..=8)
        .map(|t| EventNotificationState { event_type: t, enabled: t == event_type::ROSPEC || t == event_type::ANTENNA })
        .collect();
    check(
        "sllurp_set_reader_config.hex",
        Message::new(
            4,
            Body::SetReaderConfig {
                reset_to_factory_default: false,
                config: ReaderConfig {
                    event_notifications: Some(states),
                    keepalive: Some(KeepaliveSpec::periodic(10_000)),
                    ..ReaderConfig::default()
                },
            },
        ),
    );
    check(
        "sllurp_set_reader_config_factory_reset.hex",
        Message::new(5, Body::SetReaderConfig { reset_to_factory_default: true, config: ReaderConfig::default() }),
    );
}

#[test]
fn sllurp_timing_add_rospec() {
    let Body::AddRoSpec(spec) = decode_fixture("sllurp_add_rospec_timing.hex").body else {
        panic!("not an ADD_ROSPEC");
    };
    assert_eq!(spec.rospec_id, 1);
    assert_eq!(spec.start_trigger.trigger_type, RoSpecStartTrigger::IMMEDIATE);
    assert_eq!(spec.stop_trigger, RoSpecStopTrigger::null());
    let ai = &spec.ai_specs[0];
    assert_eq!(ai.antenna_ids, vec![1, 2]);
    // sllurp reports "every N tags" by ending the AISpec after N tags, not through ROReportSpec.N.
    assert_eq!(
        ai.stop_trigger,
        AiSpecStopTrigger {
            trigger_type: AiSpecStopTrigger::TAG_OBSERVATION,
            duration_ms: 0,
            gpi: None,
            tag_observation: Some(TagObservationTrigger {
                trigger_type: 0,
                number_of_tags: 1,
                number_of_attempts: 0,
                t_ms: 0,
                timeout_ms: 0
            }),
        }
    );
    let ants = &ai.inventory_parameter_specs[0].antenna_configurations;
    assert_eq!(ants.iter().map(|a| a.antenna_id).collect::<Vec<_>>(), vec![1, 2]);
    for a in ants {
        assert_eq!(a.transmitter, Some(RfTransmitter { hop_table_id: 1, channel_index: 1, transmit_power: 81 }));
        assert_eq!(
            a.inventory_commands,
            vec![C1G2InventoryCommand {
                tag_inventory_state_aware: false,
                rf_control: Some(C1G2RfControl { mode_index: 1000, tari_ns: 0 }),
                singulation: Some(C1G2SingulationControl { session: 2, tag_population: 32, tag_transit_time_ms: 0 }),
            }]
        );
    }
    assert_eq!(
        spec.report_spec,
        Some(RoReportSpec {
            trigger: RoReportSpec::TRIGGER_N_TAGS_OR_END_OF_AI_SPEC,
            n: 0,
            content: ContentSelector::TIMING,
            epc_memory_selector: Some(C1G2EpcMemorySelector { crc: false, pc_bits: false }),
        })
    );
}

#[test]
fn sllurp_vendor_parameters_are_skipped() {
    let bytes = fixture("sllurp_add_rospec_vendor.hex");
    let mut buf = bytes.clone();
    let m = llrp::decode(&mut buf).unwrap().unwrap();
    let Body::AddRoSpec(spec) = &m.body else { panic!("not an ADD_ROSPEC") };
    assert_eq!(spec.rospec_id, 7);
    assert_eq!(spec.stop_trigger.duration_ms, 2500);
    assert_eq!(spec.ai_specs[0].stop_trigger.trigger_type, AiSpecStopTrigger::DURATION);
    let cmd = &spec.ai_specs[0].inventory_parameter_specs[0].antenna_configurations[0].inventory_commands[0];
    assert_eq!(cmd.singulation.map(|s| (s.session, s.tag_population)), Some((2, 4)));
    // sllurp's default selector: ROSpecID, AntennaID, PeakRSSI, LastSeenTimestamp, TagSeenCount.
    let content = spec.report_spec.as_ref().unwrap().content;
    assert_eq!(content.0, 0x9580);
    assert!(!content.contains(ContentSelector::FIRST_SEEN_TIMESTAMP));
    // The C1G2Filter and the three Impinj Custom parameters are dropped on re-encoding.
    let mut out = Vec::new();
    llrp::encode(&m, &mut out).unwrap();
    assert!(out.len() < bytes.len(), "{} !< {}", out.len(), bytes.len());
    assert_eq!(llrp::decode(&mut out).unwrap().unwrap(), m);
}

#[test]
fn sllurp_reader_event_notification() {
    let mut data = ReaderEventNotificationData::at(EventTimestamp::Utc(1_717_320_000_123_456));
    data.connection_attempt = Some(connection_attempt::SUCCESS);
    check("sllurp_reader_event_notification.hex", Message::new(16, Body::ReaderEventNotification(data)));
}

// ---------------------------------------------------------------------------------------------
// Our reader-side frames, decoded by sllurp in tests/interop/llrp_frames.py

fn ours() -> Vec<(&'static str, Message)> {
    let mut tag0 =
        TagReportData::new(Epc::Epc96([0xe2, 0x00, 0x10, 0x18, 0x86, 0x0b, 0x01, 0x29, 0x07, 0x00, 0xd0, 0xd8]));
    tag0.rospec_id = Some(1);
    tag0.antenna_id = Some(2);
    tag0.peak_rssi_dbm = Some(-58);
    tag0.first_seen_utc_us = Some(1_717_320_000_123_456);
    tag0.last_seen_utc_us = Some(1_717_320_000_456_789);
    tag0.tag_seen_count = Some(3);
    let mut tag1 = TagReportData::new(Epc::Bits {
        bit_len: 128,
        bytes: vec![0x30, 0x08, 0x33, 0xb2, 0xdd, 0xd9, 0x01, 0x40, 0x00, 0x00, 0x00, 0x00, 0xab, 0xcd, 0x00, 0x01],
    });
    tag1.antenna_id = Some(1);
    tag1.peak_rssi_dbm = Some(-71);
    tag1.first_seen_utc_us = Some(1_717_320_000_200_000);
    tag1.tag_seen_count = Some(1);

    let mut connected = ReaderEventNotificationData::at(EventTimestamp::Utc(1_717_320_000_000_000));
    connected.connection_attempt = Some(connection_attempt::SUCCESS);
    let mut events = ReaderEventNotificationData::at(EventTimestamp::Utc(1_717_320_000_100_000));
    events.rospec_event = Some(RoSpecEvent { event_type: 0, rospec_id: 1, preempting_rospec_id: 0 });
    events.antenna_event = Some(AntennaEvent { event_type: 1, antenna_id: 2 });

    let config = ReaderConfigResponse {
        status: LlrpStatus::success(),
        identification: Some(Identification {
            id_type: 0,
            reader_id: vec![0, 0x16, 0x25, 0x12, 0x34, 0x56, 0x78, 0x9a],
        }),
        config: ReaderConfig {
            event_notifications: Some(vec![EventNotificationState { event_type: event_type::ROSPEC, enabled: true }]),
            antenna_configurations: vec![],
            ro_report_spec: Some(RoReportSpec::every_tag()),
            keepalive: Some(KeepaliveSpec::periodic(10_000)),
            hold_events_and_reports: Some(false),
        },
    };
    vec![
        ("ours_ro_access_report.hex", Message::new(21, Body::RoAccessReport(vec![tag0, tag1]))),
        ("ours_reader_event_notification_connected.hex", Message::new(0, Body::ReaderEventNotification(connected))),
        ("ours_reader_event_notification_rospec_antenna.hex", Message::new(0, Body::ReaderEventNotification(events))),
        (
            "ours_get_reader_capabilities_response.hex",
            Message::new(
                1,
                Body::GetReaderCapabilitiesResponse(Box::new(ReaderCapabilities::minimal(4, "racetime 0.0.0"))),
            ),
        ),
        ("ours_get_reader_config_response.hex", Message::new(2, Body::GetReaderConfigResponse(Box::new(config)))),
        ("ours_set_reader_config_response.hex", Message::new(4, Body::SetReaderConfigResponse(LlrpStatus::success()))),
        ("ours_add_rospec_response.hex", Message::new(6, Body::AddRoSpecResponse(LlrpStatus::success()))),
        ("ours_enable_rospec_response.hex", Message::new(8, Body::EnableRoSpecResponse(LlrpStatus::success()))),
        ("ours_delete_rospec_response.hex", Message::new(12, Body::DeleteRoSpecResponse(LlrpStatus::success()))),
        ("ours_close_connection_response.hex", Message::new(15, Body::CloseConnectionResponse(LlrpStatus::success()))),
        (
            "ours_error_message.hex",
            Message {
                version: llrp::VERSION_1_1,
                id: 30,
                body: Body::ErrorMessage(LlrpStatus::error(
                    status_code::M_UNSUPPORTED_VERSION,
                    "unsupported version 2",
                )),
            },
        ),
        ("ours_keepalive.hex", Message::new(77, Body::Keepalive)),
    ]
}

fn to_fixture_text(name: &str, m: &Message, bytes: &[u8]) -> String {
    let mut s = format!(
        "# source: racetime reader-protocol llrp::encode, written by tests/llrp_golden.rs (LLRP_BLESS=1)\n\
         # decoded by sllurp in tests/interop/llrp_frames.py\n# {name}: {:?} id {}\n",
        m.body.msg_type(),
        m.id
    );
    for line in bytes.chunks(16) {
        let hex: Vec<String> = line.iter().map(|b| format!("{b:02x}")).collect();
        s.push_str(&hex.join(" "));
        s.push('\n');
    }
    s
}

#[test]
fn our_reader_frames_are_byte_stable() {
    let bless = std::env::var_os("LLRP_BLESS").is_some();
    for (name, m) in ours() {
        let mut bytes = Vec::new();
        llrp::encode(&m, &mut bytes).unwrap();
        if bless {
            std::fs::write(path(name), to_fixture_text(name, &m, &bytes)).unwrap();
        }
        assert_eq!(bytes, fixture(name), "{name}: encoder output changed; rerun the sllurp check");
        assert_eq!(decode_fixture(name), m, "{name}");
    }
}
