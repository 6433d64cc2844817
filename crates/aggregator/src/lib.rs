//! The central aggregator: where every edge box uploads its reads.
//!
//! Today: its durable store ([`store`]). Deliberately not here (yet): the ingest API, the
//! race-state task, WebSocket live splits, web pages.

pub mod store;

pub use store::{AggregatorStore, Cursor, Ingested, StoreError};
