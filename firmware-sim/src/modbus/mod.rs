//! Modbus device emulators on tokio-modbus servers, over Modbus TCP and Modbus RTU on a
//! pseudo-terminal: a digital-input module (start-gun contacts), a solar charge controller
//! (battery) and a race-clock display, each driven by a register map from `hardware/modbus/`.
//!
//! [`spawn_device`] starts one; the [`DeviceHandle`] plays the physical world (a gun's contact
//! closing, the battery draining) and shows what clients did (the display's time, counters).
//!
//! How a device answers follows the map, as a strict device does:
//! - an address no point holds, or a write to a read-only point: exception 0x02 (illegal data
//!   address); a function the device lacks (or on the wrong table): 0x01; a quantity past the
//!   protocol's limits or a written value outside a point's `min`/`max`: 0x03;
//! - Modbus TCP: units 0 and 255 address the device as well as its own unit; any other unit
//!   gets exception 0x0B (gateway target device failed to respond), as a gateway answers;
//! - Modbus RTU: a request for another unit gets no answer (a shared bus); unit 0 is a broadcast,
//!   carried out and not answered.
//!
//! What each kind does by itself:
//! - digital input: [`DeviceHandle::pulse`] closes a contact for a while (wall time); the
//!   channel's counter counts each closing edge while its `di_counter_start` coil is set, a 1
//!   written to `di_counter_clear` zeroes it, and `di_word` / `do_word` mirror the bits;
//! - charge controller: [`DeviceHandle::set_battery`] sets voltage, state of charge and current
//!   (charging current and powers follow); the real-time clock (`rtc_*`) shows the simulation's
//!   [`SharedClock`] in UTC, and a client may set it;
//! - clock display: remembers what was written; [`DeviceHandle::clock_display`] decodes it.
//!
//! Refusals and link failures stay apart: a refusal is a Modbus exception the device sends and
//! [`DeviceStats::n_exceptions`] counts; link trouble on RTU (garbage that stopped tokio-modbus's
//! frame decoder, replies garbled by a baud mismatch, see [`line`]) has its own counters, and
//! never ends the device.

mod device;
mod line;

#[cfg(test)]
mod interop;
#[cfg(test)]
mod tests;

use std::future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_modbus::server::tcp::accept_tcp_connection;
use tokio_modbus::{ExceptionCode, Response, SlaveRequest};

use crate::clock::SharedClock;
use crate::pty::Pty;
use event_config::edge::DeviceKind;
use reader_protocol::modbus::{Battery, ClockDisplayFrame, DigitalInputs};

use device::{Device, SharedDevice, Transport, lock};

/// Where an emulated device listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModbusEndpoint {
    /// Modbus TCP on this address (port 0: any free port, see [`DeviceHandle::local_addr`]).
    Tcp(std::net::SocketAddr),
    /// Modbus RTU on a pseudo-terminal reachable at `link`, at `baud` (8N1).
    Rtu { link: std::path::PathBuf, baud: u32 },
}

/// One device to emulate.
#[derive(Clone, Debug)]
pub struct DeviceSpec {
    pub id: String,
    pub kind: event_config::edge::DeviceKind,
    pub unit: u8,
    pub map: reader_protocol::modbus::RegisterMap,
    pub endpoint: ModbusEndpoint,
}

/// What a device has served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Requests addressed to the device (answered, refused, or broadcast).
    pub n_requests: u64,
    /// Requests answered with a Modbus exception.
    pub n_exceptions: u64,
    /// RTU requests for another unit, left unanswered.
    pub n_ignored: u64,
    /// RTU: times the frame decoder gave up on garbage and the server was restarted.
    pub n_framing_errors: u64,
    /// RTU: replies garbled because the client's line speed differs from the device's.
    pub n_garbled_replies: u64,
}

/// A running emulated device. Dropping it leaves the device running until the runtime ends;
/// [`DeviceHandle::shutdown`] stops it and removes its tty link.
pub struct DeviceHandle {
    device: SharedDevice,
    runtime: tokio::runtime::Handle,
    server: JoinHandle<()>,
    local_addr: Option<SocketAddr>,
    tty_path: Option<PathBuf>,
}

