//! One emulated device's state and how it answers a request: the register image from
//! `reader_protocol::modbus`, plus what each kind of device does by itself (contacts closing,
//! counters counting, a real-time clock ticking, a display remembering what it was told).

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{Datelike, Timelike};
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};

use event_config::edge::DeviceKind;
use reader_protocol::modbus::{Battery, DigitalInputs, Exception, Image, RegisterMap, Table};
use timing_core::{Elapsed, Timestamp};

use crate::clock::SharedClock;

use super::DeviceStats;

/// How requests reached the device: the transports treat unit ids differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Transport {
    Tcp,
    Rtu,
}

const DI_WORD: &str = "di_word";
const DO: &str = "do";
const DO_WORD: &str = "do_word";
const COUNTER_START: &str = "di_counter_start";
const COUNTER_CLEAR: &str = "di_counter_clear";
const RTC: [&str; 3] = ["rtc_second_minute", "rtc_hour_day", "rtc_month_year"];
const CHARGING_POWER: &str = "charging_power";
const PV_POWER: &str = "pv_power";

pub(super) struct Device {
    pub(super) id: String,
    pub(super) kind: DeviceKind,
    unit: u8,
    pub(super) map: RegisterMap,
    pub(super) image: Image,
    pub(super) stats: DeviceStats,
    /// Per digital input: pulses still holding the contact closed.
    n_pulses_closing: Vec<u32>,
    /// The time registers of a clock display have been written at least once.
    pub(super) display_written: bool,
    clock: SharedClock,
    /// The real-time clock's setting minus the simulation's time.
    rtc_offset: Elapsed,
    /// Counts every change of state (requests served, contacts, battery, line trouble).
    changes: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device").field("id", &self.id).field("kind", &self.kind).field("stats", &self.stats).finish()
    }
}

/// The state shared by the server tasks, the pulse timers and the handle.
pub(super) type SharedDevice = Arc<Mutex<Device>>;

