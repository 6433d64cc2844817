//! Read files for offline import (`racetime results --reads`): the neutral CSV, and decoder backup files.

pub mod neutral;
