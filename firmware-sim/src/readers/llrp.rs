//! LLRP 1.0.1 reader emulator (Impinj Speedway / R700 style, TCP 5084, one client at a time).
//!
//! The flow a timing client uses, with `LLRPStatus` in every response:
//! - on connect a `READER_EVENT_NOTIFICATION` with the reader's UTC clock and
//!   `ConnectionAttemptEvent` (success; "a client connection exists" to a second client, which
//!   is then closed);
//! - `GET_READER_CAPABILITIES` (`ReaderCapabilities::minimal`, 4 antennas), `GET_READER_CONFIG`,
//!   `SET_READER_CONFIG` (factory reset, event notifications, antenna configuration, report spec,
//!   keepalive, event-and-report holding);
//! - `ADD`/`ENABLE`/`START`/`STOP`/`DISABLE`/`DELETE_ROSPEC` with the ROSpec state machine
//!   (Disabled → Inactive → Active): an Immediate (or Periodic) start trigger starts on enable, a
//!   Null one waits for `START_ROSPEC`; id 0 means every ROSpec for enable, disable and delete;
//! - `ENABLE_EVENTS_AND_REPORTS` (no response; releases held reports), `KEEPALIVE` at the
//!   configured period (the link is closed after three unacknowledged ones), `CLOSE_CONNECTION`;
//! - `DELETE`/`ENABLE`/`DISABLE_ACCESSSPEC` with id 0 succeed (there are none; sllurp deletes
//!   them on connect), `ADD_ACCESSSPEC` is refused; any other message gets an `ERROR_MESSAGE`
//!   (`M_UnsupportedMessage`, or `M_UnsupportedVersion` for LLRP 1.1 headers). A request whose
//!   body does not decode gets its own response type with an error status.
//!
//! Detections are only seen while a ROSpec is active and its AISpec covers the antenna: one
//! `TagReportData` per detection (`TagSeenCount` 1), first- and last-seen times from the
//! reader's UTC clock, the fields the `TagReportContentSelector` asks for. Reports go out as the
//! `ROReportSpec` says: every N tags, or at the end of the AISpec (tag-observation, duration or
//! timeout stop triggers, which is how sllurp asks for one report per tag), or at the end of the
//! ROSpec.
//!
//! Choices: ROSpecs and configuration survive a disconnect and are lost on reboot; reports due
//! while no client is connected are dropped; with several active ROSpecs the lowest id reports;
//! GPI start triggers never fire. State errors (unknown ROSpec id, wrong state) use `A_Invalid`.

use std::collections::BTreeMap;
use std::time::Duration;

use reader_protocol::DecodeError;
use reader_protocol::rfid::llrp::{
    self, AiSpecStopTrigger, Body, ContentSelector, Epc, EventNotificationState, EventTimestamp, Identification,
    KeepaliveSpec, LlrpStatus, ReaderCapabilities, ReaderConfig, ReaderConfigResponse, ReaderEventNotificationData,
    RoReportSpec, RoSpec, RoSpecEvent, RoSpecStartTrigger, RoSpecStopTrigger, TagReportData, connection_attempt,
    event_type, msg_type, status_code,
};
use tokio::time::Instant;

use super::emulator::{Device as AnyDevice, State, dbm, device_number, store_detection};
use super::session::{Cx, Flow};
use super::store::{Record, RecordKind};
use crate::Detection;

const MAX_ANTENNAS: u16 = 4;
const FIRMWARE: &str = "racetime-firmware-sim 1.0";
/// Unacknowledged keepalives after which the reader drops the link.
const KEEPALIVES_UNACKED_MAX: u32 = 3;

/// LLRP 1.0.1 access-spec message types (not modelled by the codec).
mod access_spec {
    pub(super) const ADD: u16 = 40;
    pub(super) const DELETE: u16 = 41;
    pub(super) const ENABLE: u16 = 42;
    pub(super) const DISABLE: u16 = 43;
    pub(super) const GET: u16 = 44;
    /// A request's response type is this much higher.
    pub(super) const RESPONSE_OFFSET: u16 = 10;
}

