//! Reader sessions of the binary-and-exporter protocols (LLRP, MYLAPS Exporter, ChronoTrack
//! CTP01) against firmware-sim's emulators over real TCP sockets on port 0.
//!
//! Each test runs `run_link_on` in a task and drains its [`edge_daemon::link::LinkEvent`]s;
//! the test plays the store: it advances the resume table for what it "stored" and fires (or
//! drops) MYLAPS acks. Every wait is on an event or a condition, bounded only as a failure guard.

mod chronotrack;
mod harness;
mod llrp;
mod mylaps;
