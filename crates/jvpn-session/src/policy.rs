//! Every tunable of a session, with documented defaults.
//!
//! Durations serialize as integer milliseconds under a `_ms` key (`"recovery_window_ms": 120000`)
//! so that a config file says its unit. Missing keys take the default.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The data plane's hard per-key age limit: no key is used longer.
const KEY_HARD_AGE: Duration = jvpn_wire::REJECT_AFTER;

/// Session policy: timers, recovery bounds, switch budget and quality thresholds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Total time BIRTH may last before TERMINATED (`HandshakeTimeout`). Default 90 s:
    /// WireGuard's 90 s "rekey attempt time", long enough for a path that comes up late.
    #[serde(rename = "handshake_timeout_ms", with = "millis")]
    pub handshake_timeout: Duration,
    /// Time between handshake initiations while unanswered (each with a new ephemeral key and
    /// sender index). Default 5 s, WireGuard's `REKEY_TIMEOUT`.
    #[serde(rename = "handshake_retry_ms", with = "millis")]
    pub handshake_retry: Duration,
    /// Idle time after which an attached session sends a keepalive so the peer (and NAT
    /// mappings) see it alive. Default 10 s, WireGuard's `KEEPALIVE_TIMEOUT`.
    #[serde(rename = "keepalive_interval_ms", with = "millis")]
    pub keepalive_interval: Duration,
    /// No authenticated packet received for this long → the transport is dead (RECOVERING,
    /// `TransportDead`). Default 25 s: two missed keepalives plus a margin for jitter.
    #[serde(rename = "dead_after_ms", with = "millis")]
    pub dead_after: Duration,
    /// Longest time RECOVERING may last before TERMINATED (`RecoveryWindowExceeded`).
    /// Default 120 s: covers a Wi-Fi → LTE hand-over or a short outage without keeping
    /// dead sessions around.
    #[serde(rename = "recovery_window_ms", with = "millis")]
    pub recovery_window: Duration,
    /// Switch budget: token-bucket capacity, the number of rebinds allowed back to back.
    /// Default 6: enough for a burst of real path changes, not for a flapping loop.
    pub switch_budget_burst: u32,
    /// Switch budget: one token is added back every this long (up to the burst). Default 60 s,
    /// so a sustained flap is limited to one rebind per minute.
    #[serde(rename = "switch_budget_refill_per_ms", with = "millis")]
    pub switch_budget_refill_per: Duration,
    /// Shortest time between two planned switches. Default 2 s: damps oscillation between two
    /// nearly equal paths.
    #[serde(rename = "min_switch_interval_ms", with = "millis")]
    pub min_switch_interval: Duration,
    /// How long a candidate must beat the active path (by the hysteresis margin) before a
    /// planned switch. Default 3 s: three probe intervals.
    #[serde(rename = "dwell_ms", with = "millis")]
    pub dwell: Duration,
    /// Margin, in percent of the active path's score, by which a candidate must be better to
    /// be switched to. Default 20 %.
    pub hysteresis_percent: u32,
    /// Time between probes on the active path. Default 1 s: detects distress within a few
    /// seconds at a few bytes per second.
    #[serde(rename = "probe_interval_ms", with = "millis")]
    pub probe_interval: Duration,
    /// Consecutive lost probes after which the path is suspect (ATTACHED → VOLATILE,
    /// `ProbeLost`). Default 3.
    pub probes_lost_suspect: u32,
    /// Consecutive lost probes after which a path is dead (the prober's `Dead` state): an
    /// active path that is dead makes the switch controller recover at once. Default 5: two
    /// more than `probes_lost_suspect`, about 5 s at the default probe interval. Must be
    /// greater than `probes_lost_suspect`.
    pub probes_lost_dead: u32,
    /// Shortest time a probe may stay unanswered before it counts as lost. The prober waits
    /// `max(probe_timeout_min, min(3 × smoothed RTT, 10 s))`. Default 1 s: one probe interval,
    /// so a loss is known by the time the next probe leaves.
    #[serde(rename = "probe_timeout_min_ms", with = "millis")]
    pub probe_timeout_min: Duration,
    /// Standby (non-active) paths are probed every `standby_probe_factor × probe_interval`.
    /// Default 5 (every 5 s): fresh enough to know a replacement, cheap on idle links.
    pub standby_probe_factor: u32,
    /// Longest interval between probes on a dead standby path: its interval doubles with every
    /// probe sent while it is dead, up to this cap. Default 20 s: a preferred transport that
    /// comes back is noticed within 20 s, at a cost of a few bytes per minute while it is down.
    /// Must be at least `standby_probe_factor × probe_interval`.
    #[serde(rename = "standby_probe_max_interval_ms", with = "millis")]
    pub standby_probe_max_interval: Duration,
    /// Loss over the probe window, in percent, above which the path is volatile
    /// (`LossSpike`). Default 5 %.
    pub loss_volatile_percent: u32,
    /// RTT above this multiple of the smoothed baseline marks the path volatile (`RttSpike`).
    /// Default 3 (×).
    pub rtt_spike_factor: u32,
    /// How long VOLATILE must persist before DEGRADED (`QualityBelowPolicy`). Default 5 s.
    #[serde(rename = "degraded_dwell_ms", with = "millis")]
    pub degraded_dwell: Duration,
    /// Age of a send key after which the client starts a rekey. Default 100 s: well before
    /// the data plane's hard limit, leaving time for a few lost handshakes.
    #[serde(rename = "rekey_after_ms", with = "millis")]
    pub rekey_after: Duration,
    /// How long the previous receive key still decrypts after a rekey, so packets in flight
    /// are not lost. Default 10 s.
    #[serde(rename = "rekey_grace_ms", with = "millis")]
    pub rekey_grace: Duration,
    /// Fast dead-path detector (multipath sessions only): when inner packets were sent on the
    /// active path and nothing authenticated has come back on it for
    /// `max(silence_rtt_factor × (SRTT + 4 × jitter), silence_timeout_min)`, the path is
    /// probed at once. Default 200 ms: well above a LAN or metro round trip, short enough
    /// to keep a blackout under a second. An idle session (nothing sent) never raises it.
    #[serde(rename = "silence_timeout_min_ms", with = "millis")]
    pub silence_timeout_min: Duration,
    /// Multiplier of the active path's RTT estimate (`SRTT + 4 × jitter`, from the prober)
    /// for the silence alarm and for each fast probe's timeout, so that long or jittery paths
    /// get proportionally longer timeouts. Default 3.
    pub silence_rtt_factor: u32,
    /// Shortest time a fast probe (sent after the silence alarm) may stay unanswered before it
    /// counts as lost; its timeout is `max(silence_rtt_factor × (SRTT + 4 × jitter), this)`
    /// and the next fast probe leaves when it expires. Default 100 ms.
    #[serde(rename = "fast_probe_timeout_min_ms", with = "millis")]
    pub fast_probe_timeout_min: Duration,
    /// Consecutive lost fast probes after which the active path is dead and the session
    /// recovers at once to the best live standby. Default 2, so the detector needs
    /// `silence_timeout_min + 2 × fast_probe_timeout_min` = 400 ms on a short path. 0 turns
    /// the fast detector off (only the regular probes and `dead_after` detect a dead path).
    pub fast_probes_lost_dead: u32,
    /// Time between REATTACH_INIT attempts while unanswered (each with a new ephemeral key,
    /// sender index and counter), and between PATH_CONFIRM retransmissions until the server's
    /// PATH_RESPONSE. Default 250 ms: a lost attempt costs a quarter second of blackout, well
    /// within the 1 s target, at 576 bytes per attempt. Must be below `recovery_window`.
    #[serde(rename = "reattach_retry_ms", with = "millis")]
    pub reattach_retry: Duration,
    /// Server: a REATTACH_INIT whose timestamp is further than this from the server's clock is
    /// answered CLOCK (the client resynchronises and retries). Default 60 s: tolerates coarse
    /// clocks, bounds how long a captured attempt stays fresh (its counter and ephemeral are
    /// single-use anyway).
    #[serde(rename = "reattach_clock_window_ms", with = "millis")]
    pub reattach_clock_window: Duration,
    /// Inner packets queued while not attached (BIRTH, RECOVERING, rekey wait); more are
    /// refused with `QueueFull`. Default 64: bounds memory without dropping a short burst.
    pub send_queue_packets: usize,
    /// Server: how often an endpoint reads the ownership store for each of its live sessions
    /// (`Endpoint::check_ownership`, run from `handle_timeout`): a session whose record moved
    /// on to another node's validated binding ends (`OwnershipLost`). Default 1 s: the old
    /// owner stops forwarding within a second of a takeover, at one store read per session
    /// per second.
    #[serde(rename = "ownership_check_ms", with = "millis")]
    pub ownership_check: Duration,
    /// Server: how long a session keeps forwarding after the store last confirmed this node's
    /// ownership. While the store cannot be reached the session lives until this lease
    /// deadline, then ends (`StoreUnavailable`), since another node may have taken it over
    /// meanwhile. Default 10 s (ATTACKS.md's L). Must exceed `ownership_check`.
    #[serde(rename = "ownership_lease_ms", with = "millis")]
    pub ownership_lease: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            handshake_timeout: Duration::from_secs(90),
            handshake_retry: Duration::from_secs(5),
            keepalive_interval: Duration::from_secs(10),
            dead_after: Duration::from_secs(25),
            recovery_window: Duration::from_secs(120),
            switch_budget_burst: 6,
            switch_budget_refill_per: Duration::from_secs(60),
            min_switch_interval: Duration::from_secs(2),
            dwell: Duration::from_secs(3),
            hysteresis_percent: 20,
            probe_interval: Duration::from_secs(1),
            probes_lost_suspect: 3,
            probes_lost_dead: 5,
            probe_timeout_min: Duration::from_secs(1),
            standby_probe_factor: 5,
            standby_probe_max_interval: Duration::from_secs(20),
            loss_volatile_percent: 5,
            rtt_spike_factor: 3,
            degraded_dwell: Duration::from_secs(5),
            rekey_after: Duration::from_secs(100),
            rekey_grace: Duration::from_secs(10),
            reattach_retry: Duration::from_millis(250),
            reattach_clock_window: Duration::from_secs(60),
            send_queue_packets: 64,
            ownership_check: Duration::from_secs(1),
            ownership_lease: Duration::from_secs(10),
            silence_timeout_min: Duration::from_millis(200),
            silence_rtt_factor: 3,
            fast_probe_timeout_min: Duration::from_millis(100),
            fast_probes_lost_dead: 2,
        }
    }
}

