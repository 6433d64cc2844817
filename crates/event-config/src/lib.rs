//! Event folders parsed and validated into `timing-core` types ("parse, don't validate").
//!
//! One folder per event under `config/`: `event.toml` (the event, timing points, races, waves,
//! categories), a participant list (CSV), optionally `corrections.toml`, and one
//! `edge-<box>.toml` per edge box (its readers, Modbus devices, store and uplink).
//! Modbus register maps (`hardware/modbus/*.toml`) parse here too, into
//! `reader_protocol::modbus::RegisterMap` ([`parse_register_map`]).
//! Every function takes the file's text and its name for messages: this crate does no I/O.
//! Every problem found is reported with file, line and column, and a file with any problem
//! yields nothing.
//!
//! Key items: [`parse_event`] → [`EventConfig`]; [`parse_participants`]; [`parse_corrections`].

pub mod corrections;
pub mod edge;
pub mod error;
pub mod event;
pub mod modbus_map;
pub mod participants;
pub mod units;

pub use corrections::parse_corrections;
pub use edge::{EdgeConfig, parse_edge};
pub use error::{ConfigError, ConfigErrors, Position};
pub use event::{AgeReference, EventConfig, parse_event};
pub use modbus_map::parse_register_map;
pub use participants::{REQUIRED_COLUMNS, age_on, parse_participants};

#[cfg(test)]
mod tests;
