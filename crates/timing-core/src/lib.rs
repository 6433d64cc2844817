//! timing-core
pub mod read;
pub mod time;
pub use read::{ChipId, Line, PointId, Read, ReaderId, Rssi};
pub use time::{Elapsed, Precision, Timestamp};
