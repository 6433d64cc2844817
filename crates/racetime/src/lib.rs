//! racetime
