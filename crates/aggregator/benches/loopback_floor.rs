//! The floor under any live-feed figure measured on one machine: what the kernel alone takes
//! to write one message to each of many loopback TCP sockets, and to read it back, with no
//! WebSocket, no async runtime and no JSON (blocking std sockets, one thread).
//!
//! `racetime loadtest` runs the aggregator and its spectators on the same cores over loopback,
//! so every delivered message costs one such write on the server (which on loopback also runs
//! the receiving side's TCP processing) and one read in a client. Multiplied by the number of
//! clients, this bounds from below what a fan-out can take here, whatever the server does.
//!
//! `cargo bench -p aggregator --bench loopback_floor` (8,000 socket pairs: 16,000 descriptors,
//! under this machine's limit of 20,000; `FLOOR_PAIRS`, `FLOOR_BYTES` to change).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let env = |k: &str, d: usize| std::env::var(k).ok().and_then(|s| s.parse().ok()).unwrap_or(d);
    let n = env("FLOOR_PAIRS", 8_000);
    let size = env("FLOOR_BYTES", 1_024);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut clients = Vec::with_capacity(n);
    let mut servers = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(TcpStream::connect(addr).expect("connect"));
        let (s, _) = listener.accept().expect("accept");
        s.set_nodelay(true).expect("nodelay");
        servers.push(s);
    }
    let msg = vec![b'x'; size];
    let mut buf = vec![0u8; size];
    let (mut writes, mut reads) = (Vec::new(), Vec::new());
    for _ in 0..9 {
        let t = Instant::now();
        for s in &mut servers {
            s.write_all(&msg).expect("write");
        }
        writes.push(t.elapsed());
        let t = Instant::now();
        for c in &mut clients {
            c.read_exact(&mut buf).expect("read");
        }
        reads.push(t.elapsed());
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    let (w, r) = (per(median(writes)), per(median(reads)));
    println!(
        "loopback_floor/{size}B: write {w:.2} µs, read {r:.2} µs per socket (median of 9 rounds over {n} sockets)"
    );
    for clients in [10_000, 16_000] {
        let ms = |us: f64| us * clients as f64 / 1e3;
        println!(
            "  {clients} clients: {:.0} ms of writes + {:.0} ms of reads; on 2 cores at best {:.0} ms before any user-space work",
            ms(w),
            ms(r),
            ms(w + r) / 2.0
        );
    }
}
