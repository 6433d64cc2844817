//! Telling a person why a serial line says nothing useful.
//!
//! A reader at another baud rate than the edge still produces bytes, just not frames: the UART
//! samples the wrong bit boundaries and delivers noise, with NUL bytes for every framing error
//! (a Linux tty in raw mode). Silence would leave a crew guessing; [`LineHealth`] watches the
//! recent bytes and frames of one link and says "framing errors: check baud rate" when the
//! pattern is there.
//!
//! Two signals, either one enough:
//! - for text protocols, a share of the last bytes that no text protocol sends (control bytes
//!   other than CR, LF and TAB; NUL above all);
//! - for any protocol, frames that keep failing to decode with none decoding in between.

use std::collections::VecDeque;

/// How many recent bytes are judged.
const WINDOW: usize = 512;
/// Judge only once this many bytes have been seen.
const MIN_BYTES: usize = 64;
/// Share of non-text bytes (per mille) that points at the baud rate.
const NOISE_PER_MILLE: usize = 200;
/// Malformed frames in a row, with no good frame, that point at the line.
const BAD_FRAMES_IN_A_ROW: u32 = 5;

/// What a link's protocol sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    /// ASCII lines (RACE RESULT, Ultra, IPICO, JChip, MYLAPS, ChronoTrack).
    Text,
    /// Binary frames (LLRP, Modbus RTU): only frame failures count.
    Binary,
}

/// The recent history of one link.
#[derive(Clone, Debug)]
pub struct LineHealth {
    kind: LineKind,
    recent: VecDeque<u8>,
    noise_in_window: usize,
    nuls_in_window: usize,
    bad_frames_in_a_row: u32,
    good_frames: u64,
}

impl LineHealth {
    pub fn new(kind: LineKind) -> LineHealth {
        LineHealth {
            kind,
            recent: VecDeque::with_capacity(WINDOW),
            noise_in_window: 0,
            nuls_in_window: 0,
            bad_frames_in_a_row: 0,
            good_frames: 0,
        }
    }

    fn is_noise(b: u8) -> bool {
        b < 0x20 && !matches!(b, b'\r' | b'\n' | b'\t')
    }

    /// Every byte read from the link.
    pub fn observe_bytes(&mut self, bytes: &[u8]) {
        if self.kind == LineKind::Binary {
            return;
        }
        for &b in bytes {
            if self.recent.len() == WINDOW {
                let old = self.recent.pop_front().expect("full window");
                self.noise_in_window -= usize::from(Self::is_noise(old));
                self.nuls_in_window -= usize::from(old == 0);
            }
            self.recent.push_back(b);
            self.noise_in_window += usize::from(Self::is_noise(b));
            self.nuls_in_window += usize::from(b == 0);
        }
    }

    /// Every frame the codec decoded (`true`) or refused (`false`).
    pub fn observe_frame(&mut self, decoded: bool) {
        if decoded {
            self.bad_frames_in_a_row = 0;
            self.good_frames += 1;
        } else {
            self.bad_frames_in_a_row = self.bad_frames_in_a_row.saturating_add(1);
        }
    }

    /// A sentence for the crew when the line looks wrong, `None` when it looks fine.
    pub fn diagnosis(&self) -> Option<String> {
        let n = self.recent.len();
        if n >= MIN_BYTES && self.noise_in_window * 1000 >= n * NOISE_PER_MILLE {
            return Some(format!(
                "framing errors: check baud rate ({} of the last {n} bytes are not text, {} of them NUL)",
                self.noise_in_window, self.nuls_in_window
            ));
        }
        if self.bad_frames_in_a_row >= BAD_FRAMES_IN_A_ROW {
            return Some(format!(
                "framing errors: check baud rate and protocol ({} malformed frames in a row{})",
                self.bad_frames_in_a_row,
                if self.good_frames == 0 { ", none decoded since the link opened" } else { "" }
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_is_healthy_and_noise_is_named() {
        let mut h = LineHealth::new(LineKind::Text);
        for _ in 0..20 {
            h.observe_bytes(b"#P;12;E2000001;2024-08-10;23:41:07.250;1;12;-61\r\n");
            h.observe_frame(true);
        }
        assert_eq!(h.diagnosis(), None);
        h.observe_bytes(&[0u8, 0x13, 0, 0x07, b'a', 0, 0x02, 0][..].repeat(40));
        let d = h.diagnosis().unwrap();
        assert!(d.starts_with("framing errors: check baud rate ("), "{d}");
        assert!(d.contains("NUL"), "{d}");
    }

    #[test]
    fn frames_that_keep_failing_point_at_the_line_for_binary_protocols() {
        let mut h = LineHealth::new(LineKind::Binary);
        h.observe_bytes(&[0u8; 400]); // bytes alone say nothing for a binary protocol
        assert_eq!(h.diagnosis(), None);
        for _ in 0..4 {
            h.observe_frame(false);
        }
        assert_eq!(h.diagnosis(), None);
        h.observe_frame(false);
        assert_eq!(
            h.diagnosis().unwrap(),
            "framing errors: check baud rate and protocol (5 malformed frames in a row, none decoded since the link opened)"
        );
        h.observe_frame(true);
        assert_eq!(h.diagnosis(), None);
    }
}
