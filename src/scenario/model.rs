//! Typed mirror of the YAML scenario file (`deny_unknown_fields`, spans kept for
//! diagnostics). STUB.
