//! LLRP emulator against `reader_protocol::rfid::llrp` playing the timing client over TCP.

use event_config::edge::Protocol;
use firmware_sim::readers::{Endpoint, ReaderHandle};
use reader_protocol::rfid::llrp::{
    self, AiSpec, AiSpecStopTrigger, Body, ContentSelector, EventTimestamp, InventoryParameterSpec, KeepaliveSpec,
    LlrpStatus, Message, ReaderConfig, RoReportSpec, RoSpec, RoSpecStartTrigger, RoSpecStopTrigger,
    TagObservationTrigger, connection_attempt, status_code,
};
use reader_protocol::{ReaderTime, TagRead};
use timing_core::{Rssi, Timestamp};
use tokio::net::TcpStream;

use crate::common::*;

struct Llrp {
    c: Client<TcpStream>,
    next_id: u32,
}

impl Llrp {
    /// Connects and takes the connection event.
    async fn connect(h: &ReaderHandle) -> (Llrp, Message) {
        let mut c = Client::tcp(h.local_addr().expect("listening")).await;
        let event = c.next_ok(llrp::decode).await;
        (Llrp { c, next_id: 100 }, event)
    }

    async fn send(&mut self, body: Body) -> u32 {
        self.next_id += 1;
        let id = self.next_id;
        let mut out = Vec::new();
        llrp::encode(&Message::new(id, body), &mut out).expect("encodes");
        self.c.send(&out).await;
        id
    }

    async fn next(&mut self) -> Message {
        self.c.next_ok(llrp::decode).await
    }

    /// Sends a request and returns the status of its response (which must echo the id).
    async fn request(&mut self, body: Body) -> LlrpStatus {
        let id = self.send(body).await;
        let m = self.next().await;
        assert_eq!(m.id, id, "the response echoes the request id: {m:?}");
        m.body.status().unwrap_or_else(|| panic!("a response, got {m:?}")).clone()
    }
}

fn rospec(id: u32, start: u8, antennas: Vec<u16>, report: RoReportSpec, stop: AiSpecStopTrigger) -> RoSpec {
    RoSpec {
        rospec_id: id,
        priority: 0,
        current_state: 0,
        start_trigger: RoSpecStartTrigger::of_type(start),
        stop_trigger: RoSpecStopTrigger::null(),
        ai_specs: vec![AiSpec {
            antenna_ids: antennas,
            stop_trigger: stop,
            inventory_parameter_specs: vec![InventoryParameterSpec {
                spec_id: 1,
                protocol_id: 1,
                antenna_configurations: Vec::new(),
            }],
        }],
        report_spec: Some(report),
    }
}

fn expected(epc: &str, reader_at: Timestamp, antenna: u16, dbm: i16) -> TagRead {
    TagRead {
        chip: epc.to_owned(),
        time: ReaderTime::Utc(reader_at),
        antenna: Some(antenna),
        rssi: Some(Rssi(dbm * 10)),
        passing_no: None,
        session: None,
        hits: Some(1),
    }
}

fn reports(m: &Message) -> Vec<TagRead> {
    assert!(matches!(m.body, Body::RoAccessReport(_)), "expected a report, got {m:?}");
    m.tag_reads().collect()
}

const EPC_A: &str = "E2001018860B01290700D0D8";
const EPC_B: &str = "300833B2DDD9014000000000ABCD0001";

