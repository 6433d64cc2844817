//! Transports of an emulated decoder and the loop that drives one [`Session`] over one link.
//!
//! - `listen`: the decoder is a TCP server; every accepted connection gets its own session.
//! - `connect`: the decoder (or vendor software) dials the edge and redials forever, with a
//!   backoff from 100 ms doubling to 5 s, reset after every connection that came up.
//! - `serial`: a pseudo-terminal; one session at a time runs on the master end for as long as
//!   the emulator lives (a reboot starts a fresh one). A serial line cannot be closed, so
//!   [`crate::Fault::DropMidFrame`] there cuts the frame and carries on.
//!
//! Link faults act on bytes: garbage goes out between frames (followed by the protocol's frame
//! terminator, so that it garbles no neighbour; LLRP has none, so there garbage desyncs the client,
//! which must reconnect, as with a real corrupted stream), a dropped frame is written half and
//! the link closed, a stall stops reading and writing while the store keeps filling.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use event_config::edge::Protocol;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinSet;

use super::emulator::{LinkFault, Shared};
use super::session::{Cx, Flow, Frame, Session};
use super::{chronotrack, ipico, jchip, llrp, mylaps, raceresult, ultra};
use crate::pty::Pty;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

fn new_session(shared: &Shared) -> Box<dyn Session> {
    match shared.protocol {
        Protocol::Raceresult => Box::new(raceresult::Session::new()),
        Protocol::Ultra => Box::new(ultra::Session::new()),
        Protocol::Ipico => Box::new(ipico::Session::new()),
        Protocol::Jchip => Box::new(jchip::Session::new()),
        Protocol::Mylaps => Box::new(mylaps::Session::new()),
        Protocol::Chronotrack => Box::new(chronotrack::Session::new()),
        Protocol::Llrp => Box::new(llrp::Session::new()),
    }
}

/// What ends a garbage burst so the client's framing recovers at the next frame.
fn frame_terminator(protocol: Protocol) -> &'static [u8] {
    match protocol {
        Protocol::Raceresult | Protocol::Ipico | Protocol::Chronotrack => b"\r\n",
        Protocol::Ultra => b"\n",
        Protocol::Jchip => b"\r",
        Protocol::Mylaps => b"$",
        Protocol::Llrp => b"",
    }
}

async fn shutdown_requested(shared: &Shared) {
    let mut rx = shared.shutdown_tx.subscribe();
    let _ = rx.wait_for(|down| *down).await;
}