impl std::fmt::Debug for DeviceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceHandle")
            .field("device", &*lock(&self.device))
            .field("local_addr", &self.local_addr)
            .field("tty_path", &self.tty_path)
            .finish()
    }
}

/// Starts an emulated device and returns once it accepts requests.
///
/// Fails if the endpoint cannot be opened, or if the map lacks what the device's kind needs
/// (`ErrorKind::InvalidInput`, naming the point).
pub async fn spawn_device(spec: DeviceSpec, clock: SharedClock) -> std::io::Result<DeviceHandle> {
    let fits = {
        let image = reader_protocol::modbus::Image::power_on(&spec.map);
        match spec.kind {
            DeviceKind::DigitalInput => DigitalInputs::decode(&spec.map, &image).map(drop),
            DeviceKind::ChargeController => Battery::decode(&spec.map, &image).map(drop),
            DeviceKind::ClockDisplay => ClockDisplayFrame::decode(&spec.map, &image).map(drop),
        }
    };
    if let Err(error) = fits {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("device {:?}: map {:?} does not fit a {:?}: {error}", spec.id, spec.map.model(), spec.kind),
        ));
    }
    let device: SharedDevice =
        Arc::new(Mutex::new(Device::new(spec.id.clone(), spec.kind, spec.unit, spec.map, clock)));
    let runtime = tokio::runtime::Handle::current();
    match spec.endpoint {
        ModbusEndpoint::Tcp(addr) => {
            let listener = TcpListener::bind(addr).await?;
            let local_addr = listener.local_addr()?;
            let service = Service { device: device.clone(), transport: Transport::Tcp };
            let id = spec.id.clone();
            let server = tokio::spawn(async move {
                let server = tokio_modbus::server::tcp::Server::new(listener);
                let on_connected = |stream, socket_addr| {
                    let service = service.clone();
                    async move { accept_tcp_connection(stream, socket_addr, move |_| Ok(Some(service.clone()))) }
                };
                let on_process_error = move |error: std::io::Error| {
                    tracing::debug!(%error, "modbus tcp connection ended");
                };
                if let Err(error) = server.serve(&on_connected, on_process_error).await {
                    tracing::warn!(%error, device = %id, "modbus tcp server stopped");
                }
            });
            Ok(DeviceHandle { device, runtime, server, local_addr: Some(local_addr), tty_path: None })
        }
        ModbusEndpoint::Rtu { link, baud } => {
            let pty = Pty::open(Some(&link))?;
            let tty_path = pty.path().to_path_buf();
            let service = Service { device: device.clone(), transport: Transport::Rtu };
            let server = tokio::spawn(serve_rtu(pty, baud, service, device.clone()));
            Ok(DeviceHandle { device, runtime, server, local_addr: None, tty_path: Some(tty_path) })
        }
    }
}

/// Serves RTU through [`line::relay`], starting a fresh tokio-modbus server whenever garbage
/// makes its frame decoder give up (it ends on "too many retries").
async fn serve_rtu(mut pty: Pty, baud: u32, service: Service, device: SharedDevice) {
    let id = lock(&device).id.clone();
    loop {
        let (mut relay_side, server_side) = match tokio_serial::SerialStream::pair() {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, device = %id, "cannot open the pty between relay and modbus server");
                return;
            }
        };
        let server = tokio_modbus::server::rtu::Server::new(server_side);
        tokio::select! {
            ended = server.serve_forever(service.clone()) => {
                {
                    let mut d = lock(&device);
                    d.stats.n_framing_errors += 1;
                    d.bump();
                }
                if let Err(error) = ended {
                    tracing::debug!(%error, device = %id, "modbus rtu frame decoder gave up; restarting");
                }
            }
            ended = line::relay(&mut pty.master, &mut relay_side, baud, &device) => {
                if let Err(error) = ended {
                    tracing::warn!(%error, device = %id, "modbus rtu line failed");
                }
                return;
            }
        }
    }
}

