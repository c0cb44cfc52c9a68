//! No input panics either core or changes its state.

use proptest::prelude::*;

use super::*;

/// Bytes that get past the 4-byte header check most of the time, so the deeper parsers run.
fn datagram() -> impl Strategy<Value = Vec<u8>> {
    (1u8..=6, proptest::collection::vec(any::<u8>(), 0..300)).prop_map(|(ty, mut rest)| {
        let mut out = vec![ty, 1, 0, 0];
        out.append(&mut rest);
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_datagrams_never_panic_or_move_an_attached_session(
        to_client in proptest::collection::vec(datagram(), 1..8),
        to_server in proptest::collection::vec(datagram(), 1..8),
    ) {
        let mut h = Harness::attached();
        let before = (h.client.version(), h.server_session().1.version());

        for mut d in to_client {
            let result = h.deliver_to_client(&mut d);
            prop_assert!(matches!(result, Inbound::Dropped(_)));
        }
        for mut d in to_server {
            let result = h.deliver_to_server(&mut d);
            prop_assert!(matches!(result, EndpointInbound::Dropped(_)));
        }
        h.pump();

        prop_assert_eq!((h.client.version(), h.server_session().1.version()), before);
        prop_assert_eq!(h.server.session_count(), 1);
        prop_assert_eq!(h.server.counters().dh_started, 1);
        h.assert_no_violations();
    }
}
