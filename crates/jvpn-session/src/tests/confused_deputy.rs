//! ATTACKS.md S8 at the endpoint: valid clients presenting one another's unspent reattach
//! tokens. Every pairing of N clients attached to one endpoint is tried; none may reattach,
//! and no session may move (the token names the other session, whose record holds the other
//! client's static key, so the proof of possession fails).

use jvpn_wire::{MessageType, StaticSecret, peek_type};

use super::*;
use crate::DropReason;

const CLIENTS: usize = 8;

fn path_of(client: usize) -> PathId {
    PathId(100 + client as u32)
}

/// Delivers everything in flight both ways until nothing moves; the endpoint's answers go to
/// the client whose path they name.
fn pump(server: &mut Endpoint, clients: &mut [Session], now: Instant) {
    let mut buf = Vec::new();
    loop {
        let mut moved = false;
        for (i, client) in clients.iter_mut().enumerate() {
            while let Some(t) = client.poll_transmit(now, &mut buf) {
                let mut datagram = buf[..t.len].to_vec();
                server.handle_datagram(path_of(i), &mut datagram, now);
                moved = true;
            }
        }
        while let Some(t) = server.poll_transmit(now, &mut buf) {
            let mut datagram = buf[..t.len].to_vec();
            if let Some(i) = (0..CLIENTS).find(|&i| path_of(i) == t.path) {
                clients[i].handle_datagram(CLIENT_PATH, &mut datagram, now);
                moved = true;
            }
        }
        if !moved {
            return;
        }
    }
}

#[test]
fn no_client_reattaches_with_another_clients_token_in_any_pairing() {
    let t0 = base_instant();
    let clock = ClockAnchor {
        instant: t0,
        unix_nanos: ANCHOR_UNIX_NANOS,
    };
    let keys = Keys::new();
    let mut key_rng = rng(80);
    let client_keys: Vec<StaticSecret> = (0..CLIENTS)
        .map(|_| StaticSecret::generate(&mut *key_rng))
        .collect();
    let mut cfg = keys.server_config(clock, keys.client.public_key());
    cfg.peers = client_keys
        .iter()
        .map(|k| PeerConfig {
            public_key: k.public_key(),
            psk: keys.psk.clone(),
        })
        .collect();
    let mut server = Endpoint::new(cfg, rng(81)).expect("valid server config");
    let mut clients: Vec<Session> = client_keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let mut c = keys.client_config(clock, keys.server.public_key());
            c.local_key = key.clone();
            Session::connect(c, CLIENT_PATH, t0, rng(90 + i as u64)).expect("valid client")
        })
        .collect();
    pump(&mut server, &mut clients, t0);
    assert!(clients.iter().all(|c| c.state() == State::Attached));
    let unspent: Vec<_> = clients
        .iter()
        .map(|c| c.next_token().expect("a grant with tokens"))
        .collect();
    let mut now = t0;
    let mut tried = 0;
    let mut buf = Vec::new();

    for offset in 1..CLIENTS {
        now += Policy::default().min_switch_interval;
        for (i, client) in clients.iter_mut().enumerate() {
            let other = (i + offset) % CLIENTS;
            client.force_next_token(unspent[other]);
            client.start_rebind(PathId(1_000 + other as u32), Reason::PlannedSwitch, now);
            let t = client
                .poll_transmit(now, &mut buf)
                .expect("a REATTACH_INIT");
            let mut init = buf[..t.len].to_vec();
            assert_eq!(peek_type(&init), Ok(MessageType::ReattachInit));
            let result = server.handle_datagram(path_of(i), &mut init, now);
            // The token opened and named the other session: the proof of possession (its
            // client's static key) is what fails.
            assert_eq!(
                result,
                EndpointInbound::Dropped(DropReason::HandshakeFailed),
                "client {i} with client {other}'s token"
            );
            tried += 1;
        }
    }

    assert_eq!(tried, CLIENTS * (CLIENTS - 1));
    assert_eq!(server.counters().reattach.accepted, 0);
    assert_eq!(server.session_count(), CLIENTS);
    for (_, session) in server.sessions() {
        assert_eq!((session.epoch(), session.state()), (1, State::Attached));
    }
    assert_eq!(server.violations(), 0);
}
