//! LLRP parameters: the typed subset a timing client and a reader emulator exchange.
//!
//! Each parameter is a plain struct with public fields and a `decode`/`encode` pair private to
//! the codec. Enumerated wire fields (trigger types, status codes, event types) stay raw integers
//! with named constants next to them: this is a codec, not a validator, and a reader emulator
//! must be able to see and refuse a value the spec does not allow rather than fail to decode it.
//!
//! Decoding accepts parameters in any order, keeps the last of a repeated 0–1 parameter, and
//! skips every TLV parameter it does not model (including vendor `Custom` parameters, type 1023).
//! A parameter the spec requires that is missing makes the message malformed.

use super::EncodeError;
use super::wire::{Cursor, Param, Params, Res, Writer, fault};

/// TLV and TV parameter type numbers (LLRP 1.0.1 section 16 and its Annex).
pub mod param_type {
    pub const ANTENNA_ID: u16 = 1;
    pub const FIRST_SEEN_TIMESTAMP_UTC: u16 = 2;
    pub const FIRST_SEEN_TIMESTAMP_UPTIME: u16 = 3;
    pub const LAST_SEEN_TIMESTAMP_UTC: u16 = 4;
    pub const LAST_SEEN_TIMESTAMP_UPTIME: u16 = 5;
    pub const PEAK_RSSI: u16 = 6;
    pub const CHANNEL_INDEX: u16 = 7;
    pub const TAG_SEEN_COUNT: u16 = 8;
    pub const ROSPEC_ID: u16 = 9;
    pub const INVENTORY_PARAMETER_SPEC_ID: u16 = 10;
    pub const C1G2_CRC: u16 = 11;
    pub const C1G2_PC: u16 = 12;
    pub const EPC_96: u16 = 13;
    pub const SPEC_INDEX: u16 = 14;
    pub const ACCESS_SPEC_ID: u16 = 16;
    pub const UTC_TIMESTAMP: u16 = 128;
    pub const UPTIME: u16 = 129;
    pub const GENERAL_DEVICE_CAPABILITIES: u16 = 137;
    pub const RECEIVE_SENSITIVITY_TABLE_ENTRY: u16 = 139;
    pub const PER_ANTENNA_AIR_PROTOCOL: u16 = 140;
    pub const GPIO_CAPABILITIES: u16 = 141;
    pub const LLRP_CAPABILITIES: u16 = 142;
    pub const REGULATORY_CAPABILITIES: u16 = 143;
    pub const UHF_BAND_CAPABILITIES: u16 = 144;
    pub const TRANSMIT_POWER_LEVEL_TABLE_ENTRY: u16 = 145;
    pub const FREQUENCY_INFORMATION: u16 = 146;
    pub const FREQUENCY_HOP_TABLE: u16 = 147;
    pub const FIXED_FREQUENCY_TABLE: u16 = 148;
    pub const ROSPEC: u16 = 177;
    pub const RO_BOUNDARY_SPEC: u16 = 178;
    pub const ROSPEC_START_TRIGGER: u16 = 179;
    pub const PERIODIC_TRIGGER_VALUE: u16 = 180;
    pub const GPI_TRIGGER_VALUE: u16 = 181;
    pub const ROSPEC_STOP_TRIGGER: u16 = 182;
    pub const AI_SPEC: u16 = 183;
    pub const AI_SPEC_STOP_TRIGGER: u16 = 184;
    pub const TAG_OBSERVATION_TRIGGER: u16 = 185;
    pub const INVENTORY_PARAMETER_SPEC: u16 = 186;
    pub const IDENTIFICATION: u16 = 218;
    pub const KEEPALIVE_SPEC: u16 = 220;
    pub const ANTENNA_CONFIGURATION: u16 = 222;
    pub const RF_RECEIVER: u16 = 223;
    pub const RF_TRANSMITTER: u16 = 224;
    pub const EVENTS_AND_REPORTS: u16 = 226;
    pub const RO_REPORT_SPEC: u16 = 237;
    pub const TAG_REPORT_CONTENT_SELECTOR: u16 = 238;
    pub const TAG_REPORT_DATA: u16 = 240;
    pub const EPC_DATA: u16 = 241;
    pub const READER_EVENT_NOTIFICATION_SPEC: u16 = 244;
    pub const EVENT_NOTIFICATION_STATE: u16 = 245;
    pub const READER_EVENT_NOTIFICATION_DATA: u16 = 246;
    pub const ROSPEC_EVENT: u16 = 249;
    pub const ANTENNA_EVENT: u16 = 255;
    pub const CONNECTION_ATTEMPT_EVENT: u16 = 256;
    pub const CONNECTION_CLOSE_EVENT: u16 = 257;
    pub const LLRP_STATUS: u16 = 287;
    pub const FIELD_ERROR: u16 = 288;
    pub const PARAMETER_ERROR: u16 = 289;
    pub const C1G2_LLRP_CAPABILITIES: u16 = 327;
    pub const C1G2_UHF_RF_MODE_TABLE: u16 = 328;
    pub const C1G2_UHF_RF_MODE_TABLE_ENTRY: u16 = 329;
    pub const C1G2_INVENTORY_COMMAND: u16 = 330;
    pub const C1G2_RF_CONTROL: u16 = 335;
    pub const C1G2_SINGULATION_CONTROL: u16 = 336;
    pub const C1G2_EPC_MEMORY_SELECTOR: u16 = 348;
    pub const CUSTOM: u16 = 1023;
}

use param_type as pt;

fn missing<T>(param: &str, parent: &str) -> Res<T> {
    fault!("{parent} is missing its {param} parameter")
}

fn flag(byte: u8, bit: u8) -> bool {
    byte & (1 << bit) != 0
}

fn bit(on: bool, bit: u8) -> u8 {
    u8::from(on) << bit
}

// ---------------------------------------------------------------------------------------------
// LLRPStatus

/// `LLRPStatus` (287): the outcome of a request, carried by every `*_RESPONSE` and `ERROR_MESSAGE`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LlrpStatus {
    /// See [`status_code`].
    pub code: u16,
    pub description: String,
    pub field_error: Option<FieldError>,
    pub parameter_error: Option<ParameterError>,
}

/// `FieldError` (288): which field of the message was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field_num: u16,
    pub error_code: u16,
}

/// `ParameterError` (289): which parameter was wrong. A nested `ParameterError` is not kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParameterError {
    pub parameter_type: u16,
    pub error_code: u16,
    pub field_error: Option<FieldError>,
}

/// `StatusCode` values (LLRP 1.0.1 section 16.2.8.1).
pub mod status_code {
    pub const M_SUCCESS: u16 = 0;
    pub const M_PARAMETER_ERROR: u16 = 100;
    pub const M_FIELD_ERROR: u16 = 101;
    pub const M_UNEXPECTED_PARAMETER: u16 = 102;
    pub const M_MISSING_PARAMETER: u16 = 103;
    pub const M_DUPLICATE_PARAMETER: u16 = 104;
    pub const M_OVERFLOW_PARAMETER: u16 = 105;
    pub const M_OVERFLOW_FIELD: u16 = 106;
    pub const M_UNKNOWN_PARAMETER: u16 = 107;
    pub const M_UNKNOWN_FIELD: u16 = 108;
    pub const M_UNSUPPORTED_MESSAGE: u16 = 109;
    pub const M_UNSUPPORTED_VERSION: u16 = 110;
    pub const M_UNSUPPORTED_PARAMETER: u16 = 111;
    pub const P_PARAMETER_ERROR: u16 = 200;
    pub const P_FIELD_ERROR: u16 = 201;
    pub const P_UNEXPECTED_PARAMETER: u16 = 202;
    pub const P_MISSING_PARAMETER: u16 = 203;
    pub const P_DUPLICATE_PARAMETER: u16 = 204;
    pub const P_OVERFLOW_PARAMETER: u16 = 205;
    pub const P_OVERFLOW_FIELD: u16 = 206;
    pub const P_UNKNOWN_PARAMETER: u16 = 207;
    pub const P_UNKNOWN_FIELD: u16 = 208;
    pub const P_UNSUPPORTED_PARAMETER: u16 = 209;
    pub const A_INVALID: u16 = 300;
    pub const A_OUT_OF_RANGE: u16 = 301;
    pub const R_DEVICE_ERROR: u16 = 401;
}

impl LlrpStatus {
    /// `M_Success` with an empty description.
    pub fn success() -> LlrpStatus {
        LlrpStatus::default()
    }

    /// A failure with a code from [`status_code`] and a human-readable description.
    pub fn error(code: u16, description: impl Into<String>) -> LlrpStatus {
        LlrpStatus { code, description: description.into(), field_error: None, parameter_error: None }
    }

    pub fn is_success(&self) -> bool {
        self.code == status_code::M_SUCCESS
    }

    fn decode(v: &[u8]) -> Res<LlrpStatus> {
        let mut c = Cursor::new(v);
        let code = c.u16("llrp status code")?;
        let description = c.utf8("llrp status description")?;
        let mut status = LlrpStatus { code, description, field_error: None, parameter_error: None };
        for p in Params::new(c.rest()) {
            let p = p?;
            match p.ty {
                pt::FIELD_ERROR => status.field_error = Some(FieldError::decode(p.value)?),
                pt::PARAMETER_ERROR => {
                    let mut c = Cursor::new(p.value);
                    let parameter_type = c.u16("parameter error type")?;
                    let error_code = c.u16("parameter error code")?;
                    let mut field_error = None;
                    for q in Params::new(c.rest()) {
                        let q = q?;
                        if q.ty == pt::FIELD_ERROR {
                            field_error = Some(FieldError::decode(q.value)?);
                        }
                    }
                    status.parameter_error = Some(ParameterError { parameter_type, error_code, field_error });
                }
                _ => {}
            }
        }
        Ok(status)
    }

