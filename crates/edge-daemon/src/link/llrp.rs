//! The LLRP session: the edge is the LLRP client of an Impinj-style reader (TCP 5084).
//!
//! Per connection:
//! 1. Wait for the reader's `READER_EVENT_NOTIFICATION` with `ConnectionAttemptEvent`; anything
//!    but success (a reader refuses a second client) ends the session. Its `UTCTimestamp` is the
//!    first clock sample.
//! 2. `GET_READER_CAPABILITIES` (general device part): log the model and refuse a reader without
//!    a UTC clock, whose tag reports could not be timed.
//! 3. `SET_READER_CONFIG`: periodic keepalive ([`KEEPALIVE_PERIOD`]), ROSpec and antenna event
//!    notifications on (the others off), the every-tag report spec, no holding of events and
//!    reports. No factory reset: the operator's antenna power settings stay as they are.
//! 4. `DELETE_ROSPEC` 0 (all), `ADD_ROSPEC` (the timing ROSpec: Immediate start, Null stop, all
//!    antennas, C1G2 session 2, a report per tag with antenna id, peak RSSI, first-seen UTC and
//!    tag seen count), `ENABLE_ROSPEC` (the Immediate start trigger starts inventory here;
//!    `START_ROSPEC` would only be sent for a Null trigger), `ENABLE_EVENTS_AND_REPORTS`.
//! 5. Stream: `RO_ACCESS_REPORT` → [`LinkEvent::Reads`], `KEEPALIVE` → `KEEPALIVE_ACK`.
//!
//! Design note.
//! - Every response's `LLRPStatus` is checked; a refusal (or an `ERROR_MESSAGE`) ends the
//!   session with [`LinkError::Protocol`] naming the request and the status. Responses are
//!   matched by message id and kind, so keepalives, reports and events that cross a request are
//!   handled on the way.
//! - Liveness: the reader must send a keepalive every [`KEEPALIVE_PERIOD`]; none for
//!   [`KEEPALIVE_TIMEOUT`] (three and a half periods) ends the session with
//!   [`LinkError::Timeout`]. Each setup step has [`ANSWER_TIMEOUT`].
//! - No replay: LLRP has no passing numbers and a reader keeps no passing file in this subset,
//!   so there is nothing to rewind from the [`super::ResumeTable`]; tags seen while no client is
//!   connected (or in a report cut by a dropped connection) are lost at the reader. That is why
//!   a timing point has a backup line. Reads carry no `passing_no`.
//! - Clocks: LLRP has no time query, but two reader events answer something the edge did, and
//!   carry the reader's UTC clock: the connection event (sent = when the session started) and
//!   the start of our ROSpec (sent = just before `ENABLE_ROSPEC`). Each becomes a
//!   [`LinkEvent::Clock`]; between reconnects the daemon relies on the reads' first-seen times.
//! - Framing: a fatal desync ([`reader_protocol::DecodeError::is_fatal`]) is reported as
//!   [`LinkEvent::Malformed`] and ends the session, so the reconnect re-frames the stream; a
//!   malformed body is reported and skipped. A tag report without a UTC timestamp is reported
//!   as malformed too.

use std::time::Duration;

use reader_protocol::rfid::llrp::{
    self, AiSpec, AiSpecStopTrigger, AntennaConfiguration, Body, C1G2InventoryCommand, C1G2SingulationControl,
    EventNotificationState, EventTimestamp, InventoryParameterSpec, KeepaliveSpec, LlrpStatus, ReaderConfig,
    ReaderEventNotificationData, RoReportSpec, RoSpec, RoSpecStartTrigger, RoSpecStopTrigger, connection_attempt,
    event_type, status_code,
};
use reader_protocol::{DecodeError, ReaderTime, TagRead};
use timing_core::Timestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::{ClockSample, Io, LinkCtx, LinkError, LinkEvent};

/// The reader sends a `KEEPALIVE` this often.
const KEEPALIVE_PERIOD: Duration = Duration::from_secs(1);
/// No keepalive for this long ends the session.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_millis(3500);
/// The connection event and every response must come within this.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Our ROSpec's id (any non-zero id works: the session deletes every ROSpec first).
const ROSPEC_ID: u32 = 1;
/// `ROSpecEvent` type of a ROSpec start.
const ROSPEC_STARTED: u8 = 0;

