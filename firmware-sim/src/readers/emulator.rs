//! The state one emulated decoder shares between its handle, its transport task and its
//! connections: clock, passing store, counters, protocol device state, and the signals that wake
//! connections (new records, reboot, faults, shutdown).
//!
//! Design note: everything mutable sits behind one `std::sync::Mutex`, locked for short,
//! non-blocking steps (store a detection, handle one command, render frames) and never across an
//! `.await`. Bytes are written after the lock is released. That keeps [`super::ReaderHandle`]'s
//! methods synchronous: a detection is stored the moment `detect` returns, whether or not a
//! client is connected or the link is stalled.

use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono_tz::Tz;
use event_config::edge::Protocol;
use tokio::sync::{Notify, broadcast, watch};

use timing_core::Timestamp;

use super::store::Store;
use super::{ReaderStats, chronotrack, ipico, jchip, llrp, mylaps, raceresult, ultra};
use crate::clock::{ReaderClock, SharedClock};
use crate::{Detection, Fault};

/// A fault that acts on the bytes of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LinkFault {
    DropMidFrame,
    Garbage(Vec<u8>),
    /// Neither read nor write until this wall-clock instant.
    Stall(tokio::time::Instant),
}

/// Protocol state that outlives a connection (until a reboot).
#[derive(Debug)]
pub(crate) enum Device {
    RaceResult(raceresult::Device),
    Ultra(ultra::Device),
    Llrp(llrp::Device),
    /// Protocols whose state is all per connection or in the store.
    Plain,
}

impl Device {
    pub(crate) fn new(protocol: Protocol) -> Device {
        match protocol {
            Protocol::Raceresult => Device::RaceResult(raceresult::Device::new()),
            Protocol::Ultra => Device::Ultra(ultra::Device::new()),
            Protocol::Llrp => Device::Llrp(llrp::Device::new()),
            Protocol::Ipico | Protocol::Jchip | Protocol::Mylaps | Protocol::Chronotrack => Device::Plain,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) records_sent: u64,
    pub(crate) clients_connected: u32,
    pub(crate) commands_received: u64,
    pub(crate) bad_commands: u64,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) clock: ReaderClock,
    pub(crate) store: Store,
    pub(crate) counters: Counters,
    pub(crate) device: Device,
    /// Link faults that arrived while no connection was open: the next one gets them.
    pub(crate) pending_faults: Vec<LinkFault>,
}

pub(crate) struct Shared {
    pub(crate) id: String,
    pub(crate) protocol: Protocol,
    pub(crate) time_zone: Tz,
    pub(crate) sim: SharedClock,
    state: Mutex<State>,
    /// Bumped whenever records were stored (or the store changed): connections push what is due.
    pub(crate) records_tx: watch::Sender<u64>,
    /// Bumped on every reboot: connections close.
    pub(crate) boot_tx: watch::Sender<u32>,
    pub(crate) faults_tx: broadcast::Sender<LinkFault>,
    pub(crate) shutdown_tx: watch::Sender<bool>,
    /// Wakes the RACE RESULT crossing timer when a crossing is open.
    pub(crate) crossing_open: Notify,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("id", &self.id).field("protocol", &self.protocol).finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(id: String, protocol: Protocol, time_zone: Tz, sim: SharedClock, state: State) -> Shared {
        Shared {
            id,
            protocol,
            time_zone,
            sim,
            state: Mutex::new(state),
            records_tx: watch::Sender::new(0),
            boot_tx: watch::Sender::new(0),
            faults_tx: broadcast::Sender::new(64),
            shutdown_tx: watch::Sender::new(false),
            crossing_open: Notify::new(),
        }
    }

    /// The lock is only ever held for non-panicking bookkeeping; a poisoned lock still holds
    /// consistent data.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The simulation's true "now".
    pub(crate) fn now(&self) -> Timestamp {
        self.sim.now()
    }