    pub(super) fn encode(&self, w: &mut Writer<'_>) {
        w.tlv(pt::LLRP_STATUS, |w| {
            w.u16(self.code);
            w.counted("llrp status description", self.description.as_bytes());
            if let Some(fe) = self.field_error {
                fe.encode(w);
            }
            if let Some(pe) = self.parameter_error {
                w.tlv(pt::PARAMETER_ERROR, |w| {
                    w.u16(pe.parameter_type);
                    w.u16(pe.error_code);
                    if let Some(fe) = pe.field_error {
                        fe.encode(w);
                    }
                });
            }
        });
    }
}

impl FieldError {
    fn decode(v: &[u8]) -> Res<FieldError> {
        let mut c = Cursor::new(v);
        Ok(FieldError { field_num: c.u16("field error number")?, error_code: c.u16("field error code")? })
    }
    fn encode(self, w: &mut Writer<'_>) {
        w.tlv(pt::FIELD_ERROR, |w| {
            w.u16(self.field_num);
            w.u16(self.error_code);
        });
    }
}

/// Finds the mandatory `LLRPStatus` in a response's parameter list.
pub(super) fn decode_status_only(body: &[u8], message: &str) -> Res<LlrpStatus> {
    let mut status = None;
    for p in Params::new(body) {
        let p = p?;
        if p.ty == pt::LLRP_STATUS {
            status = Some(LlrpStatus::decode(p.value)?);
        }
    }
    match status {
        Some(s) => Ok(s),
        None => missing("LLRPStatus", message),
    }
}

// ---------------------------------------------------------------------------------------------
// Reader configuration

/// `EventNotificationState` (245): turns one reader event type on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventNotificationState {
    /// See [`event_type`].
    pub event_type: u16,
    pub enabled: bool,
}

/// `EventNotificationState.EventType` values.
pub mod event_type {
    pub const HOPPING: u16 = 0;
    pub const GPI: u16 = 1;
    pub const ROSPEC: u16 = 2;
    pub const REPORT_BUFFER_FILL_WARNING: u16 = 3;
    pub const READER_EXCEPTION: u16 = 4;
    pub const RF_SURVEY: u16 = 5;
    pub const AI_SPEC: u16 = 6;
    pub const AI_SPEC_WITH_SINGULATION: u16 = 7;
    pub const ANTENNA: u16 = 8;
}

/// `KeepaliveSpec` (220).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepaliveSpec {
    /// 0 = Null (no keepalives), 1 = Periodic.
    pub trigger_type: u8,
    pub interval_ms: u32,
}

impl KeepaliveSpec {
    /// A `KEEPALIVE` every `interval_ms`.
    pub fn periodic(interval_ms: u32) -> KeepaliveSpec {
        KeepaliveSpec { trigger_type: 1, interval_ms }
    }
}

/// `TagReportContentSelector` (238) bit field; combine the constants with `|`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ContentSelector(pub u16);

impl ContentSelector {
    pub const ROSPEC_ID: u16 = 0x8000;
    pub const SPEC_INDEX: u16 = 0x4000;
    pub const INVENTORY_PARAMETER_SPEC_ID: u16 = 0x2000;
    pub const ANTENNA_ID: u16 = 0x1000;
    pub const CHANNEL_INDEX: u16 = 0x0800;
    pub const PEAK_RSSI: u16 = 0x0400;
    pub const FIRST_SEEN_TIMESTAMP: u16 = 0x0200;
    pub const LAST_SEEN_TIMESTAMP: u16 = 0x0100;
    pub const TAG_SEEN_COUNT: u16 = 0x0080;
    pub const ACCESS_SPEC_ID: u16 = 0x0040;
    /// What a timing client needs: antenna, peak RSSI, first-seen time and seen count (`0x1680`).
    pub const TIMING: ContentSelector =
        ContentSelector(Self::ANTENNA_ID | Self::PEAK_RSSI | Self::FIRST_SEEN_TIMESTAMP | Self::TAG_SEEN_COUNT);

    pub fn contains(self, bits: u16) -> bool {
        self.0 & bits == bits
    }
}

/// `C1G2EPCMemorySelector` (348): whether reports carry the tag's CRC and PC words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct C1G2EpcMemorySelector {
    pub crc: bool,
    pub pc_bits: bool,
}

/// `ROReportSpec` (237) with its `TagReportContentSelector`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoReportSpec {
    /// 0 = None, 1 = Upon_N_Tags_Or_End_Of_AISpec, 2 = Upon_N_Tags_Or_End_Of_ROSpec.
    pub trigger: u8,
    /// Report after this many tags (0 = only at the end of the spec).
    pub n: u16,
    pub content: ContentSelector,
    pub epc_memory_selector: Option<C1G2EpcMemorySelector>,
}

impl RoReportSpec {
    pub const TRIGGER_NONE: u8 = 0;
    pub const TRIGGER_N_TAGS_OR_END_OF_AI_SPEC: u8 = 1;
    pub const TRIGGER_N_TAGS_OR_END_OF_ROSPEC: u8 = 2;

    /// One report per tag with the [`ContentSelector::TIMING`] fields.
    pub fn every_tag() -> RoReportSpec {
        RoReportSpec {
            trigger: Self::TRIGGER_N_TAGS_OR_END_OF_ROSPEC,
            n: 1,
            content: ContentSelector::TIMING,
            epc_memory_selector: None,
        }
    }

    fn decode(v: &[u8]) -> Res<RoReportSpec> {
        let mut c = Cursor::new(v);
        let trigger = c.u8("ro report trigger")?;
        let n = c.u16("ro report n")?;
        let mut selector = None;
        for p in Params::new(c.rest()) {
            let p = p?;
            if p.ty == pt::TAG_REPORT_CONTENT_SELECTOR {
                let mut c = Cursor::new(p.value);
                let bits = c.u16("tag report content selector")?;
                let mut epc = None;
                for q in Params::new(c.rest()) {
                    let q = q?;
                    if q.ty == pt::C1G2_EPC_MEMORY_SELECTOR {
                        let b = Cursor::new(q.value).u8("c1g2 epc memory selector")?;
                        epc = Some(C1G2EpcMemorySelector { crc: flag(b, 7), pc_bits: flag(b, 6) });
                    }
                }
                selector = Some((ContentSelector(bits), epc));
            }
        }
        let Some((content, epc_memory_selector)) = selector else {
            return missing("TagReportContentSelector", "ROReportSpec");
        };
        Ok(RoReportSpec { trigger, n, content, epc_memory_selector })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.tlv(pt::RO_REPORT_SPEC, |w| {
            w.u8(self.trigger);
            w.u16(self.n);
            w.tlv(pt::TAG_REPORT_CONTENT_SELECTOR, |w| {
                w.u16(self.content.0);
                if let Some(s) = self.epc_memory_selector {
                    w.tlv(pt::C1G2_EPC_MEMORY_SELECTOR, |w| {
                        w.u8(bit(s.crc, 7) | bit(s.pc_bits, 6));
                    });
                }
            });
        });
    }
}

/// The configuration parameters shared by `SET_READER_CONFIG` and `GET_READER_CONFIG_RESPONSE`.
///
/// `None` / empty means the parameter is absent (left unchanged by a `SET_READER_CONFIG`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ReaderConfig {
    /// `ReaderEventNotificationSpec` (244): its `EventNotificationState` list.
    pub event_notifications: Option<Vec<EventNotificationState>>,
    pub antenna_configurations: Vec<AntennaConfiguration>,
    pub ro_report_spec: Option<RoReportSpec>,
    pub keepalive: Option<KeepaliveSpec>,
    /// `EventsAndReports` (226): hold events and reports until `ENABLE_EVENTS_AND_REPORTS`
    /// after a reconnect.
    pub hold_events_and_reports: Option<bool>,
}

