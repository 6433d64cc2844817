//! Reader wire protocols, one module per vendor.
//!
//! Every module offers the same shape: a `Message` enum (what the reader, or the vendor software,
//! sends), a `Command` enum (what racetime sends), `encode(&self, &mut Vec<u8>)` on both,
//! `decode(&mut Vec<u8>)` / `decode_slice(&[u8])` for messages and `decode_command` /
//! `decode_command_slice` for commands (reader emulators parse those), and a maximum frame length.
//! A malformed frame is consumed and reported as a typed [`crate::DecodeError`]; the next frame
//! still decodes.
//! [`llrp`] (Impinj Speedway / R700 and other EPCglobal LLRP readers, binary, TCP 5084) has the
//! same `decode`/`encode` pair over one message type for both directions.

pub mod chronotrack;
pub mod ipico;
pub mod jchip;
pub mod llrp;
pub mod mylaps;
pub mod raceresult;
pub mod ultra;