/// Why a [`Policy`] is unusable. Every variant names the field; fix the config and retry.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A duration that must be positive is zero. Set it to a positive value.
    #[error("policy field `{field}` must be greater than zero")]
    Zero {
        /// The offending field.
        field: &'static str,
    },
    /// `dead_after` must exceed `keepalive_interval`, or an idle but healthy path would be
    /// declared dead. Raise `dead_after` (at least twice the keepalive interval is advised).
    #[error("dead_after ({dead_after:?}) must be greater than keepalive_interval ({keepalive:?})")]
    DeadBeforeKeepalive {
        /// The configured `dead_after`.
        dead_after: Duration,
        /// The configured `keepalive_interval`.
        keepalive: Duration,
    },
    /// `handshake_retry` must be shorter than `handshake_timeout`, or no retry ever happens.
    /// Lower the retry or raise the timeout.
    #[error("handshake_retry ({retry:?}) must be shorter than handshake_timeout ({timeout:?})")]
    RetryNotBeforeTimeout {
        /// The configured `handshake_retry`.
        retry: Duration,
        /// The configured `handshake_timeout`.
        timeout: Duration,
    },
    /// `reattach_retry` must be shorter than `recovery_window`, or a lost REATTACH_INIT is
    /// never retried. Lower the retry (sub-second is advised) or raise the window.
    #[error("reattach_retry ({retry:?}) must be shorter than recovery_window ({window:?})")]
    ReattachRetryNotBeforeWindow {
        /// The configured `reattach_retry`.
        retry: Duration,
        /// The configured `recovery_window`.
        window: Duration,
    },
    /// A percentage is above 100. Use a value from 0 to 100.
    #[error("policy field `{field}` is {value} %, above 100 %")]
    PercentOutOfRange {
        /// The offending field.
        field: &'static str,
        /// The configured value.
        value: u32,
    },
    /// `probes_lost_dead` is not greater than `probes_lost_suspect`, so a path would be dead
    /// before (or as soon as) it is suspect. Raise `probes_lost_dead`.
    #[error("probes_lost_dead ({dead}) must be greater than probes_lost_suspect ({suspect})")]
    DeadNotAfterSuspect {
        /// The configured `probes_lost_dead`.
        dead: u32,
        /// The configured `probes_lost_suspect`.
        suspect: u32,
    },
    /// `standby_probe_max_interval` is below the standby probe interval
    /// (`standby_probe_factor × probe_interval`), so backoff would probe dead paths more often
    /// than live ones. Raise `standby_probe_max_interval` or lower the factor.
    #[error(
        "standby_probe_max_interval ({cap:?}) must be at least the standby interval ({base:?})"
    )]
    BackoffCapBelowStandbyInterval {
        /// The configured cap.
        cap: Duration,
        /// `standby_probe_factor × probe_interval`.
        base: Duration,
    },
    /// `silence_timeout_min` is not below `dead_after`, so the fast detector could never act
    /// before the slow one. Lower `silence_timeout_min` (it is meant to be well under a second).
    #[error("silence_timeout_min ({silence:?}) must be shorter than dead_after ({dead_after:?})")]
    SilenceNotBeforeDead {
        /// The configured `silence_timeout_min`.
        silence: Duration,
        /// The configured `dead_after`.
        dead_after: Duration,
    },
    /// `ownership_lease` is not longer than `ownership_check`, so a session could lose its
    /// lease between two checks with the store reachable. Raise the lease (ten checks or more
    /// is advised) or check more often.
    #[error("ownership_lease ({lease:?}) must be longer than ownership_check ({check:?})")]
    LeaseNotAfterCheck {
        /// The configured `ownership_lease`.
        lease: Duration,
        /// The configured `ownership_check`.
        check: Duration,
    },
    /// `rekey_after` is not below the data plane's hard key age limit, so keys would expire
    /// before a rekey starts. Lower `rekey_after`.
    #[error("rekey_after ({rekey_after:?}) must be below the hard key age limit ({limit:?})")]
    RekeyTooLate {
        /// The configured `rekey_after`.
        rekey_after: Duration,
        /// The hard limit.
        limit: Duration,
    },
}