impl ReaderConfig {
    /// Takes one parameter if it belongs to the reader configuration; `Ok(false)` otherwise.
    fn absorb(&mut self, p: Param<'_>) -> Res<bool> {
        match p.ty {
            pt::READER_EVENT_NOTIFICATION_SPEC => {
                let mut states = Vec::new();
                for q in Params::new(p.value) {
                    let q = q?;
                    if q.ty == pt::EVENT_NOTIFICATION_STATE {
                        let mut c = Cursor::new(q.value);
                        let event_type = c.u16("event notification type")?;
                        let enabled = flag(c.u8("event notification state")?, 7);
                        states.push(EventNotificationState { event_type, enabled });
                    }
                }
                self.event_notifications = Some(states);
            }
            pt::ANTENNA_CONFIGURATION => self.antenna_configurations.push(AntennaConfiguration::decode(p.value)?),
            pt::RO_REPORT_SPEC => self.ro_report_spec = Some(RoReportSpec::decode(p.value)?),
            pt::KEEPALIVE_SPEC => {
                let mut c = Cursor::new(p.value);
                let trigger_type = c.u8("keepalive trigger type")?;
                let interval_ms = c.u32("keepalive interval")?;
                self.keepalive = Some(KeepaliveSpec { trigger_type, interval_ms });
            }
            pt::EVENTS_AND_REPORTS => {
                let b = Cursor::new(p.value).u8("events and reports hold")?;
                self.hold_events_and_reports = Some(flag(b, 7));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn encode_event_notifications(&self, w: &mut Writer<'_>) {
        if let Some(states) = &self.event_notifications {
            w.tlv(pt::READER_EVENT_NOTIFICATION_SPEC, |w| {
                for s in states {
                    w.tlv(pt::EVENT_NOTIFICATION_STATE, |w| {
                        w.u16(s.event_type);
                        w.u8(bit(s.enabled, 7));
                    });
                }
            });
        }
    }

    fn encode_tail(&self, w: &mut Writer<'_>) {
        if let Some(k) = self.keepalive {
            w.tlv(pt::KEEPALIVE_SPEC, |w| {
                w.u8(k.trigger_type);
                w.u32(k.interval_ms);
            });
        }
        if let Some(hold) = self.hold_events_and_reports {
            w.tlv(pt::EVENTS_AND_REPORTS, |w| w.u8(bit(hold, 7)));
        }
    }

    /// Parameter order of `SET_READER_CONFIG`.
    pub(super) fn encode_for_set(&self, w: &mut Writer<'_>) {
        self.encode_event_notifications(w);
        for a in &self.antenna_configurations {
            a.encode(w);
        }
        if let Some(r) = &self.ro_report_spec {
            r.encode(w);
        }
        self.encode_tail(w);
    }

    /// Parameter order of `GET_READER_CONFIG_RESPONSE`.
    pub(super) fn encode_for_get(&self, w: &mut Writer<'_>) {
        for a in &self.antenna_configurations {
            a.encode(w);
        }
        self.encode_event_notifications(w);
        if let Some(r) = &self.ro_report_spec {
            r.encode(w);
        }
        self.encode_tail(w);
    }
}

/// `SET_READER_CONFIG` fields.
pub(super) fn decode_set_reader_config(body: &[u8]) -> Res<(bool, ReaderConfig)> {
    let mut c = Cursor::new(body);
    let reset = flag(c.u8("reset to factory default")?, 7);
    let mut config = ReaderConfig::default();
    for p in Params::new(c.rest()) {
        config.absorb(p?)?;
    }
    Ok((reset, config))
}

/// `Identification` (218): the reader's MAC (EUI-64) or EPC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identification {
    /// 0 = MAC address (EUI-64), 1 = EPC.
    pub id_type: u8,
    pub reader_id: Vec<u8>,
}

/// `GET_READER_CONFIG_RESPONSE` contents.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ReaderConfigResponse {
    pub status: LlrpStatus,
    pub identification: Option<Identification>,
    pub config: ReaderConfig,
}

impl ReaderConfigResponse {
    pub(super) fn decode(body: &[u8]) -> Res<ReaderConfigResponse> {
        let mut status = None;
        let mut identification = None;
        let mut config = ReaderConfig::default();
        for p in Params::new(body) {
            let p = p?;
            match p.ty {
                pt::LLRP_STATUS => status = Some(LlrpStatus::decode(p.value)?),
                pt::IDENTIFICATION => {
                    let mut c = Cursor::new(p.value);
                    let id_type = c.u8("identification type")?;
                    let n = usize::from(c.u16("identification length")?);
                    let reader_id = c.take(n, "identification reader id")?.to_vec();
                    identification = Some(Identification { id_type, reader_id });
                }
                _ => {
                    config.absorb(p)?;
                }
            }
        }
        let Some(status) = status else {
            return missing("LLRPStatus", "GET_READER_CONFIG_RESPONSE");
        };
        Ok(ReaderConfigResponse { status, identification, config })
    }

    pub(super) fn encode(&self, w: &mut Writer<'_>) {
        self.status.encode(w);
        if let Some(id) = &self.identification {
            w.tlv(pt::IDENTIFICATION, |w| {
                w.u8(id.id_type);
                w.counted("identification reader id", &id.reader_id);
            });
        }
        self.config.encode_for_get(w);
    }
}

// ---------------------------------------------------------------------------------------------
// ROSpec

/// `ROSpec` (177): what to inventory, on which antennas, when to start and stop, what to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoSpec {
    pub rospec_id: u32,
    pub priority: u8,
    /// 0 = Disabled, 1 = Inactive, 2 = Active (`ADD_ROSPEC` requires Disabled).
    pub current_state: u8,
    pub start_trigger: RoSpecStartTrigger,
    pub stop_trigger: RoSpecStopTrigger,
    /// The `AISpec` spec parameters, in order. `RFSurveySpec` and custom specs are skipped.
    pub ai_specs: Vec<AiSpec>,
    pub report_spec: Option<RoReportSpec>,
}

/// `ROSpecStartTrigger` (179).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoSpecStartTrigger {
    /// 0 = Null (`START_ROSPEC` starts it), 1 = Immediate, 2 = Periodic, 3 = GPI.
    pub trigger_type: u8,
    pub periodic: Option<PeriodicTriggerValue>,
    pub gpi: Option<GpiTriggerValue>,
}

impl RoSpecStartTrigger {
    pub const NULL: u8 = 0;
    pub const IMMEDIATE: u8 = 1;
    pub const PERIODIC: u8 = 2;
    pub const GPI: u8 = 3;

    pub fn of_type(trigger_type: u8) -> RoSpecStartTrigger {
        RoSpecStartTrigger { trigger_type, periodic: None, gpi: None }
    }
}

/// `PeriodicTriggerValue` (180).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeriodicTriggerValue {
    pub offset_ms: u32,
    pub period_ms: u32,
    pub utc_us: Option<u64>,
}

/// `GPITriggerValue` (181).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpiTriggerValue {
    pub port: u16,
    pub event: bool,
    pub timeout_ms: u32,
}

/// `ROSpecStopTrigger` (182).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoSpecStopTrigger {
    /// 0 = Null (runs until `STOP_ROSPEC`), 1 = Duration, 2 = GPI with timeout.
    pub trigger_type: u8,
    pub duration_ms: u32,
    pub gpi: Option<GpiTriggerValue>,
}

impl RoSpecStopTrigger {
    pub const NULL: u8 = 0;
    pub const DURATION: u8 = 1;
    pub const GPI_WITH_TIMEOUT: u8 = 2;

    /// Runs until stopped.
    pub fn null() -> RoSpecStopTrigger {
        RoSpecStopTrigger { trigger_type: Self::NULL, duration_ms: 0, gpi: None }
    }
}

/// `AISpec` (183): an antenna inventory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AiSpec {
    /// Antenna ids; `[0]` means all antennas.
    pub antenna_ids: Vec<u16>,
    pub stop_trigger: AiSpecStopTrigger,
    pub inventory_parameter_specs: Vec<InventoryParameterSpec>,
}

/// `AISpecStopTrigger` (184).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AiSpecStopTrigger {
    /// 0 = Null, 1 = Duration, 2 = GPI with timeout, 3 = Tag observation.
    pub trigger_type: u8,
    pub duration_ms: u32,
    pub gpi: Option<GpiTriggerValue>,
    pub tag_observation: Option<TagObservationTrigger>,
}

impl AiSpecStopTrigger {
    pub const NULL: u8 = 0;
    pub const DURATION: u8 = 1;
    pub const GPI_WITH_TIMEOUT: u8 = 2;
    pub const TAG_OBSERVATION: u8 = 3;

    /// Runs until the ROSpec stops.
    pub fn null() -> AiSpecStopTrigger {
        AiSpecStopTrigger { trigger_type: Self::NULL, duration_ms: 0, gpi: None, tag_observation: None }
    }
}

/// `TagObservationTrigger` (185).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagObservationTrigger {
    /// 0 = Upon seeing N tags or timeout, 1 = no more new tags for T ms or timeout,
    /// 2 = N attempts to see all tags or timeout.
    pub trigger_type: u8,
    pub number_of_tags: u16,
    pub number_of_attempts: u16,
    pub t_ms: u16,
    pub timeout_ms: u32,
}

/// `InventoryParameterSpec` (186).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InventoryParameterSpec {
    pub spec_id: u16,
    /// 1 = EPCglobal Class 1 Gen 2.
    pub protocol_id: u8,
    pub antenna_configurations: Vec<AntennaConfiguration>,
}

/// `AntennaConfiguration` (222): per-antenna radio settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AntennaConfiguration {
    /// 0 = all antennas.
    pub antenna_id: u16,
    /// `RFReceiver` (223): index into the receive sensitivity table.
    pub receiver_sensitivity: Option<u16>,
    pub transmitter: Option<RfTransmitter>,
    pub inventory_commands: Vec<C1G2InventoryCommand>,
}

/// `RFTransmitter` (224).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RfTransmitter {
    pub hop_table_id: u16,
    pub channel_index: u16,
    /// Index into the transmit power table.
    pub transmit_power: u16,
}

/// `C1G2InventoryCommand` (330). `C1G2Filter` and vendor parameters inside it are skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct C1G2InventoryCommand {
    pub tag_inventory_state_aware: bool,
    /// `C1G2RFControl` (335).
    pub rf_control: Option<C1G2RfControl>,
    /// `C1G2SingulationControl` (336).
    pub singulation: Option<C1G2SingulationControl>,
}

