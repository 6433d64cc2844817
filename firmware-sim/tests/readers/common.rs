//! Helpers shared by the reader emulator tests: a manual clock at a fixed race morning, specs,
//! detections, and byte-stream clients that decode with `reader-protocol`'s codecs.
//!
//! Every wait is on a read or an event, bounded by [`WAIT`] only as a failure guard.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use event_config::edge::Protocol;
use firmware_sim::Detection;
use firmware_sim::clock::{ManualClock, ReaderClock};
use firmware_sim::readers::{Endpoint, ReaderHandle, ReaderSpec, spawn};
use reader_protocol::DecodeError;
use timing_core::{Elapsed, Rssi, Timestamp};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Failure guard for every wait.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// 2024-08-10T07:00:00Z: 09:00 in Paris, race morning.
pub(crate) fn t0() -> Timestamp {
    Timestamp::from_secs(1_723_273_200)
}

pub(crate) fn ms(n: i64) -> Elapsed {
    Elapsed::from_millis(n)
}

pub(crate) fn paris() -> Tz {
    chrono_tz::Europe::Paris
}

pub(crate) fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().expect("an address")
}

/// A reader clock `offset_ms` ahead of true time (behind when negative), drifting `ppm`.
pub(crate) fn reader_clock(offset_ms: i64, ppm: f64) -> ReaderClock {
    ReaderClock { offset: ms(offset_ms), drift_ppm: ppm, epoch: t0() }
}

pub(crate) fn spec(id: &str, protocol: Protocol, endpoint: Endpoint, clock: ReaderClock) -> ReaderSpec {
    ReaderSpec { id: id.to_owned(), protocol, endpoint, clock, time_zone: paris(), store: None }
}

pub(crate) async fn start(spec: ReaderSpec, clock: &Arc<ManualClock>) -> ReaderHandle {
    spawn(spec, clock.clone()).await.expect("emulator starts")
}

pub(crate) fn manual(at: Timestamp) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(at))
}

pub(crate) fn det(chip: &str, at: Timestamp, antenna: u16, rssi_tenths: i16) -> Detection {
    Detection { chip: chip.to_owned(), at, antenna, rssi: Rssi(rssi_tenths) }
}

/// The local wall clock in Paris at `at`.
pub(crate) fn local(at: Timestamp) -> NaiveDateTime {
    DateTime::<Utc>::from_timestamp_micros(at.as_micros()).expect("in range").with_timezone(&paris()).naive_local()
}

/// `ReaderTime::LocalDateTime` of `at` truncated to `unit_us`.
pub(crate) fn local_us(at: Timestamp, unit_us: i64) -> i64 {
    let us = local(at).and_utc().timestamp_micros();
    us.div_euclid(unit_us) * unit_us
}

/// Microseconds since local midnight of `at`, truncated to `unit_us`.
pub(crate) fn time_of_day_us(at: Timestamp, unit_us: i64) -> i64 {
    local_us(at, unit_us).rem_euclid(86_400_000_000)
}

pub(crate) fn bytes(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    f(&mut out);
    out
}

pub(crate) fn tty_link(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join("tty").join(name)
}

type Decode<M> = fn(&mut Vec<u8>) -> Result<Option<M>, DecodeError>;

/// One end of a byte stream, decoding what arrives with a codec.
pub(crate) struct Client<S> {
    pub(crate) io: S,
    buf: Vec<u8>,
}

impl Client<TcpStream> {
    pub(crate) async fn tcp(addr: SocketAddr) -> Client<TcpStream> {
        let io = tokio::time::timeout(WAIT, TcpStream::connect(addr)).await.expect("connect in time").expect("connect");
        Client::new(io)
    }
}

impl Client<tokio_serial::SerialStream> {
    pub(crate) fn tty(path: &std::path::Path) -> Client<tokio_serial::SerialStream> {
        let io = tokio_serial::SerialStream::open(&tokio_serial::new(path.to_str().expect("utf-8 path"), 9600))
            .expect("open the tty");
        Client::new(io)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub(crate) fn new(io: S) -> Client<S> {
        Client { io, buf: Vec::new() }
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.expect("write");
        self.io.flush().await.expect("flush");
    }

    /// The next decode result (a message or a decode error); panics on EOF or after [`WAIT`].
    pub(crate) async fn next<M>(&mut self, decode: Decode<M>) -> Result<M, DecodeError> {
        let result = tokio::time::timeout(WAIT, async {
            loop {
                match decode(&mut self.buf) {
                    Ok(Some(m)) => return Ok(m),
                    Ok(None) => {}
                    Err(e) => return Err(e),
                }
                let mut chunk = [0u8; 4096];
                let n = self.io.read(&mut chunk).await.expect("read");
                assert!(n > 0, "connection closed while waiting for a message (buffered: {:?})", self.buf);
                self.buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await;
        result.expect("a message in time")
    }

    pub(crate) async fn next_ok<M: std::fmt::Debug>(&mut self, decode: Decode<M>) -> M {
        self.next(decode).await.expect("a message that decodes")
    }

    /// The next message for which `keep` returns a value, skipping the others (heartbeats).
    pub(crate) async fn next_where<M: std::fmt::Debug, T>(
        &mut self,
        decode: Decode<M>,
        mut keep: impl FnMut(M) -> Option<T>,
    ) -> T {
        loop {
            if let Some(t) = keep(self.next_ok(decode).await) {
                return t;
            }
        }
    }

    /// Every byte until the peer closes (after [`WAIT`]: panic), the undecoded buffer included.
    pub(crate) async fn until_eof(&mut self) -> Vec<u8> {
        tokio::time::timeout(WAIT, async {
            loop {
                let mut chunk = [0u8; 4096];
                match self.io.read(&mut chunk).await {
                    Ok(0) | Err(_) => return std::mem::take(&mut self.buf),
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await
        .expect("the peer closes in time")
    }
}

/// Accepts the next connection of an emulator that dials in.
pub(crate) async fn accept(listener: &tokio::net::TcpListener) -> Client<TcpStream> {
    let (io, _) =
        tokio::time::timeout(WAIT, listener.accept()).await.expect("the emulator dials in time").expect("accept");
    Client::new(io)
}