pub(super) async fn session(io: Io, ctx: &LinkCtx) -> Result<(), LinkError> {
    let mut s = Session {
        ctx,
        io,
        buf: Vec::with_capacity(8192),
        chunk: vec![0; 8192],
        received_at: ctx.now(),
        next_id: 0,
        reads: Vec::new(),
        clock_cue: Some((ctx.now(), Cue::Connection)),
        last_keepalive: Instant::now(),
    };
    s.await_connection().await?;
    s.set_up().await?;
    s.stream().await
}

/// What a reader event with a UTC timestamp answers, for a clock sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cue {
    /// The connection event, stamped after the TCP connection was made.
    Connection,
    /// The start of our ROSpec, stamped when `ENABLE_ROSPEC` took effect.
    RoSpecStart,
}

struct Session<'a> {
    ctx: &'a LinkCtx,
    io: Io,
    buf: Vec<u8>,
    chunk: Vec<u8>,
    /// The edge clock when the last bytes arrived.
    received_at: Timestamp,
    next_id: u32,
    /// Tag reads decoded and not yet emitted (emitted before the next wait or other event).
    reads: Vec<TagRead>,
    /// The edge clock before the action whose reader event will carry the reader's time.
    clock_cue: Option<(Timestamp, Cue)>,
    last_keepalive: Instant,
}