/// `C1G2RFControl` (335).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct C1G2RfControl {
    pub mode_index: u16,
    pub tari_ns: u16,
}

/// `C1G2SingulationControl` (336).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct C1G2SingulationControl {
    /// Gen2 session 0–3 (two bits on the wire; higher bits are dropped).
    pub session: u8,
    pub tag_population: u16,
    pub tag_transit_time_ms: u32,
}

impl GpiTriggerValue {
    fn decode(v: &[u8]) -> Res<GpiTriggerValue> {
        let mut c = Cursor::new(v);
        let port = c.u16("gpi port")?;
        let event = flag(c.u8("gpi event")?, 7);
        let timeout_ms = c.u32("gpi timeout")?;
        Ok(GpiTriggerValue { port, event, timeout_ms })
    }
    fn encode(self, w: &mut Writer<'_>) {
        w.tlv(pt::GPI_TRIGGER_VALUE, |w| {
            w.u16(self.port);
            w.u8(bit(self.event, 7));
            w.u32(self.timeout_ms);
        });
    }
}

impl RoSpec {
    pub(super) fn decode(v: &[u8]) -> Res<RoSpec> {
        let mut c = Cursor::new(v);
        let rospec_id = c.u32("rospec id")?;
        let priority = c.u8("rospec priority")?;
        let current_state = c.u8("rospec state")?;
        let mut boundary = None;
        let mut ai_specs = Vec::new();
        let mut report_spec = None;
        for p in Params::new(c.rest()) {
            let p = p?;
            match p.ty {
                pt::RO_BOUNDARY_SPEC => boundary = Some(decode_boundary(p.value)?),
                pt::AI_SPEC => ai_specs.push(AiSpec::decode(p.value)?),
                pt::RO_REPORT_SPEC => report_spec = Some(RoReportSpec::decode(p.value)?),
                _ => {}
            }
        }
        let Some((start_trigger, stop_trigger)) = boundary else {
            return missing("ROBoundarySpec", "ROSpec");
        };
        Ok(RoSpec { rospec_id, priority, current_state, start_trigger, stop_trigger, ai_specs, report_spec })
    }

    pub(super) fn encode(&self, w: &mut Writer<'_>) {
        w.tlv(pt::ROSPEC, |w| {
            w.u32(self.rospec_id);
            w.u8(self.priority);
            w.u8(self.current_state);
            w.tlv(pt::RO_BOUNDARY_SPEC, |w| {
                let s = &self.start_trigger;
                w.tlv(pt::ROSPEC_START_TRIGGER, |w| {
                    w.u8(s.trigger_type);
                    if let Some(p) = s.periodic {
                        w.tlv(pt::PERIODIC_TRIGGER_VALUE, |w| {
                            w.u32(p.offset_ms);
                            w.u32(p.period_ms);
                            if let Some(t) = p.utc_us {
                                w.tlv(pt::UTC_TIMESTAMP, |w| w.u64(t));
                            }
                        });
                    }
                    if let Some(g) = s.gpi {
                        g.encode(w);
                    }
                });
                let s = &self.stop_trigger;
                w.tlv(pt::ROSPEC_STOP_TRIGGER, |w| {
                    w.u8(s.trigger_type);
                    w.u32(s.duration_ms);
                    if let Some(g) = s.gpi {
                        g.encode(w);
                    }
                });
            });
            for a in &self.ai_specs {
                a.encode(w);
            }
            if let Some(r) = &self.report_spec {
                r.encode(w);
            }
        });
    }
}

fn decode_boundary(v: &[u8]) -> Res<(RoSpecStartTrigger, RoSpecStopTrigger)> {
    let mut start = None;
    let mut stop = None;
    for p in Params::new(v) {
        let p = p?;
        match p.ty {
            pt::ROSPEC_START_TRIGGER => {
                let mut c = Cursor::new(p.value);
                let mut t = RoSpecStartTrigger::of_type(c.u8("rospec start trigger type")?);
                for q in Params::new(c.rest()) {
                    let q = q?;
                    match q.ty {
                        pt::PERIODIC_TRIGGER_VALUE => {
                            let mut c = Cursor::new(q.value);
                            let offset_ms = c.u32("periodic trigger offset")?;
                            let period_ms = c.u32("periodic trigger period")?;
                            let mut utc_us = None;
                            for r in Params::new(c.rest()) {
                                let r = r?;
                                if r.ty == pt::UTC_TIMESTAMP {
                                    utc_us = Some(Cursor::new(r.value).u64("utc timestamp")?);
                                }
                            }
                            t.periodic = Some(PeriodicTriggerValue { offset_ms, period_ms, utc_us });
                        }
                        pt::GPI_TRIGGER_VALUE => t.gpi = Some(GpiTriggerValue::decode(q.value)?),
                        _ => {}
                    }
                }
                start = Some(t);
            }
            pt::ROSPEC_STOP_TRIGGER => {
                let mut c = Cursor::new(p.value);
                let trigger_type = c.u8("rospec stop trigger type")?;
                let duration_ms = c.u32("rospec stop duration")?;
                let mut gpi = None;
                for q in Params::new(c.rest()) {
                    let q = q?;
                    if q.ty == pt::GPI_TRIGGER_VALUE {
                        gpi = Some(GpiTriggerValue::decode(q.value)?);
                    }
                }
                stop = Some(RoSpecStopTrigger { trigger_type, duration_ms, gpi });
            }
            _ => {}
        }
    }
    match (start, stop) {
        (Some(a), Some(b)) => Ok((a, b)),
        (None, _) => missing("ROSpecStartTrigger", "ROBoundarySpec"),
        (_, None) => missing("ROSpecStopTrigger", "ROBoundarySpec"),
    }
}

impl AiSpec {
    fn decode(v: &[u8]) -> Res<AiSpec> {
        let mut c = Cursor::new(v);
        let n = c.u16("aispec antenna count")?;
        let mut antenna_ids = Vec::with_capacity(usize::from(n).min(c.rest().len() / 2));
        for _ in 0..n {
            antenna_ids.push(c.u16("aispec antenna id")?);
        }
        let mut stop = None;
        let mut inventory_parameter_specs = Vec::new();
        for p in Params::new(c.rest()) {
            let p = p?;
            match p.ty {
                pt::AI_SPEC_STOP_TRIGGER => {
                    let mut c = Cursor::new(p.value);
                    let mut t = AiSpecStopTrigger::null();
                    t.trigger_type = c.u8("aispec stop trigger type")?;
                    t.duration_ms = c.u32("aispec stop duration")?;
                    for q in Params::new(c.rest()) {
                        let q = q?;
                        match q.ty {
                            pt::GPI_TRIGGER_VALUE => t.gpi = Some(GpiTriggerValue::decode(q.value)?),
                            pt::TAG_OBSERVATION_TRIGGER => {
                                let mut c = Cursor::new(q.value);
                                let trigger_type = c.u8("tag observation trigger type")?;
                                c.u8("tag observation reserved")?;
                                let number_of_tags = c.u16("tag observation number of tags")?;
                                let number_of_attempts = c.u16("tag observation number of attempts")?;
                                let t_ms = c.u16("tag observation t")?;
                                let timeout_ms = c.u32("tag observation timeout")?;
                                t.tag_observation = Some(TagObservationTrigger {
                                    trigger_type,
                                    number_of_tags,
                                    number_of_attempts,
                                    t_ms,
                                    timeout_ms,
                                });
                            }
                            _ => {}
                        }
                    }
                    stop = Some(t);
                }
                pt::INVENTORY_PARAMETER_SPEC => {
                    let mut c = Cursor::new(p.value);
                    let spec_id = c.u16("inventory parameter spec id")?;
                    let protocol_id = c.u8("inventory parameter spec protocol")?;
                    let mut antenna_configurations = Vec::new();
                    for q in Params::new(c.rest()) {
                        let q = q?;
                        if q.ty == pt::ANTENNA_CONFIGURATION {
                            antenna_configurations.push(AntennaConfiguration::decode(q.value)?);
                        }
                    }
                    inventory_parameter_specs.push(InventoryParameterSpec {
                        spec_id,
                        protocol_id,
                        antenna_configurations,
                    });
                }
                _ => {}
            }
        }
        let Some(stop_trigger) = stop else {
            return missing("AISpecStopTrigger", "AISpec");
        };
        if inventory_parameter_specs.is_empty() {
            return missing("InventoryParameterSpec", "AISpec");
        }
        Ok(AiSpec { antenna_ids, stop_trigger, inventory_parameter_specs })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.tlv(pt::AI_SPEC, |w| {
            w.count("aispec antenna count", self.antenna_ids.len());
            for &a in &self.antenna_ids {
                w.u16(a);
            }
            let s = &self.stop_trigger;
            w.tlv(pt::AI_SPEC_STOP_TRIGGER, |w| {
                w.u8(s.trigger_type);
                w.u32(s.duration_ms);
                if let Some(g) = s.gpi {
                    g.encode(w);
                }
                if let Some(t) = s.tag_observation {
                    w.tlv(pt::TAG_OBSERVATION_TRIGGER, |w| {
                        w.u8(t.trigger_type);
                        w.u8(0);
                        w.u16(t.number_of_tags);
                        w.u16(t.number_of_attempts);
                        w.u16(t.t_ms);
                        w.u32(t.timeout_ms);
                    });
                }
            });
            for ips in &self.inventory_parameter_specs {
                w.tlv(pt::INVENTORY_PARAMETER_SPEC, |w| {
                    w.u16(ips.spec_id);
                    w.u8(ips.protocol_id);
                    for a in &ips.antenna_configurations {
                        a.encode(w);
                    }
                });
            }
        });
    }
}

