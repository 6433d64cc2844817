//! Modbus devices of an edge box: the start-gun input, the charge controller, the race clock.
//!
//! Each device is polled over Modbus TCP or RTU (tokio-modbus) with its register map from
//! `hardware/modbus/`. A start-gun contact is a digital input: the gun fired between two polls
//! when the contact was seen closing *or* its counter went up (a short closure can fall between
//! polls; the module counts it anyway). The gun fired after the previous poll's request left
//! (the device answered it later) and before this poll's answer came back, whatever the clock
//! did in between (a simulation's clock can jump during a round trip): the instant is the middle
//! of that interval and its uncertainty (`jitter_us`) half its length, which is why a decoder's
//! own trigger input, timestamped by the decoder, is the better source when there is one; this
//! is the fallback.
//! Gun times become signals in the outbox and reach the aggregator exactly once, like reads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use edge_store::NewSignal;
use event_config::edge::{DeviceConfig, DeviceKind};
use reader_protocol::modbus::{Battery, ClockDisplayFrame, DigitalInputs, Image, RegisterMap, Table};
use serde::{Deserialize, Serialize};
use timing_core::{Elapsed, Timestamp};
use tokio::sync::{mpsc, watch};
use tokio_modbus::client::Context;
use tokio_modbus::prelude::*;

use crate::daemon::EdgeStatus;
use crate::link::{Backoff, EdgeClock};
use crate::store_writer::Batch;

/// One device as crews see it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DeviceStatus {
    pub id: String,
    pub kind: String,
    pub connected: bool,
    pub last_error: Option<String>,
    pub n_polls: u64,
    pub n_guns: u64,
    pub battery_mv: Option<u32>,
    pub battery_soc: Option<u8>,
    pub clock_shows_s: Option<i64>,
}

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error("modbus: {0}")]
    Transport(#[from] tokio_modbus::Error),
    #[error("the device refused: {0:?}")]
    Exception(tokio_modbus::ExceptionCode),
    #[error("{0}")]
    Value(String),
    #[error("connecting: {0}")]
    Connect(String),
}

async fn connect(dev: &DeviceConfig) -> Result<Context, PollError> {
    let slave = Slave(dev.unit);
    match (&dev.address, &dev.serial) {
        (Some(addr), _) => {
            let addr = tokio::net::lookup_host(addr)
                .await
                .map_err(|e| PollError::Connect(format!("{addr}: {e}")))?
                .next()
                .ok_or_else(|| PollError::Connect(format!("{addr}: no address")))?;
            tokio_modbus::client::tcp::connect_slave(addr, slave).await.map_err(|e| PollError::Connect(e.to_string()))
        }
        (None, Some(s)) => {
            let builder = tokio_serial::new(s.device.to_string_lossy(), s.baud);
            let port = tokio_serial::SerialStream::open(&builder)
                .map_err(|e| PollError::Connect(format!("{}: {e}", s.device.display())))?;
            Ok(tokio_modbus::client::rtu::attach_slave(port, slave))
        }
        (None, None) => Err(PollError::Connect("no address or serial device".into())),
    }
}

/// Reads every block of `plan` into `image`.
async fn poll(ctx: &mut Context, map: &RegisterMap, image: &mut Image) -> Result<(), PollError> {
    let plan = map.read_plan();
    for block in plan {
        match block.table {
            Table::Coil => {
                let v = ctx.read_coils(block.start, block.count).await?.map_err(PollError::Exception)?;
                image.store_bits(block, &v).map_err(|e| PollError::Value(e.to_string()))?;
            }
            Table::DiscreteInput => {
                let v = ctx.read_discrete_inputs(block.start, block.count).await?.map_err(PollError::Exception)?;
                image.store_bits(block, &v).map_err(|e| PollError::Value(e.to_string()))?;
            }
            Table::InputRegister => {
                let v = ctx.read_input_registers(block.start, block.count).await?.map_err(PollError::Exception)?;
                image.store_words(block, &v).map_err(|e| PollError::Value(e.to_string()))?;
            }
            Table::HoldingRegister => {
                let v = ctx.read_holding_registers(block.start, block.count).await?.map_err(PollError::Exception)?;
                image.store_words(block, &v).map_err(|e| PollError::Value(e.to_string()))?;
            }
        }
    }
    Ok(())
}

/// Shared with the clock display: the earliest gun seen by this edge (the leading wave).
pub type LeadingGun = Arc<Mutex<Option<Timestamp>>>;

