//! LLRP 1.0.1 (EPCglobal Low Level Reader Protocol), as spoken by Impinj Speedway / R700 readers
//! on TCP 5084: framing and the message subset a race-timing client needs, in both directions.
//!
//! Both directions matter: the edge daemon decodes reader messages and encodes client requests,
//! and firmware-sim's reader emulator does the opposite with the same types.
//!
//! # Wire format
//! Every message starts with a 10-byte big-endian header: 3 reserved bits, a 3-bit version
//! (1 = LLRP 1.0.1, 2 = LLRP 1.1), a 10-bit message type, a u32 length counting the header, and a
//! u32 message id that a response echoes. The body is fixed fields followed by parameters:
//! TV (`1ttttttt` + fixed-size value, types 1–127) or TLV (6 reserved bits + 10-bit type, u16
//! length counting the 4-byte header, types 128–1023).
//!
//! # Design note
//! - **Framing and resynchronisation.** LLRP has no sync marker and no checksum; TCP is trusted to
//!   deliver the stream intact. A header whose reserved bits are set, whose version is not 1 or 2,
//!   or whose length is under 10 or over [`MAX_MESSAGE_LEN`] means the stream lost its framing
//!   (a bug on the peer, or not an LLRP peer at all). Scanning for a "plausible" header would guess,
//!   so [`decode`] does not: it clears the whole buffer and returns [`DecodeError::Desync`], and the
//!   caller must close and re-open the connection (the reader re-announces itself with a
//!   `READER_EVENT_NOTIFICATION`, and the client redoes its set-up).
//! - **Malformed bodies are local.** A well-framed message whose parameters are broken (truncated
//!   field, TLV length past its parent, unknown TV type, missing required parameter) is consumed
//!   whole and reported as [`DecodeError::Malformed`], naming the message type and id; the next
//!   message decodes normally.
//! - **Unknown is not an error.** An unknown message type (including `CUSTOM_MESSAGE`, 1023)
//!   decodes to [`Body::Unknown`] with its raw body. Unknown TLV parameters, vendor `Custom`
//!   parameters (1023) and the parts of the spec not modelled here are skipped by their length.
//!   An unknown *TV* parameter cannot be skipped (TV has no length) and makes the message malformed.
//! - **Lenient decoding, canonical encoding.** Parameters are accepted in any order; encoding
//!   writes the spec's order. Skipped parameters are not re-encoded, so `encode(decode(bytes))`
//!   may be shorter than `bytes`; `decode(encode(x)) == x` holds for every value this module
//!   builds (see the property tests).
//! - **Raw enumerations.** Trigger types, status codes and event types stay integers with named
//!   constants: a reader emulator must see a value the spec forbids in order to refuse it with an
//!   `LLRPStatus`, rather than have the codec reject the whole message.
//! - **No state.** Message ids, keepalive timing and the ROSpec state machine belong to the
//!   session layers (edge daemon, firmware-sim). This module only maps bytes to values.

mod params;
mod wire;

#[cfg(test)]
mod tests;

pub use params::{
    AiSpec, AiSpecStopTrigger, AntennaConfiguration, AntennaEvent, C1G2EpcMemorySelector, C1G2InventoryCommand,
    C1G2LlrpCapabilities, C1G2RfControl, C1G2RfMode, C1G2SingulationControl, ContentSelector, Epc,
    EventNotificationState, EventTimestamp, FieldError, FrequencyInformation, GeneralDeviceCapabilities,
    GpiTriggerValue, Identification, InventoryParameterSpec, KeepaliveSpec, LlrpCapabilities, LlrpStatus,
    ParameterError, PeriodicTriggerValue, ReaderCapabilities, ReaderConfig, ReaderConfigResponse,
    ReaderEventNotificationData, RegulatoryCapabilities, RfTransmitter, RoReportSpec, RoSpec, RoSpecEvent,
    RoSpecStartTrigger, RoSpecStopTrigger, TagObservationTrigger, TagReportData, UhfBandCapabilities,
    connection_attempt, event_type, param_type, status_code,
};