impl AntennaConfiguration {
    fn decode(v: &[u8]) -> Res<AntennaConfiguration> {
        let mut c = Cursor::new(v);
        let antenna_id = c.u16("antenna configuration antenna id")?;
        let mut a = AntennaConfiguration {
            antenna_id,
            receiver_sensitivity: None,
            transmitter: None,
            inventory_commands: Vec::new(),
        };
        for p in Params::new(c.rest()) {
            let p = p?;
            match p.ty {
                pt::RF_RECEIVER => a.receiver_sensitivity = Some(Cursor::new(p.value).u16("rf receiver sensitivity")?),
                pt::RF_TRANSMITTER => {
                    let mut c = Cursor::new(p.value);
                    a.transmitter = Some(RfTransmitter {
                        hop_table_id: c.u16("rf transmitter hop table id")?,
                        channel_index: c.u16("rf transmitter channel index")?,
                        transmit_power: c.u16("rf transmitter power")?,
                    });
                }
                pt::C1G2_INVENTORY_COMMAND => {
                    let mut c = Cursor::new(p.value);
                    let mut cmd = C1G2InventoryCommand {
                        tag_inventory_state_aware: flag(c.u8("c1g2 inventory command flags")?, 7),
                        rf_control: None,
                        singulation: None,
                    };
                    for q in Params::new(c.rest()) {
                        let q = q?;
                        match q.ty {
                            pt::C1G2_RF_CONTROL => {
                                let mut c = Cursor::new(q.value);
                                cmd.rf_control = Some(C1G2RfControl {
                                    mode_index: c.u16("c1g2 rf control mode index")?,
                                    tari_ns: c.u16("c1g2 rf control tari")?,
                                });
                            }
                            pt::C1G2_SINGULATION_CONTROL => {
                                let mut c = Cursor::new(q.value);
                                let session = c.u8("c1g2 singulation session")? >> 6;
                                let tag_population = c.u16("c1g2 singulation tag population")?;
                                let tag_transit_time_ms = c.u32("c1g2 singulation tag transit time")?;
                                cmd.singulation =
                                    Some(C1G2SingulationControl { session, tag_population, tag_transit_time_ms });
                            }
                            _ => {}
                        }
                    }
                    a.inventory_commands.push(cmd);
                }
                _ => {}
            }
        }
        Ok(a)
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.tlv(pt::ANTENNA_CONFIGURATION, |w| {
            w.u16(self.antenna_id);
            if let Some(s) = self.receiver_sensitivity {
                w.tlv(pt::RF_RECEIVER, |w| w.u16(s));
            }
            if let Some(t) = self.transmitter {
                w.tlv(pt::RF_TRANSMITTER, |w| {
                    w.u16(t.hop_table_id);
                    w.u16(t.channel_index);
                    w.u16(t.transmit_power);
                });
            }
            for cmd in &self.inventory_commands {
                w.tlv(pt::C1G2_INVENTORY_COMMAND, |w| {
                    w.u8(bit(cmd.tag_inventory_state_aware, 7));
                    if let Some(r) = cmd.rf_control {
                        w.tlv(pt::C1G2_RF_CONTROL, |w| {
                            w.u16(r.mode_index);
                            w.u16(r.tari_ns);
                        });
                    }
                    if let Some(s) = cmd.singulation {
                        w.tlv(pt::C1G2_SINGULATION_CONTROL, |w| {
                            w.u8((s.session & 0x3) << 6);
                            w.u16(s.tag_population);
                            w.u32(s.tag_transit_time_ms);
                        });
                    }
                });
            }
        });
    }
}

/// Finds the `ROSpec` in an `ADD_ROSPEC` body.
pub(super) fn decode_add_rospec(body: &[u8]) -> Res<RoSpec> {
    let mut spec = None;
    for p in Params::new(body) {
        let p = p?;
        if p.ty == pt::ROSPEC {
            spec = Some(RoSpec::decode(p.value)?);
        }
    }
    match spec {
        Some(s) => Ok(s),
        None => missing("ROSpec", "ADD_ROSPEC"),
    }
}

// ---------------------------------------------------------------------------------------------
// Tag reports

/// A tag's EPC as reported: the 96-bit TV form, or `EPCData` of any bit length.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Epc {
    /// `EPC-96` (TV 13).
    Epc96([u8; 12]),
    /// `EPCData` (241): `bit_len` bits, left-aligned in `bytes` (`bytes.len() == bit_len.div_ceil(8)`).
    Bits { bit_len: u16, bytes: Vec<u8> },
}

impl Epc {
    /// The EPC bytes (for `Bits`, the last byte may carry unused low bits).
    pub fn bytes(&self) -> &[u8] {
        match self {
            Epc::Epc96(b) => b,
            Epc::Bits { bytes, .. } => bytes,
        }
    }

    /// Upper-case hex of [`Epc::bytes`], no separators: the chip code racetime matches on.
    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let bytes = self.bytes();
        let mut s = String::with_capacity(bytes.len() * 2);
        for &b in bytes {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        s
    }
}

/// `TagReportData` (240): one tag seen, with the fields the `TagReportContentSelector` enabled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagReportData {
    pub epc: Epc,
    pub rospec_id: Option<u32>,
    pub spec_index: Option<u16>,
    pub inventory_parameter_spec_id: Option<u16>,
    pub antenna_id: Option<u16>,
    pub peak_rssi_dbm: Option<i8>,
    pub channel_index: Option<u16>,
    /// Microseconds since 1970-01-01 UTC.
    pub first_seen_utc_us: Option<u64>,
    pub first_seen_uptime_us: Option<u64>,
    pub last_seen_utc_us: Option<u64>,
    pub last_seen_uptime_us: Option<u64>,
    pub tag_seen_count: Option<u16>,
    pub c1g2_pc: Option<u16>,
    pub c1g2_crc: Option<u16>,
    pub access_spec_id: Option<u32>,
}

impl TagReportData {
    /// A report with only the EPC set.
    pub fn new(epc: Epc) -> TagReportData {
        TagReportData {
            epc,
            rospec_id: None,
            spec_index: None,
            inventory_parameter_spec_id: None,
            antenna_id: None,
            peak_rssi_dbm: None,
            channel_index: None,
            first_seen_utc_us: None,
            first_seen_uptime_us: None,
            last_seen_utc_us: None,
            last_seen_uptime_us: None,
            tag_seen_count: None,
            c1g2_pc: None,
            c1g2_crc: None,
            access_spec_id: None,
        }
    }

    pub(super) fn decode(v: &[u8]) -> Res<TagReportData> {
        let mut epc = None;
        let mut t = TagReportData::new(Epc::Epc96([0; 12]));
        for p in Params::new(v) {
            let p = p?;
            let mut c = Cursor::new(p.value);
            match p.ty {
                pt::EPC_96 => epc = Some(Epc::Epc96(c.bytes12("epc-96")?)),
                pt::EPC_DATA => {
                    let bit_len = c.u16("epc data bit count")?;
                    let n = usize::from(bit_len).div_ceil(8);
                    let bytes = c.take(n, "epc data")?.to_vec();
                    epc = Some(Epc::Bits { bit_len, bytes });
                }
                pt::ROSPEC_ID => t.rospec_id = Some(c.u32("rospec id")?),
                pt::SPEC_INDEX => t.spec_index = Some(c.u16("spec index")?),
                pt::INVENTORY_PARAMETER_SPEC_ID => {
                    t.inventory_parameter_spec_id = Some(c.u16("inventory parameter spec id")?)
                }
                pt::ANTENNA_ID => t.antenna_id = Some(c.u16("antenna id")?),
                pt::PEAK_RSSI => t.peak_rssi_dbm = Some(c.i8("peak rssi")?),
                pt::CHANNEL_INDEX => t.channel_index = Some(c.u16("channel index")?),
                pt::FIRST_SEEN_TIMESTAMP_UTC => t.first_seen_utc_us = Some(c.u64("first seen utc")?),
                pt::FIRST_SEEN_TIMESTAMP_UPTIME => t.first_seen_uptime_us = Some(c.u64("first seen uptime")?),
                pt::LAST_SEEN_TIMESTAMP_UTC => t.last_seen_utc_us = Some(c.u64("last seen utc")?),
                pt::LAST_SEEN_TIMESTAMP_UPTIME => t.last_seen_uptime_us = Some(c.u64("last seen uptime")?),
                pt::TAG_SEEN_COUNT => t.tag_seen_count = Some(c.u16("tag seen count")?),
                pt::C1G2_PC => t.c1g2_pc = Some(c.u16("c1g2 pc")?),
                pt::C1G2_CRC => t.c1g2_crc = Some(c.u16("c1g2 crc")?),
                pt::ACCESS_SPEC_ID => t.access_spec_id = Some(c.u32("access spec id")?),
                _ => {}
            }
        }
        match epc {
            Some(e) => {
                t.epc = e;
                Ok(t)
            }
            None => missing("EPC-96 or EPCData", "TagReportData"),
        }
    }

