//! The read: one raw chip detection, as a decoder reported it (after clock correction to UTC).

use std::fmt;
use std::sync::Arc;

use crate::time::Timestamp;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn new(s: &str) -> $name {
                $name(Arc::from(s))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// Whether both share one allocation (a cheap equality check that can say "don't know").
            pub fn same_allocation(&self, other: &$name) -> bool {
                Arc::ptr_eq(&self.0, &other.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> $name {
                $name::new(s)
            }
        }
    };
}

string_id!(
    /// A transponder code as the reader reports it (EPC hex, or a decoder's own code).
    ChipId
);
string_id!(
    /// A timing point's id from the event config (`start`, `km7`, `finish`).
    PointId
);
string_id!(
    /// A reader's id (decoder name or serial) from the edge config.
    ReaderId
);

/// Which mat of a timing point produced a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Line {
    Main,
    Backup,
}

impl Line {
    pub fn as_str(self) -> &'static str {
        match self {
            Line::Main => "main",
            Line::Backup => "backup",
        }
    }
    pub fn parse(s: &str) -> Option<Line> {
        match s.trim().to_ascii_lowercase().as_str() {
            "main" | "m" | "primary" => Some(Line::Main),
            "backup" | "b" | "secondary" => Some(Line::Backup),
            _ => None,
        }
    }
}

/// Received signal strength in tenths of a dBm (−61.5 dBm is `Rssi(-615)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rssi(pub i16);

impl fmt::Display for Rssi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        let sign = if v < 0 { "-" } else { "" };
        let a = v.unsigned_abs();
        write!(f, "{sign}{}.{}", a / 10, a % 10)
    }
}

/// One raw chip detection.
///
/// `at` is the reader-reported instant, corrected to UTC by the edge: the timing truth.
/// Two reads with equal fields are the same read (a replay), which is how duplicates are recognised.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Read {
    pub chip: ChipId,
    pub at: Timestamp,
    pub point: PointId,
    pub line: Line,
    pub reader: ReaderId,
    pub antenna: u16,
    pub rssi: Option<Rssi>,
    /// The reader's own sequence number (passing number, log id) when it has one.
    pub reader_seq: Option<u64>,
}
