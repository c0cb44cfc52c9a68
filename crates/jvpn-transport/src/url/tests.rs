use super::*;

fn url(s: &str) -> TransportUrl {
    TransportUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn udp_url_with_port_parses() {
    let u = url("udp://vpn.example.com:4000");
    assert_eq!(u.kind, TransportKind::Udp);
    assert_eq!(u.host, "vpn.example.com");
    assert_eq!(u.port, 4000);
    assert_eq!(u.path, None);
}

#[test]
fn missing_ports_default_per_scheme() {
    assert_eq!(url("udp://h").port, 51820);
    assert_eq!(url("quic://h").port, 443);
    assert_eq!(url("wss://h").port, 443);
}

#[test]
fn wss_path_defaults_to_jvpn_and_keeps_a_given_path() {
    assert_eq!(url("wss://h:8443").path.as_deref(), Some("/jvpn"));
    assert_eq!(url("wss://h/a/b?x=1").path.as_deref(), Some("/a/b?x=1"));
}

#[test]
fn ipv6_hosts_are_bracketed_in_urls_and_stored_bare() {
    let u = url("udp://[::1]:9");
    assert_eq!(u.host, "::1");
    assert_eq!(u.port, 9);
    assert_eq!(u.to_string(), "udp://[::1]:9");
    assert_eq!(u.authority(), "[::1]:9");
    assert_eq!(url("quic://[2001:db8::1]").port, 443);
}

#[test]
fn scheme_is_case_insensitive_and_displayed_lowercase() {
    assert_eq!(url("UDP://h:1").to_string(), "udp://h:1");
}

#[test]
fn trailing_slash_on_udp_is_tolerated() {
    assert_eq!(url("udp://h:1/").path, None);
}

#[test]
fn each_mistake_gets_its_own_error_with_the_expected_form() {
    type IsExpected = fn(&UrlError) -> bool;
    let cases: &[(&str, IsExpected)] = &[
        ("h:1", |e| matches!(e, UrlError::MissingScheme { .. })),
        ("tcp://h:1", |e| matches!(e, UrlError::UnknownScheme { .. })),
        ("ud p://h:1", |e| {
            matches!(e, UrlError::UnknownScheme { .. })
        }),
        ("udp://h:", |e| matches!(e, UrlError::MissingPort { .. })),
        ("udp://h:x1", |e| matches!(e, UrlError::InvalidPort { .. })),
        ("udp://h:-1", |e| matches!(e, UrlError::InvalidPort { .. })),
        ("udp://h:65536", |e| {
            matches!(e, UrlError::PortOutOfRange { .. })
        }),
        ("udp://h:99999999999999999999", |e| {
            matches!(e, UrlError::PortOutOfRange { .. })
        }),
        ("udp://h:1/x", |e| {
            matches!(e, UrlError::PathNotAllowed { .. })
        }),
        ("quic://h/x", |e| {
            matches!(e, UrlError::PathNotAllowed { .. })
        }),
        ("udp://:1", |e| matches!(e, UrlError::EmptyHost { .. })),
        ("udp://", |e| matches!(e, UrlError::EmptyHost { .. })),
        ("wss://", |e| matches!(e, UrlError::EmptyHost { .. })),
        ("udp://[]:1", |e| matches!(e, UrlError::InvalidHost { .. })),
        ("udp://[::1:1", |e| {
            matches!(e, UrlError::InvalidHost { .. })
        }),
        ("udp://[::1]x", |e| {
            matches!(e, UrlError::InvalidHost { .. })
        }),
        ("udp://[nope]:1", |e| {
            matches!(e, UrlError::InvalidHost { .. })
        }),
        ("udp://us er@h:1", |e| {
            matches!(e, UrlError::InvalidHost { .. })
        }),
        ("udp://::1:51820", |e| {
            matches!(e, UrlError::UnbracketedIpv6 { .. })
        }),
        ("wss://h/a b", |e| matches!(e, UrlError::InvalidPath { .. })),
    ];
    for (input, expected) in cases {
        let err = TransportUrl::parse(input).expect_err(input);
        assert!(expected(&err), "{input}: got {err:?}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn errors_show_the_expected_form() {
    let err = TransportUrl::parse("tcp://h:1").unwrap_err();
    assert!(err.to_string().contains("udp://host:port"), "{err}");
    let err = TransportUrl::parse("udp://2001:db8::1").unwrap_err();
    assert!(err.to_string().contains("[2001:db8::1]:port"), "{err}");
    let err = TransportUrl::parse("udp://fe80::1%eth0:5").unwrap_err();
    assert!(matches!(err, UrlError::UnbracketedIpv6 { .. }), "{err}");
}

#[test]
fn custom_schemes_need_parse_custom_and_an_explicit_port() {
    assert!(matches!(
        TransportUrl::parse("ble://h:1"),
        Err(UrlError::UnknownScheme { .. })
    ));
    let u = TransportUrl::parse_custom("ble://h:1/chan").unwrap();
    assert_eq!(u.kind, TransportKind::Custom("ble".into()));
    assert_eq!(u.path.as_deref(), Some("/chan"));
    assert!(matches!(
        TransportUrl::parse_custom("ble://h"),
        Err(UrlError::MissingPort { .. })
    ));
}

#[test]
fn serde_round_trips_through_the_string_form() {
    let u = url("wss://h:8443/x");
    let json = serde_json::to_string(&u).unwrap();
    assert_eq!(json, "\"wss://h:8443/x\"");
    assert_eq!(serde_json::from_str::<TransportUrl>(&json).unwrap(), u);
}