/// `ROSpecEvent` event types.
const ROSPEC_STARTED: u8 = 0;
const ROSPEC_ENDED: u8 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RoState {
    Disabled,
    Inactive,
    Active,
}

#[derive(Debug)]
struct Entry {
    spec: RoSpec,
    state: RoState,
}

#[derive(Debug)]
pub(crate) struct Device {
    config: ReaderConfig,
    rospecs: BTreeMap<u32, Entry>,
    next_msg_id: u32,
    /// A client holds the connection.
    connected: bool,
}

fn factory_config() -> ReaderConfig {
    ReaderConfig {
        event_notifications: Some(
            (event_type::HOPPING..=event_type::ANTENNA)
                .map(|t| EventNotificationState { event_type: t, enabled: false })
                .collect(),
        ),
        antenna_configurations: Vec::new(),
        ro_report_spec: Some(RoReportSpec::every_tag()),
        keepalive: Some(KeepaliveSpec { trigger_type: 0, interval_ms: 0 }),
        hold_events_and_reports: Some(false),
    }
}

impl Device {
    pub(crate) fn new() -> Device {
        Device { config: factory_config(), rospecs: BTreeMap::new(), next_msg_id: 0, connected: false }
    }

    /// The active ROSpec that reports (lowest id).
    fn active(&self) -> Option<(u32, &RoSpec)> {
        self.rospecs.iter().find(|(_, e)| e.state == RoState::Active).map(|(id, e)| (*id, &e.spec))
    }

    fn event_enabled(&self, event: u16) -> bool {
        self.config.event_notifications.iter().flatten().any(|e| e.event_type == event && e.enabled)
    }
}

fn device(st: &mut State) -> &mut Device {
    match &mut st.device {
        AnyDevice::Llrp(d) => d,
        other => unreachable!("an LLRP emulator with a {other:?} device"),
    }
}

fn covers(spec: &RoSpec, antenna: u16) -> bool {
    spec.ai_specs.iter().any(|a| a.antenna_ids.iter().any(|&id| id == 0 || id == antenna))
}

/// A detection is only seen while a ROSpec inventories its antenna.
pub(crate) fn detect(st: &mut State, d: &Detection) -> bool {
    let seen = device(st).active().is_some_and(|(_, spec)| covers(spec, d.antenna));
    if seen {
        store_detection(st, d);
    }
    seen
}

/// LLRP has no gun input.
pub(crate) fn gun() -> bool {
    false
}

/// The chip's EPC: 24 hex digits as EPC-96, other lengths as EPCData.
fn epc(chip: &str) -> Option<Epc> {
    if chip.is_empty() || !chip.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let hex = if chip.len() % 2 == 1 { format!("0{chip}") } else { chip.to_owned() };
    let bytes: Vec<u8> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0)).collect();
    match <[u8; 12]>::try_from(bytes.as_slice()) {
        Ok(b) => Some(Epc::Epc96(b)),
        Err(_) => Some(Epc::Bits { bit_len: (bytes.len() * 8).min(usize::from(u16::MAX)) as u16, bytes }),
    }
}