impl Policy {
    /// Checks the relations between fields. Call it once after loading a config;
    /// `Session` and `Endpoint` constructors call it too.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let positive = [
            ("handshake_timeout", self.handshake_timeout),
            ("handshake_retry", self.handshake_retry),
            ("keepalive_interval", self.keepalive_interval),
            ("dead_after", self.dead_after),
            ("recovery_window", self.recovery_window),
            ("switch_budget_refill_per", self.switch_budget_refill_per),
            ("probe_interval", self.probe_interval),
            ("rekey_after", self.rekey_after),
            ("probe_timeout_min", self.probe_timeout_min),
            ("silence_timeout_min", self.silence_timeout_min),
            ("fast_probe_timeout_min", self.fast_probe_timeout_min),
            ("reattach_retry", self.reattach_retry),
            ("reattach_clock_window", self.reattach_clock_window),
            ("ownership_check", self.ownership_check),
            ("ownership_lease", self.ownership_lease),
        ];
        for (field, value) in positive {
            if value.is_zero() {
                return Err(PolicyError::Zero { field });
            }
        }
        if self.switch_budget_burst == 0 {
            return Err(PolicyError::Zero {
                field: "switch_budget_burst",
            });
        }
        for (field, value) in [
            ("probes_lost_suspect", self.probes_lost_suspect),
            ("standby_probe_factor", self.standby_probe_factor),
            ("silence_rtt_factor", self.silence_rtt_factor),
        ] {
            if value == 0 {
                return Err(PolicyError::Zero { field });
            }
        }
        if self.probes_lost_dead <= self.probes_lost_suspect {
            return Err(PolicyError::DeadNotAfterSuspect {
                dead: self.probes_lost_dead,
                suspect: self.probes_lost_suspect,
            });
        }
        let standby = self
            .probe_interval
            .saturating_mul(self.standby_probe_factor);
        if self.standby_probe_max_interval < standby {
            return Err(PolicyError::BackoffCapBelowStandbyInterval {
                cap: self.standby_probe_max_interval,
                base: standby,
            });
        }
        if self.send_queue_packets == 0 {
            return Err(PolicyError::Zero {
                field: "send_queue_packets",
            });
        }
        if self.dead_after <= self.keepalive_interval {
            return Err(PolicyError::DeadBeforeKeepalive {
                dead_after: self.dead_after,
                keepalive: self.keepalive_interval,
            });
        }
        if self.handshake_retry >= self.handshake_timeout {
            return Err(PolicyError::RetryNotBeforeTimeout {
                retry: self.handshake_retry,
                timeout: self.handshake_timeout,
            });
        }
        if self.reattach_retry >= self.recovery_window {
            return Err(PolicyError::ReattachRetryNotBeforeWindow {
                retry: self.reattach_retry,
                window: self.recovery_window,
            });
        }
        for (field, value) in [
            ("hysteresis_percent", self.hysteresis_percent),
            ("loss_volatile_percent", self.loss_volatile_percent),
        ] {
            if value > 100 {
                return Err(PolicyError::PercentOutOfRange { field, value });
            }
        }
        if self.silence_timeout_min >= self.dead_after {
            return Err(PolicyError::SilenceNotBeforeDead {
                silence: self.silence_timeout_min,
                dead_after: self.dead_after,
            });
        }
        if self.ownership_lease <= self.ownership_check {
            return Err(PolicyError::LeaseNotAfterCheck {
                lease: self.ownership_lease,
                check: self.ownership_check,
            });
        }
        if self.rekey_after >= KEY_HARD_AGE {
            return Err(PolicyError::RekeyTooLate {
                rekey_after: self.rekey_after,
                limit: KEY_HARD_AGE,
            });
        }
        Ok(())
    }

    /// The longest the fast detector takes, on a path whose RTT is negligible, from the first
    /// unanswered inner packet to declaring the active path dead:
    /// `silence_timeout_min + fast_probes_lost_dead × fast_probe_timeout_min` (400 ms by
    /// default). A blackout also includes the rebind's round trip. `None` when the fast
    /// detector is off.
    pub fn fast_detection_time(&self) -> Option<Duration> {
        (self.fast_probes_lost_dead > 0).then(|| {
            self.silence_timeout_min.saturating_add(
                self.fast_probe_timeout_min
                    .saturating_mul(self.fast_probes_lost_dead),
            )
        })
    }
}

