//! Reader wire protocols, one module per vendor.
//!
//! - [`llrp`]: Impinj Speedway / R700 and other EPCglobal LLRP readers (binary, TCP 5084).

pub mod llrp;