/// CRC-16 of EPC Gen2 (ISO/IEC 18000-63): polynomial 0x1021, preset 0xFFFF, complemented.
fn gen2_crc(words: &[u8]) -> u16 {
    let mut crc: u16 = 0xffff;
    for &b in words {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    !crc
}

fn tag_report(r: &Record, rospec_id: u32, spec: &RoSpec, report: &RoReportSpec) -> Option<TagReportData> {
    let epc = epc(&r.chip)?;
    let c = report.content;
    let mut t = TagReportData::new(epc);
    let us = u64::try_from(r.at.as_micros()).unwrap_or(0);
    if c.contains(ContentSelector::ROSPEC_ID) {
        t.rospec_id = Some(rospec_id);
    }
    if c.contains(ContentSelector::SPEC_INDEX) {
        t.spec_index = Some(1);
    }
    if c.contains(ContentSelector::INVENTORY_PARAMETER_SPEC_ID) {
        let ips = spec.ai_specs.first().and_then(|a| a.inventory_parameter_specs.first()).map_or(1, |i| i.spec_id);
        t.inventory_parameter_spec_id = Some(ips);
    }
    if c.contains(ContentSelector::ANTENNA_ID) {
        t.antenna_id = Some(r.antenna);
    }
    if c.contains(ContentSelector::CHANNEL_INDEX) {
        t.channel_index = Some(1);
    }
    if c.contains(ContentSelector::PEAK_RSSI) {
        t.peak_rssi_dbm = Some(dbm(r.rssi).clamp(-128, 127) as i8);
    }
    if c.contains(ContentSelector::FIRST_SEEN_TIMESTAMP) {
        t.first_seen_utc_us = Some(us);
    }
    if c.contains(ContentSelector::LAST_SEEN_TIMESTAMP) {
        t.last_seen_utc_us = Some(us);
    }
    if c.contains(ContentSelector::TAG_SEEN_COUNT) {
        t.tag_seen_count = Some(1);
    }
    if c.contains(ContentSelector::ACCESS_SPEC_ID) {
        t.access_spec_id = Some(0);
    }
    if let Some(m) = report.epc_memory_selector {
        let n_words = t.epc.bytes().len().div_ceil(2) as u16;
        let pc = n_words.min(31) << 11;
        if m.pc_bits {
            t.c1g2_pc = Some(pc);
        }
        if m.crc {
            let mut words = pc.to_be_bytes().to_vec();
            words.extend_from_slice(t.epc.bytes());
            t.c1g2_crc = Some(gen2_crc(&words));
        }
    }
    Some(t)
}

fn error(code: u16, description: impl Into<String>) -> LlrpStatus {
    LlrpStatus::error(code, description)
}

/// The response to a request type with this status, for requests whose body did not decode.
fn response_with(request_type: u16, status: LlrpStatus) -> Body {
    use msg_type as t;
    match request_type {
        t::GET_READER_CAPABILITIES => {
            Body::GetReaderCapabilitiesResponse(Box::new(ReaderCapabilities { status, ..Default::default() }))
        }
        t::GET_READER_CONFIG => {
            Body::GetReaderConfigResponse(Box::new(ReaderConfigResponse { status, ..Default::default() }))
        }
        t::SET_READER_CONFIG => Body::SetReaderConfigResponse(status),
        t::CLOSE_CONNECTION => Body::CloseConnectionResponse(status),
        t::ADD_ROSPEC => Body::AddRoSpecResponse(status),
        t::DELETE_ROSPEC => Body::DeleteRoSpecResponse(status),
        t::START_ROSPEC => Body::StartRoSpecResponse(status),
        t::STOP_ROSPEC => Body::StopRoSpecResponse(status),
        t::ENABLE_ROSPEC => Body::EnableRoSpecResponse(status),
        t::DISABLE_ROSPEC => Body::DisableRoSpecResponse(status),
        access_spec::ADD..=access_spec::GET => {
            Body::Unknown { msg_type: request_type + access_spec::RESPONSE_OFFSET, body: status_body(status) }
        }
        _ => Body::ErrorMessage(status),
    }
}

/// The encoded `LLRPStatus` parameter alone, for response types the codec does not model.
fn status_body(status: LlrpStatus) -> Vec<u8> {
    let mut out = Vec::new();
    match llrp::encode(&llrp::Message::new(0, Body::DeleteRoSpecResponse(status)), &mut out) {
        Ok(()) => out.split_off(llrp::HEADER_LEN),
        Err(_) => Vec::new(),
    }
}

#[derive(Debug)]
pub(crate) struct Session {
    /// This link holds the reader's one connection.
    accepted: bool,
    /// Events and reports held until `ENABLE_EVENTS_AND_REPORTS`.
    held: Option<Vec<(Vec<u8>, u32)>>,
    cursor: usize,
    pending: Vec<TagReportData>,
    /// Tags seen in the current AISpec run (tag-observation stop trigger).
    aispec_tags: u32,
    aispec_deadline: Option<Instant>,
    rospec_deadline: Option<(u32, Instant)>,
    keepalive: Option<(Duration, Instant)>,
    keepalives_unacked: u32,
}

impl Session {
    pub(crate) fn new() -> Session {
        Session {
            accepted: false,
            held: None,
            cursor: 0,
            pending: Vec::new(),
            aispec_tags: 0,
            aispec_deadline: None,
            rospec_deadline: None,
            keepalive: None,
            keepalives_unacked: 0,
        }
    }

    fn next_id(cx: &mut Cx<'_>) -> u32 {
        let d = device(cx.st);
        d.next_msg_id = d.next_msg_id.wrapping_add(1);
        d.next_msg_id
    }

    /// Encodes a message; `held` ones wait for `ENABLE_EVENTS_AND_REPORTS`.
    fn send(&mut self, cx: &mut Cx<'_>, id: u32, body: Body, n_records: u32, holdable: bool) {
        let mut out = Vec::new();
        if let Err(error) = llrp::encode(&llrp::Message::new(id, body), &mut out) {
            tracing::warn!(reader_id = %cx.shared.id, %error, "cannot encode an llrp message");
            return;
        }
        match &mut self.held {
            Some(held) if holdable => held.push((out, n_records)),
            _ => cx.send_records(out, n_records),
        }
    }

    /// Sends a response; an error status counts as a refused command.
    fn respond(&mut self, cx: &mut Cx<'_>, id: u32, body: Body) {
        if let Some(s) = body.status().filter(|s| !s.is_success()) {
            cx.refused_command(&format!("llrp status {}: {}", s.code, s.description), &id.to_be_bytes());
        }
        self.send(cx, id, body, 0, false);
    }

    fn notify(&mut self, cx: &mut Cx<'_>, data: ReaderEventNotificationData) {
        let id = Self::next_id(cx);
        self.send(cx, id, Body::ReaderEventNotification(data), 0, true);
    }

    fn reader_utc(cx: &Cx<'_>) -> EventTimestamp {
        EventTimestamp::Utc(u64::try_from(cx.reader_now().as_micros()).unwrap_or(0))
    }

    fn rospec_event(&mut self, cx: &mut Cx<'_>, event: u8, rospec_id: u32) {
        if device(cx.st).event_enabled(event_type::ROSPEC) {
            let mut data = ReaderEventNotificationData::at(Self::reader_utc(cx));
            data.rospec_event = Some(RoSpecEvent { event_type: event, rospec_id, preempting_rospec_id: 0 });
            self.notify(cx, data);
        }
    }

    fn configure_keepalive(&mut self, cx: &mut Cx<'_>) {
        self.keepalive = match device(cx.st).config.keepalive {
            Some(k) if k.trigger_type == 1 && k.interval_ms > 0 => {
                let every = Duration::from_millis(u64::from(k.interval_ms));
                Some((every, Instant::now() + every))
            }
            _ => None,
        };
        self.keepalives_unacked = 0;
    }

    /// The report spec in force: the active ROSpec's, else the reader's.
    fn report_spec(cx: &mut Cx<'_>, spec: &RoSpec) -> RoReportSpec {
        spec.report_spec
            .clone()
            .or_else(|| device(cx.st).config.ro_report_spec.clone())
            .unwrap_or_else(RoReportSpec::every_tag)
    }

    fn flush(&mut self, cx: &mut Cx<'_>) {
        if self.pending.is_empty() {
            return;
        }
        let reports = std::mem::take(&mut self.pending);
        let n = reports.len() as u32;
        let id = Self::next_id(cx);
        self.send(cx, id, Body::RoAccessReport(reports), n, true);
    }

    /// The AISpec run ended: report if the spec says so, start the next run.
    fn aispec_ended(&mut self, cx: &mut Cx<'_>) {
        self.aispec_tags = 0;
        if let Some((_, spec)) = device(cx.st).active().map(|(id, s)| (id, s.clone())) {
            if Self::report_spec(cx, &spec).trigger == RoReportSpec::TRIGGER_N_TAGS_OR_END_OF_AI_SPEC {
                self.flush(cx);
            }
            self.aispec_deadline = aispec_timer(&spec.ai_specs[0].stop_trigger);
        }
    }

    fn start(&mut self, cx: &mut Cx<'_>, id: u32) {
        let dev = device(cx.st);
        let Some(e) = dev.rospecs.get_mut(&id) else {
            return;
        };
        e.state = RoState::Active;
        let spec = e.spec.clone();
        self.aispec_tags = 0;
        self.aispec_deadline = spec.ai_specs.first().and_then(|a| aispec_timer(&a.stop_trigger));
        self.rospec_deadline = (spec.stop_trigger.trigger_type == RoSpecStopTrigger::DURATION)
            .then(|| (id, Instant::now() + Duration::from_millis(u64::from(spec.stop_trigger.duration_ms))));
        tracing::debug!(reader_id = %cx.shared.id, rospec_id = id, "rospec started");
        self.rospec_event(cx, ROSPEC_STARTED, id);
    }

    /// Leaves the Active state (if in it) for `to`, reporting what is pending.
    fn end(&mut self, cx: &mut Cx<'_>, id: u32, to: RoState) {
        let dev = device(cx.st);
        let Some(e) = dev.rospecs.get_mut(&id) else {
            return;
        };
        let was_active = e.state == RoState::Active;
        e.state = to;
        if was_active {
            self.flush(cx);
            self.aispec_deadline = None;
            self.rospec_deadline = None;
            tracing::debug!(reader_id = %cx.shared.id, rospec_id = id, "rospec ended");
            self.rospec_event(cx, ROSPEC_ENDED, id);
        }
    }

    /// The ROSpec ids a request names (0 = all), or an error status.
    fn targets(cx: &mut Cx<'_>, id: u32, all_allowed: bool) -> Result<Vec<u32>, LlrpStatus> {
        let dev = device(cx.st);
        if id == 0 && all_allowed {
            Ok(dev.rospecs.keys().copied().collect())
        } else if dev.rospecs.contains_key(&id) {
            Ok(vec![id])
        } else {
            Err(error(status_code::A_INVALID, format!("no rospec with id {id}")))
        }
    }

    fn add_rospec(cx: &mut Cx<'_>, spec: RoSpec) -> LlrpStatus {
        let dev = device(cx.st);
        let id = spec.rospec_id;
        let max = ReaderCapabilities::minimal(MAX_ANTENNAS, FIRMWARE).llrp.map_or(1, |l| l.max_rospecs) as usize;
        if id == 0 {
            return error(status_code::A_INVALID, "rospec id 0 is reserved");
        }
        if spec.current_state != 0 {
            return error(status_code::A_INVALID, "a rospec must be added in the disabled state");
        }
        if dev.rospecs.contains_key(&id) {
            return error(status_code::A_INVALID, format!("rospec {id} already exists"));
        }
        if dev.rospecs.len() >= max {
            return error(status_code::A_INVALID, format!("the reader holds at most {max} rospec"));
        }
        if spec.start_trigger.trigger_type > RoSpecStartTrigger::GPI {
            return error(
                status_code::M_FIELD_ERROR,
                format!("unknown start trigger {}", spec.start_trigger.trigger_type),
            );
        }
        if spec.ai_specs.is_empty() {
            return error(status_code::M_MISSING_PARAMETER, "rospec without an aispec");
        }
        if let Some(a) = spec.ai_specs.iter().flat_map(|a| &a.antenna_ids).find(|&&a| a > MAX_ANTENNAS) {
            return error(status_code::A_OUT_OF_RANGE, format!("antenna {a} over the {MAX_ANTENNAS} antennas"));
        }
        dev.rospecs.insert(id, Entry { spec, state: RoState::Disabled });
        LlrpStatus::success()
    }

    fn set_config(cx: &mut Cx<'_>, reset: bool, config: ReaderConfig) {
        let dev = device(cx.st);
        if reset {
            dev.config = factory_config();
        }
        if let Some(events) = config.event_notifications {
            let list = dev.config.event_notifications.get_or_insert_with(Vec::new);
            for e in events {
                match list.iter_mut().find(|x| x.event_type == e.event_type) {
                    Some(x) => x.enabled = e.enabled,
                    None => list.push(e),
                }
            }
        }
        for a in config.antenna_configurations {
            let list = &mut dev.config.antenna_configurations;
            list.retain(|x| x.antenna_id != a.antenna_id);
            list.push(a);
        }
        if let Some(r) = config.ro_report_spec {
            dev.config.ro_report_spec = Some(r);
        }
        if let Some(k) = config.keepalive {
            dev.config.keepalive = Some(k);
        }
        if let Some(h) = config.hold_events_and_reports {
            dev.config.hold_events_and_reports = Some(h);
        }
    }

    fn handle(&mut self, msg: llrp::Message, cx: &mut Cx<'_>) -> Flow {
        let id = msg.id;
        if msg.version != llrp::VERSION_1_0_1 {
            let status = error(status_code::M_UNSUPPORTED_VERSION, "only llrp 1.0.1 is supported");
            self.respond(cx, id, Body::ErrorMessage(status));
            return Flow::Continue;
        }
        match msg.body {
            Body::GetReaderCapabilities { requested_data } => {
                let mut caps = ReaderCapabilities::minimal(MAX_ANTENNAS, FIRMWARE);
                match requested_data {
                    0 => {}
                    1 => (caps.llrp, caps.regulatory, caps.c1g2) = (None, None, None),
                    2 => (caps.general, caps.regulatory, caps.c1g2) = (None, None, None),
                    3 => (caps.general, caps.llrp, caps.c1g2) = (None, None, None),
                    4 => (caps.general, caps.llrp, caps.regulatory) = (None, None, None),
                    n => {
                        caps = ReaderCapabilities {
                            status: error(status_code::M_FIELD_ERROR, format!("unknown requested data {n}")),
                            ..Default::default()
                        };
                    }
                }
                self.respond(cx, id, Body::GetReaderCapabilitiesResponse(Box::new(caps)));
            }
            Body::GetReaderConfig { .. } => {
                let n = device_number(&cx.shared.id);
                let mut mac = vec![0x00, 0x16, 0x25, 0xff, 0xfe];
                mac.extend_from_slice(&n.to_be_bytes()[1..]);
                let config = device(cx.st).config.clone();
                let resp = ReaderConfigResponse {
                    status: LlrpStatus::success(),
                    identification: Some(Identification { id_type: 0, reader_id: mac }),
                    config,
                };
                self.respond(cx, id, Body::GetReaderConfigResponse(Box::new(resp)));
            }
            Body::SetReaderConfig { reset_to_factory_default, config } => {
                Self::set_config(cx, reset_to_factory_default, config);
                self.configure_keepalive(cx);
                self.respond(cx, id, Body::SetReaderConfigResponse(LlrpStatus::success()));
            }
            Body::CloseConnection => {
                self.respond(cx, id, Body::CloseConnectionResponse(LlrpStatus::success()));
                return Flow::Close;
            }
            Body::AddRoSpec(spec) => {
                let status = Self::add_rospec(cx, *spec);
                self.respond(cx, id, Body::AddRoSpecResponse(status));
            }
            Body::DeleteRoSpec { rospec_id } => {
                let status = match Self::targets(cx, rospec_id, true) {
                    Ok(ids) => {
                        for r in ids {
                            self.end(cx, r, RoState::Disabled);
                            device(cx.st).rospecs.remove(&r);
                        }
                        LlrpStatus::success()
                    }
                    Err(s) => s,
                };
                self.respond(cx, id, Body::DeleteRoSpecResponse(status));
            }
            Body::EnableRoSpec { rospec_id } => {
                let status = match Self::targets(cx, rospec_id, true) {
                    Ok(ids) => {
                        for r in ids {
                            let e = device(cx.st).rospecs.get_mut(&r).expect("target exists");
                            if e.state != RoState::Disabled {
                                continue;
                            }
                            e.state = RoState::Inactive;
                            let trigger = e.spec.start_trigger.trigger_type;
                            if matches!(trigger, RoSpecStartTrigger::IMMEDIATE | RoSpecStartTrigger::PERIODIC) {
                                self.start(cx, r);
                            }
                        }
                        LlrpStatus::success()
                    }
                    Err(s) => s,
                };
                self.respond(cx, id, Body::EnableRoSpecResponse(status));
            }
            Body::StartRoSpec { rospec_id } => {
                let status = match Self::targets(cx, rospec_id, false) {
                    Ok(_) => match device(cx.st).rospecs[&rospec_id].state {
                        RoState::Inactive => {
                            self.start(cx, rospec_id);
                            LlrpStatus::success()
                        }
                        RoState::Active => {
                            error(status_code::A_INVALID, format!("rospec {rospec_id} is already active"))
                        }
                        RoState::Disabled => error(status_code::A_INVALID, format!("rospec {rospec_id} is disabled")),
                    },
                    Err(s) => s,
                };
                self.respond(cx, id, Body::StartRoSpecResponse(status));
            }
            Body::StopRoSpec { rospec_id } => {
                let status = match Self::targets(cx, rospec_id, false) {
                    Ok(_) if device(cx.st).rospecs[&rospec_id].state == RoState::Active => {
                        self.end(cx, rospec_id, RoState::Inactive);
                        LlrpStatus::success()
                    }
                    Ok(_) => error(status_code::A_INVALID, format!("rospec {rospec_id} is not active")),
                    Err(s) => s,
                };
                self.respond(cx, id, Body::StopRoSpecResponse(status));
            }
            Body::DisableRoSpec { rospec_id } => {
                let status = match Self::targets(cx, rospec_id, true) {
                    Ok(ids) => {
                        for r in ids {
                            self.end(cx, r, RoState::Disabled);
                        }
                        LlrpStatus::success()
                    }
                    Err(s) => s,
                };
                self.respond(cx, id, Body::DisableRoSpecResponse(status));
            }
            Body::EnableEventsAndReports => {
                if let Some(held) = self.held.take() {
                    for (bytes, n) in held {
                        cx.send_records(bytes, n);
                    }
                }
            }
            Body::KeepaliveAck => self.keepalives_unacked = 0,
            Body::Unknown {
                msg_type: t @ (access_spec::DELETE | access_spec::ENABLE | access_spec::DISABLE),
                body,
            } => {
                let status = match body.get(..4) {
                    Some([0, 0, 0, 0]) => LlrpStatus::success(),
                    Some(b) => {
                        let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                        error(status_code::A_INVALID, format!("no accessspec with id {n}"))
                    }
                    None => error(status_code::M_FIELD_ERROR, "accessspec id missing"),
                };
                self.respond(cx, id, response_with(t, status));
            }
            Body::Unknown { msg_type: t @ (access_spec::ADD | access_spec::GET), .. } => {
                let status = if t == access_spec::GET {
                    LlrpStatus::success()
                } else {
                    error(status_code::A_INVALID, "accessspecs are not supported")
                };
                self.respond(cx, id, response_with(t, status));
            }
            other => {
                let t = other.msg_type();
                let status = error(status_code::M_UNSUPPORTED_MESSAGE, format!("message type {t} is not supported"));
                self.respond(cx, id, Body::ErrorMessage(status));
            }
        }
        Flow::Continue
    }
}

/// When an AISpec run ends by time: its duration, or a tag-observation timeout.
fn aispec_timer(stop: &AiSpecStopTrigger) -> Option<Instant> {
    let ms = match stop.trigger_type {
        AiSpecStopTrigger::DURATION => stop.duration_ms,
        AiSpecStopTrigger::TAG_OBSERVATION => stop.tag_observation.map_or(0, |t| t.timeout_ms),
        _ => 0,
    };
    (ms > 0).then(|| Instant::now() + Duration::from_millis(u64::from(ms)))
}

impl super::session::Session for Session {
    fn open(&mut self, cx: &mut Cx<'_>) -> Flow {
        let mut data = ReaderEventNotificationData::at(Self::reader_utc(cx));
        if device(cx.st).connected {
            data.connection_attempt = Some(connection_attempt::FAILED_CLIENT_INITIATED_CONNECTION_EXISTS);
            self.notify(cx, data);
            tracing::info!(reader_id = %cx.shared.id, "second client refused: a connection exists");
            return Flow::Close;
        }
        let dev = device(cx.st);
        dev.connected = true;
        self.accepted = true;
        if dev.config.hold_events_and_reports == Some(true) {
            self.held = Some(Vec::new());
        }
        self.cursor = cx.st.store.end();
        data.connection_attempt = Some(connection_attempt::SUCCESS);
        let id = Self::next_id(cx);
        self.respond(cx, id, Body::ReaderEventNotification(data));
        self.configure_keepalive(cx);
        if let Some((_, spec)) = device(cx.st).active() {
            self.aispec_deadline = spec.ai_specs.first().and_then(|a| aispec_timer(&a.stop_trigger));
        }
        Flow::Continue
    }

    fn input(&mut self, buf: &mut Vec<u8>, cx: &mut Cx<'_>) -> Flow {
        loop {
            let header = match llrp::peek_header(buf) {
                Ok(h) => h,
                Err(e) => {
                    cx.bad_command(&e);
                    return Flow::Close;
                }
            };
            match llrp::decode(buf) {
                Ok(Some(msg)) => {
                    cx.command();
                    if self.handle(msg, cx) == Flow::Close {
                        return Flow::Close;
                    }
                }
                Ok(None) => return Flow::Continue,
                Err(e) if e.is_fatal() => {
                    cx.bad_command(&e);
                    return Flow::Close;
                }
                Err(e) => {
                    cx.bad_command(&e);
                    if let Some(h) = header {
                        let reason = match &e {
                            DecodeError::Malformed { reason, .. } => reason.clone(),
                            other => other.to_string(),
                        };
                        let status = error(status_code::M_PARAMETER_ERROR, reason);
                        // Counted once, as a bad command above.
                        self.send(cx, h.id, response_with(h.msg_type, status), 0, false);
                    }
                }
            }
        }
    }

    fn records(&mut self, cx: &mut Cx<'_>) {
        let new: Vec<Record> = cx.st.store.since(self.cursor).to_vec();
        self.cursor = cx.st.store.end();
        let Some((rospec_id, spec)) = device(cx.st).active().map(|(id, s)| (id, s.clone())) else {
            return;
        };
        let report = Self::report_spec(cx, &spec);
        let observe = spec.ai_specs.first().and_then(|a| {
            (a.stop_trigger.trigger_type == AiSpecStopTrigger::TAG_OBSERVATION)
                .then_some(a.stop_trigger.tag_observation)
                .flatten()
                .filter(|t| t.trigger_type == 0 && t.number_of_tags > 0)
        });
        for r in new.iter().filter(|r| r.kind == RecordKind::Tag) {
            let Some(t) = tag_report(r, rospec_id, &spec, &report) else {
                tracing::warn!(reader_id = %cx.shared.id, chip = %r.chip, "chip is not a hex epc; not reported");
                continue;
            };
            self.pending.push(t);
            self.aispec_tags += 1;
            if report.trigger != RoReportSpec::TRIGGER_NONE
                && report.n > 0
                && self.pending.len() >= usize::from(report.n)
            {
                self.flush(cx);
            }
            if observe.is_some_and(|o| self.aispec_tags >= u32::from(o.number_of_tags)) {
                self.aispec_ended(cx);
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        [self.keepalive.map(|(_, at)| at), self.aispec_deadline, self.rospec_deadline.map(|(_, at)| at)]
            .into_iter()
            .flatten()
            .min()
    }

    fn timer(&mut self, cx: &mut Cx<'_>) -> Flow {
        let now = Instant::now();
        if let Some((every, at)) = self.keepalive
            && at <= now
        {
            if self.keepalives_unacked >= KEEPALIVES_UNACKED_MAX {
                tracing::warn!(reader_id = %cx.shared.id, "keepalives not acknowledged; dropping the link");
                return Flow::Close;
            }
            self.keepalive = Some((every, now + every));
            self.keepalives_unacked += 1;
            let id = Self::next_id(cx);
            self.respond(cx, id, Body::Keepalive);
        }
        if self.aispec_deadline.is_some_and(|at| at <= now) {
            self.aispec_deadline = None;
            self.aispec_ended(cx);
        }
        if let Some((id, at)) = self.rospec_deadline
            && at <= now
        {
            self.end(cx, id, RoState::Inactive);
        }
        Flow::Continue
    }

    fn close(&mut self, st: &mut State) {
        if self.accepted {
            device(st).connected = false;
        }
    }
}