/// Polls one device until shutdown, reconnecting with backoff.
pub async fn run_device(
    dev: DeviceConfig,
    map: RegisterMap,
    clock: EdgeClock,
    writer: mpsc::Sender<Batch>,
    status: Arc<Mutex<EdgeStatus>>,
    leading_gun: LeadingGun,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::default();
    let set = |f: &dyn Fn(&mut DeviceStatus)| {
        let mut st = status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(d) = st.devices.iter_mut().find(|d| d.id == dev.id) {
            f(d);
        }
    };
    let poll_every = Duration::from_micros(dev.poll.as_micros().max(1_000) as u64);
    loop {
        let session = async {
            let mut ctx = connect(&dev).await?;
            set(&|d| d.connected = true);
            backoff.reset();
            let mut image = Image::power_on(&map);
            let mut previous: Option<(Timestamp, DigitalInputs)> = None;
            loop {
                let sent = clock.now();
                let exchange = async {
                    if dev.kind == DeviceKind::ClockDisplay {
                        let lead = *leading_gun.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        if let Some(gun) = lead {
                            let elapsed = sent.since(gun).max(Elapsed::ZERO);
                            let frame = ClockDisplayFrame {
                                elapsed,
                                mode: reader_protocol::modbus::DisplayMode::Running,
                                brightness_percent: 100,
                            };
                            for block in frame.encode(&map).map_err(|e| PollError::Value(e.to_string()))? {
                                ctx.write_multiple_registers(block.start, &block.values)
                                    .await?
                                    .map_err(PollError::Exception)?;
                            }
                            set(&|d| d.clock_shows_s = Some(elapsed.as_micros() / 1_000_000));
                        }
                    } else {
                        poll(&mut ctx, &map, &mut image).await?;
                    }
                    Ok::<(), PollError>(())
                };
                // A device that never answers (wrong baud rate, unit id or wiring) must not hang the poller.
                let limit = (poll_every * 3).max(Duration::from_secs(2));
                tokio::time::timeout(limit, exchange).await.map_err(|_| {
                    PollError::Connect(format!("no answer within {limit:?}: check the baud rate, unit id and wiring"))
                })??;
                let received = clock.now();
                set(&|d| d.n_polls += 1);
                match dev.kind {
                    DeviceKind::DigitalInput => {
                        let di = DigitalInputs::decode(&map, &image).map_err(|e| PollError::Value(e.to_string()))?;
                        if let Some((prev_sent, prev)) = &previous {
                            let mut signals = Vec::new();
                            for g in &dev.start_guns {
                                let c = g.channel as usize;
                                let closed = di.channels.get(c).copied().unwrap_or(false)
                                    && !prev.channels.get(c).copied().unwrap_or(false);
                                let counted = di
                                    .counters
                                    .get(c)
                                    .zip(prev.counters.get(c))
                                    .is_some_and(|(now, before)| now != before);
                                if closed || counted {
                                    let half = received.since(*prev_sent).as_micros().max(0) / 2;
                                    let gun_at = *prev_sent + Elapsed::from_micros(half);
                                    for (race, wave) in &g.waves {
                                        signals.push(NewSignal {
                                            race: race.clone(),
                                            wave: wave.clone(),
                                            at: gun_at,
                                            source: format!("modbus:{}:{}", dev.id, g.channel),
                                            jitter_us: half,
                                            received_at: received,
                                        });
                                    }
                                }
                            }
                            if !signals.is_empty() {
                                tracing::info!(device = %dev.id, n = signals.len(), at = ?signals[0].at, "start gun");
                                let first = signals[0].at;
                                {
                                    let mut lead =
                                        leading_gun.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                                    *lead = Some(lead.map_or(first, |l| l.min(first)));
                                }
                                let n = signals.len() as u64;
                                set(&|d| d.n_guns += n);
                                if writer.send(Batch { reads: Vec::new(), ack: None, signals }).await.is_err() {
                                    return Ok(());
                                }
                            }
                        }
                        previous = Some((sent, di));
                    }
                    DeviceKind::ChargeController => {
                        let b = Battery::decode(&map, &image).map_err(|e| PollError::Value(e.to_string()))?;
                        set(&|d| {
                            d.battery_mv = Some(b.voltage_mv);
                            d.battery_soc = Some(b.soc_percent);
                        });
                    }
                    DeviceKind::ClockDisplay => {}
                }
                // Batteries change slowly; guns and clocks are polled at the configured rate.
                let wait = if dev.kind == DeviceKind::ChargeController {
                    poll_every.max(Duration::from_secs(2))
                } else {
                    poll_every
                };
                tokio::time::sleep(wait).await;
            }
        };
        let result: Result<(), PollError> = tokio::select! {
            r = session => r,
            _ = shutdown.wait_for(|d| *d) => return,
        };
        if let Err(error) = result {
            tracing::warn!(device = %dev.id, %error, "modbus device down; reconnecting");
            let msg = error.to_string();
            set(&|d| {
                d.connected = false;
                d.last_error = Some(msg.clone());
            });
        } else {
            return;
        }
        let delay = backoff.next_delay();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|d| *d) => return,
        }
    }
}
