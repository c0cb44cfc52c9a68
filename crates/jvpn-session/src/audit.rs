//! Audit records: one per transition, one JSON line each.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::{PathId, Reason, State};

/// The record of one state transition, for the audit trail (JSON lines) and the event stream.
///
/// Serialized field by field as:
/// `{"session_id":"…hex…"|null,"version":3,"from":"ATTACHED","to":"RECOVERING",
/// "reason":"TRANSPORT_DEAD","epoch":1,"path":7|null,"transport":"udp"|null,"unix_ms":…}`.
/// The monotonic `at` is process-local and is not serialized.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The session id in lowercase hex, `None` before the handshake assigned one.
    pub session_id: Option<String>,
    /// The state machine's version after this transition (strictly increasing, starts at 1).
    pub version: u64,
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
    /// Why.
    pub reason: Reason,
    /// The binding epoch after this transition (0 before the first binding).
    pub epoch: u64,
    /// The path involved, if any (the new binding's path for a rebind).
    pub path: Option<PathId>,
    /// The transport kind of that path (`"udp"`, `"quic"`, …), if the runtime told us.
    pub transport: Option<String>,
    /// Wall time of the transition, milliseconds since the Unix epoch (from the clock anchor).
    pub unix_ms: u64,
    /// Monotonic time of the transition; `None` after deserialization.
    #[serde(skip)]
    pub at: Option<Instant>,
}

impl AuditRecord {
    /// The record as one line of JSON, without a trailing newline (JSON escapes any newline
    /// inside strings, so the line never breaks).
    pub fn to_json_line(&self) -> String {
        // Serializing a struct of plain strings and integers into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses one line written by [`to_json_line`](Self::to_json_line).
    pub fn from_json_line(line: &str) -> Result<AuditRecord, serde_json::Error> {
        serde_json::from_str(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AuditRecord {
        AuditRecord {
            session_id: Some("00112233445566778899aabbccddeeff".into()),
            version: 4,
            from: State::Recovering,
            to: State::Attached,
            reason: Reason::ReattachAccepted,
            epoch: 2,
            path: Some(PathId(7)),
            transport: Some("udp\nwith newline".into()),
            unix_ms: 1_700_000_000_123,
            at: None,
        }
    }

    #[test]
    fn record_is_one_line_of_json() {
        let line = record().to_json_line();

        assert!(!line.contains('\n'));
        assert!(line.starts_with('{') && line.ends_with('}'));
        assert!(line.contains(r#""reason":"REATTACH_ACCEPTED""#));
        assert!(line.contains(r#""from":"RECOVERING","to":"ATTACHED""#));
    }

    #[test]
    fn record_round_trips_through_its_json_line() {
        let original = record();

        let back = AuditRecord::from_json_line(&original.to_json_line()).unwrap();

        assert_eq!(back, original);
    }

    #[test]
    fn monotonic_time_is_not_serialized() {
        #[expect(clippy::disallowed_methods, reason = "test needs one real instant")]
        let with_instant = AuditRecord {
            at: Some(Instant::now()),
            ..record()
        };

        let back = AuditRecord::from_json_line(&with_instant.to_json_line()).unwrap();

        assert!(!with_instant.to_json_line().contains("\"at\""));
        assert_eq!(back.at, None);
    }
}
