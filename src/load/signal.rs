//! SIGINT/SIGTERM: the first asks every driver to stop starting calls and drain; the
//! second stops at once (calls in progress are counted as aborted, files are still
//! written). Drivers poll these flags at least every 50 ms.

use std::sync::atomic::{AtomicU32, Ordering};

static SIGNALS: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    // Only async-signal-safe work here: one atomic add.
    SIGNALS.fetch_add(1, Ordering::Relaxed);
}

/// Install the handlers (idempotent).
pub fn install() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only performs an atomic add.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// At least one interrupt arrived: drain.
pub fn interrupted() -> bool {
    SIGNALS.load(Ordering::Relaxed) >= 1
}

/// A second interrupt arrived: stop now.
pub fn forced() -> bool {
    SIGNALS.load(Ordering::Relaxed) >= 2
}