impl Session<'_> {
    async fn await_connection(&mut self) -> Result<(), LinkError> {
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        loop {
            let Some(m) = self.next(deadline, ANSWER_TIMEOUT).await? else {
                return Err(closed("the connection event"));
            };
            if let Body::ReaderEventNotification(data) = &m.body
                && let Some(status) = data.connection_attempt
            {
                if status != connection_attempt::SUCCESS {
                    return Err(LinkError::Protocol(format!(
                        "the reader refused the connection: {} ({status})",
                        attempt_name(status)
                    )));
                }
                self.event(data).await?;
                return Ok(());
            }
            self.handle(m).await?;
        }
    }

    async fn set_up(&mut self) -> Result<(), LinkError> {
        let caps = self.request(Body::GetReaderCapabilities { requested_data: 1 }).await?;
        if let Body::GetReaderCapabilitiesResponse(caps) = caps
            && let Some(g) = caps.general
        {
            tracing::info!(
                reader_id = %self.ctx.id(),
                manufacturer = g.manufacturer,
                model = g.model,
                firmware = %g.firmware_version,
                max_antennas = g.max_antennas,
                "llrp reader"
            );
            if !g.has_utc_clock {
                return Err(LinkError::Protocol(format!(
                    "reader model {} (firmware {}) has no utc clock: its tag reports cannot be timed",
                    g.model, g.firmware_version
                )));
            }
        }
        self.request(Body::SetReaderConfig { reset_to_factory_default: false, config: reader_config() }).await?;
        self.last_keepalive = Instant::now();
        self.request(Body::DeleteRoSpec { rospec_id: 0 }).await?;
        let spec = timing_rospec();
        let start_trigger = spec.start_trigger.trigger_type;
        self.request(Body::AddRoSpec(Box::new(spec))).await?;
        self.clock_cue = Some((self.ctx.now(), Cue::RoSpecStart));
        self.request(Body::EnableRoSpec { rospec_id: ROSPEC_ID }).await?;
        if start_trigger == RoSpecStartTrigger::NULL {
            self.request(Body::StartRoSpec { rospec_id: ROSPEC_ID }).await?;
        }
        // No response exists: a reader stays silent.
        let id = self.fresh_id();
        self.send(llrp::Message::new(id, Body::EnableEventsAndReports)).await?;
        tracing::info!(reader_id = %self.ctx.id(), rospec_id = ROSPEC_ID, "llrp inventory running");
        Ok(())
    }

    async fn stream(&mut self) -> Result<(), LinkError> {
        loop {
            let deadline = self.last_keepalive + KEEPALIVE_TIMEOUT;
            let Some(m) = self.next(deadline, KEEPALIVE_TIMEOUT).await? else {
                return Ok(());
            };
            if let Some(m) = self.handle(m).await? {
                tracing::warn!(reader_id = %self.ctx.id(), id = m.id, msg_type = m.msg_type(), "unexpected llrp response");
            }
        }
    }

    fn fresh_id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }

    /// Sends a request and returns its response's body once its status is a success.
    async fn request(&mut self, body: Body) -> Result<Body, LinkError> {
        let name = request_name(body.msg_type());
        let id = self.fresh_id();
        self.send(llrp::Message::new(id, body)).await?;
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        loop {
            let Some(m) = self.next(deadline, ANSWER_TIMEOUT).await? else {
                return Err(closed(name));
            };
            let Some(m) = self.handle(m).await? else {
                continue;
            };
            if m.id != id {
                tracing::warn!(reader_id = %self.ctx.id(), id = m.id, msg_type = m.msg_type(), "llrp response to no request");
                continue;
            }
            let status = m.body.status().cloned().unwrap_or_default();
            if let Body::ErrorMessage(_) = m.body {
                return Err(LinkError::Protocol(format!("{name} answered by ERROR_MESSAGE: {}", describe(&status))));
            }
            if !status.is_success() {
                return Err(LinkError::Protocol(format!("{name} refused: {}", describe(&status))));
            }
            return Ok(m.body);
        }
    }

    async fn send(&mut self, m: llrp::Message) -> Result<(), LinkError> {
        let mut out = Vec::new();
        llrp::encode(&m, &mut out)
            .map_err(|e| LinkError::Protocol(format!("cannot encode llrp message type {}: {e}", m.msg_type())))?;
        self.io.write_all(&out).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// The next message; `None` when the reader closed the connection (a partial message is
    /// dropped with it).
    async fn next(&mut self, deadline: Instant, limit: Duration) -> Result<Option<llrp::Message>, LinkError> {
        loop {
            match llrp::decode(&mut self.buf) {
                Ok(Some(m)) => return Ok(Some(m)),
                Ok(None) => {}
                Err(error) => {
                    self.flush_reads().await?;
                    let fatal = error.is_fatal();
                    self.ctx
                        .emit(LinkEvent::Malformed { reader: self.ctx.id().to_string(), error: error.clone() })
                        .await?;
                    if fatal {
                        return Err(LinkError::Desync(error));
                    }
                    continue;
                }
            }
            self.flush_reads().await?;
            let n = match tokio::time::timeout_at(deadline, self.io.read(&mut self.chunk)).await {
                Ok(n) => n?,
                Err(_) => return Err(LinkError::Timeout(limit)),
            };
            if n == 0 {
                if !self.buf.is_empty() {
                    tracing::debug!(reader_id = %self.ctx.id(), n_bytes = self.buf.len(), "partial llrp message dropped");
                }
                return Ok(None);
            }
            self.received_at = self.ctx.now();
            self.buf.extend_from_slice(&self.chunk[..n]);
        }
    }

    /// Handles what the reader sends on its own; returns responses (and `ERROR_MESSAGE`s) to
    /// the caller.
    async fn handle(&mut self, m: llrp::Message) -> Result<Option<llrp::Message>, LinkError> {
        match &m.body {
            Body::Keepalive => {
                self.send(llrp::Message::new(m.id, Body::KeepaliveAck)).await?;
                self.last_keepalive = Instant::now();
            }
            Body::RoAccessReport(reports) => {
                for r in reports {
                    match r.to_tag_read() {
                        Some(read) => self.reads.push(read),
                        None => {
                            self.flush_reads().await?;
                            let error = DecodeError::Malformed {
                                protocol: llrp::PROTOCOL,
                                reason: format!("tag report of {} without a utc timestamp", r.epc.to_hex()),
                                bytes: r.epc.bytes().to_vec(),
                            };
                            self.ctx.emit(LinkEvent::Malformed { reader: self.ctx.id().to_string(), error }).await?;
                        }
                    }
                }
            }
            Body::ReaderEventNotification(data) => self.event(data).await?,
            b if b.status().is_some() => return Ok(Some(m)),
            b => {
                tracing::debug!(reader_id = %self.ctx.id(), msg_type = b.msg_type(), "llrp message ignored");
            }
        }
        Ok(None)
    }

    async fn event(&mut self, data: &ReaderEventNotificationData) -> Result<(), LinkError> {
        let id = self.ctx.id();
        if let (EventTimestamp::Utc(us), Some((sent, cue))) = (data.timestamp, self.clock_cue) {
            let answers = match cue {
                Cue::Connection => data.connection_attempt == Some(connection_attempt::SUCCESS),
                Cue::RoSpecStart => {
                    data.rospec_event.is_some_and(|e| e.event_type == ROSPEC_STARTED && e.rospec_id == ROSPEC_ID)
                }
            };
            if answers && let Ok(us) = i64::try_from(us) {
                self.clock_cue = None;
                let sample = ClockSample {
                    reader_time: ReaderTime::Utc(Timestamp::from_micros(us)),
                    sent,
                    received: self.received_at,
                    resolution: timing_core::Elapsed::from_micros(1),
                };
                self.flush_reads().await?;
                self.ctx.emit(LinkEvent::Clock { reader: id.to_string(), sample }).await?;
            }
        }
        if let Some(a) = data.antenna_event {
            if a.event_type == 0 {
                tracing::warn!(reader_id = %id, antenna = a.antenna_id, "llrp antenna disconnected");
            } else {
                tracing::info!(reader_id = %id, antenna = a.antenna_id, "llrp antenna connected");
            }
        }
        if data.connection_close {
            tracing::info!(reader_id = %id, "the llrp reader is closing the connection");
        }
        if let Some(e) = data.rospec_event {
            tracing::debug!(reader_id = %id, rospec_id = e.rospec_id, event = e.event_type, "llrp rospec event");
        }
        Ok(())
    }

    async fn flush_reads(&mut self) -> Result<(), LinkError> {
        if self.reads.is_empty() {
            return Ok(());
        }
        let reads = std::mem::take(&mut self.reads);
        self.ctx.emit(LinkEvent::Reads { reader: self.ctx.id().to_string(), reads, ack: None }).await
    }
}