/// `Duration` as integer milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_is_valid() {
        let policy = Policy::default();

        assert_eq!(policy.validate(), Ok(()));
    }

    #[test]
    fn zero_recovery_window_is_rejected() {
        let policy = Policy {
            recovery_window: Duration::ZERO,
            ..Policy::default()
        };

        assert_eq!(
            policy.validate(),
            Err(PolicyError::Zero {
                field: "recovery_window"
            })
        );
    }

    #[test]
    fn dead_after_not_above_keepalive_is_rejected() {
        let policy = Policy {
            dead_after: Duration::from_secs(10),
            ..Policy::default()
        };

        assert!(matches!(
            policy.validate(),
            Err(PolicyError::DeadBeforeKeepalive { .. })
        ));
    }

    #[test]
    fn retry_not_shorter_than_timeout_is_rejected() {
        let policy = Policy {
            handshake_retry: Duration::from_secs(90),
            ..Policy::default()
        };

        assert!(matches!(
            policy.validate(),
            Err(PolicyError::RetryNotBeforeTimeout { .. })
        ));
    }

    #[test]
    fn percent_above_hundred_is_rejected() {
        let policy = Policy {
            hysteresis_percent: 101,
            ..Policy::default()
        };

        assert!(matches!(
            policy.validate(),
            Err(PolicyError::PercentOutOfRange { .. })
        ));
    }

    #[test]
    fn dead_threshold_not_above_suspect_threshold_is_rejected() {
        let policy = Policy {
            probes_lost_dead: 3,
            ..Policy::default()
        };

        assert_eq!(
            policy.validate(),
            Err(PolicyError::DeadNotAfterSuspect {
                dead: 3,
                suspect: 3
            })
        );
    }

    #[test]
    fn standby_backoff_cap_below_the_standby_interval_is_rejected() {
        let policy = Policy {
            standby_probe_max_interval: Duration::from_secs(4),
            ..Policy::default()
        };

        assert!(matches!(
            policy.validate(),
            Err(PolicyError::BackoffCapBelowStandbyInterval { .. })
        ));
    }

    #[test]
    fn zero_standby_probe_factor_is_rejected() {
        let policy = Policy {
            standby_probe_factor: 0,
            ..Policy::default()
        };

        assert_eq!(
            policy.validate(),
            Err(PolicyError::Zero {
                field: "standby_probe_factor"
            })
        );
    }

    #[test]
    fn silence_timeout_not_below_dead_after_is_rejected() {
        let policy = Policy {
            silence_timeout_min: Duration::from_secs(25),
            ..Policy::default()
        };

        assert!(matches!(
            policy.validate(),
            Err(PolicyError::SilenceNotBeforeDead { .. })
        ));
    }

    #[test]
    fn zero_silence_rtt_factor_is_rejected() {
        let policy = Policy {
            silence_rtt_factor: 0,
            ..Policy::default()
        };

        assert_eq!(
            policy.validate(),
            Err(PolicyError::Zero {
                field: "silence_rtt_factor"
            })
        );
    }

    #[test]
    fn default_fast_detection_is_well_under_a_second() {
        let policy = Policy::default();

        assert_eq!(
            policy.fast_detection_time(),
            Some(Duration::from_millis(400))
        );
    }

    #[test]
    fn policy_round_trips_through_json_with_millisecond_keys() {
        let policy = Policy::default();

        let json = serde_json::to_string(&policy).unwrap();
        let back: Policy = serde_json::from_str(&json).unwrap();

        assert!(json.contains("\"recovery_window_ms\":120000"));
        assert!(json.contains("\"silence_timeout_min_ms\":200"));
        assert!(json.contains("\"fast_probe_timeout_min_ms\":100"));
        assert_eq!(back, policy);
    }

    #[test]
    fn missing_keys_take_the_default() {
        let policy: Policy = serde_json::from_str(r#"{"dead_after_ms": 30000}"#).unwrap();

        assert_eq!(policy.dead_after, Duration::from_secs(30));
        assert_eq!(policy.recovery_window, Policy::default().recovery_window);
    }
}