use timing_core::{Rssi, Timestamp};

use crate::{DecodeError, ReaderTime, TagRead};
use wire::{Cursor, Fault, Writer};

/// Protocol name used in errors and logs.
pub const PROTOCOL: &str = "llrp";
/// Bytes in a message header.
pub const HEADER_LEN: usize = 10;
/// Longest message accepted (1 MiB). A real `RO_ACCESS_REPORT` of a few thousand tags is far
/// below this; anything longer is taken as a lost framing.
pub const MAX_MESSAGE_LEN: usize = 1 << 20;
/// Header version of LLRP 1.0.1.
pub const VERSION_1_0_1: u8 = 1;
/// Header version of LLRP 1.1.
pub const VERSION_1_1: u8 = 2;

/// How many message bytes an error keeps for its log line.
const ERROR_BYTES_MAX: usize = 64;

/// Message type numbers (LLRP 1.0.1 section 16.1).
pub mod msg_type {
    pub const GET_READER_CAPABILITIES: u16 = 1;
    pub const GET_READER_CONFIG: u16 = 2;
    pub const SET_READER_CONFIG: u16 = 3;
    pub const CLOSE_CONNECTION_RESPONSE: u16 = 4;
    pub const GET_READER_CAPABILITIES_RESPONSE: u16 = 11;
    pub const GET_READER_CONFIG_RESPONSE: u16 = 12;
    pub const SET_READER_CONFIG_RESPONSE: u16 = 13;
    pub const CLOSE_CONNECTION: u16 = 14;
    pub const ADD_ROSPEC: u16 = 20;
    pub const DELETE_ROSPEC: u16 = 21;
    pub const START_ROSPEC: u16 = 22;
    pub const STOP_ROSPEC: u16 = 23;
    pub const ENABLE_ROSPEC: u16 = 24;
    pub const DISABLE_ROSPEC: u16 = 25;
    pub const ADD_ROSPEC_RESPONSE: u16 = 30;
    pub const DELETE_ROSPEC_RESPONSE: u16 = 31;
    pub const START_ROSPEC_RESPONSE: u16 = 32;
    pub const STOP_ROSPEC_RESPONSE: u16 = 33;
    pub const ENABLE_ROSPEC_RESPONSE: u16 = 34;
    pub const DISABLE_ROSPEC_RESPONSE: u16 = 35;
    pub const RO_ACCESS_REPORT: u16 = 61;
    pub const KEEPALIVE: u16 = 62;
    pub const READER_EVENT_NOTIFICATION: u16 = 63;
    pub const ENABLE_EVENTS_AND_REPORTS: u16 = 64;
    pub const KEEPALIVE_ACK: u16 = 72;
    pub const ERROR_MESSAGE: u16 = 100;
    pub const CUSTOM_MESSAGE: u16 = 1023;
}

/// One LLRP message: header fields and a typed body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// [`VERSION_1_0_1`] or [`VERSION_1_1`].
    pub version: u8,
    /// Chosen by the sender of a request; echoed by its response.
    pub id: u32,
    pub body: Body,
}

impl Message {
    /// An LLRP 1.0.1 message.
    pub fn new(id: u32, body: Body) -> Message {
        Message { version: VERSION_1_0_1, id, body }
    }

    /// The message type number on the wire.
    pub fn msg_type(&self) -> u16 {
        self.body.msg_type()
    }

    /// The tag reads of an `RO_ACCESS_REPORT` (none for any other message), skipping reports
    /// without a UTC timestamp (see [`TagReportData::to_tag_read`]).
    pub fn tag_reads(&self) -> impl Iterator<Item = TagRead> + '_ {
        let reports: &[TagReportData] = match &self.body {
            Body::RoAccessReport(r) => r,
            _ => &[],
        };
        reports.iter().filter_map(TagReportData::to_tag_read)
    }
}