/// The reader configuration the session sets (left as is: antenna settings).
fn reader_config() -> ReaderConfig {
    let wanted = [event_type::ROSPEC, event_type::ANTENNA];
    ReaderConfig {
        event_notifications: Some(
            (event_type::HOPPING..=event_type::ANTENNA)
                .map(|t| EventNotificationState { event_type: t, enabled: wanted.contains(&t) })
                .collect(),
        ),
        antenna_configurations: Vec::new(),
        ro_report_spec: Some(RoReportSpec::every_tag()),
        keepalive: Some(KeepaliveSpec::periodic(KEEPALIVE_PERIOD.as_millis() as u32)),
        hold_events_and_reports: Some(false),
    }
}

/// The race-timing ROSpec: inventory on every antenna from `ENABLE_ROSPEC` until deleted, C1G2
/// session 2 (a tag answers once while it stays in the field), one report per tag.
fn timing_rospec() -> RoSpec {
    RoSpec {
        rospec_id: ROSPEC_ID,
        priority: 0,
        current_state: 0,
        start_trigger: RoSpecStartTrigger::of_type(RoSpecStartTrigger::IMMEDIATE),
        stop_trigger: RoSpecStopTrigger::null(),
        ai_specs: vec![AiSpec {
            antenna_ids: vec![0],
            stop_trigger: AiSpecStopTrigger::null(),
            inventory_parameter_specs: vec![InventoryParameterSpec {
                spec_id: 1,
                protocol_id: 1,
                antenna_configurations: vec![AntennaConfiguration {
                    antenna_id: 0,
                    receiver_sensitivity: None,
                    transmitter: None,
                    inventory_commands: vec![C1G2InventoryCommand {
                        tag_inventory_state_aware: false,
                        rf_control: None,
                        singulation: Some(C1G2SingulationControl {
                            session: 2,
                            tag_population: 32,
                            tag_transit_time_ms: 0,
                        }),
                    }],
                }],
            }],
        }],
        report_spec: Some(RoReportSpec::every_tag()),
    }
}

fn closed(waiting_for: &str) -> LinkError {
    LinkError::Io(std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        format!("the reader closed the connection while the edge waited for {waiting_for}"),
    ))
}

fn request_name(msg_type: u16) -> &'static str {
    use llrp::msg_type as t;
    match msg_type {
        t::GET_READER_CAPABILITIES => "GET_READER_CAPABILITIES",
        t::SET_READER_CONFIG => "SET_READER_CONFIG",
        t::DELETE_ROSPEC => "DELETE_ROSPEC",
        t::ADD_ROSPEC => "ADD_ROSPEC",
        t::ENABLE_ROSPEC => "ENABLE_ROSPEC",
        t::START_ROSPEC => "START_ROSPEC",
        _ => "an llrp request",
    }
}

