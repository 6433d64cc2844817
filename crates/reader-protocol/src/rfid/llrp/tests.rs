//! Unit and property tests of the LLRP codec. Golden frames from outside (spec layout, llrp-rs,
//! sllurp) live in `tests/llrp_golden.rs`.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::*;
use crate::{DecodeError, ReaderTime, TagRead};

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits.chunks(2).map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap()).collect()
}

fn encoded(m: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    encode(m, &mut out).unwrap();
    out
}

/// Decodes `bytes` as exactly one message.
#[track_caller]
fn decode_one(bytes: &[u8]) -> Message {
    let mut buf = bytes.to_vec();
    let m = decode(&mut buf).unwrap().expect("a whole message");
    assert!(buf.is_empty(), "left over: {}", crate::hex_preview(&buf));
    m
}

/// Decodes every message of `buf`, as a read loop would.
fn decode_all(buf: &mut Vec<u8>) -> Vec<Result<Message, DecodeError>> {
    let mut out = Vec::new();
    loop {
        match decode(buf) {
            Ok(Some(m)) => out.push(Ok(m)),
            Ok(None) => return out,
            Err(e) => out.push(Err(e)),
        }
    }
}

fn one_tag_report() -> Message {
    let mut t =
        TagReportData::new(Epc::Epc96([0xe2, 0x00, 0x10, 0x18, 0x86, 0x0b, 0x01, 0x29, 0x07, 0x00, 0xd0, 0xd8]));
    t.antenna_id = Some(2);
    t.peak_rssi_dbm = Some(-58);
    t.first_seen_utc_us = Some(1_717_320_000_123_456);
    t.tag_seen_count = Some(3);
    Message::new(0, Body::RoAccessReport(vec![t]))
}

#[test]
fn keepalive_is_a_bare_header() {
    let bytes = encoded(&Message::new(7, Body::Keepalive));
    assert_eq!(bytes, hex("04 3e 00 00 00 0a 00 00 00 07"));
    assert_eq!(decode_one(&bytes), Message::new(7, Body::Keepalive));
}

#[test]
fn partial_header_and_partial_body_need_more() {
    let bytes = encoded(&one_tag_report());
    for cut in 0..bytes.len() {
        let mut buf = bytes[..cut].to_vec();
        assert_eq!(decode(&mut buf), Ok(None), "cut at {cut}");
        assert_eq!(buf.len(), cut, "nothing consumed at cut {cut}");
    }
}