    pub(super) fn encode(&self, w: &mut Writer<'_>) {
        w.tlv(pt::TAG_REPORT_DATA, |w| {
            match &self.epc {
                Epc::Epc96(b) => {
                    w.u8(0x80 | pt::EPC_96 as u8);
                    w.bytes(b);
                }
                Epc::Bits { bit_len, bytes } => {
                    if bytes.len() != usize::from(*bit_len).div_ceil(8) {
                        w.fail(EncodeError::EpcLength { bit_len: *bit_len, n_bytes: bytes.len() });
                    }
                    w.tlv(pt::EPC_DATA, |w| {
                        w.u16(*bit_len);
                        w.bytes(bytes);
                    })
                }
            }
            // LLRP 1.0.1 section 16.2.7.3 field order.
            if let Some(v) = self.rospec_id {
                w.tv_u32(pt::ROSPEC_ID as u8, v);
            }
            if let Some(v) = self.spec_index {
                w.tv_u16(pt::SPEC_INDEX as u8, v);
            }
            if let Some(v) = self.inventory_parameter_spec_id {
                w.tv_u16(pt::INVENTORY_PARAMETER_SPEC_ID as u8, v);
            }
            if let Some(v) = self.antenna_id {
                w.tv_u16(pt::ANTENNA_ID as u8, v);
            }
            if let Some(v) = self.peak_rssi_dbm {
                w.tv_i8(pt::PEAK_RSSI as u8, v);
            }
            if let Some(v) = self.channel_index {
                w.tv_u16(pt::CHANNEL_INDEX as u8, v);
            }
            if let Some(v) = self.first_seen_utc_us {
                w.tv_u64(pt::FIRST_SEEN_TIMESTAMP_UTC as u8, v);
            }
            if let Some(v) = self.first_seen_uptime_us {
                w.tv_u64(pt::FIRST_SEEN_TIMESTAMP_UPTIME as u8, v);
            }
            if let Some(v) = self.last_seen_utc_us {
                w.tv_u64(pt::LAST_SEEN_TIMESTAMP_UTC as u8, v);
            }
            if let Some(v) = self.last_seen_uptime_us {
                w.tv_u64(pt::LAST_SEEN_TIMESTAMP_UPTIME as u8, v);
            }
            if let Some(v) = self.tag_seen_count {
                w.tv_u16(pt::TAG_SEEN_COUNT as u8, v);
            }
            if let Some(v) = self.c1g2_pc {
                w.tv_u16(pt::C1G2_PC as u8, v);
            }
            if let Some(v) = self.c1g2_crc {
                w.tv_u16(pt::C1G2_CRC as u8, v);
            }
            if let Some(v) = self.access_spec_id {
                w.tv_u32(pt::ACCESS_SPEC_ID as u8, v);
            }
        });
    }
}

/// The `TagReportData` list of an `RO_ACCESS_REPORT` body (other parameters skipped).
pub(super) fn decode_tag_reports(body: &[u8]) -> Res<Vec<TagReportData>> {
    // A TagReportData with an EPC-96 is at least 4 + 13 bytes; reserve for the common case.
    let mut out = Vec::with_capacity(body.len() / 24);
    for p in Params::new(body) {
        let p = p?;
        if p.ty == pt::TAG_REPORT_DATA {
            out.push(TagReportData::decode(p.value)?);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Reader events

/// The timestamp of a `ReaderEventNotificationData`: the reader's UTC clock, or its uptime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventTimestamp {
    /// `UTCTimestamp` (128): microseconds since 1970-01-01 UTC.
    Utc(u64),
    /// `Uptime` (129): microseconds since the reader booted.
    Uptime(u64),
}

/// `ROSpecEvent` (249).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoSpecEvent {
    /// 0 = Start_of_ROSpec, 1 = End_of_ROSpec, 2 = Preemption_of_ROSpec.
    pub event_type: u8,
    pub rospec_id: u32,
    pub preempting_rospec_id: u32,
}

/// `AntennaEvent` (255).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AntennaEvent {
    /// 0 = Antenna_Disconnected, 1 = Antenna_Connected.
    pub event_type: u8,
    pub antenna_id: u16,
}

/// `ConnectionAttemptEvent` (256) status values.
pub mod connection_attempt {
    pub const SUCCESS: u16 = 0;
    pub const FAILED_READER_INITIATED_CONNECTION_EXISTS: u16 = 1;
    pub const FAILED_CLIENT_INITIATED_CONNECTION_EXISTS: u16 = 2;
    pub const FAILED_OTHER_REASON: u16 = 3;
    pub const ANOTHER_CONNECTION_ATTEMPTED: u16 = 4;
}

/// `ReaderEventNotificationData` (246): a timestamp and the events that happened at it.
/// Event kinds not modelled here (hopping, GPI, buffer, exception, RF survey, AISpec) are skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReaderEventNotificationData {
    pub timestamp: EventTimestamp,
    pub rospec_event: Option<RoSpecEvent>,
    pub antenna_event: Option<AntennaEvent>,
    /// `ConnectionAttemptEvent` status, see [`connection_attempt`].
    pub connection_attempt: Option<u16>,
    /// `ConnectionCloseEvent` (257): the reader is about to close the connection.
    pub connection_close: bool,
}

impl ReaderEventNotificationData {
    /// Only a timestamp; set the event fields you need.
    pub fn at(timestamp: EventTimestamp) -> ReaderEventNotificationData {
        ReaderEventNotificationData {
            timestamp,
            rospec_event: None,
            antenna_event: None,
            connection_attempt: None,
            connection_close: false,
        }
    }

    pub(super) fn decode_message(body: &[u8]) -> Res<ReaderEventNotificationData> {
        let mut data = None;
        for p in Params::new(body) {
            let p = p?;
            if p.ty == pt::READER_EVENT_NOTIFICATION_DATA {
                data = Some(Self::decode(p.value)?);
            }
        }
        match data {
            Some(d) => Ok(d),
            None => missing("ReaderEventNotificationData", "READER_EVENT_NOTIFICATION"),
        }
    }

    fn decode(v: &[u8]) -> Res<ReaderEventNotificationData> {
        let mut timestamp = None;
        let mut d = ReaderEventNotificationData::at(EventTimestamp::Utc(0));
        for p in Params::new(v) {
            let p = p?;
            let mut c = Cursor::new(p.value);
            match p.ty {
                pt::UTC_TIMESTAMP => timestamp = Some(EventTimestamp::Utc(c.u64("utc timestamp")?)),
                pt::UPTIME => timestamp = Some(EventTimestamp::Uptime(c.u64("uptime")?)),
                pt::ROSPEC_EVENT => {
                    d.rospec_event = Some(RoSpecEvent {
                        event_type: c.u8("rospec event type")?,
                        rospec_id: c.u32("rospec event rospec id")?,
                        preempting_rospec_id: c.u32("rospec event preempting rospec id")?,
                    })
                }
                pt::ANTENNA_EVENT => {
                    d.antenna_event = Some(AntennaEvent {
                        event_type: c.u8("antenna event type")?,
                        antenna_id: c.u16("antenna event antenna id")?,
                    })
                }
                pt::CONNECTION_ATTEMPT_EVENT => d.connection_attempt = Some(c.u16("connection attempt status")?),
                pt::CONNECTION_CLOSE_EVENT => d.connection_close = true,
                _ => {}
            }
        }
        let Some(ts) = timestamp else {
            return missing("UTCTimestamp or Uptime", "ReaderEventNotificationData");
        };
        d.timestamp = ts;
        Ok(d)
    }

    pub(super) fn encode(&self, w: &mut Writer<'_>) {
        w.tlv(pt::READER_EVENT_NOTIFICATION_DATA, |w| {
            match self.timestamp {
                EventTimestamp::Utc(t) => w.tlv(pt::UTC_TIMESTAMP, |w| w.u64(t)),
                EventTimestamp::Uptime(t) => w.tlv(pt::UPTIME, |w| w.u64(t)),
            }
            if let Some(e) = self.rospec_event {
                w.tlv(pt::ROSPEC_EVENT, |w| {
                    w.u8(e.event_type);
                    w.u32(e.rospec_id);
                    w.u32(e.preempting_rospec_id);
                });
            }
            if let Some(e) = self.antenna_event {
                w.tlv(pt::ANTENNA_EVENT, |w| {
                    w.u8(e.event_type);
                    w.u16(e.antenna_id);
                });
            }
            if let Some(s) = self.connection_attempt {
                w.tlv(pt::CONNECTION_ATTEMPT_EVENT, |w| w.u16(s));
            }
            if self.connection_close {
                w.tlv(pt::CONNECTION_CLOSE_EVENT, |_| {});
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Capabilities

/// `GET_READER_CAPABILITIES_RESPONSE` contents. Each part is present when it was requested.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ReaderCapabilities {
    pub status: LlrpStatus,
    pub general: Option<GeneralDeviceCapabilities>,
    pub llrp: Option<LlrpCapabilities>,
    pub regulatory: Option<RegulatoryCapabilities>,
    /// `C1G2LLRPCapabilities` (327), the air-protocol capabilities.
    pub c1g2: Option<C1G2LlrpCapabilities>,
}

/// `GeneralDeviceCapabilities` (137).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneralDeviceCapabilities {
    pub max_antennas: u16,
    pub can_set_antenna_properties: bool,
    pub has_utc_clock: bool,
    /// IANA private enterprise number (Impinj = 25882).
    pub manufacturer: u32,
    pub model: u32,
    pub firmware_version: String,
    /// `ReceiveSensitivityTableEntry` (139): (index, sensitivity in dB).
    pub receive_sensitivities: Vec<(u16, i16)>,
    /// `GPIOCapabilities` (141): (number of GPIs, number of GPOs).
    pub gpio: (u16, u16),
    /// `PerAntennaAirProtocol` (140): (antenna id, protocol ids).
    pub air_protocols: Vec<(u16, Vec<u8>)>,
}

/// `LLRPCapabilities` (142).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LlrpCapabilities {
    pub can_do_rf_survey: bool,
    pub can_report_buffer_fill_warning: bool,
    pub supports_client_request_op_spec: bool,
    pub can_do_tag_inventory_state_aware_singulation: bool,
    pub supports_event_and_report_holding: bool,
    pub max_priority_levels: u8,
    pub client_request_op_spec_timeout_ms: u16,
    pub max_rospecs: u32,
    pub max_specs_per_rospec: u32,
    pub max_inventory_parameter_specs_per_ai_spec: u32,
    pub max_access_specs: u32,
    pub max_op_specs_per_access_spec: u32,
}

/// `RegulatoryCapabilities` (143).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegulatoryCapabilities {
    /// ISO 3166 numeric country code.
    pub country_code: u16,
    /// 1 = US FCC part 15, 2 = ETSI 302 208, …
    pub communications_standard: u16,
    pub uhf_band: Option<UhfBandCapabilities>,
}

/// `UHFBandCapabilities` (144).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UhfBandCapabilities {
    /// `TransmitPowerLevelTableEntry` (145): (index, power in hundredths of dBm).
    pub transmit_power_levels: Vec<(u16, i16)>,
    pub frequency: FrequencyInformation,
    /// `C1G2UHFRFModeTable` (328) entries.
    pub rf_modes: Vec<C1G2RfMode>,
}