impl DeviceHandle {
    /// The TCP address the device listens on.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.local_addr
    }

    /// The path a client opens for RTU (the link asked for).
    pub fn tty_path(&self) -> Option<std::path::PathBuf> {
        self.tty_path.clone()
    }

    /// What was last written to a clock display's time registers, decoded (`None` before the
    /// first write, or for other kinds).
    pub fn clock_display(&self) -> Option<timing_core::Elapsed> {
        self.clock_display_frame().map(|f| f.elapsed)
    }

    /// The clock display's whole state (time, mode, brightness), once its time was written.
    pub fn clock_display_frame(&self) -> Option<ClockDisplayFrame> {
        let d = lock(&self.device);
        if d.kind != DeviceKind::ClockDisplay || !d.display_written {
            return None;
        }
        ClockDisplayFrame::decode(&d.map, &d.image).ok()
    }

    /// A digital-input module's channels and counters, as a client would read them.
    pub fn digital_inputs(&self) -> Option<DigitalInputs> {
        let d = lock(&self.device);
        DigitalInputs::decode(&d.map, &d.image).ok()
    }

    /// A charge controller's battery state, as a client would read it.
    pub fn battery(&self) -> Option<Battery> {
        let d = lock(&self.device);
        Battery::decode(&d.map, &d.image).ok()
    }

    pub fn stats(&self) -> DeviceStats {
        lock(&self.device).stats
    }

    /// A receiver that wakes on every change of the device's state: a request served, a contact
    /// opening or closing, a battery update, line trouble. Wait on it instead of sleeping.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        lock(&self.device).subscribe()
    }

    /// A start gun: digital input `channel` closes for `width` of wall time and its counter counts
    /// the closing edge. A pulse while the contact is already closed keeps it closed longer
    /// without counting again. A channel the map lacks is ignored with a warning.
    pub fn pulse(&self, channel: u16, width: std::time::Duration) {
        let mut d = lock(&self.device);
        if !d.close_contact(channel) {
            tracing::warn!(device = %d.id, channel, kind = ?d.kind, "pulse on a digital input the map lacks; ignored");
            return;
        }
        drop(d);
        let device = self.device.clone();
        self.runtime.spawn(async move {
            tokio::time::sleep(width).await;
            lock(&device).open_contact(channel);
        });
    }

    /// A charge controller's battery: voltage, state of charge and net current (positive while
    /// charging). The charging current follows (the positive part), temperatures and PV voltage
    /// stay. Values the map cannot hold are refused with a warning and change nothing.
    pub fn set_battery(&self, voltage_mv: u32, soc_percent: u8, current_ma: i32) {
        let mut d = lock(&self.device);
        if d.kind != DeviceKind::ChargeController {
            tracing::warn!(device = %d.id, kind = ?d.kind, "set_battery on a device that is not a charge controller; ignored");
            return;
        }
        let before = Battery::decode(&d.map, &d.image).unwrap_or_default();
        let battery = Battery {
            voltage_mv,
            soc_percent,
            current_ma,
            charging_current_ma: Some(current_ma.max(0) as u32),
            ..before
        };
        if let Err(error) = d.put_battery(battery) {
            tracing::warn!(%error, device = %d.id, voltage_mv, soc_percent, current_ma, "battery state refused");
        }
    }

    /// Stops the device: closes its listener and connections (or its pty, removing the link).
    pub async fn shutdown(self) {
        self.server.abort();
        let _ = self.server.await;
    }
}

/// The tokio-modbus service: every request goes to the shared [`Device`].
#[derive(Clone, Debug)]
struct Service {
    device: SharedDevice,
    transport: Transport,
}

impl tokio_modbus::server::Service for Service {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = future::Ready<Result<Option<Response>, ExceptionCode>>;

    fn call(&self, request: Self::Request) -> Self::Future {
        future::ready(match lock(&self.device).handle(request, self.transport) {
            Some(Ok(response)) => Ok(Some(response)),
            Some(Err(exception)) => Err(exception),
            None => Ok(None),
        })
    }
}
