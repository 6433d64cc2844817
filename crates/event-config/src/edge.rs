//! `edge-<box>.toml`: one edge box at one timing point — its readers, Modbus devices, store and
//! uplink. `racetime edge` runs it; `racetime sim` starts emulators for the readers and devices
//! it names (using each one's optional `sim` table).
//!
//! Secrets never live here: the uplink token comes from an environment variable or a file.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use timing_core::{Elapsed, Line};

use crate::error::{ConfigError, ConfigErrors};
use crate::event::EventConfig;

/// A decoder protocol racetime speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Raceresult,
    Ultra,
    Ipico,
    Jchip,
    Mylaps,
    Chronotrack,
    Llrp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Raceresult => "raceresult",
            Protocol::Ultra => "ultra",
            Protocol::Ipico => "ipico",
            Protocol::Jchip => "jchip",
            Protocol::Mylaps => "mylaps",
            Protocol::Chronotrack => "chronotrack",
            Protocol::Llrp => "llrp",
        }
    }
    /// How a link with this protocol can be made.
    pub fn transports(self) -> &'static [Transport] {
        match self {
            Protocol::Raceresult | Protocol::Ipico => &[Transport::Tcp, Transport::Serial],
            Protocol::Ultra | Protocol::Llrp => &[Transport::Tcp],
            // The reader (JChip) or the vendor's software (MYLAPS Exporter, ChronoTrack) connects to us.
            Protocol::Jchip => &[Transport::Listen, Transport::Serial],
            Protocol::Mylaps | Protocol::Chronotrack => &[Transport::Listen],
        }
    }
}

/// How the edge reaches a reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// The edge connects to the reader's TCP port.
    Tcp,
    /// The reader (or vendor software) connects to the edge's TCP port.
    Listen,
    /// A serial line (RS-232 through a USB adapter).
    Serial,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    #[default]
    None,
    Odd,
    Even,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FlowControl {
    #[default]
    None,
    Software,
    Hardware,
}

/// Serial line settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialSettings {
    pub device: PathBuf,
    pub baud: u32,
    pub data_bits: u8,
    pub parity: Parity,
    pub stop_bits: u8,
    pub flow_control: FlowControl,
}

/// How `racetime sim` should emulate a reader (ignored by the edge).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ReaderSim {
    pub clock_offset: Elapsed,
    pub drift_ppm: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ReaderConfig {
    pub id: String,
    pub line: Line,
    pub protocol: Protocol,
    pub transport: Transport,
    /// `host:port` to connect to (tcp) or to listen on (listen).
    pub address: Option<String>,
    pub serial: Option<SerialSettings>,
    /// IANA zone of the reader's wall clock, for protocols that report local time.
    pub time_zone: Option<chrono_tz::Tz>,
    pub clock_alarm: Elapsed,
    pub sim: ReaderSim,
    /// For decoders that report their own start trigger (MYLAPS `Gunshot`, ChronoTrack
    /// `guntime`): the waves (`race`, `wave`) its triggers start, the n-th trigger the n-th wave.
    pub gun_waves: Vec<(String, String)>,
}

/// What a Modbus device is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// A digital-input module (ADAM-6050 style): the start-gun contact.
    DigitalInput,
    /// A solar charge controller (EPEver Tracer style): battery voltage and state of charge.
    ChargeController,
    /// A race-clock display: elapsed time written to holding registers.
    ClockDisplay,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StartGun {
    /// Digital input channel wired to the gun's contact.
    pub channel: u16,
    /// The waves this gun starts, as `race/wave`.
    pub waves: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DeviceConfig {
    pub id: String,
    pub kind: DeviceKind,
    /// Modbus TCP `host:port`, or None for RTU (then `serial` is set).
    pub address: Option<String>,
    pub serial: Option<SerialSettings>,
    pub unit: u8,
    /// Register map file, relative to the repository (e.g. `hardware/modbus/adam-6050.toml`).
    pub register_map: PathBuf,
    pub poll: Elapsed,
    /// Start-gun contacts: each channel starts its waves.
    pub start_guns: Vec<StartGun>,
}

/// Where the uplink token comes from (never the token itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    Env(String),
    File(PathBuf),
}