/// `FrequencyInformation` (146).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrequencyInformation {
    pub hopping: bool,
    /// `FrequencyHopTable` (147): (hop table id, frequencies in kHz).
    pub hop_tables: Vec<(u8, Vec<u32>)>,
    /// `FixedFrequencyTable` (148): frequencies in kHz.
    pub fixed_frequencies_khz: Option<Vec<u32>>,
}

/// `C1G2UHFRFModeTableEntry` (329).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct C1G2RfMode {
    pub mode_identifier: u32,
    /// Divide ratio: false = 8, true = 64/3.
    pub dr_64_3: bool,
    pub epc_hag_tc_conformance: bool,
    /// 0 = FM0, 1 = Miller 2, 2 = Miller 4, 3 = Miller 8.
    pub modulation: u8,
    /// 0 = PR-ASK, 1 = SSB-ASK, 2 = DSB-ASK.
    pub forward_link_modulation: u8,
    /// 0 = unknown, 1 = single-reader, 2 = multi-reader, 3 = dense-interrogator.
    pub spectral_mask: u8,
    pub bdr_bps: u32,
    pub pie: u32,
    pub min_tari_ns: u32,
    pub max_tari_ns: u32,
    pub step_tari_ns: u32,
}

/// `C1G2LLRPCapabilities` (327).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct C1G2LlrpCapabilities {
    pub can_support_block_erase: bool,
    pub can_support_block_write: bool,
    pub max_select_filters_per_query: u16,
}

fn u32_list(c: &mut Cursor<'_>, n: u16, what: &str) -> Res<Vec<u32>> {
    let mut v = Vec::with_capacity(usize::from(n).min(c.rest().len() / 4));
    for _ in 0..n {
        v.push(c.u32(what)?);
    }
    Ok(v)
}

impl ReaderCapabilities {
    /// Impinj's IANA private enterprise number, the `DeviceManufacturerName` of Speedway / R700.
    pub const IMPINJ: u32 = 25882;

    /// A minimal but complete capability set for a reader emulator: one UHF band (US FCC, 50
    /// hopping channels), transmit power 10.00–30.00 dBm in 0.25 dB steps (indices 1–81), two
    /// C1G2 RF modes (0 = max throughput, 1000 = Impinj AutoSet), one ROSpec at a time, and
    /// `max_antennas` Gen2 antennas. Plausible values, not copied from a real reader; they hold
    /// everything sllurp's client reads from this message (antenna count, power table, modes).
    pub fn minimal(max_antennas: u16, firmware_version: &str) -> ReaderCapabilities {
        let mode = |mode_identifier, dr_64_3, modulation, bdr_bps, pie, min_tari_ns, max_tari_ns| C1G2RfMode {
            mode_identifier,
            dr_64_3,
            epc_hag_tc_conformance: false,
            modulation,
            forward_link_modulation: 2,
            spectral_mask: 2,
            bdr_bps,
            pie,
            min_tari_ns,
            max_tari_ns,
            step_tari_ns: 0,
        };
        ReaderCapabilities {
            status: LlrpStatus::success(),
            general: Some(GeneralDeviceCapabilities {
                max_antennas,
                can_set_antenna_properties: false,
                has_utc_clock: true,
                manufacturer: Self::IMPINJ,
                model: 0,
                firmware_version: firmware_version.to_string(),
                receive_sensitivities: vec![(1, 0)],
                gpio: (0, 0),
                air_protocols: (1..=max_antennas).map(|a| (a, vec![1])).collect(),
            }),
            llrp: Some(LlrpCapabilities {
                can_do_rf_survey: false,
                can_report_buffer_fill_warning: false,
                supports_client_request_op_spec: false,
                can_do_tag_inventory_state_aware_singulation: false,
                supports_event_and_report_holding: true,
                max_priority_levels: 1,
                client_request_op_spec_timeout_ms: 0,
                max_rospecs: 1,
                max_specs_per_rospec: 1,
                max_inventory_parameter_specs_per_ai_spec: 1,
                max_access_specs: 0,
                max_op_specs_per_access_spec: 0,
            }),
            regulatory: Some(RegulatoryCapabilities {
                country_code: 840,
                communications_standard: 1,
                uhf_band: Some(UhfBandCapabilities {
                    transmit_power_levels: (0..81).map(|i| (i + 1, 1000 + 25 * i as i16)).collect(),
                    frequency: FrequencyInformation {
                        hopping: true,
                        hop_tables: vec![(1, (0..50).map(|i| 902_750 + 500 * i).collect())],
                        fixed_frequencies_khz: None,
                    },
                    rf_modes: vec![
                        mode(0, true, 0, 640_000, 1500, 6250, 6250),
                        mode(1000, false, 2, 250_000, 2000, 20_000, 25_000),
                    ],
                }),
            }),
            c1g2: Some(C1G2LlrpCapabilities {
                can_support_block_erase: false,
                can_support_block_write: true,
                max_select_filters_per_query: 2,
            }),
        }
    }

    pub(super) fn decode(body: &[u8]) -> Res<ReaderCapabilities> {
        let mut status = None;
        let mut caps = ReaderCapabilities::default();
        for p in Params::new(body) {
            let p = p?;
            match p.ty {
                pt::LLRP_STATUS => status = Some(LlrpStatus::decode(p.value)?),
                pt::GENERAL_DEVICE_CAPABILITIES => caps.general = Some(decode_general(p.value)?),
                pt::LLRP_CAPABILITIES => caps.llrp = Some(decode_llrp_caps(p.value)?),
                pt::REGULATORY_CAPABILITIES => caps.regulatory = Some(decode_regulatory(p.value)?),
                pt::C1G2_LLRP_CAPABILITIES => {
                    let mut c = Cursor::new(p.value);
                    let b = c.u8("c1g2 llrp capabilities flags")?;
                    caps.c1g2 = Some(C1G2LlrpCapabilities {
                        can_support_block_erase: flag(b, 7),
                        can_support_block_write: flag(b, 6),
                        max_select_filters_per_query: c.u16("c1g2 max select filters")?,
                    });
                }
                _ => {}
            }
        }
        let Some(status) = status else {
            return missing("LLRPStatus", "GET_READER_CAPABILITIES_RESPONSE");
        };
        caps.status = status;
        Ok(caps)
    }

