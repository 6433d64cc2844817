//! Read files for offline import.