#[derive(Clone, Debug, PartialEq)]
pub struct EdgeConfig {
    pub id: String,
    pub point: timing_core::PointIdx,
    pub uplink_url: String,
    pub token: TokenSource,
    pub store_path: PathBuf,
    /// Local status endpoint (localhost by default).
    pub status_listen: String,
    pub readers: Vec<ReaderConfig>,
    pub devices: Vec<DeviceConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    edge: EdgeSection,
    uplink: UplinkSection,
    store: StoreSection,
    #[serde(default)]
    status: Option<StatusSection>,
    #[serde(default)]
    readers: Vec<Spanned<ReaderSection>>,
    #[serde(default)]
    devices: Vec<Spanned<DeviceSection>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EdgeSection {
    id: String,
    point: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UplinkSection {
    url: Spanned<String>,
    token_env: Option<String>,
    token_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    path: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusSection {
    listen: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SerialFields {
    device: Option<PathBuf>,
    #[serde(default = "default_baud")]
    baud: u32,
    #[serde(default = "default_data_bits")]
    data_bits: u8,
    #[serde(default)]
    parity: Parity,
    #[serde(default = "default_stop_bits")]
    stop_bits: u8,
    #[serde(default)]
    flow_control: FlowControl,
}

fn default_baud() -> u32 {
    9600
}
fn default_data_bits() -> u8 {
    8
}
fn default_stop_bits() -> u8 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReaderSimSection {
    #[serde(default)]
    clock_offset_ms: i64,
    #[serde(default)]
    drift_ppm: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReaderSection {
    id: String,
    line: String,
    protocol: Protocol,
    transport: Transport,
    address: Option<String>,
    #[serde(flatten)]
    serial: SerialFields,
    time_zone: Option<String>,
    #[serde(default = "default_clock_alarm_ms")]
    clock_alarm_ms: u32,
    sim: Option<ReaderSimSection>,
    #[serde(default)]
    gun_waves: Vec<String>,
}

fn default_clock_alarm_ms() -> u32 {
    500
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartGunSection {
    channel: u16,
    waves: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceSection {
    id: String,
    kind: DeviceKind,
    transport: String,
    address: Option<String>,
    #[serde(flatten)]
    serial: SerialFields,
    #[serde(default = "default_unit")]
    unit: u8,
    register_map: PathBuf,
    #[serde(default = "default_poll_ms")]
    poll_ms: u32,
    #[serde(default)]
    start_guns: Vec<StartGunSection>,
}

fn default_unit() -> u8 {
    1
}
fn default_poll_ms() -> u32 {
    10
}

/// Parses and validates an edge file against its event.
pub fn parse_edge(file: &str, source: &str, event: &EventConfig) -> Result<EdgeConfig, ConfigErrors> {
    let raw: File = toml::from_str(source).map_err(|e| match e.span() {
        Some(span) => ConfigErrors::from(ConfigError::at(file, source, span, e.message().trim())),
        None => ConfigErrors::from(ConfigError::whole_file(file, e.message().trim())),
    })?;
    let mut errors = Vec::new();
    let mut err = |span: std::ops::Range<usize>, m: String| errors.push(ConfigError::at(file, source, span, m));

    let point = event.course.point_by_id(raw.edge.point.get_ref());
    if point.is_none() {
        err(raw.edge.point.span(), format!("unknown timing point {:?} (not in the event)", raw.edge.point.get_ref()));
    }
    let url = raw.uplink.url.get_ref();
    if !(url.starts_with("http://")
        || url.starts_with("https://")
        || url.starts_with("ws://")
        || url.starts_with("wss://"))
    {
        err(raw.uplink.url.span(), format!("uplink url {url:?} must start with http://, https://, ws:// or wss://"));
    }
    let token = match (&raw.uplink.token_env, &raw.uplink.token_file) {
        (Some(v), None) => Some(TokenSource::Env(v.clone())),
        (None, Some(f)) => Some(TokenSource::File(f.clone())),
        _ => {
            err(
                raw.uplink.url.span(),
                "set exactly one of uplink.token_env or uplink.token_file (the token itself never goes in this file)"
                    .into(),
            );
            None
        }
    };

    let lines = point.map(|p| event.point_lines[p.idx()].clone()).unwrap_or_default();
    let mut readers = Vec::new();
    for r in &raw.readers {
        let span = r.span();
        let r = r.get_ref();
        if readers.iter().any(|x: &ReaderConfig| x.id == r.id) {
            err(span.clone(), format!("duplicate reader id {:?}", r.id));
        }
        let line = match Line::parse(&r.line) {
            Some(l) if point.is_none() || lines.contains(&l) => Some(l),
            Some(l) => {
                err(
                    span.clone(),
                    format!("reader {:?}: point {:?} has no {} line", r.id, raw.edge.point.get_ref(), l.as_str()),
                );
                None
            }
            None => {
                err(span.clone(), format!("reader {:?}: unknown line {:?} (main or backup)", r.id, r.line));
                None
            }
        };
        if !r.protocol.transports().contains(&r.transport) {
            err(
                span.clone(),
                format!(
                    "reader {:?}: protocol {} does not work over {:?} (use one of {:?})",
                    r.id,
                    r.protocol.as_str(),
                    r.transport,
                    r.protocol.transports()
                ),
            );
        }
        let serial = serial_settings(&r.serial);
        match r.transport {
            Transport::Serial if serial.is_none() => {
                err(span.clone(), format!("reader {:?}: a serial reader needs `device`", r.id))
            }
            Transport::Tcp | Transport::Listen if r.address.is_none() => {
                err(span.clone(), format!("reader {:?}: a {:?} reader needs `address` (host:port)", r.id, r.transport))
            }
            _ => {}
        }
        let time_zone = match &r.time_zone {
            Some(z) => match z.parse::<chrono_tz::Tz>() {
                Ok(tz) => Some(tz),
                Err(_) => {
                    err(span.clone(), format!("reader {:?}: unknown IANA time zone {z:?}", r.id));
                    None
                }
            },
            None => None,
        };
        if let Some(line) = line {
            for w in &r.gun_waves {
                let ok = w.split_once('/').is_some_and(|(race, wave)| {
                    event.course.race_by_id(race).and_then(|ri| event.course.wave_by_id(ri, wave)).is_some()
                });
                if !ok {
                    err(
                        span.clone(),
                        format!("reader {:?}: gun_waves entry {w:?} is not a race/wave of the event", r.id),
                    );
                }
            }
            if !r.gun_waves.is_empty() && !matches!(r.protocol, Protocol::Mylaps | Protocol::Chronotrack) {
                err(
                    span.clone(),
                    format!(
                        "reader {:?}: gun_waves need a decoder that reports its start trigger (mylaps, chronotrack)",
                        r.id
                    ),
                );
            }
            readers.push(ReaderConfig {
                id: r.id.clone(),
                gun_waves: r
                    .gun_waves
                    .iter()
                    .filter_map(|w| w.split_once('/'))
                    .map(|(race, wave)| (race.to_string(), wave.to_string()))
                    .collect(),
                line,
                protocol: r.protocol,
                transport: r.transport,
                address: r.address.clone(),
                serial: if r.transport == Transport::Serial { serial } else { None },
                time_zone,
                clock_alarm: Elapsed::from_millis(r.clock_alarm_ms as i64),
                sim: r
                    .sim
                    .as_ref()
                    .map(|s| ReaderSim {
                        clock_offset: Elapsed::from_millis(s.clock_offset_ms),
                        drift_ppm: s.drift_ppm,
                    })
                    .unwrap_or_default(),
            });
        }
    }

    let mut devices = Vec::new();
    for d in &raw.devices {
        let span = d.span();
        let d = d.get_ref();
        if devices.iter().any(|x: &DeviceConfig| x.id == d.id) {
            err(span.clone(), format!("duplicate device id {:?}", d.id));
        }
        let serial = serial_settings(&d.serial);
        match d.transport.as_str() {
            "tcp" if d.address.is_none() => err(span.clone(), format!("device {:?}: Modbus TCP needs `address`", d.id)),
            "rtu" if serial.is_none() => err(span.clone(), format!("device {:?}: Modbus RTU needs `device`", d.id)),
            "tcp" | "rtu" => {}
            other => err(span.clone(), format!("device {:?}: unknown transport {other:?} (tcp or rtu)", d.id)),
        }
        let start_guns: Vec<StartGun> = d
            .start_guns
            .iter()
            .map(|g| StartGun {
                channel: g.channel,
                waves: g
                    .waves
                    .iter()
                    .filter_map(|w| w.split_once('/'))
                    .filter(|(r, wave)| {
                        event.course.race_by_id(r).and_then(|ri| event.course.wave_by_id(ri, wave)).is_some()
                    })
                    .map(|(r, w)| (r.to_string(), w.to_string()))
                    .collect(),
            })
            .collect();
        for g in &d.start_guns {
            for w in &g.waves {
                let ok = w.split_once('/').is_some_and(|(r, wave)| {
                    event.course.race_by_id(r).and_then(|ri| event.course.wave_by_id(ri, wave)).is_some()
                });
                if !ok {
                    err(
                        span.clone(),
                        format!("device {:?}: start_guns wave {w:?} is not a race/wave of the event", d.id),
                    );
                }
            }
        }
        if !d.start_guns.is_empty() && d.kind != DeviceKind::DigitalInput {
            err(span.clone(), format!("device {:?}: start_guns need kind = \"digital_input\"", d.id));
        }
        devices.push(DeviceConfig {
            id: d.id.clone(),
            kind: d.kind,
            address: if d.transport == "tcp" { d.address.clone() } else { None },
            serial: if d.transport == "rtu" { serial } else { None },
            unit: d.unit,
            register_map: d.register_map.clone(),
            poll: Elapsed::from_millis(d.poll_ms as i64),
            start_guns,
        });
    }
    if raw.readers.is_empty() {
        errors.push(ConfigError::whole_file(file, "an edge needs at least one [[readers]] entry"));
    }

    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    Ok(EdgeConfig {
        id: raw.edge.id,
        point: point.expect("checked"),
        uplink_url: url.clone(),
        token: token.expect("checked"),
        store_path: raw.store.path,
        status_listen: raw.status.map_or_else(|| "127.0.0.1:0".to_string(), |s| s.listen),
        readers,
        devices,
    })
}

fn serial_settings(s: &SerialFields) -> Option<SerialSettings> {
    s.device.as_ref().map(|device| SerialSettings {
        device: device.clone(),
        baud: s.baud,
        data_bits: s.data_bits,
        parity: s.parity,
        stop_bits: s.stop_bits,
        flow_control: s.flow_control,
    })
}
