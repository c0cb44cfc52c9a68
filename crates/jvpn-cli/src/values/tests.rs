use super::*;

fn key_text(byte: u8) -> String {
    PublicKey::from_bytes([byte; 32]).to_base64()
}

#[test]
fn peer_splits_at_the_last_equals_sign_so_key_padding_survives() {
    let text = format!("{}=10.77.0.2/32,fd77::2/128", key_text(7));

    let peer = peer(&text).unwrap();

    assert_eq!(peer.public_key, PublicKey::from_bytes([7; 32]));
    let ips: Vec<String> = peer.allowed_ips.iter().map(ToString::to_string).collect();
    assert_eq!(ips, ["10.77.0.2/32", "fd77::2/128"]);
}

#[test]
fn peer_without_equals_sign_explains_the_form() {
    let error = peer("nonsense").unwrap_err();

    assert!(matches!(error, ValueError::PeerForm { .. }));
    assert!(error.to_string().contains("PUBKEY=ALLOWED_IPS"));
}

#[test]
fn peer_without_allowed_ips_is_refused() {
    let error = peer(&format!("{}=", key_text(1))).unwrap_err();

    assert!(matches!(error, ValueError::PeerNoAllowedIps { .. }));
}

#[test]
fn peer_with_a_bad_key_or_prefix_says_which() {
    let bad_key = peer("abc=10.77.0.2/32").unwrap_err();
    let bad_ip = peer(&format!("{}=10.77.0.300/32", key_text(1))).unwrap_err();

    assert!(
        bad_key.to_string().contains("not a public key"),
        "{bad_key}"
    );
    assert!(bad_ip.to_string().contains("10.77.0.300"), "{bad_ip}");
}

#[test]
fn listen_accepts_a_url_or_a_bare_udp_address() {
    assert_eq!(
        listen("udp://0.0.0.0:51820").unwrap().to_string(),
        "udp://0.0.0.0:51820"
    );
    assert_eq!(
        listen("127.0.0.1:4000").unwrap().to_string(),
        "udp://127.0.0.1:4000"
    );
    assert_eq!(listen("::").unwrap().to_string(), "udp://[::]:51820");
}

#[test]
fn listen_takes_quic_and_wss_urls() {
    let quic = listen("quic://0.0.0.0:443").unwrap();
    let wss = listen("wss://0.0.0.0:443/jvpn").unwrap();

    assert_eq!(quic.kind, TransportKind::Quic);
    assert_eq!(wss.kind, TransportKind::Wss);
    assert_eq!(wss.path.as_deref(), Some("/jvpn"));
}

#[test]
fn server_host_takes_every_documented_form() {
    let udp = [TransportName::Udp];
    let cases = [
        ("vpn.example.com", None, None, "udp://vpn.example.com:51820"),
        (
            "vpn.example.com:4000",
            None,
            None,
            "udp://vpn.example.com:4000",
        ),
        (
            "vpn.example.com",
            Some(&udp[..]),
            Some(4000),
            "udp://vpn.example.com:4000",
        ),
        ("10.0.0.1", None, Some(9), "udp://10.0.0.1:9"),
        ("fd00::1", None, None, "udp://[fd00::1]:51820"),
        ("[fd00::1]:7", None, None, "udp://[fd00::1]:7"),
        ("udp://10.0.0.1:5", Some(&udp[..]), None, "udp://10.0.0.1:5"),
    ];
    for (host, transports, port, want) in cases {
        let url = server_url(host, transports, port).unwrap();
        assert_eq!(url.to_string(), want, "{host}");
    }
}

#[test]
fn server_host_refuses_two_different_ports() {
    let error = server_url("vpn.example.com:4000", None, Some(5000)).unwrap_err();

    assert!(matches!(error, ValueError::PortTwice { .. }));
}

#[test]
fn choosing_quic_or_wss_builds_a_url_of_that_kind() {
    let quic = server_url("vpn.example.com", Some(&[TransportName::Quic]), None).unwrap();
    let wss = server_url("wss://vpn.example.com/jvpn", None, None).unwrap();

    assert_eq!(quic.kind, TransportKind::Quic);
    assert_eq!(quic.host, "vpn.example.com");
    assert_eq!(wss.kind, TransportKind::Wss);
}

#[test]
fn a_url_scheme_outside_the_transport_list_is_refused() {
    let error = server_url("udp://h:1", Some(&[TransportName::Quic]), None).unwrap_err();

    assert!(matches!(error, ValueError::SchemeNotListed { .. }));
}

#[test]
fn transport_names_parse_case_insensitively_and_refuse_others() {
    assert_eq!(TransportName::parse("UDP"), Ok(TransportName::Udp));
    let error = TransportName::parse("carrier-pigeon").unwrap_err();
    assert!(error.contains("unknown transport `carrier-pigeon`"));
}

#[test]
fn a_host_with_several_transports_gives_one_candidate_each_on_default_ports() {
    let list = [TransportName::Udp, TransportName::Quic, TransportName::Wss];

    let urls = candidates(&["vpn.example.com".into()], Some(&list), None).unwrap();

    let urls: Vec<String> = urls.iter().map(ToString::to_string).collect();
    assert_eq!(
        urls,
        [
            "udp://vpn.example.com:51820",
            "quic://vpn.example.com:443",
            "wss://vpn.example.com:443/jvpn"
        ]
    );
}

#[test]
fn repeated_urls_are_candidates_in_the_order_given() {
    let hosts = ["wss://h:8443/x".to_owned(), "udp://h:5".to_owned()];

    let urls = candidates(&hosts, None, None).unwrap();

    assert_eq!(urls[0].to_string(), "wss://h:8443/x");
    assert_eq!(urls[1].to_string(), "udp://h:5");
}

#[test]
fn a_port_with_several_transports_is_refused_with_the_url_form() {
    let list = [TransportName::Udp, TransportName::Quic];

    let with_flag = candidates(&["h".into()], Some(&list), Some(4000)).unwrap_err();
    let in_host = candidates(&["h:4000".into()], Some(&list), None).unwrap_err();

    assert!(matches!(with_flag, ValueError::PortAmbiguous { .. }));
    assert!(matches!(in_host, ValueError::PortAmbiguous { .. }));
    assert!(
        with_flag.to_string().contains("udp://HOST:51820"),
        "{with_flag}"
    );
}

#[test]
fn the_same_candidate_twice_is_refused() {
    let hosts = ["udp://h:5".to_owned(), "udp://h:5".to_owned()];

    let error = candidates(&hosts, None, None).unwrap_err();

    assert!(matches!(error, ValueError::Duplicate { .. }));
}

#[test]
fn a_proxy_must_be_an_http_url() {
    assert_eq!(
        proxy(" http://u:p@127.0.0.1:3128 ").unwrap(),
        "http://u:p@127.0.0.1:3128"
    );
    assert!(proxy("socks5://127.0.0.1:1080").is_err());
}