#[test]
fn tag_report_becomes_a_tag_read() {
    let reads: Vec<TagRead> = one_tag_report().tag_reads().collect();
    assert_eq!(
        reads,
        vec![TagRead {
            chip: "E2001018860B01290700D0D8".to_string(),
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
fn tag_read_falls_back_to_last_seen_and_needs_utc() {
    let mut t = TagReportData::new(Epc::Bits { bit_len: 12, bytes: vec![0xab, 0xc0] });
    t.last_seen_utc_us = Some(5);
    let read = t.to_tag_read().unwrap();
    assert_eq!(read.time, ReaderTime::Utc(Timestamp::from_micros(5)));
    assert_eq!(read.chip, "ABC0");
    assert_eq!((read.rssi, read.hits, read.antenna), (None, None, None));

    t.last_seen_utc_us = None;
    t.first_seen_uptime_us = Some(5);
    assert_eq!(t.to_tag_read(), None, "uptime alone has no UTC anchor");
    t.first_seen_utc_us = Some(u64::MAX);
    assert_eq!(t.to_tag_read(), None, "past i64 microseconds");
}

#[test]
fn impossible_headers_desync_and_clear_the_buffer() {
    let cases = [
        ("00 3e 00 00 00 0a 00 00 00 00", "unsupported version 0"),
        ("0c 3e 00 00 00 0a 00 00 00 00", "unsupported version 3"),
        ("24 3e 00 00 00 0a 00 00 00 00", "reserved header bits"),
        ("04 3e 00 00 00 09 00 00 00 00", "message length 9 under"),
        ("04 3e 00 10 00 01 00 00 00 00", "message length 1048577 over"),
    ];
    for (frame, why) in cases {
        let mut buf = hex(frame);
        buf.extend(encoded(&Message::new(1, Body::Keepalive)));
        let err = decode(&mut buf).unwrap_err();
        assert!(err.is_fatal(), "{frame}: {err}");
        assert!(err.to_string().contains(why), "{frame}: {err}");
        assert!(buf.is_empty(), "{frame}: buffer cleared");
    }
}

#[test]
fn desync_is_detected_before_a_whole_header_arrives() {
    // A huge length is refused from its first 6 bytes rather than waited for.
    let mut buf = hex("04 3d 7f ff ff ff");
    let err = decode(&mut buf).unwrap_err();
    assert!(matches!(err, DecodeError::Desync { .. }), "{err}");
    let mut buf = hex("e0");
    assert_eq!(decode(&mut buf), Ok(None), "one byte cannot be judged");
    let mut buf = hex("e0 00");
    assert!(decode(&mut buf).unwrap_err().is_fatal());
}

#[test]
fn malformed_body_consumes_only_its_message() {
    // ENABLE_ROSPEC with a 2-byte body (the ROSpecID needs 4), then a good KEEPALIVE.
    let mut buf = hex("04 18 00 00 00 0c 00 00 00 65 00 01");
    buf.extend(encoded(&Message::new(9, Body::Keepalive)));
    let err = decode(&mut buf).unwrap_err();
    assert!(!err.is_fatal());
    let text = err.to_string();
    assert!(text.contains("message type 24 id 101"), "{text}");
    assert!(text.contains("truncated rospec id: need 4 bytes, 2 left"), "{text}");
    assert_eq!(decode(&mut buf), Ok(Some(Message::new(9, Body::Keepalive))));
    assert!(buf.is_empty());
}

#[test]
fn tlv_overrunning_its_message_is_malformed() {
    // RO_ACCESS_REPORT whose TagReportData claims 0x22 bytes but only 4 follow.
    let mut buf = hex("04 3d 00 00 00 0e 00 00 00 00 00 f0 00 22");
    let err = decode(&mut buf).unwrap_err();
    assert!(err.to_string().contains("tlv parameter 240 length 34 over the 4 bytes left"), "{err}");
    assert!(buf.is_empty());
}

#[test]
fn missing_required_parameters_are_named() {
    // ADD_ROSPEC_RESPONSE without its LLRPStatus.
    let err = decode(&mut hex("04 1e 00 00 00 0a 00 00 00 03")).unwrap_err();
    assert!(err.to_string().contains("ADD_ROSPEC_RESPONSE is missing its LLRPStatus"), "{err}");
    // TagReportData without an EPC (only AntennaID).
    let err = decode(&mut hex("04 3d 00 00 00 11 00 00 00 00 00 f0 00 07 81 00 01")).unwrap_err();
    assert!(err.to_string().contains("TagReportData is missing its EPC-96 or EPCData"), "{err}");
}

#[test]
fn unknown_tv_parameter_cannot_be_skipped() {
    // TagReportData with an EPC-96 then TV type 100.
    let mut frame = hex("04 3d 00 00 00 00 00 00 00 00 00 f0 00 13");
    frame.extend(hex("8d 00 00 00 00 00 00 00 00 00 00 00 01 e4 00 00"));
    let len = frame.len() as u8;
    frame[5] = len;
    frame[13] = len - 10;
    let err = decode(&mut frame).unwrap_err();
    assert!(err.to_string().contains("unknown tv parameter type 100"), "{err}");
}

#[test]
fn unknown_and_custom_tlv_parameters_are_skipped() {
    // TagReportData: Custom(1023, vendor 25882 subtype 1, 2 value bytes), EPC-96, an unknown
    // TLV 900, then AntennaID 3. Only the modelled fields remain.
    let mut tlv = hex("03 ff 00 0e 00 00 65 1a 00 00 00 01 ab cd");
    tlv.extend(hex("8d 30 00 00 00 00 00 00 00 00 00 00 2a"));
    tlv.extend(hex("03 84 00 06 ff ff"));
    tlv.extend(hex("81 00 03"));
    let mut frame = hex("04 3d 00 00 00 00 00 00 00 05 00 f0 00 00");
    frame.extend(&tlv);
    let total = frame.len();
    frame[2..6].copy_from_slice(&(total as u32).to_be_bytes());
    frame[12..14].copy_from_slice(&((tlv.len() + 4) as u16).to_be_bytes());
    let m = decode_one(&frame);
    let mut want = TagReportData::new(Epc::Epc96([0x30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x2a]));
    want.antenna_id = Some(3);
    assert_eq!(m, Message::new(5, Body::RoAccessReport(vec![want])));
}

#[test]
fn unknown_message_types_are_kept_raw() {
    // GET_REPORT (60) with no body, and a CUSTOM_MESSAGE (1023) with vendor bytes.
    let m = decode_one(&hex("04 3c 00 00 00 0a 00 00 00 2a"));
    assert_eq!(m, Message::new(42, Body::Unknown { msg_type: 60, body: vec![] }));
    let m = decode_one(&hex("07 ff 00 00 00 0f 00 00 00 01 00 00 65 1a 15"));
    assert_eq!(m, Message::new(1, Body::Unknown { msg_type: 1023, body: hex("00 00 65 1a 15") }));
    assert_eq!(encoded(&m), hex("07 ff 00 00 00 0f 00 00 00 01 00 00 65 1a 15"));
}

#[test]
fn llrp_1_1_version_is_kept() {
    let m = Message { version: VERSION_1_1, id: 3, body: Body::KeepaliveAck };
    let bytes = encoded(&m);
    assert_eq!(bytes, hex("08 48 00 00 00 0a 00 00 00 03"));
    assert_eq!(decode_one(&bytes), m);
}

#[test]
fn encode_refuses_what_it_cannot_frame() {
    let mut out = vec![0xaa];
    let bad_version = Message { version: 5, id: 0, body: Body::Keepalive };
    assert_eq!(encode(&bad_version, &mut out), Err(EncodeError::Version(5)));
    let bad_type = Message::new(0, Body::Unknown { msg_type: 2000, body: vec![] });
    assert_eq!(encode(&bad_type, &mut out), Err(EncodeError::MessageType(2000)));
    let bad_epc =
        Message::new(0, Body::RoAccessReport(vec![TagReportData::new(Epc::Bits { bit_len: 16, bytes: vec![1] })]));
    assert_eq!(encode(&bad_epc, &mut out), Err(EncodeError::EpcLength { bit_len: 16, n_bytes: 1 }));
    let long_text = Message::new(0, Body::ErrorMessage(LlrpStatus::error(1, "x".repeat(70_000))));
    let err = encode(&long_text, &mut out).unwrap_err();
    assert!(matches!(err, EncodeError::FieldTooLong { field: "llrp status description", len: 70_000 }), "{err}");
    let huge = Message::new(0, Body::RoAccessReport(vec![TagReportData::new(Epc::Epc96([0; 12])); 70_000]));
    assert_eq!(
        encode(&huge, &mut out),
        Err(EncodeError::MessageTooLong { len: 10 + 70_000 * 17, limit: MAX_MESSAGE_LEN })
    );
    assert_eq!(out, vec![0xaa], "nothing appended on error");
}

#[test]
fn status_helpers() {
    let ok = Body::AddRoSpecResponse(LlrpStatus::success());
    assert!(ok.status().unwrap().is_success());
    let err = Body::ErrorMessage(LlrpStatus::error(status_code::M_UNSUPPORTED_VERSION, "v2"));
    assert!(!err.status().unwrap().is_success());
    assert_eq!(Body::Keepalive.status(), None);
    assert!(ContentSelector::TIMING.contains(ContentSelector::PEAK_RSSI));
    assert_eq!(ContentSelector::TIMING.0, 0x1680);
}

// ---------------------------------------------------------------------------------------------
// Property tests

fn short_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _é€-]{0,16}"
}

fn field_error() -> impl Strategy<Value = FieldError> {
    (any::<u16>(), any::<u16>()).prop_map(|(field_num, error_code)| FieldError { field_num, error_code })
}

fn status() -> impl Strategy<Value = LlrpStatus> {
    (
        any::<u16>(),
        short_text(),
        option::of(field_error()),
        option::of((any::<u16>(), any::<u16>(), option::of(field_error()))),
    )
        .prop_map(|(code, description, field_error, pe)| LlrpStatus {
            code,
            description,
            field_error,
            parameter_error: pe.map(|(parameter_type, error_code, field_error)| ParameterError {
                parameter_type,
                error_code,
                field_error,
            }),
        })
}

fn epc() -> impl Strategy<Value = Epc> {
    prop_oneof![
        3 => any::<[u8; 12]>().prop_map(Epc::Epc96),
        1 => (0u16..160).prop_flat_map(|bit_len| {
            vec(any::<u8>(), usize::from(bit_len).div_ceil(8))
                .prop_map(move |bytes| Epc::Bits { bit_len, bytes })
        }),
    ]
}

fn tag_report() -> impl Strategy<Value = TagReportData> {
    (
        epc(),
        (option::of(any::<u32>()), option::of(any::<u16>()), option::of(any::<u16>())),
        (option::of(any::<u16>()), option::of(any::<i8>()), option::of(any::<u16>())),
        (option::of(any::<u64>()), option::of(any::<u64>()), option::of(any::<u64>()), option::of(any::<u64>())),
        (option::of(any::<u16>()), option::of(any::<u16>()), option::of(any::<u16>())),
        option::of(any::<u32>()),
    )
        .prop_map(|(epc, a, b, c, d, access_spec_id)| TagReportData {
            epc,
            rospec_id: a.0,
            spec_index: a.1,
            inventory_parameter_spec_id: a.2,
            antenna_id: b.0,
            peak_rssi_dbm: b.1,
            channel_index: b.2,
            first_seen_utc_us: c.0,
            first_seen_uptime_us: c.1,
            last_seen_utc_us: c.2,
            last_seen_uptime_us: c.3,
            tag_seen_count: d.0,
            c1g2_pc: d.1,
            c1g2_crc: d.2,
            access_spec_id,
        })
}

fn gpi() -> impl Strategy<Value = GpiTriggerValue> {
    (any::<u16>(), any::<bool>(), any::<u32>()).prop_map(|(port, event, timeout_ms)| GpiTriggerValue {
        port,
        event,
        timeout_ms,
    })
}

fn report_spec() -> impl Strategy<Value = RoReportSpec> {
    (any::<u8>(), any::<u16>(), any::<u16>(), option::of((any::<bool>(), any::<bool>()))).prop_map(
        |(trigger, n, bits, epc)| RoReportSpec {
            trigger,
            n,
            content: ContentSelector(bits),
            epc_memory_selector: epc.map(|(crc, pc_bits)| C1G2EpcMemorySelector { crc, pc_bits }),
        },
    )
}

fn antenna_configuration() -> impl Strategy<Value = AntennaConfiguration> {
    let command =
        (any::<bool>(), option::of((any::<u16>(), any::<u16>())), option::of((0u8..4, any::<u16>(), any::<u32>())))
            .prop_map(|(tag_inventory_state_aware, rf, sing)| C1G2InventoryCommand {
                tag_inventory_state_aware,
                rf_control: rf.map(|(mode_index, tari_ns)| C1G2RfControl { mode_index, tari_ns }),
                singulation: sing.map(|(session, tag_population, tag_transit_time_ms)| C1G2SingulationControl {
                    session,
                    tag_population,
                    tag_transit_time_ms,
                }),
            });
    (any::<u16>(), option::of(any::<u16>()), option::of((any::<u16>(), any::<u16>(), any::<u16>())), vec(command, 0..2))
        .prop_map(|(antenna_id, receiver_sensitivity, tx, inventory_commands)| AntennaConfiguration {
            antenna_id,
            receiver_sensitivity,
            transmitter: tx.map(|(hop_table_id, channel_index, transmit_power)| RfTransmitter {
                hop_table_id,
                channel_index,
                transmit_power,
            }),
            inventory_commands,
        })
}

fn ai_spec() -> impl Strategy<Value = AiSpec> {
    let stop = (
        any::<u8>(),
        any::<u32>(),
        option::of(gpi()),
        option::of((any::<u8>(), any::<u16>(), any::<u16>(), any::<u16>(), any::<u32>())),
    )
        .prop_map(|(trigger_type, duration_ms, gpi, obs)| AiSpecStopTrigger {
            trigger_type,
            duration_ms,
            gpi,
            tag_observation: obs.map(|(trigger_type, number_of_tags, number_of_attempts, t_ms, timeout_ms)| {
                TagObservationTrigger { trigger_type, number_of_tags, number_of_attempts, t_ms, timeout_ms }
            }),
        });
    let ips = (any::<u16>(), any::<u8>(), vec(antenna_configuration(), 0..3)).prop_map(
        |(spec_id, protocol_id, antenna_configurations)| InventoryParameterSpec {
            spec_id,
            protocol_id,
            antenna_configurations,
        },
    );
    (vec(any::<u16>(), 0..5), stop, vec(ips, 1..3)).prop_map(
        |(antenna_ids, stop_trigger, inventory_parameter_specs)| AiSpec {
            antenna_ids,
            stop_trigger,
            inventory_parameter_specs,
        },
    )
}

fn rospec() -> impl Strategy<Value = RoSpec> {
    let start = (any::<u8>(), option::of((any::<u32>(), any::<u32>(), option::of(any::<u64>()))), option::of(gpi()))
        .prop_map(|(trigger_type, periodic, gpi)| RoSpecStartTrigger {
            trigger_type,
            periodic: periodic.map(|(offset_ms, period_ms, utc_us)| PeriodicTriggerValue {
                offset_ms,
                period_ms,
                utc_us,
            }),
            gpi,
        });
    let stop = (any::<u8>(), any::<u32>(), option::of(gpi()))
        .prop_map(|(trigger_type, duration_ms, gpi)| RoSpecStopTrigger { trigger_type, duration_ms, gpi });
    (any::<u32>(), any::<u8>(), any::<u8>(), start, stop, vec(ai_spec(), 0..3), option::of(report_spec())).prop_map(
        |(rospec_id, priority, current_state, start_trigger, stop_trigger, ai_specs, report_spec)| RoSpec {
            rospec_id,
            priority,
            current_state,
            start_trigger,
            stop_trigger,
            ai_specs,
            report_spec,
        },
    )
}

fn reader_config() -> impl Strategy<Value = ReaderConfig> {
    (
        option::of(vec(
            (0u16..9, any::<bool>()).prop_map(|(event_type, enabled)| EventNotificationState { event_type, enabled }),
            0..9,
        )),
        vec(antenna_configuration(), 0..3),
        option::of(report_spec()),
        option::of((any::<u8>(), any::<u32>()))
            .prop_map(|k| k.map(|(trigger_type, interval_ms)| KeepaliveSpec { trigger_type, interval_ms })),
        option::of(any::<bool>()),
    )
        .prop_map(|(event_notifications, antenna_configurations, ro_report_spec, keepalive, hold)| ReaderConfig {
            event_notifications,
            antenna_configurations,
            ro_report_spec,
            keepalive,
            hold_events_and_reports: hold,
        })
}

fn capabilities() -> impl Strategy<Value = ReaderCapabilities> {
    let general = (
        (any::<u16>(), any::<bool>(), any::<bool>(), any::<u32>(), any::<u32>(), short_text()),
        vec((any::<u16>(), any::<i16>()), 0..3),
        (any::<u16>(), any::<u16>()),
        vec((any::<u16>(), vec(any::<u8>(), 0..3)), 0..3),
    )
        .prop_map(|((max_antennas, a, b, manufacturer, model, fw), rx, gpio, air)| GeneralDeviceCapabilities {
            max_antennas,
            can_set_antenna_properties: a,
            has_utc_clock: b,
            manufacturer,
            model,
            firmware_version: fw,
            receive_sensitivities: rx,
            gpio,
            air_protocols: air,
        });
    let llrp = (any::<[bool; 5]>(), any::<u8>(), any::<u16>(), any::<[u32; 5]>()).prop_map(
        |(f, max_priority_levels, client_request_op_spec_timeout_ms, m)| LlrpCapabilities {
            can_do_rf_survey: f[0],
            can_report_buffer_fill_warning: f[1],
            supports_client_request_op_spec: f[2],
            can_do_tag_inventory_state_aware_singulation: f[3],
            supports_event_and_report_holding: f[4],
            max_priority_levels,
            client_request_op_spec_timeout_ms,
            max_rospecs: m[0],
            max_specs_per_rospec: m[1],
            max_inventory_parameter_specs_per_ai_spec: m[2],
            max_access_specs: m[3],
            max_op_specs_per_access_spec: m[4],
        },
    );
    let mode = (any::<u32>(), any::<[bool; 2]>(), any::<[u8; 3]>(), any::<[u32; 5]>()).prop_map(
        |(mode_identifier, f, m, v)| C1G2RfMode {
            mode_identifier,
            dr_64_3: f[0],
            epc_hag_tc_conformance: f[1],
            modulation: m[0],
            forward_link_modulation: m[1],
            spectral_mask: m[2],
            bdr_bps: v[0],
            pie: v[1],
            min_tari_ns: v[2],
            max_tari_ns: v[3],
            step_tari_ns: v[4],
        },
    );
    let band = (
        vec((any::<u16>(), any::<i16>()), 0..4),
        any::<bool>(),
        vec((any::<u8>(), vec(any::<u32>(), 0..4)), 0..2),
        option::of(vec(any::<u32>(), 0..4)),
        vec(mode, 0..3),
    )
        .prop_map(|(transmit_power_levels, hopping, hop_tables, fixed, rf_modes)| UhfBandCapabilities {
            transmit_power_levels,
            frequency: FrequencyInformation { hopping, hop_tables, fixed_frequencies_khz: fixed },
            rf_modes,
        });
    let regulatory =
        (any::<u16>(), any::<u16>(), option::of(band)).prop_map(|(country_code, communications_standard, uhf_band)| {
            RegulatoryCapabilities { country_code, communications_standard, uhf_band }
        });
    let c1g2 = (any::<bool>(), any::<bool>(), any::<u16>()).prop_map(|(e, w, m)| C1G2LlrpCapabilities {
        can_support_block_erase: e,
        can_support_block_write: w,
        max_select_filters_per_query: m,
    });
    (status(), option::of(general), option::of(llrp), option::of(regulatory), option::of(c1g2)).prop_map(
        |(status, general, llrp, regulatory, c1g2)| ReaderCapabilities { status, general, llrp, regulatory, c1g2 },
    )
}

fn event_data() -> impl Strategy<Value = ReaderEventNotificationData> {
    (
        prop_oneof![any::<u64>().prop_map(EventTimestamp::Utc), any::<u64>().prop_map(EventTimestamp::Uptime)],
        option::of((any::<u8>(), any::<u32>(), any::<u32>())),
        option::of((any::<u8>(), any::<u16>())),
        option::of(any::<u16>()),
        any::<bool>(),
    )
        .prop_map(|(timestamp, ro, ant, connection_attempt, connection_close)| ReaderEventNotificationData {
            timestamp,
            rospec_event: ro.map(|(event_type, rospec_id, preempting_rospec_id)| RoSpecEvent {
                event_type,
                rospec_id,
                preempting_rospec_id,
            }),
            antenna_event: ant.map(|(event_type, antenna_id)| AntennaEvent { event_type, antenna_id }),
            connection_attempt,
            connection_close,
        })
}

/// Message types this module decodes to a typed variant (an `Unknown` must avoid them).
const KNOWN_TYPES: &[u16] =
    &[1, 2, 3, 4, 11, 12, 13, 14, 20, 21, 22, 23, 24, 25, 30, 31, 32, 33, 34, 35, 61, 62, 63, 64, 72, 100];

fn body() -> impl Strategy<Value = Body> {
    let id = any::<u32>();
    prop_oneof![
        any::<u8>().prop_map(|requested_data| Body::GetReaderCapabilities { requested_data }),
        (any::<u16>(), any::<u8>(), any::<u16>(), any::<u16>()).prop_map(|(a, r, i, o)| {
            Body::GetReaderConfig { antenna_id: a, requested_data: r, gpi_port: i, gpo_port: o }
        }),
        (any::<bool>(), reader_config()).prop_map(|(reset_to_factory_default, config)| {
            Body::SetReaderConfig { reset_to_factory_default, config }
        }),
        Just(Body::CloseConnection),
        rospec().prop_map(|s| Body::AddRoSpec(Box::new(s))),
        id.prop_map(|rospec_id| Body::DeleteRoSpec { rospec_id }),
        id.prop_map(|rospec_id| Body::StartRoSpec { rospec_id }),
        id.prop_map(|rospec_id| Body::StopRoSpec { rospec_id }),
        id.prop_map(|rospec_id| Body::EnableRoSpec { rospec_id }),
        id.prop_map(|rospec_id| Body::DisableRoSpec { rospec_id }),
        Just(Body::EnableEventsAndReports),
        Just(Body::KeepaliveAck),
        capabilities().prop_map(|c| Body::GetReaderCapabilitiesResponse(Box::new(c))),
        (status(), option::of((any::<u8>(), vec(any::<u8>(), 0..9))), reader_config()).prop_map(
            |(status, id, config)| Body::GetReaderConfigResponse(Box::new(ReaderConfigResponse {
                status,
                identification: id.map(|(id_type, reader_id)| Identification { id_type, reader_id }),
                config,
            }))
        ),
        status().prop_map(Body::SetReaderConfigResponse),
        status().prop_map(Body::CloseConnectionResponse),
        status().prop_map(Body::AddRoSpecResponse),
        status().prop_map(Body::DeleteRoSpecResponse),
        status().prop_map(Body::StartRoSpecResponse),
        status().prop_map(Body::StopRoSpecResponse),
        status().prop_map(Body::EnableRoSpecResponse),
        status().prop_map(Body::DisableRoSpecResponse),
        status().prop_map(Body::ErrorMessage),
        vec(tag_report(), 0..6).prop_map(Body::RoAccessReport),
        Just(Body::Keepalive),
        event_data().prop_map(Body::ReaderEventNotification),
        ((0u16..1024).prop_filter("known type", |t| !KNOWN_TYPES.contains(t)), vec(any::<u8>(), 0..24))
            .prop_map(|(msg_type, body)| Body::Unknown { msg_type, body }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (prop_oneof![Just(VERSION_1_0_1), Just(VERSION_1_1)], any::<u32>(), body())
        .prop_map(|(version, id, body)| Message { version, id, body })
}

/// Splits `bytes` at the given fractions of its length.
fn chunks(bytes: &[u8], cuts: &[f64]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts.iter().map(|f| (f * bytes.len() as f64) as usize).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.windows(2).map(|w| bytes[w[0]..w[1]].to_vec()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decode_inverts_encode(m in message()) {
        let bytes = encoded(&m);
        prop_assert_eq!(bytes.len(), u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]) as usize);
        prop_assert_eq!(decode_one(&bytes), m);
    }

    #[test]
    fn rechunking_a_stream_yields_the_same_messages(
        ms in vec(message(), 1..6),
        cuts in vec(0.0f64..1.0, 0..12),
    ) {
        let mut stream = Vec::new();
        for m in &ms {
            stream.extend(encoded(m));
        }
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for chunk in chunks(&stream, &cuts) {
            buf.extend(chunk);
            got.extend(decode_all(&mut buf));
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, ms.into_iter().map(Ok).collect::<Vec<_>>());
    }

    #[test]
    fn decode_prefix_agrees_with_decode(ms in vec(message(), 0..4), tail in vec(any::<u8>(), 0..40)) {
        let mut stream = Vec::new();
        for m in &ms {
            stream.extend(encoded(m));
        }
        stream.extend(&tail);
        let mut rest: &[u8] = &stream;
        let mut via_prefix = Vec::new();
        loop {
            let (consumed, result) = decode_prefix(rest);
            prop_assert!(consumed <= rest.len());
            rest = &rest[consumed..];
            match result {
                Ok(Some(m)) => via_prefix.push(Ok(m)),
                Ok(None) => break,
                Err(e) => via_prefix.push(Err(e)),
            }
        }
        let mut buf = stream.clone();
        prop_assert_eq!(via_prefix, decode_all(&mut buf));
        prop_assert_eq!(rest, &buf[..]);
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..200)) {
        let mut buf = bytes.clone();
        let results = decode_all(&mut buf);
        // Whatever happened, every message consumed at least its header and left a valid tail.
        prop_assert!(buf.len() <= bytes.len());
        prop_assert!(results.len() <= bytes.len() / HEADER_LEN + 1);
    }

    #[test]
    fn decode_never_panics_on_garbage_bodies_of_known_types(
        ty in proptest::sample::select(KNOWN_TYPES),
        body in vec(any::<u8>(), 0..120),
        next_id in any::<u32>(),
    ) {
        // A well-framed message with a random body, followed by a good KEEPALIVE: the body may be
        // malformed, but it never desynchronises the stream.
        let mut buf = Vec::new();
        buf.extend((u16::from(VERSION_1_0_1) << 10 | ty).to_be_bytes());
        buf.extend(((HEADER_LEN + body.len()) as u32).to_be_bytes());
        buf.extend(7u32.to_be_bytes());
        buf.extend(&body);
        buf.extend(encoded(&Message::new(next_id, Body::Keepalive)));
        let first = decode(&mut buf);
        if let Err(e) = &first {
            prop_assert!(!e.is_fatal(), "{}", e);
        }
        prop_assert_eq!(decode(&mut buf), Ok(Some(Message::new(next_id, Body::Keepalive))));
        prop_assert!(buf.is_empty());
    }
}