#[tokio::test]
async fn the_timing_client_flow_reports_tags_only_while_a_rospec_is_active() {
    let clock = manual(t0() + ms(60_000));
    let rc = reader_clock(-250, 0.0);
    let h = start(spec("finish-llrp", Protocol::Llrp, Endpoint::Listen(localhost()), rc), &clock).await;
    let (mut r, event) = Llrp::connect(&h).await;
    match event.body {
        Body::ReaderEventNotification(d) => {
            assert_eq!(d.connection_attempt, Some(connection_attempt::SUCCESS));
            let now_us = rc.reader_time(t0() + ms(60_000)).as_micros() as u64;
            assert_eq!(d.timestamp, EventTimestamp::Utc(now_us), "the first clock sample is the reader's");
        }
        b => panic!("expected READER_EVENT_NOTIFICATION, got {b:?}"),
    }
    let id = r.send(Body::GetReaderCapabilities { requested_data: 0 }).await;
    match r.next().await {
        Message { id: rid, body: Body::GetReaderCapabilitiesResponse(caps), .. } => {
            assert_eq!(rid, id);
            assert!(caps.status.is_success());
            assert_eq!(caps.general.expect("general capabilities").max_antennas, 4);
        }
        m => panic!("expected capabilities, got {m:?}"),
    }
    let reset = Body::SetReaderConfig { reset_to_factory_default: true, config: ReaderConfig::default() };
    assert!(r.request(reset).await.is_success());
    assert!(r.request(Body::DeleteRoSpec { rospec_id: 0 }).await.is_success());
    let spec =
        rospec(7, RoSpecStartTrigger::IMMEDIATE, vec![1, 2], RoReportSpec::every_tag(), AiSpecStopTrigger::null());
    assert!(r.request(Body::AddRoSpec(Box::new(spec))).await.is_success());

    // Added but not enabled: no inventory, nothing seen.
    h.detect(det(EPC_A, t0() + ms(1000), 1, -580));
    assert_eq!(h.stats().records_stored, 0);
    assert!(r.request(Body::EnableRoSpec { rospec_id: 7 }).await.is_success());
    r.send(Body::EnableEventsAndReports).await;

    let (a, b) = (t0() + ms(2000), t0() + ms(2100));
    h.detect(det(EPC_A, a, 1, -580));
    h.detect(det(EPC_B, b, 2, -615));
    h.detect(det(EPC_A, b, 3, -500)); // antenna 3 is not in the AISpec
    assert_eq!(reports(&r.next().await), vec![expected(EPC_A, rc.reader_time(a), 1, -58)]);
    assert_eq!(reports(&r.next().await), vec![expected(EPC_B, rc.reader_time(b), 2, -62)]);
    assert_eq!(h.stats().records_stored, 2);

    // Stopped: nothing seen; the next message is the answer to the next request.
    assert!(r.request(Body::StopRoSpec { rospec_id: 7 }).await.is_success());
    h.detect(det(EPC_A, t0() + ms(3000), 1, -580));
    assert_eq!(h.stats().records_stored, 2);
    assert!(r.request(Body::StartRoSpec { rospec_id: 7 }).await.is_success());
    let again = r.request(Body::StartRoSpec { rospec_id: 7 }).await;
    assert_eq!(again.code, status_code::A_INVALID, "{again:?}");
    let unknown = r.request(Body::EnableRoSpec { rospec_id: 99 }).await;
    assert_eq!(unknown.code, status_code::A_INVALID, "{unknown:?}");
    let c = t0() + ms(4000);
    h.detect(det(EPC_A, c, 2, -700));
    assert_eq!(reports(&r.next().await), vec![expected(EPC_A, rc.reader_time(c), 2, -70)]);

    let id = r.send(Body::CloseConnection).await;
    let m = r.next().await;
    assert_eq!((m.id, m.body), (id, Body::CloseConnectionResponse(LlrpStatus::success())));
    r.c.until_eof().await;
    assert_eq!(h.stats().bad_commands, 2, "the two refused rospec commands");
    h.shutdown().await;
}