/// The body of a message. Client → reader requests and reader → client messages share one enum
/// so that both the edge and the emulator can decode and encode everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    // Client → reader.
    /// `GET_READER_CAPABILITIES` (1). `requested_data`: 0 = all, 1 = general device,
    /// 2 = LLRP, 3 = regulatory, 4 = air protocol.
    GetReaderCapabilities { requested_data: u8 },
    /// `GET_READER_CONFIG` (2). `antenna_id`/`gpi_port`/`gpo_port` 0 = all;
    /// `requested_data` 0 = all.
    GetReaderConfig { antenna_id: u16, requested_data: u8, gpi_port: u16, gpo_port: u16 },
    /// `SET_READER_CONFIG` (3).
    SetReaderConfig { reset_to_factory_default: bool, config: ReaderConfig },
    /// `CLOSE_CONNECTION` (14).
    CloseConnection,
    /// `ADD_ROSPEC` (20).
    AddRoSpec(Box<RoSpec>),
    /// `DELETE_ROSPEC` (21); id 0 = all ROSpecs.
    DeleteRoSpec { rospec_id: u32 },
    /// `START_ROSPEC` (22).
    StartRoSpec { rospec_id: u32 },
    /// `STOP_ROSPEC` (23).
    StopRoSpec { rospec_id: u32 },
    /// `ENABLE_ROSPEC` (24); id 0 = all ROSpecs.
    EnableRoSpec { rospec_id: u32 },
    /// `DISABLE_ROSPEC` (25); id 0 = all ROSpecs.
    DisableRoSpec { rospec_id: u32 },
    /// `ENABLE_EVENTS_AND_REPORTS` (64). Has no response.
    EnableEventsAndReports,
    /// `KEEPALIVE_ACK` (72). Has no response.
    KeepaliveAck,

    // Reader → client.
    /// `GET_READER_CAPABILITIES_RESPONSE` (11).
    GetReaderCapabilitiesResponse(Box<ReaderCapabilities>),
    /// `GET_READER_CONFIG_RESPONSE` (12).
    GetReaderConfigResponse(Box<ReaderConfigResponse>),
    /// `SET_READER_CONFIG_RESPONSE` (13).
    SetReaderConfigResponse(LlrpStatus),
    /// `CLOSE_CONNECTION_RESPONSE` (4).
    CloseConnectionResponse(LlrpStatus),
    /// `ADD_ROSPEC_RESPONSE` (30).
    AddRoSpecResponse(LlrpStatus),
    /// `DELETE_ROSPEC_RESPONSE` (31).
    DeleteRoSpecResponse(LlrpStatus),
    /// `START_ROSPEC_RESPONSE` (32).
    StartRoSpecResponse(LlrpStatus),
    /// `STOP_ROSPEC_RESPONSE` (33).
    StopRoSpecResponse(LlrpStatus),
    /// `ENABLE_ROSPEC_RESPONSE` (34).
    EnableRoSpecResponse(LlrpStatus),
    /// `DISABLE_ROSPEC_RESPONSE` (35).
    DisableRoSpecResponse(LlrpStatus),
    /// `RO_ACCESS_REPORT` (61): its `TagReportData` list (`RFSurveyReportData` is skipped).
    RoAccessReport(Vec<TagReportData>),
    /// `KEEPALIVE` (62): answer with `KEEPALIVE_ACK` carrying the same id.
    Keepalive,
    /// `READER_EVENT_NOTIFICATION` (63).
    ReaderEventNotification(ReaderEventNotificationData),
    /// `ERROR_MESSAGE` (100): the reader could not even parse a request.
    ErrorMessage(LlrpStatus),

    /// Any other message type, body kept raw. Encoding an `Unknown` whose `msg_type` is one of
    /// the types above writes those bytes verbatim; decoding them gives the typed variant.
    Unknown { msg_type: u16, body: Vec<u8> },
}

