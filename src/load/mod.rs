//! load layer.
