//! The runtime's one source of time. Everything below the runtime takes `now` as an argument, so
//! this is the only module allowed to read the clocks (the root `clippy.toml` bans it elsewhere).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use jvpn_session::ClockAnchor;

/// Reads the monotonic clock.
#[expect(
    clippy::disallowed_methods,
    reason = "the runtime shell is the single place that reads the monotonic clock"
)]
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// Pairs the monotonic clock with wall time once, so the cores can derive wall-clock timestamps
/// (handshake freshness, audit records) from `now` without reading a clock themselves.
#[expect(
    clippy::disallowed_methods,
    reason = "read wall time once at start-up to anchor the cores' wall-clock view"
)]
pub fn anchor() -> ClockAnchor {
    let instant = Instant::now();
    let unix_nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    ClockAnchor {
        instant,
        unix_nanos,
    }
}
