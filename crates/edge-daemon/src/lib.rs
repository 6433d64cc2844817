//! The edge box daemon (`racetime edge`): reads every mat at one timing point and gets every
//! read to the aggregator exactly once, through any fault.
//!
//! Layout:
//! - [`link`]: one task per reader; transports (TCP out/in, serial), reconnects, per-protocol
//!   sessions that report [`link::LinkEvent`]s (tag reads in reader time, clock samples,
//!   malformed frames, guns, line health).
//! - [`clock_sync`]: each reader's clock offset and drift from its clock samples; alarms.
//! - [`modbus`]: start-gun input (gun times as signals), charge controller, race clock.
//! - [`store_writer`]: the outbox's only owner, on its own thread: group commits, acks and
//!   resume points only after durability, disk errors held in memory and retried loudly.
//! - [`daemon`]: one edge box assembled from its edge file: links → clock correction → store
//!   writer → uplink, and the status crews see.
//! - [`uplink`]: durable reads to the aggregator in seq order from its cursor, pipelined.
//!
//! The pure work (codecs, time bases) is `reader-protocol`'s; the durable outbox is
//! `edge-store`'s; the wire format is `timing-wire`'s. This crate wires them to sockets, serial
//! lines, threads and time.

pub mod clock_sync;
pub mod daemon;
pub mod link;
pub mod modbus;
pub mod store_writer;
pub mod uplink;
