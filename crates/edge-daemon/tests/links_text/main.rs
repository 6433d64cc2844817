//! The text reader sessions (RACE RESULT, Ultra, IPICO, JChip) against firmware-sim's emulators,
//! over real TCP sockets on port 0 and real pseudo-terminals.
//!
//! Every wait is on an event; timeouts are failure guards only.

mod common;
mod ipico;
mod jchip;
mod raceresult;
mod ultra;
