//! Per-call scenario interpreter (sans-IO).
