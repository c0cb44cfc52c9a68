//! Property tests: no input panics the URL parser, and display/parse round-trips.

use std::net::{Ipv4Addr, Ipv6Addr};

use jvpn_transport::{TransportKind, TransportUrl};
use proptest::prelude::*;

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_-]{1,20}(\\.[a-z0-9_-]{1,20}){0,3}",
        any::<u32>().prop_map(|ip| Ipv4Addr::from(ip).to_string()),
        any::<u128>().prop_map(|ip| Ipv6Addr::from(ip).to_string()),
    ]
}

fn builtin_url() -> impl Strategy<Value = TransportUrl> {
    (
        0..3u8,
        host(),
        any::<u16>(),
        "(/[a-zA-Z0-9._~%?=&-]{0,12}){1,3}",
    )
        .prop_map(|(k, host, port, path)| {
            let (kind, path) = match k {
                0 => (TransportKind::Udp, None),
                1 => (TransportKind::Quic, None),
                _ => (TransportKind::Wss, Some(path)),
            };
            TransportUrl {
                kind,
                host,
                port,
                path,
            }
        })
}

proptest! {
    #[test]
    fn random_strings_never_panic_the_parser(s in any::<String>()) {
        let _ = TransportUrl::parse(&s);
        let _ = TransportUrl::parse_custom(&s);
        let _ = s.parse::<TransportKind>();
    }

    #[test]
    fn url_shaped_strings_never_panic_the_parser(
        s in "(udp|quic|wss|x-y|UDP|)(://)?(\\[[0-9a-f:]{0,8}\\]?|[a-z.:@ ]{0,8})(:[0-9a-z-]{0,7})?(/[ -~]{0,6})?"
    ) {
        let _ = TransportUrl::parse(&s);
        let _ = TransportUrl::parse_custom(&s);
    }

    #[test]
    fn display_then_parse_gives_the_same_url(url in builtin_url()) {
        let text = url.to_string();
        prop_assert_eq!(TransportUrl::parse(&text).unwrap(), url);
    }

    #[test]
    fn custom_urls_round_trip_through_parse_custom(
        name in "[a-z0-9-]{1,32}", host in host(), port in any::<u16>()
    ) {
        let url = TransportUrl { kind: TransportKind::custom(&name).unwrap(), host, port, path: None };
        prop_assert_eq!(TransportUrl::parse_custom(&url.to_string()).unwrap(), url);
    }
}
