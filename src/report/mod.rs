//! report layer.
