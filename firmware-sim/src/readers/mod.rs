//! Reader emulators, one per decoder protocol.