pub(crate) async fn listen(shared: Arc<Shared>, listener: TcpListener) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown_requested(&shared) => break,
            accepted = listener.accept() => match accepted {
                Ok((mut stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    conns.spawn(async move {
                        tracing::debug!(reader_id = %shared.id, %peer, "client connected");
                        run_link(&shared, &mut stream, false).await;
                        let _ = stream.shutdown().await;
                        tracing::debug!(reader_id = %shared.id, %peer, "client gone");
                    });
                }
                Err(error) => {
                    tracing::warn!(reader_id = %shared.id, %error, "accept failed");
                    tokio::time::sleep(BACKOFF_MIN).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

pub(crate) async fn connect(shared: Arc<Shared>, address: String) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let attempt = tokio::select! {
            () = shutdown_requested(&shared) => return,
            attempt = TcpStream::connect(address.as_str()) => attempt,
        };
        match attempt {
            Ok(mut stream) => {
                let _ = stream.set_nodelay(true);
                tracing::debug!(reader_id = %shared.id, %address, "connected");
                backoff = BACKOFF_MIN;
                run_link(&shared, &mut stream, false).await;
                let _ = stream.shutdown().await;
                tracing::debug!(reader_id = %shared.id, %address, "connection closed; redialling");
            }
            Err(error) => tracing::debug!(reader_id = %shared.id, %address, %error, "connect failed; retrying"),
        }
        if *shared.shutdown_tx.borrow() {
            return;
        }
        tokio::select! {
            () = shutdown_requested(&shared) => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

pub(crate) async fn serial(shared: Arc<Shared>, mut pty: Pty) {
    loop {
        let ended = run_link(&shared, &mut pty.master, true).await;
        if *shared.shutdown_tx.borrow() {
            return;
        }
        if ended == Ended::Broken {
            // Do not spin on a broken pty.
            tokio::select! {
                () = shutdown_requested(&shared) => return,
                () = tokio::time::sleep(BACKOFF_MIN) => {}
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    /// Shutdown, reboot, the session closed, a dropped frame.
    Closed,
    /// The peer hung up or the link failed.
    Broken,
}

/// Applies faults while writing frames.
struct Writer {
    drop_next: bool,
    serial: bool,
    terminator: &'static [u8],
}

enum Written {
    All,
    /// A frame was cut in half and the link must close.
    Dropped,
}

impl Writer {
    async fn garbage<IO: AsyncWrite + Unpin>(&self, io: &mut IO, bytes: &[u8]) -> io::Result<()> {
        let mut burst = bytes.to_vec();
        if !burst.ends_with(self.terminator) {
            burst.extend_from_slice(self.terminator);
        }
        io.write_all(&burst).await?;
        io.flush().await
    }

    async fn frames<IO: AsyncWrite + Unpin>(
        &mut self,
        shared: &Shared,
        io: &mut IO,
        frames: Vec<Frame>,
    ) -> io::Result<Written> {
        for frame in frames {
            if self.drop_next && !frame.bytes.is_empty() {
                self.drop_next = false;
                let half = frame.bytes.len().div_ceil(2).min(frame.bytes.len() - 1).max(1);
                io.write_all(&frame.bytes[..half]).await?;
                io.flush().await?;
                tracing::info!(reader_id = %shared.id, written = half, of = frame.bytes.len(), "fault: frame dropped midway");
                if !self.serial {
                    return Ok(Written::Dropped);
                }
                continue;
            }
            io.write_all(&frame.bytes).await?;
            if frame.n_records > 0 {
                shared.lock().counters.records_sent += u64::from(frame.n_records);
            }
        }
        io.flush().await?;
        Ok(Written::All)
    }
}

/// Counts the link as a connected client for as long as it lives.
struct Connected<'a>(&'a Shared);

impl<'a> Connected<'a> {
    fn new(shared: &'a Shared) -> Connected<'a> {
        shared.lock().counters.clients_connected += 1;
        Connected(shared)
    }
}

impl Drop for Connected<'_> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.counters.clients_connected = st.counters.clients_connected.saturating_sub(1);
    }
}

/// Runs one session over `io` until it closes, the peer goes, the reader reboots or shuts down.
async fn run_link<IO: AsyncRead + AsyncWrite + Unpin>(shared: &Arc<Shared>, io: &mut IO, serial: bool) -> Ended {
    let mut session = new_session(shared);
    let ended = drive(shared, io, &mut *session, serial).await.unwrap_or_else(|error| {
        tracing::debug!(reader_id = %shared.id, %error, "link failed");
        Ended::Broken
    });
    session.close(&mut shared.lock());
    ended
}

/// Runs one session step with the state locked; returns the frames to write and the flow.
fn step(shared: &Arc<Shared>, f: impl FnOnce(&mut Cx<'_>) -> Flow) -> (Vec<Frame>, Flow) {
    let now = shared.now();
    let mut st = shared.lock();
    let mut cx = Cx { shared, st: &mut st, now, out: Vec::new() };
    let flow = f(&mut cx);
    (cx.out, flow)
}

async fn drive<IO: AsyncRead + AsyncWrite + Unpin>(
    shared: &Arc<Shared>,
    io: &mut IO,
    session: &mut dyn Session,
    serial: bool,
) -> io::Result<Ended> {
    let mut shutdown_rx = shared.shutdown_tx.subscribe();
    let mut boot_rx = shared.boot_tx.subscribe();
    let mut records_rx = shared.records_tx.subscribe();
    let mut faults_rx = shared.faults_tx.subscribe();
    if *shutdown_rx.borrow() {
        return Ok(Ended::Closed);
    }
    let _connected = Connected::new(shared);
    let mut writer = Writer { drop_next: false, serial, terminator: frame_terminator(shared.protocol) };

    let pending: Vec<LinkFault> = std::mem::take(&mut shared.lock().pending_faults);
    for f in pending {
        if let Some(ended) = fault(shared, io, &mut writer, f, &mut shutdown_rx, &mut boot_rx).await? {
            return Ok(ended);
        }
    }

    let (frames, flow) = step(shared, |cx| {
        let flow = session.open(cx);
        session.records(cx);
        flow
    });
    if let Written::Dropped = writer.frames(shared, io, frames).await? {
        return Ok(Ended::Closed);
    }
    if flow == Flow::Close {
        return Ok(Ended::Closed);
    }

    let mut buf = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 4096];
    loop {
        let deadline = session.deadline();
        let (frames, flow) = tokio::select! {
            biased;
            _ = shutdown_rx.changed() => return Ok(Ended::Closed),
            _ = boot_rx.changed() => return Ok(Ended::Closed),
            f = faults_rx.recv() => match f {
                Ok(f) => {
                    if let Some(ended) = fault(shared, io, &mut writer, f, &mut shutdown_rx, &mut boot_rx).await? {
                        return Ok(ended);
                    }
                    continue;
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(reader_id = %shared.id, n, "link faults lost");
                    continue;
                }
                Err(RecvError::Closed) => return Ok(Ended::Closed),
            },
            n = io.read(&mut chunk) => {
                let n = n?;
                if n == 0 {
                    return Ok(Ended::Broken);
                }
                buf.extend_from_slice(&chunk[..n]);
                step(shared, |cx| session.input(&mut buf, cx))
            }
            _ = records_rx.changed() => step(shared, |cx| {
                session.records(cx);
                Flow::Continue
            }),
            () = sleep_until(deadline), if deadline.is_some() => step(shared, |cx| session.timer(cx)),
        };
        if let Written::Dropped = writer.frames(shared, io, frames).await? {
            return Ok(Ended::Closed);
        }
        if flow == Flow::Close {
            return Ok(Ended::Closed);
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    if let Some(d) = deadline {
        tokio::time::sleep_until(d).await;
    }
}

async fn fault<IO: AsyncWrite + Unpin>(
    shared: &Shared,
    io: &mut IO,
    writer: &mut Writer,
    f: LinkFault,
    shutdown_rx: &mut tokio::sync::watch::Receiver<bool>,
    boot_rx: &mut tokio::sync::watch::Receiver<u32>,
) -> io::Result<Option<Ended>> {
    match f {
        LinkFault::Garbage(bytes) => {
            tracing::info!(reader_id = %shared.id, n_bytes = bytes.len(), "fault: garbage written");
            writer.garbage(io, &bytes).await?;
        }
        LinkFault::DropMidFrame => writer.drop_next = true,
        LinkFault::Stall(until) => {
            tracing::info!(reader_id = %shared.id, "fault: link stalled");
            tokio::select! {
                _ = shutdown_rx.changed() => return Ok(Some(Ended::Closed)),
                _ = boot_rx.changed() => return Ok(Some(Ended::Closed)),
                () = tokio::time::sleep_until(until) => {}
            }
            tracing::info!(reader_id = %shared.id, "link stall over");
        }
    }
    Ok(None)
}
