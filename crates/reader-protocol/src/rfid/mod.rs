//! Reader wire protocols, one module per vendor.
