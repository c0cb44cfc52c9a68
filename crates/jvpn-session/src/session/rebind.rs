//! Moving the binding to another path (the switch controller's entry point).
//!
//! This is the foundation's mechanism: release the binding (RECOVERING with the switch's
//! reason) and resume by handshake on the target path. The REATTACH protocol replaces the
//! body of `start_rebind`; its callers do not change.

use std::time::Instant;

use super::{RoleState, Session};
use crate::{PathId, Reason, State};

impl Session {
    /// Client: leaves the bound state for RECOVERING with `reason` (if bound) and starts
    /// rebinding on `path` at once. While RECOVERING, restarts the rebind on `path`. No effect
    /// on a server session or a TERMINATED one.
    pub(crate) fn start_rebind(&mut self, path: PathId, reason: Reason, now: Instant) {
        if !matches!(self.role, RoleState::Client(_)) {
            return;
        }
        self.path = path;
        match self.sm.state() {
            // Starts the handshake on `self.path`.
            s if s.is_bound() => self.enter_recovering(reason, now),
            // A failure leaves the retry armed.
            State::Recovering => {
                let _ = self.start_handshake(now);
            }
            _ => {}
        }
    }
}
