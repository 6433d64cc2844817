//! Reader emulators against `reader-protocol`'s codecs (the client side) over real TCP sockets on
//! port 0 and real pseudo-terminals, plus the LLRP emulator against sllurp (`llrp_interop`).

mod chronotrack;
mod common;
mod ipico;
mod jchip;
mod llrp;
mod llrp_interop;
mod mylaps;
mod raceresult;
mod spawn;
mod ultra;
