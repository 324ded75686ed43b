//! `watch`'s signals as flags its loop reads: SIGHUP asks for a
//! regeneration, SIGTERM and SIGINT for a clean exit. The handler only
//! stores to an atomic; all the work happens in the loop, between writes,
//! so a signal never cuts a write short.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

static HANGUP: AtomicBool = AtomicBool::new(false);
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(signal: nix::libc::c_int) {
    if signal == Signal::SIGHUP as nix::libc::c_int {
        HANGUP.store(true, Ordering::SeqCst);
    } else {
        STOP.store(true, Ordering::SeqCst);
    }
}

/// Catch SIGHUP, SIGTERM and SIGINT from now on. `SA_RESTART`: a system
/// call the signal lands in (a write of the spec) goes on.
pub fn install() -> Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGHUP, Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: `on_signal` only stores to static atomics, which is
        // async-signal-safe; it touches no lock, allocation or other state
        // the interrupted code could hold.
        unsafe { sigaction(signal, &action) }.with_context(|| format!("cannot catch {signal}"))?;
    }
    Ok(())
}

/// Was SIGHUP received since the last call?
pub fn take_hangup() -> bool {
    HANGUP.swap(false, Ordering::SeqCst)
}

/// Is a SIGHUP waiting to be taken?
pub fn hangup_pending() -> bool {
    HANGUP.load(Ordering::SeqCst)
}

/// Was SIGTERM or SIGINT received?
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}