#[tokio::test]
async fn keepalives_one_client_at_a_time_bad_requests_and_per_aispec_reports() {
    let clock = manual(t0() + ms(60_000));
    let rc = reader_clock(0, 0.0);
    let h = start(spec("finish-llrp", Protocol::Llrp, Endpoint::Listen(localhost()), rc), &clock).await;
    let (mut r, _) = Llrp::connect(&h).await;

    // A second client is told a connection exists, then closed.
    let (mut second, refused) = Llrp::connect(&h).await;
    match refused.body {
        Body::ReaderEventNotification(d) => {
            assert_eq!(d.connection_attempt, Some(connection_attempt::FAILED_CLIENT_INITIATED_CONNECTION_EXISTS));
        }
        b => panic!("expected READER_EVENT_NOTIFICATION, got {b:?}"),
    }
    second.c.until_eof().await;

    let keepalive = ReaderConfig { keepalive: Some(KeepaliveSpec::periodic(50)), ..ReaderConfig::default() };
    assert!(r.request(Body::SetReaderConfig { reset_to_factory_default: false, config: keepalive }).await.is_success());
    let k = r.next().await;
    assert_eq!(k.body, Body::Keepalive);
    r.c.send(&bytes(|o| llrp::encode(&Message::new(k.id, Body::KeepaliveAck), o).expect("encodes"))).await;
    let off =
        ReaderConfig { keepalive: Some(KeepaliveSpec { trigger_type: 0, interval_ms: 0 }), ..ReaderConfig::default() };
    // Keepalives may still cross the request; skip them.
    let id = r.send(Body::SetReaderConfig { reset_to_factory_default: false, config: off }).await;
    let m = loop {
        match r.next().await {
            Message { body: Body::Keepalive, .. } => continue,
            m => break m,
        }
    };
    assert_eq!((m.id, m.body), (id, Body::SetReaderConfigResponse(LlrpStatus::success())));

    // A truncated ADD_ROSPEC: its own response type with an error, then the link carries on.
    let good = rospec(1, RoSpecStartTrigger::NULL, vec![0], RoReportSpec::every_tag(), AiSpecStopTrigger::null());
    let mut frame = bytes(|o| llrp::encode(&Message::new(555, Body::AddRoSpec(Box::new(good))), o).expect("encodes"));
    frame.truncate(frame.len() - 6);
    let len = frame.len() as u32;
    frame[2..6].copy_from_slice(&len.to_be_bytes());
    r.c.send(&frame).await;
    let m = r.next().await;
    assert_eq!(m.id, 555);
    match &m.body {
        Body::AddRoSpecResponse(s) => assert_eq!(s.code, status_code::M_PARAMETER_ERROR, "{s:?}"),
        b => panic!("expected ADD_ROSPEC_RESPONSE, got {b:?}"),
    }
    let id = r.send(Body::Unknown { msg_type: 46, body: Vec::new() }).await;
    let m = r.next().await;
    assert_eq!(m.id, id);
    assert!(matches!(&m.body, Body::ErrorMessage(s) if s.code == status_code::M_UNSUPPORTED_MESSAGE), "{m:?}");

    // sllurp's way: report N = 0 at the end of each AISpec, which ends after one tag.
    let per_aispec = RoReportSpec {
        trigger: RoReportSpec::TRIGGER_N_TAGS_OR_END_OF_AI_SPEC,
        n: 0,
        content: ContentSelector(ContentSelector::TIMING.0 | ContentSelector::ROSPEC_ID),
        epc_memory_selector: None,
    };
    let one_tag = AiSpecStopTrigger {
        trigger_type: AiSpecStopTrigger::TAG_OBSERVATION,
        duration_ms: 0,
        gpi: None,
        tag_observation: Some(TagObservationTrigger {
            trigger_type: 0,
            number_of_tags: 1,
            number_of_attempts: 0,
            t_ms: 0,
            timeout_ms: 0,
        }),
    };
    let spec = rospec(3, RoSpecStartTrigger::NULL, vec![0], per_aispec, one_tag);
    assert!(r.request(Body::AddRoSpec(Box::new(spec))).await.is_success());
    assert!(r.request(Body::EnableRoSpec { rospec_id: 3 }).await.is_success());
    h.detect(det(EPC_A, t0() + ms(500), 4, -600));
    assert_eq!(h.stats().records_stored, 0, "a null start trigger waits for START_ROSPEC");
    assert!(r.request(Body::StartRoSpec { rospec_id: 3 }).await.is_success());
    for (n, epc) in [EPC_A, EPC_B].into_iter().enumerate() {
        let at = t0() + ms(1000 + n as i64);
        h.detect(det(epc, at, 4, -600));
        let m = r.next().await;
        let Body::RoAccessReport(tags) = &m.body else { panic!("expected a report, got {m:?}") };
        assert_eq!((tags.len(), tags[0].rospec_id), (1, Some(3)));
        assert_eq!(m.tag_reads().collect::<Vec<_>>(), vec![expected(epc, rc.reader_time(at), 4, -60)]);
    }
    assert!(h.stats().bad_commands >= 2, "{:?}", h.stats());
    h.shutdown().await;
}