impl Body {
    /// The message type number on the wire.
    pub fn msg_type(&self) -> u16 {
        use msg_type as t;
        match self {
            Body::GetReaderCapabilities { .. } => t::GET_READER_CAPABILITIES,
            Body::GetReaderConfig { .. } => t::GET_READER_CONFIG,
            Body::SetReaderConfig { .. } => t::SET_READER_CONFIG,
            Body::CloseConnection => t::CLOSE_CONNECTION,
            Body::AddRoSpec(_) => t::ADD_ROSPEC,
            Body::DeleteRoSpec { .. } => t::DELETE_ROSPEC,
            Body::StartRoSpec { .. } => t::START_ROSPEC,
            Body::StopRoSpec { .. } => t::STOP_ROSPEC,
            Body::EnableRoSpec { .. } => t::ENABLE_ROSPEC,
            Body::DisableRoSpec { .. } => t::DISABLE_ROSPEC,
            Body::EnableEventsAndReports => t::ENABLE_EVENTS_AND_REPORTS,
            Body::KeepaliveAck => t::KEEPALIVE_ACK,
            Body::GetReaderCapabilitiesResponse(_) => t::GET_READER_CAPABILITIES_RESPONSE,
            Body::GetReaderConfigResponse(_) => t::GET_READER_CONFIG_RESPONSE,
            Body::SetReaderConfigResponse(_) => t::SET_READER_CONFIG_RESPONSE,
            Body::CloseConnectionResponse(_) => t::CLOSE_CONNECTION_RESPONSE,
            Body::AddRoSpecResponse(_) => t::ADD_ROSPEC_RESPONSE,
            Body::DeleteRoSpecResponse(_) => t::DELETE_ROSPEC_RESPONSE,
            Body::StartRoSpecResponse(_) => t::START_ROSPEC_RESPONSE,
            Body::StopRoSpecResponse(_) => t::STOP_ROSPEC_RESPONSE,
            Body::EnableRoSpecResponse(_) => t::ENABLE_ROSPEC_RESPONSE,
            Body::DisableRoSpecResponse(_) => t::DISABLE_ROSPEC_RESPONSE,
            Body::RoAccessReport(_) => t::RO_ACCESS_REPORT,
            Body::Keepalive => t::KEEPALIVE,
            Body::ReaderEventNotification(_) => t::READER_EVENT_NOTIFICATION,
            Body::ErrorMessage(_) => t::ERROR_MESSAGE,
            Body::Unknown { msg_type, .. } => *msg_type,
        }
    }

    /// The `LLRPStatus` of a response or `ERROR_MESSAGE`.
    pub fn status(&self) -> Option<&LlrpStatus> {
        match self {
            Body::GetReaderCapabilitiesResponse(c) => Some(&c.status),
            Body::GetReaderConfigResponse(c) => Some(&c.status),
            Body::SetReaderConfigResponse(s)
            | Body::CloseConnectionResponse(s)
            | Body::AddRoSpecResponse(s)
            | Body::DeleteRoSpecResponse(s)
            | Body::StartRoSpecResponse(s)
            | Body::StopRoSpecResponse(s)
            | Body::EnableRoSpecResponse(s)
            | Body::DisableRoSpecResponse(s)
            | Body::ErrorMessage(s) => Some(s),
            _ => None,
        }
    }
}

impl TagReportData {
    /// The racetime view of this report: chip = EPC in upper-case hex, time = first-seen UTC
    /// (falling back to last-seen UTC, as sllurp's default selector reports only that),
    /// rssi = PeakRSSI × 10, hits = TagSeenCount.
    ///
    /// `None` when the report carries no UTC timestamp (uptime-only readers need a clock anchor
    /// the codec does not have) or one past the year 292277.
    pub fn to_tag_read(&self) -> Option<TagRead> {
        let utc_us = self.first_seen_utc_us.or(self.last_seen_utc_us)?;
        let at = Timestamp::from_micros(i64::try_from(utc_us).ok()?);
        Some(TagRead {
            chip: self.epc.to_hex(),
            time: ReaderTime::Utc(at),
            antenna: self.antenna_id,
            rssi: self.peak_rssi_dbm.map(|dbm| Rssi(i16::from(dbm) * 10)),
            passing_no: None,
            session: None,
            hits: self.tag_seen_count.map(u32::from),
        })
    }
}