    pub(super) fn encode(&self, w: &mut Writer<'_>) {
        self.status.encode(w);
        if let Some(g) = &self.general {
            w.tlv(pt::GENERAL_DEVICE_CAPABILITIES, |w| {
                w.u16(g.max_antennas);
                w.u16(u16::from(g.can_set_antenna_properties) << 15 | u16::from(g.has_utc_clock) << 14);
                w.u32(g.manufacturer);
                w.u32(g.model);
                w.counted("firmware version", g.firmware_version.as_bytes());
                for &(index, value) in &g.receive_sensitivities {
                    w.tlv(pt::RECEIVE_SENSITIVITY_TABLE_ENTRY, |w| {
                        w.u16(index);
                        w.i16(value);
                    });
                }
                w.tlv(pt::GPIO_CAPABILITIES, |w| {
                    w.u16(g.gpio.0);
                    w.u16(g.gpio.1);
                });
                for (antenna, protocols) in &g.air_protocols {
                    w.tlv(pt::PER_ANTENNA_AIR_PROTOCOL, |w| {
                        w.u16(*antenna);
                        w.count("air protocol count", protocols.len());
                        w.bytes(protocols);
                    });
                }
            });
        }
        if let Some(l) = self.llrp {
            w.tlv(pt::LLRP_CAPABILITIES, |w| {
                w.u8(bit(l.can_do_rf_survey, 7)
                    | bit(l.can_report_buffer_fill_warning, 6)
                    | bit(l.supports_client_request_op_spec, 5)
                    | bit(l.can_do_tag_inventory_state_aware_singulation, 4)
                    | bit(l.supports_event_and_report_holding, 3));
                w.u8(l.max_priority_levels);
                w.u16(l.client_request_op_spec_timeout_ms);
                w.u32(l.max_rospecs);
                w.u32(l.max_specs_per_rospec);
                w.u32(l.max_inventory_parameter_specs_per_ai_spec);
                w.u32(l.max_access_specs);
                w.u32(l.max_op_specs_per_access_spec);
            });
        }
        if let Some(r) = &self.regulatory {
            w.tlv(pt::REGULATORY_CAPABILITIES, |w| {
                w.u16(r.country_code);
                w.u16(r.communications_standard);
                if let Some(u) = &r.uhf_band {
                    encode_uhf_band(u, w);
                }
            });
        }
        if let Some(c) = self.c1g2 {
            w.tlv(pt::C1G2_LLRP_CAPABILITIES, |w| {
                w.u8(bit(c.can_support_block_erase, 7) | bit(c.can_support_block_write, 6));
                w.u16(c.max_select_filters_per_query);
            });
        }
    }
}

fn decode_general(v: &[u8]) -> Res<GeneralDeviceCapabilities> {
    let mut c = Cursor::new(v);
    let max_antennas = c.u16("max antennas")?;
    let flags = c.u16("general device capability flags")?;
    let manufacturer = c.u32("device manufacturer")?;
    let model = c.u32("model name")?;
    let firmware_version = c.utf8("firmware version")?;
    let mut g = GeneralDeviceCapabilities {
        max_antennas,
        can_set_antenna_properties: flags & 0x8000 != 0,
        has_utc_clock: flags & 0x4000 != 0,
        manufacturer,
        model,
        firmware_version,
        receive_sensitivities: Vec::new(),
        gpio: (0, 0),
        air_protocols: Vec::new(),
    };
    let mut gpio = None;
    for p in Params::new(c.rest()) {
        let p = p?;
        let mut c = Cursor::new(p.value);
        match p.ty {
            pt::RECEIVE_SENSITIVITY_TABLE_ENTRY => {
                g.receive_sensitivities.push((c.u16("receive sensitivity index")?, c.i16("receive sensitivity value")?))
            }
            pt::GPIO_CAPABILITIES => gpio = Some((c.u16("gpi count")?, c.u16("gpo count")?)),
            pt::PER_ANTENNA_AIR_PROTOCOL => {
                let antenna = c.u16("air protocol antenna id")?;
                let n = c.u16("air protocol count")?;
                let ids = c.take(usize::from(n), "air protocol ids")?.to_vec();
                g.air_protocols.push((antenna, ids));
            }
            _ => {}
        }
    }
    match gpio {
        Some(x) => g.gpio = x,
        None => return missing("GPIOCapabilities", "GeneralDeviceCapabilities"),
    }
    Ok(g)
}

fn decode_llrp_caps(v: &[u8]) -> Res<LlrpCapabilities> {
    let mut c = Cursor::new(v);
    let b = c.u8("llrp capability flags")?;
    Ok(LlrpCapabilities {
        can_do_rf_survey: flag(b, 7),
        can_report_buffer_fill_warning: flag(b, 6),
        supports_client_request_op_spec: flag(b, 5),
        can_do_tag_inventory_state_aware_singulation: flag(b, 4),
        supports_event_and_report_holding: flag(b, 3),
        max_priority_levels: c.u8("max priority levels")?,
        client_request_op_spec_timeout_ms: c.u16("client request op spec timeout")?,
        max_rospecs: c.u32("max rospecs")?,
        max_specs_per_rospec: c.u32("max specs per rospec")?,
        max_inventory_parameter_specs_per_ai_spec: c.u32("max inventory parameter specs")?,
        max_access_specs: c.u32("max access specs")?,
        max_op_specs_per_access_spec: c.u32("max op specs per access spec")?,
    })
}

fn decode_regulatory(v: &[u8]) -> Res<RegulatoryCapabilities> {
    let mut c = Cursor::new(v);
    let country_code = c.u16("country code")?;
    let communications_standard = c.u16("communications standard")?;
    let mut uhf_band = None;
    for p in Params::new(c.rest()) {
        let p = p?;
        if p.ty == pt::UHF_BAND_CAPABILITIES {
            uhf_band = Some(decode_uhf_band(p.value)?);
        }
    }
    Ok(RegulatoryCapabilities { country_code, communications_standard, uhf_band })
}

fn decode_uhf_band(v: &[u8]) -> Res<UhfBandCapabilities> {
    let mut transmit_power_levels = Vec::new();
    let mut frequency = None;
    let mut rf_modes = Vec::new();
    for p in Params::new(v) {
        let p = p?;
        let mut c = Cursor::new(p.value);
        match p.ty {
            pt::TRANSMIT_POWER_LEVEL_TABLE_ENTRY => {
                transmit_power_levels.push((c.u16("transmit power index")?, c.i16("transmit power value")?))
            }
            pt::FREQUENCY_INFORMATION => {
                let hopping = flag(c.u8("frequency information hopping")?, 7);
                let mut f = FrequencyInformation { hopping, hop_tables: Vec::new(), fixed_frequencies_khz: None };
                for q in Params::new(c.rest()) {
                    let q = q?;
                    let mut c = Cursor::new(q.value);
                    match q.ty {
                        pt::FREQUENCY_HOP_TABLE => {
                            let id = c.u8("hop table id")?;
                            c.u8("hop table reserved")?;
                            let n = c.u16("hop table count")?;
                            f.hop_tables.push((id, u32_list(&mut c, n, "hop table frequency")?));
                        }
                        pt::FIXED_FREQUENCY_TABLE => {
                            let n = c.u16("fixed frequency count")?;
                            f.fixed_frequencies_khz = Some(u32_list(&mut c, n, "fixed frequency")?);
                        }
                        _ => {}
                    }
                }
                frequency = Some(f);
            }
            pt::C1G2_UHF_RF_MODE_TABLE => {
                for q in Params::new(p.value) {
                    let q = q?;
                    if q.ty != pt::C1G2_UHF_RF_MODE_TABLE_ENTRY {
                        continue;
                    }
                    let mut c = Cursor::new(q.value);
                    let mode_identifier = c.u32("rf mode identifier")?;
                    let b = c.u8("rf mode flags")?;
                    rf_modes.push(C1G2RfMode {
                        mode_identifier,
                        dr_64_3: flag(b, 7),
                        epc_hag_tc_conformance: flag(b, 6),
                        modulation: c.u8("rf mode modulation")?,
                        forward_link_modulation: c.u8("rf mode forward link modulation")?,
                        spectral_mask: c.u8("rf mode spectral mask")?,
                        bdr_bps: c.u32("rf mode bdr")?,
                        pie: c.u32("rf mode pie")?,
                        min_tari_ns: c.u32("rf mode min tari")?,
                        max_tari_ns: c.u32("rf mode max tari")?,
                        step_tari_ns: c.u32("rf mode step tari")?,
                    });
                }
            }
            _ => {}
        }
    }
    let Some(frequency) = frequency else {
        return missing("FrequencyInformation", "UHFBandCapabilities");
    };
    Ok(UhfBandCapabilities { transmit_power_levels, frequency, rf_modes })
}

fn encode_uhf_band(u: &UhfBandCapabilities, w: &mut Writer<'_>) {
    w.tlv(pt::UHF_BAND_CAPABILITIES, |w| {
        for &(index, value) in &u.transmit_power_levels {
            w.tlv(pt::TRANSMIT_POWER_LEVEL_TABLE_ENTRY, |w| {
                w.u16(index);
                w.i16(value);
            });
        }
        let f = &u.frequency;
        w.tlv(pt::FREQUENCY_INFORMATION, |w| {
            w.u8(bit(f.hopping, 7));
            for (id, freqs) in &f.hop_tables {
                w.tlv(pt::FREQUENCY_HOP_TABLE, |w| {
                    w.u8(*id);
                    w.u8(0);
                    w.count("hop table count", freqs.len());
                    for &k in freqs {
                        w.u32(k);
                    }
                });
            }
            if let Some(freqs) = &f.fixed_frequencies_khz {
                w.tlv(pt::FIXED_FREQUENCY_TABLE, |w| {
                    w.count("fixed frequency count", freqs.len());
                    for &k in freqs {
                        w.u32(k);
                    }
                });
            }
        });
        w.tlv(pt::C1G2_UHF_RF_MODE_TABLE, |w| {
            for m in &u.rf_modes {
                w.tlv(pt::C1G2_UHF_RF_MODE_TABLE_ENTRY, |w| {
                    w.u32(m.mode_identifier);
                    w.u8(bit(m.dr_64_3, 7) | bit(m.epc_hag_tc_conformance, 6));
                    w.u8(m.modulation);
                    w.u8(m.forward_link_modulation);
                    w.u8(m.spectral_mask);
                    w.u32(m.bdr_bps);
                    w.u32(m.pie);
                    w.u32(m.min_tari_ns);
                    w.u32(m.max_tari_ns);
                    w.u32(m.step_tari_ns);
                });
            }
        });
    });
}
