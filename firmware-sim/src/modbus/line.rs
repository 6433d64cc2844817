//! The serial line between an RTU client and an emulated device, and what a wrong baud rate
//! does to it.
//!
//! A pseudo-terminal carries bytes, not bits, so two ends set to different speeds still see
//! each other's bytes intact. To show a client what a real line at the wrong speed shows, the
//! emulator reads the speed the client set on its end (a pty pair shares one termios) and, when
//! it differs from the device's, passes its reply through [`resample`]: the bit stream the
//! device sends at its speed, sampled the way the client's UART samples at its own.
//!
//! Design note, a deliberate simplification: the request is delivered as sent. A real device
//! at another speed would sample the request as garbage too and usually stay silent, so the
//! client would see only timeouts. The emulator answers instead, so the edge's
//! "bytes arrive but never frame" path has something to see. Both point at the baud rate.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::{SerialPort, SerialStream};

use super::device::{SharedDevice, lock};

/// What a UART receiving at `rx_baud` makes of `bytes` sent back to back at `tx_baud`
/// (8 data bits, no parity, 1 stop bit, line idle high before and after).
///
/// The receiver waits for a falling edge, samples the start bit, eight data bits and the stop
/// bit in the middle of its own bit times, and on a framing error (stop bit low) delivers a NUL
/// byte, as a Linux tty in raw mode does (no `PARMRK`, no `IGNPAR`). At equal speeds the bytes
/// come through unchanged.
pub(crate) fn resample(bytes: &[u8], tx_baud: u32, rx_baud: u32) -> Vec<u8> {
    if tx_baud == 0 || rx_baud == 0 {
        return Vec::new();
    }
    // Time in units of 1 / (2 · tx · rx) seconds: a sent bit lasts 2·rx units, a received bit
    // 2·tx units, so every sample instant is an integer.
    let (tx, rx) = (tx_baud as u64, rx_baud as u64);
    let n_bits = bytes.len() as u64 * 10;
    let level = |bit: u64| -> bool {
        if bit >= n_bits {
            return true;
        }
        match bit % 10 {
            0 => false,
            9 => true,
            k => (bytes[(bit / 10) as usize] >> (k - 1)) & 1 == 1,
        }
    };
    let level_at = |t: u64| level(t / (2 * rx));
    let mut out = Vec::new();
    let mut t = 0u64;
    loop {
        // The next falling edge at or after t happens at the start of a sent bit.
        let mut k = t.div_ceil(2 * rx);
        while k < n_bits && !(!level(k) && (k == 0 || level(k - 1))) {
            k += 1;
        }
        if k >= n_bits {
            return out;
        }
        let t0 = k * 2 * rx;
        if level_at(t0 + tx) {
            // Glitch shorter than half a bit: not a start bit.
            t = t0 + tx;
            continue;
        }
        let mut byte = 0u8;
        for j in 1..=8u64 {
            if level_at(t0 + (2 * j + 1) * tx) {
                byte |= 1 << (j - 1);
            }
        }
        let stop = t0 + 19 * tx;
        out.push(if level_at(stop) { byte } else { 0 });
        t = stop + 1;
    }
}

/// Copies bytes between the client's pty and the device's, garbling replies while the client's
/// end is set to another speed than `device_baud`. Returns when either side fails.
pub(super) async fn relay(
    client: &mut SerialStream,
    device_side: &mut SerialStream,
    device_baud: u32,
    device: &SharedDevice,
) -> io::Result<()> {
    let mut from_client = [0u8; 512];
    let mut from_device = [0u8; 512];
    loop {
        tokio::select! {
            n = client.read(&mut from_client) => {
                let n = n?;
                if n == 0 {
                    return Ok(());
                }
                device_side.write_all(&from_client[..n]).await?;
            }
            n = device_side.read(&mut from_device) => {
                let n = n?;
                if n == 0 {
                    return Ok(());
                }
                let reply = &from_device[..n];
                match client.baud_rate() {
                    Ok(client_baud) if client_baud != device_baud => {
                        {
                            let mut d = lock(device);
                            d.stats.n_garbled_replies += 1;
                            d.bump();
                        }
                        client.write_all(&resample(reply, device_baud, client_baud)).await?;
                    }
                    _ => client.write_all(reply).await?,
                }
            }
        }
    }
}

#[cfg(test)]
mod baud_diagnosis {
    use reader_protocol::line_health::{LineHealth, LineKind};
    use reader_protocol::rfid::raceresult;

    use super::resample;

    /// A RACE RESULT decoder's passings, as its serial port sends them.
    fn passings() -> Vec<u8> {
        let mut out = Vec::new();
        for n in 1..=40u64 {
            let date = raceresult::DecoderDate { year: 2024, month: 8, day: 10 };
            raceresult::Passing::new(n, &format!("E2000{n:07}"), Some(date), 85_267_250_000 + n * 1_000_000)
                .write(&mut out);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    fn health_of(bytes: &[u8]) -> LineHealth {
        let mut h = LineHealth::new(LineKind::Text);
        let mut buf = bytes.to_vec();
        h.observe_bytes(bytes);
        while !buf.is_empty() {
            match raceresult::decode(&mut buf) {
                Ok(Some(_)) => h.observe_frame(true),
                Ok(None) => break,
                Err(_) => h.observe_frame(false),
            }
        }
        h
    }

    #[test]
    fn a_text_reader_at_the_wrong_baud_rate_is_diagnosed() {
        let sent = passings();
        assert_eq!(health_of(&resample(&sent, 19_200, 19_200)).diagnosis(), None, "right speed, healthy line");
        for (tx, rx) in [(19_200, 9_600), (9_600, 19_200), (9_600, 115_200), (115_200, 9_600)] {
            let d = health_of(&resample(&sent, tx, rx)).diagnosis();
            assert!(
                d.as_deref().is_some_and(|d| d.starts_with("framing errors: check baud rate")),
                "{tx} → {rx}: {d:?}"
            );
        }
    }
}