/// Why a message could not be encoded. Nothing is appended to the output then.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("llrp parameter type {param_type} of {len} bytes is over the 65535-byte tlv limit")]
    ParameterTooLong { param_type: u16, len: usize },
    #[error("llrp field {field} of {len} is over the 65535 limit of its u16 count")]
    FieldTooLong { field: &'static str, len: usize },
    #[error("llrp message of {len} bytes is over the {limit}-byte limit")]
    MessageTooLong { len: usize, limit: usize },
    #[error("llrp version {0} is neither 1 (LLRP 1.0.1) nor 2 (LLRP 1.1)")]
    Version(u8),
    #[error("llrp message type {0} is over the 10-bit maximum 1023")]
    MessageType(u16),
    #[error("llrp epc data of {bit_len} bits needs {} bytes, got {n_bytes}", usize::from(*bit_len).div_ceil(8))]
    EpcLength { bit_len: u16, n_bytes: usize },
}

/// A message header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub msg_type: u16,
    /// Whole message length, header included.
    pub len: usize,
    pub id: u32,
}

/// Reads and checks the header at the front of `buf` without consuming anything.
///
/// `Ok(None)`: fewer than [`HEADER_LEN`] bytes and nothing wrong so far. The checks run on as
/// many bytes as are present, so garbage is refused as early as its second byte.
/// A reader emulator can use this to learn the id of a message that then fails to decode, to
/// answer it with an `ERROR_MESSAGE`.
pub fn peek_header(buf: &[u8]) -> Result<Option<Header>, DecodeError> {
    let desync = |reason: String| DecodeError::Desync {
        protocol: PROTOCOL,
        reason,
        bytes: buf[..buf.len().min(ERROR_BYTES_MAX)].to_vec(),
    };
    if buf.len() >= 2 {
        let word = u16::from_be_bytes([buf[0], buf[1]]);
        let reserved = word >> 13;
        if reserved != 0 {
            return Err(desync(format!("reserved header bits {reserved:#05b} set")));
        }
        let version = ((word >> 10) & 0x7) as u8;
        if version != VERSION_1_0_1 && version != VERSION_1_1 {
            return Err(desync(format!("unsupported version {version}")));
        }
    }
    if buf.len() >= 6 {
        let len = u32::from_be_bytes([buf[2], buf[3], buf[4], buf[5]]) as usize;
        if len < HEADER_LEN {
            return Err(desync(format!("message length {len} under the header length {HEADER_LEN}")));
        }
        if len > MAX_MESSAGE_LEN {
            return Err(desync(format!("message length {len} over the limit {MAX_MESSAGE_LEN}")));
        }
    }
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let word = u16::from_be_bytes([buf[0], buf[1]]);
    Ok(Some(Header {
        version: ((word >> 10) & 0x7) as u8,
        msg_type: word & 0x3ff,
        len: u32::from_be_bytes([buf[2], buf[3], buf[4], buf[5]]) as usize,
        id: u32::from_be_bytes([buf[6], buf[7], buf[8], buf[9]]),
    }))
}

/// Decodes one message from the front of `buf`, consuming exactly its bytes.
///
/// - `Ok(None)`: need more bytes; nothing consumed.
/// - `Err(DecodeError::Malformed)`: a well-framed message with a broken body; that message was
///   consumed and the next call continues with the following one.
/// - `Err(DecodeError::Desync)`: impossible header; the whole buffer was cleared and the
///   connection must be reset (see the module's design note).
///
/// Each call shifts the rest of `buf` to the front. A caller holding many messages in one large
/// buffer can use [`decode_prefix`] and drain once instead.
pub fn decode(buf: &mut Vec<u8>) -> Result<Option<Message>, DecodeError> {
    let (consumed, result) = decode_prefix(buf);
    buf.drain(..consumed);
    result
}