pub(super) fn lock(device: &SharedDevice) -> MutexGuard<'_, Device> {
    // A panic while holding the lock is a bug already reported; the state is still usable.
    device.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Device {
    pub(super) fn new(id: String, kind: DeviceKind, unit: u8, map: RegisterMap, clock: SharedClock) -> Device {
        let image = Image::power_on(&map);
        let n_channels = map.point(DigitalInputs::CHANNELS).map_or(0, |p| p.count as usize);
        let mut device = Device {
            id,
            kind,
            unit,
            map,
            image,
            stats: DeviceStats::default(),
            n_pulses_closing: vec![0; n_channels],
            display_written: false,
            clock,
            rtc_offset: Elapsed::ZERO,
            changes: tokio::sync::watch::Sender::new(0),
        };
        if kind == DeviceKind::ChargeController {
            // The example reply of the research notes (8b): a sunny morning, battery charging.
            let battery = Battery {
                voltage_mv: 13_100,
                current_ma: 1_700,
                soc_percent: 80,
                temperature_dc: Some(250),
                charging_current_ma: Some(1_700),
                pv_voltage_mv: Some(18_520),
                device_temperature_dc: Some(300),
            };
            if let Err(error) = device.put_battery(battery) {
                tracing::warn!(%error, device = %device.id, "register map does not take the power-on battery state");
            }
        }
        device.refresh_words();
        device
    }

    /// Tells watchers that something changed.
    pub(super) fn bump(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(super) fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Answers one request; `None` means stay silent (RTU: another unit, or a broadcast).
    pub(super) fn handle(
        &mut self,
        request: SlaveRequest<'_>,
        transport: Transport,
    ) -> Option<Result<Response, ExceptionCode>> {
        let answer = self.answer(request, transport);
        self.bump();
        answer
    }

    fn answer(&mut self, request: SlaveRequest<'_>, transport: Transport) -> Option<Result<Response, ExceptionCode>> {
        let broadcast = transport == Transport::Rtu && request.slave == 0;
        let ours = request.slave == self.unit
            || broadcast
            || (transport == Transport::Tcp && (request.slave == 0 || request.slave == 0xFF));
        if !ours {
            return match transport {
                Transport::Rtu => {
                    self.stats.n_ignored += 1;
                    None
                }
                // A gateway's answer for a unit it has no path to; plain TCP devices vary.
                Transport::Tcp => {
                    self.stats.n_requests += 1;
                    self.stats.n_exceptions += 1;
                    Some(Err(ExceptionCode::GatewayTargetDevice))
                }
            };
        }
        self.stats.n_requests += 1;
        self.refresh_clock();
        let answer = self.serve(request.request).map_err(|e| match e {
            Exception::IllegalFunction => ExceptionCode::IllegalFunction,
            Exception::IllegalDataAddress => ExceptionCode::IllegalDataAddress,
            Exception::IllegalDataValue => ExceptionCode::IllegalDataValue,
        });
        if answer.is_err() {
            self.stats.n_exceptions += 1;
        }
        if broadcast { None } else { Some(answer) }
    }

    fn serve(&mut self, request: Request<'_>) -> Result<Response, Exception> {
        let image = &mut self.image;
        let response = match request {
            Request::ReadCoils(a, n) => Response::ReadCoils(image.serve_read_bits(Table::Coil, a, n)?),
            Request::ReadDiscreteInputs(a, n) => {
                Response::ReadDiscreteInputs(image.serve_read_bits(Table::DiscreteInput, a, n)?)
            }
            Request::ReadInputRegisters(a, n) => {
                Response::ReadInputRegisters(image.serve_read_words(Table::InputRegister, a, n)?)
            }
            Request::ReadHoldingRegisters(a, n) => {
                Response::ReadHoldingRegisters(image.serve_read_words(Table::HoldingRegister, a, n)?)
            }
            Request::WriteSingleCoil(a, v) => {
                image.serve_write_bits(&self.map, a, &[v])?;
                self.after_write(Table::Coil, a, 1);
                Response::WriteSingleCoil(a, v)
            }
            Request::WriteMultipleCoils(a, vs) => {
                image.serve_write_bits(&self.map, a, &vs)?;
                self.after_write(Table::Coil, a, vs.len());
                Response::WriteMultipleCoils(a, vs.len() as u16)
            }
            Request::WriteSingleRegister(a, w) => {
                image.serve_write_words(&self.map, a, &[w])?;
                self.after_write(Table::HoldingRegister, a, 1);
                Response::WriteSingleRegister(a, w)
            }
            Request::WriteMultipleRegisters(a, ws) => {
                image.serve_write_words(&self.map, a, &ws)?;
                self.after_write(Table::HoldingRegister, a, ws.len());
                Response::WriteMultipleRegisters(a, ws.len() as u16)
            }
            _ => return Err(Exception::IllegalFunction),
        };
        Ok(response)
    }

    /// What the device does once a write has landed.
    fn after_write(&mut self, table: Table, start: u16, count: usize) {
        let written: Vec<String> = (start as u32..start as u32 + count as u32)
            .filter_map(|a| self.map.point_at(table, a as u16).map(|(p, _, _)| p.name.clone()))
            .collect();
        let touched = |name: &str| written.iter().any(|w| w == name);
        if touched(COUNTER_CLEAR) {
            self.clear_counters();
        }
        if touched("elapsed_seconds") || touched("elapsed_fraction") {
            self.display_written = true;
        }
        if RTC.iter().any(|n| touched(n)) {
            self.set_rtc_from_registers();
        }
        if touched(DO) {
            self.refresh_words();
        }
    }

    /// Writing 1 to a counter's clear coil zeroes that counter; the coil reads back 0.
    fn clear_counters(&mut self) {
        let (Some(clear), Some(counter)) =
            (self.map.point(COUNTER_CLEAR).cloned(), self.map.point(DigitalInputs::COUNTERS).cloned())
        else {
            return;
        };
        for i in 0..clear.count {
            if self.image.value(&clear, i) == Ok(1) {
                let _ = self.image.set_value(&counter, i, 0);
                let _ = self.image.set_value(&clear, i, 0);
            }
        }
    }

    /// Closes contact `channel`; on a closing edge its counter counts (if running).
    /// False if the map has no such channel.
    pub(super) fn close_contact(&mut self, channel: u16) -> bool {
        let Some(di) = self.map.point(DigitalInputs::CHANNELS).cloned() else { return false };
        let Some(n) = self.n_pulses_closing.get_mut(channel as usize) else { return false };
        *n += 1;
        if *n == 1 {
            let _ = self.image.set_value(&di, channel, 1);
            let running = self.map.point(COUNTER_START).is_none_or(|p| self.image.value(p, channel) == Ok(1));
            if let Some(counter) = self.map.point(DigitalInputs::COUNTERS).cloned()
                && running
                && channel < counter.count
            {
                let (_, max) = counter.raw_range();
                let next = self.image.value(&counter, channel).map_or(0, |v| if v >= max { 0 } else { v + 1 });
                let _ = self.image.set_value(&counter, channel, next);
            }
            self.refresh_words();
            self.bump();
        }
        true
    }

    /// One pulse holding `channel` closed has ended; the contact opens when none is left.
    pub(super) fn open_contact(&mut self, channel: u16) {
        let Some(n) = self.n_pulses_closing.get_mut(channel as usize) else { return };
        *n = n.saturating_sub(1);
        if *n == 0
            && let Some(di) = self.map.point(DigitalInputs::CHANNELS).cloned()
        {
            let _ = self.image.set_value(&di, channel, 0);
            self.refresh_words();
            self.bump();
        }
    }

    /// Writes a battery state, with the powers that follow from it.
    pub(super) fn put_battery(&mut self, battery: Battery) -> Result<(), reader_protocol::modbus::ValueError> {
        let mut image = self.image.clone();
        battery.encode(&self.map, &mut image)?;
        // Power in microwatts: millivolts × milliamps.
        let charging_uw = battery.voltage_mv as i64 * battery.charging_current_ma.unwrap_or(0) as i64;
        let pv_uw = battery.pv_voltage_mv.unwrap_or(0) as i64 * battery.charging_current_ma.unwrap_or(0) as i64;
        for (name, uw) in [(CHARGING_POWER, charging_uw), (PV_POWER, pv_uw)] {
            if let Some(p) = self.map.point(name) {
                let raw = p.fixed_to_raw(uw, -6).unwrap_or(i64::MAX).min(p.raw_range().1);
                image.set_value(p, 0, raw)?;
            }
        }
        self.image = image;
        self.bump();
        Ok(())
    }

    /// Registers that mirror others: the DI and DO bit-words.
    fn refresh_words(&mut self) {
        for (bits, word) in [(DigitalInputs::CHANNELS, DI_WORD), (DO, DO_WORD)] {
            let (Some(bits), Some(word)) = (self.map.point(bits), self.map.point(word)) else { continue };
            let mut v = 0i64;
            for i in 0..bits.count.min(16) {
                if self.image.value(bits, i) == Ok(1) {
                    v |= 1 << i;
                }
            }
            let word = word.clone();
            let _ = self.image.set_value(&word, 0, v);
        }
    }

    fn rtc_now(&self) -> Option<chrono::NaiveDateTime> {
        let at = self.clock.now() + self.rtc_offset;
        chrono::DateTime::from_timestamp_micros(at.as_micros()).map(|t| t.naive_utc())
    }

    /// An EPEver-style real-time clock shows the simulation's time (UTC) plus whatever offset a
    /// client set.
    fn refresh_clock(&mut self) {
        let points: Vec<_> = RTC.iter().filter_map(|n| self.map.point(n).cloned()).collect();
        let Some(t) = self.rtc_now().filter(|_| points.len() == 3) else { return };
        let words = [
            t.second() | t.minute() << 8,
            t.hour() | t.day() << 8,
            t.month() | ((t.year() - 2000).clamp(0, 255) as u32) << 8,
        ];
        for (p, w) in points.iter().zip(words) {
            let _ = self.image.set_value(p, 0, w as i64);
        }
    }

    /// A client set the clock: keep the offset so it runs on from there. A date that does not
    /// exist leaves the clock as it was.
    fn set_rtc_from_registers(&mut self) {
        let words: Vec<u32> = RTC
            .iter()
            .filter_map(|n| self.map.point(n).and_then(|p| self.image.value(p, 0).ok()))
            .map(|v| v as u32)
            .collect();
        let [sm, hd, my] = words[..] else { return };
        let set = chrono::NaiveDate::from_ymd_opt(2000 + (my >> 8) as i32, my & 0xFF, hd >> 8)
            .and_then(|d| d.and_hms_opt(hd & 0xFF, sm >> 8, sm & 0xFF));
        if let Some(set) = set {
            let set = Timestamp::from_micros(set.and_utc().timestamp_micros());
            self.rtc_offset = set.since(self.clock.now());
        }
        self.refresh_clock();
    }
}
