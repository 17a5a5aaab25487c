//! transport layer.