/// Decodes one message from the front of `bytes` without consuming anything: returns how many
/// bytes the caller must drop (the message's length, 0 when more bytes are needed, or all of
/// `bytes` on a desync) and the same result as [`decode`].
pub fn decode_prefix(bytes: &[u8]) -> (usize, Result<Option<Message>, DecodeError>) {
    let header = match peek_header(bytes) {
        Ok(Some(h)) => h,
        Ok(None) => return (0, Ok(None)),
        Err(e) => return (bytes.len(), Err(e)),
    };
    if bytes.len() < header.len {
        return (0, Ok(None));
    }
    let frame = &bytes[..header.len];
    let result = match decode_body(header.msg_type, &frame[HEADER_LEN..]) {
        Ok(body) => Ok(Some(Message { version: header.version, id: header.id, body })),
        Err(Fault(reason)) => Err(DecodeError::Malformed {
            protocol: PROTOCOL,
            reason: format!("message type {} id {}: {reason}", header.msg_type, header.id),
            bytes: frame[..frame.len().min(ERROR_BYTES_MAX)].to_vec(),
        }),
    };
    (header.len, result)
}

fn rospec_id(body: &[u8]) -> Result<u32, Fault> {
    Cursor::new(body).u32("rospec id")
}

fn decode_body(ty: u16, body: &[u8]) -> Result<Body, Fault> {
    use msg_type as t;
    Ok(match ty {
        t::GET_READER_CAPABILITIES => {
            Body::GetReaderCapabilities { requested_data: Cursor::new(body).u8("requested data")? }
        }
        t::GET_READER_CONFIG => {
            let mut c = Cursor::new(body);
            Body::GetReaderConfig {
                antenna_id: c.u16("antenna id")?,
                requested_data: c.u8("requested data")?,
                gpi_port: c.u16("gpi port")?,
                gpo_port: c.u16("gpo port")?,
            }
        }
        t::SET_READER_CONFIG => {
            let (reset_to_factory_default, config) = params::decode_set_reader_config(body)?;
            Body::SetReaderConfig { reset_to_factory_default, config }
        }
        t::CLOSE_CONNECTION => Body::CloseConnection,
        t::ADD_ROSPEC => Body::AddRoSpec(Box::new(params::decode_add_rospec(body)?)),
        t::DELETE_ROSPEC => Body::DeleteRoSpec { rospec_id: rospec_id(body)? },
        t::START_ROSPEC => Body::StartRoSpec { rospec_id: rospec_id(body)? },
        t::STOP_ROSPEC => Body::StopRoSpec { rospec_id: rospec_id(body)? },
        t::ENABLE_ROSPEC => Body::EnableRoSpec { rospec_id: rospec_id(body)? },
        t::DISABLE_ROSPEC => Body::DisableRoSpec { rospec_id: rospec_id(body)? },
        t::ENABLE_EVENTS_AND_REPORTS => Body::EnableEventsAndReports,
        t::KEEPALIVE_ACK => Body::KeepaliveAck,
        t::GET_READER_CAPABILITIES_RESPONSE => {
            Body::GetReaderCapabilitiesResponse(Box::new(ReaderCapabilities::decode(body)?))
        }
        t::GET_READER_CONFIG_RESPONSE => Body::GetReaderConfigResponse(Box::new(ReaderConfigResponse::decode(body)?)),
        t::SET_READER_CONFIG_RESPONSE => {
            Body::SetReaderConfigResponse(params::decode_status_only(body, "SET_READER_CONFIG_RESPONSE")?)
        }
        t::CLOSE_CONNECTION_RESPONSE => {
            Body::CloseConnectionResponse(params::decode_status_only(body, "CLOSE_CONNECTION_RESPONSE")?)
        }
        t::ADD_ROSPEC_RESPONSE => Body::AddRoSpecResponse(params::decode_status_only(body, "ADD_ROSPEC_RESPONSE")?),
        t::DELETE_ROSPEC_RESPONSE => {
            Body::DeleteRoSpecResponse(params::decode_status_only(body, "DELETE_ROSPEC_RESPONSE")?)
        }
        t::START_ROSPEC_RESPONSE => {
            Body::StartRoSpecResponse(params::decode_status_only(body, "START_ROSPEC_RESPONSE")?)
        }
        t::STOP_ROSPEC_RESPONSE => Body::StopRoSpecResponse(params::decode_status_only(body, "STOP_ROSPEC_RESPONSE")?),
        t::ENABLE_ROSPEC_RESPONSE => {
            Body::EnableRoSpecResponse(params::decode_status_only(body, "ENABLE_ROSPEC_RESPONSE")?)
        }
        t::DISABLE_ROSPEC_RESPONSE => {
            Body::DisableRoSpecResponse(params::decode_status_only(body, "DISABLE_ROSPEC_RESPONSE")?)
        }
        t::RO_ACCESS_REPORT => Body::RoAccessReport(params::decode_tag_reports(body)?),
        t::KEEPALIVE => Body::Keepalive,
        t::READER_EVENT_NOTIFICATION => {
            Body::ReaderEventNotification(ReaderEventNotificationData::decode_message(body)?)
        }
        t::ERROR_MESSAGE => Body::ErrorMessage(params::decode_status_only(body, "ERROR_MESSAGE")?),
        _ => Body::Unknown { msg_type: ty, body: body.to_vec() },
    })
}

