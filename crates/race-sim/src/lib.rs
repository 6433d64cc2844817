//! race-sim