    pub(crate) fn notify_records(&self) {
        self.records_tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn stats(&self) -> ReaderStats {
        let st = self.lock();
        ReaderStats {
            records_stored: st.store.records().len() as u64,
            records_sent: st.counters.records_sent,
            clients_connected: st.counters.clients_connected,
            session: st.store.session(),
            commands_received: st.counters.commands_received,
            bad_commands: st.counters.bad_commands,
        }
    }

    pub(crate) fn detect(&self, d: Detection) {
        let now = self.now();
        let stored = {
            let mut st = self.lock();
            match self.protocol {
                Protocol::Raceresult => raceresult::detect(self, &mut st, &d, now),
                Protocol::Ultra => ultra::detect(&mut st, &d),
                Protocol::Llrp => llrp::detect(&mut st, &d),
                Protocol::Ipico | Protocol::Jchip | Protocol::Mylaps | Protocol::Chronotrack => {
                    store_detection(&mut st, &d);
                    true
                }
            }
        };
        if stored {
            self.notify_records();
        }
    }

    pub(crate) fn gun(&self, at: Timestamp) {
        let stored = {
            let mut st = self.lock();
            match self.protocol {
                Protocol::Raceresult => raceresult::gun(&mut st, at),
                Protocol::Ultra => ultra::gun(&mut st, at),
                Protocol::Ipico => ipico::gun(&mut st, at),
                Protocol::Mylaps => mylaps::gun(&mut st, at),
                Protocol::Chronotrack => chronotrack::gun(&mut st, at),
                Protocol::Jchip => jchip::gun(),
                Protocol::Llrp => llrp::gun(),
            }
        };
        if stored {
            self.notify_records();
        }
    }

    pub(crate) fn fault(&self, fault: Fault) {
        match fault {
            Fault::Reboot => self.reboot(),
            Fault::ClockStep(by) => {
                self.lock().clock.step(by);
                tracing::info!(reader_id = %self.id, step_us = by.as_micros(), "reader clock stepped");
            }
            Fault::DropMidFrame => self.link_fault(LinkFault::DropMidFrame),
            Fault::Garbage(bytes) => self.link_fault(LinkFault::Garbage(bytes)),
            Fault::Stall(d) => self.link_fault(LinkFault::Stall(tokio::time::Instant::now() + d)),
        }
    }

    fn link_fault(&self, f: LinkFault) {
        let mut st = self.lock();
        if self.faults_tx.receiver_count() == 0 || self.faults_tx.send(f.clone()).is_err() {
            st.pending_faults.push(f);
        }
    }

    fn reboot(&self) {
        let now = self.now();
        {
            let mut st = self.lock();
            if self.protocol == Protocol::Raceresult {
                raceresult::close_all_crossings(&mut st);
            }
            let reader_now = st.clock.reader_time(now);
            st.store.new_session(reader_now);
            st.device = Device::new(self.protocol);
            st.pending_faults.clear();
            tracing::info!(reader_id = %self.id, session = st.store.session(), "reader rebooted");
        }
        self.boot_tx.send_modify(|n| *n = n.wrapping_add(1));
        self.notify_records();
    }
}

/// The default for protocols that keep one record per detection.
pub(crate) fn store_detection(st: &mut State, d: &Detection) {
    let at = st.clock.reader_time(d.at);
    st.store.append(super::store::NewRecord {
        kind: super::store::RecordKind::Tag,
        at,
        chip: d.chip.clone(),
        antenna: d.antenna,
        rssi: d.rssi,
        hits: 1,
    });
}

/// Stores a gun trigger stamped by the reader's clock.
pub(crate) fn store_gun(st: &mut State, at: Timestamp, chip: &str) {
    let at = st.clock.reader_time(at);
    st.store.append(super::store::NewRecord {
        kind: super::store::RecordKind::Gun,
        at,
        chip: chip.to_owned(),
        antenna: 0,
        rssi: timing_core::Rssi(0),
        hits: 1,
    });
}

/// A stable number derived from the reader id, for serial numbers and device ids.
pub(crate) fn device_number(id: &str) -> u32 {
    // FNV-1a: stable across runs and platforms, unlike the std hasher.
    id.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// Whole dBm of an RSSI in tenths, rounded half away from zero.
pub(crate) fn dbm(rssi: timing_core::Rssi) -> i32 {
    let v = i32::from(rssi.0);
    if v < 0 { -((-v + 5) / 10) } else { (v + 5) / 10 }
}