/// Appends `message` to `out`.
///
/// On error nothing is appended (`out` is truncated back to its length on entry).
pub fn encode(message: &Message, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    let result = encode_inner(message, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn encode_inner(message: &Message, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if message.version != VERSION_1_0_1 && message.version != VERSION_1_1 {
        return Err(EncodeError::Version(message.version));
    }
    let ty = message.msg_type();
    if ty > 0x3ff {
        return Err(EncodeError::MessageType(ty));
    }
    let mut w = Writer::new(out);
    let start = w.len();
    w.u16(u16::from(message.version) << 10 | ty);
    w.u32(0);
    w.u32(message.id);
    encode_body(&message.body, &mut w);
    let len = w.len() - start;
    if len > MAX_MESSAGE_LEN {
        w.fail(EncodeError::MessageTooLong { len, limit: MAX_MESSAGE_LEN });
    }
    // Cannot truncate: len <= MAX_MESSAGE_LEN or the error above is returned.
    w.patch_u32(start + 2, len as u32);
    w.finish()
}

fn encode_body(body: &Body, w: &mut Writer<'_>) {
    match body {
        Body::GetReaderCapabilities { requested_data } => w.u8(*requested_data),
        Body::GetReaderConfig { antenna_id, requested_data, gpi_port, gpo_port } => {
            w.u16(*antenna_id);
            w.u8(*requested_data);
            w.u16(*gpi_port);
            w.u16(*gpo_port);
        }
        Body::SetReaderConfig { reset_to_factory_default, config } => {
            w.u8(u8::from(*reset_to_factory_default) << 7);
            config.encode_for_set(w);
        }
        Body::AddRoSpec(spec) => spec.encode(w),
        Body::DeleteRoSpec { rospec_id }
        | Body::StartRoSpec { rospec_id }
        | Body::StopRoSpec { rospec_id }
        | Body::EnableRoSpec { rospec_id }
        | Body::DisableRoSpec { rospec_id } => w.u32(*rospec_id),
        Body::CloseConnection | Body::EnableEventsAndReports | Body::KeepaliveAck | Body::Keepalive => {}
        Body::GetReaderCapabilitiesResponse(caps) => caps.encode(w),
        Body::GetReaderConfigResponse(resp) => resp.encode(w),
        Body::SetReaderConfigResponse(s)
        | Body::CloseConnectionResponse(s)
        | Body::AddRoSpecResponse(s)
        | Body::DeleteRoSpecResponse(s)
        | Body::StartRoSpecResponse(s)
        | Body::StopRoSpecResponse(s)
        | Body::EnableRoSpecResponse(s)
        | Body::DisableRoSpecResponse(s)
        | Body::ErrorMessage(s) => s.encode(w),
        Body::RoAccessReport(reports) => {
            for r in reports {
                r.encode(w);
            }
        }
        Body::ReaderEventNotification(data) => data.encode(w),
        Body::Unknown { body, .. } => w.bytes(body),
    }
}