/// `M_ParameterError (100): <description>`, for logs and errors.
fn describe(status: &LlrpStatus) -> String {
    use status_code as c;
    let name = match status.code {
        c::M_SUCCESS => "M_Success",
        c::M_PARAMETER_ERROR => "M_ParameterError",
        c::M_FIELD_ERROR => "M_FieldError",
        c::M_UNEXPECTED_PARAMETER => "M_UnexpectedParameter",
        c::M_MISSING_PARAMETER => "M_MissingParameter",
        c::M_DUPLICATE_PARAMETER => "M_DuplicateParameter",
        c::M_OVERFLOW_PARAMETER => "M_OverflowParameter",
        c::M_OVERFLOW_FIELD => "M_OverflowField",
        c::M_UNKNOWN_PARAMETER => "M_UnknownParameter",
        c::M_UNKNOWN_FIELD => "M_UnknownField",
        c::M_UNSUPPORTED_MESSAGE => "M_UnsupportedMessage",
        c::M_UNSUPPORTED_VERSION => "M_UnsupportedVersion",
        c::M_UNSUPPORTED_PARAMETER => "M_UnsupportedParameter",
        c::P_PARAMETER_ERROR => "P_ParameterError",
        c::P_FIELD_ERROR => "P_FieldError",
        c::P_UNEXPECTED_PARAMETER => "P_UnexpectedParameter",
        c::P_MISSING_PARAMETER => "P_MissingParameter",
        c::P_DUPLICATE_PARAMETER => "P_DuplicateParameter",
        c::P_OVERFLOW_PARAMETER => "P_OverflowParameter",
        c::P_OVERFLOW_FIELD => "P_OverflowField",
        c::P_UNKNOWN_PARAMETER => "P_UnknownParameter",
        c::P_UNKNOWN_FIELD => "P_UnknownField",
        c::P_UNSUPPORTED_PARAMETER => "P_UnsupportedParameter",
        c::A_INVALID => "A_Invalid",
        c::A_OUT_OF_RANGE => "A_OutOfRange",
        c::R_DEVICE_ERROR => "R_DeviceError",
        _ => "unknown status",
    };
    let mut s = format!("{name} ({}): {:?}", status.code, status.description);
    if let Some(p) = status.parameter_error {
        s.push_str(&format!(", parameter type {} error {}", p.parameter_type, p.error_code));
    }
    if let Some(f) = status.field_error {
        s.push_str(&format!(", field {} error {}", f.field_num, f.error_code));
    }
    s
}

fn attempt_name(status: u16) -> &'static str {
    match status {
        connection_attempt::SUCCESS => "success",
        connection_attempt::FAILED_READER_INITIATED_CONNECTION_EXISTS => "a reader-initiated connection exists",
        connection_attempt::FAILED_CLIENT_INITIATED_CONNECTION_EXISTS => "another client is connected",
        connection_attempt::FAILED_OTHER_REASON => "failed for another reason",
        connection_attempt::ANOTHER_CONNECTION_ATTEMPTED => "another connection was attempted",
        _ => "unknown connection attempt status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timing_rospec_reports_every_tag_with_the_timing_fields_and_starts_on_enable() {
        let spec = timing_rospec();
        assert_eq!(spec.start_trigger.trigger_type, RoSpecStartTrigger::IMMEDIATE);
        assert_eq!(spec.report_spec, Some(RoReportSpec::every_tag()));
        assert_eq!(spec.report_spec.as_ref().map(|r| r.content.0), Some(0x1680));
        assert_eq!(spec.ai_specs[0].antenna_ids, vec![0]);
        let mut out = Vec::new();
        llrp::encode(&llrp::Message::new(7, Body::AddRoSpec(Box::new(spec.clone()))), &mut out).expect("encodes");
        assert_eq!(llrp::decode(&mut out).expect("decodes").map(|m| m.body), Some(Body::AddRoSpec(Box::new(spec))));
    }

    #[test]
    fn statuses_are_named_with_their_code_and_description() {
        let s = LlrpStatus::error(status_code::A_INVALID, "rospec 1 already exists");
        assert_eq!(describe(&s), "A_Invalid (300): \"rospec 1 already exists\"");
        assert_eq!(reader_config().keepalive, Some(KeepaliveSpec::periodic(1000)));
    }
}
