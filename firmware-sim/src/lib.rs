//! Emulated timing hardware: RFID decoders and Modbus devices that speak the real wire protocols
//! over real TCP sockets and serial pseudo-terminals, so the edge daemon, the demo and the load
//! tests run without hardware.
//!
//! - [`readers`]: one emulator per decoder protocol (RACE RESULT, Ultra, IPICO, JChip, MYLAPS,
//!   ChronoTrack, LLRP). Each keeps a passing store with sequence numbers (rewind and replay work
//!   across reconnects; a reboot starts a new file/session), runs its own [`clock::ReaderClock`]
//!   (offset and drift), and can inject faults ([`Fault`]).
//! - [`modbus`]: Modbus TCP and RTU servers (tokio-modbus) for a digital-input module (start-gun
//!   contact), a solar charge controller (battery) and a race-clock display; register maps are
//!   data under `hardware/modbus/`.
//! - [`clock`]: simulated time (a race played at `--speed 30`) and reader clocks.
//! - [`player`]: plays a generated race (`race-sim`) into the emulators in accelerated real time.
//!
//! Emulators are fed [`Detection`]s: one chip seen by one antenna at one true UTC instant.
//! What a decoder makes of them (one record per read, or one passing per crossing with a hit
//! count) is each protocol's business.
//! The codecs are `reader-protocol`'s; a bug shared by encoder and decoder would pass the round
//! trips here, which is why protocol truth comes from vendor captures and independent clients
//! (sllurp, pymodbus) instead.

pub mod clock;
pub mod modbus;
pub mod player;
pub mod pty;
pub mod readers;

use timing_core::{Elapsed, Rssi, Timestamp};

/// One chip seen by one antenna at a true UTC instant (before the reader's clock error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detection {
    pub chip: String,
    pub at: Timestamp,
    pub antenna: u16,
    pub rssi: Rssi,
}

/// A fault an emulator can be told to produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Close every client connection in the middle of the next frame written.
    DropMidFrame,
    /// Write these bytes to every client, between frames.
    Garbage(Vec<u8>),
    /// Stop answering and sending for this long (in wall time), then carry on.
    Stall(std::time::Duration),
    /// Restart: connections close, the session/file number goes up, passing numbers restart
    /// where the protocol does so; earlier sessions stay in the store.
    Reboot,
    /// Step the reader's clock by this much.
    ClockStep(Elapsed),
}
