//! event-config
