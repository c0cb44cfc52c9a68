use std::path::Path;

use super::*;
use crate::config;

fn key_text(byte: u8) -> String {
    PublicKey::from_bytes([byte; 32]).to_base64()
}

fn connect_file(text: &str) -> Loaded<ConnectFile> {
    config::parse(Path::new("/etc/jvpn/client.toml"), text).unwrap()
}

fn server_file(text: &str) -> Loaded<ServerFile> {
    config::parse(Path::new("/etc/jvpn/server.toml"), text).unwrap()
}

fn minimal_connect_file() -> String {
    format!(
        "key = \"client.key\"\nserver-key = \"{}\"\nserver = \"vpn.example.com\"\n\
         address = \"10.77.0.2/32\"\nmtu = 1300\n",
        key_text(9)
    )
}

#[test]
fn a_config_file_alone_gives_complete_client_settings() {
    let file = connect_file(&minimal_connect_file());

    let settings = client(&ConnectArgs::default(), Some(&file)).unwrap();

    assert_eq!(settings.key, Path::new("/etc/jvpn/client.key"));
    assert_eq!(
        settings.target.server_key,
        ServerKey::Inline(PublicKey::from_bytes([9; 32]))
    );
    assert_eq!(
        settings.target.servers[0].to_string(),
        "udp://vpn.example.com:51820"
    );
    assert_eq!(settings.shared.mtu, Some(1300));
}

#[test]
fn flags_win_over_the_config_file() {
    let file = connect_file(&minimal_connect_file());
    let mut args = ConnectArgs::default();
    args.common.key = Some("/keys/other.key".into());
    args.common.mtu = Some(1400);
    args.common.address = vec!["10.99.0.2/32".parse().unwrap()];
    args.target.server = vec!["10.0.0.1:7".into()];

    let settings = client(&args, Some(&file)).unwrap();

    assert_eq!(settings.key, Path::new("/keys/other.key"));
    assert_eq!(settings.shared.mtu, Some(1400));
    assert_eq!(settings.addresses[0].to_string(), "10.99.0.2/32");
    assert_eq!(settings.target.servers[0].to_string(), "udp://10.0.0.1:7");
}

#[test]
fn allowed_ips_default_to_the_network_around_each_address() {
    let mut args = ConnectArgs::default();
    args.common.key = Some("k".into());
    args.target.server_key = Some(key_text(1));
    args.target.server = vec!["h".into()];
    args.common.address = vec![
        "10.77.0.2/32".parse().unwrap(),
        "fd77::2/128".parse().unwrap(),
    ];

    let settings = client(&args, None).unwrap();

    let allowed: Vec<String> = settings
        .allowed_ips
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(allowed, ["10.77.0.0/24", "fd77::/64"]);
}

#[test]
fn a_single_string_list_in_the_file_is_split_where_the_flag_is() {
    let text = format!(
        "{}allowed-ips = \"10.77.0.0/24, fd77::/64\"\ntransports = \"udp\"\n",
        minimal_connect_file()
    );

    let settings = client(&ConnectArgs::default(), Some(&connect_file(&text))).unwrap();

    assert_eq!(settings.allowed_ips.len(), 2);
}

#[test]
fn a_bad_value_in_the_file_names_the_file_and_the_key() {
    let text = minimal_connect_file().replace("10.77.0.2/32", "10.77.0.300/24");

    let error = client(&ConnectArgs::default(), Some(&connect_file(&text))).unwrap_err();

    let message = error.to_string();
    assert!(
        message.contains("config file /etc/jvpn/client.toml"),
        "{message}"
    );
    assert!(message.contains("`address`"), "{message}");
    assert!(message.contains("10.77.0.300"), "{message}");
}

#[test]
fn quic_in_the_file_transports_picks_quic() {
    // QUIC carries less than the file's MTU of 1300 (see `jvpn::mtu`).
    let base = minimal_connect_file().replace("mtu = 1300\n", "");
    let text = format!("{base}transports = [\"quic\"]\n");

    let settings = client(&ConnectArgs::default(), Some(&connect_file(&text))).unwrap();

    assert_eq!(
        settings.target.servers[0].kind,
        jvpn::transport::TransportKind::Quic
    );
}

#[test]
fn missing_settings_name_the_flag_to_add() {
    let error = client(&ConnectArgs::default(), None).unwrap_err();

    assert!(matches!(error, ConfigError::Missing { flag: "--key", .. }));
}

#[test]
fn a_policy_table_overrides_defaults_and_is_validated() {
    let ok = connect_file(&format!(
        "{}[policy]\nkeepalive_interval_ms = 5000\n",
        minimal_connect_file()
    ));
    let bad = connect_file(&format!(
        "{}[policy]\nkeepalive_interval_ms = 60000\n",
        minimal_connect_file()
    ));

    let settings = client(&ConnectArgs::default(), Some(&ok)).unwrap();
    let error = client(&ConnectArgs::default(), Some(&bad)).unwrap_err();

    assert_eq!(settings.shared.policy.keepalive_interval.as_millis(), 5000);
    assert!(matches!(error, ConfigError::Policy { .. }));
    assert!(error.to_string().contains("[policy]"));
}

#[test]
fn server_settings_merge_peers_and_default_the_listener() {
    let file = server_file(&format!(
        "key = \"/k/server.key\"\naddress = \"10.77.0.1/24\"\npeer = [\"{}=10.77.0.2/32\"]\n\
         audit-log = \"audit.jsonl\"\n",
        key_text(3)
    ));

    let settings = server(&ServerArgs::default(), Some(&file)).unwrap();

    assert_eq!(settings.key, Path::new("/k/server.key"));
    assert_eq!(settings.listen[0].to_string(), DEFAULT_LISTEN);
    assert_eq!(settings.peers.len(), 1);
    assert_eq!(
        settings.shared.audit_log.as_deref(),
        Some(Path::new("/etc/jvpn/audit.jsonl"))
    );
}

#[test]
fn server_peer_flags_replace_the_files_peers() {
    let file = server_file(&format!(
        "key = \"k\"\naddress = \"10.77.0.1/24\"\npeer = [\"{}=10.77.0.2/32\"]\n",
        key_text(3)
    ));
    let mut args = ServerArgs::default();
    args.peer = vec![values::peer(&format!("{}=10.77.0.9/32", key_text(4))).unwrap()];

    let settings = server(&args, Some(&file)).unwrap();

    assert_eq!(settings.peers.len(), 1);
    assert_eq!(settings.peers[0].public_key, PublicKey::from_bytes([4; 32]));
}

#[test]
fn a_server_without_peers_is_refused() {
    let file = server_file("key = \"k\"\naddress = \"10.77.0.1/24\"\n");

    let error = server(&ServerArgs::default(), Some(&file)).unwrap_err();

    assert!(matches!(error, ConfigError::Missing { flag: "--peer", .. }));
}

#[test]
fn unknown_keys_and_wrong_types_are_parse_errors_naming_the_key() {
    let unknown = config::parse::<ServerFile>(Path::new("s.toml"), "listen-on = \"x\"\n")
        .unwrap_err()
        .to_string();
    let wrong_type = config::parse::<ServerFile>(Path::new("s.toml"), "mtu = \"big\"\n")
        .unwrap_err()
        .to_string();
    let unknown_policy =
        config::parse::<ServerFile>(Path::new("s.toml"), "[policy]\nkeepalive = 3\n")
            .unwrap_err()
            .to_string();

    assert!(
        unknown.contains("s.toml") && unknown.contains("listen-on"),
        "{unknown}"
    );
    assert!(wrong_type.contains("mtu"), "{wrong_type}");
    assert!(unknown_policy.contains("keepalive"), "{unknown_policy}");
}

#[test]
fn the_file_lists_transports_servers_and_a_proxy_like_the_flags() {
    let text = format!(
        "key = \"client.key\"\nserver-key = \"{}\"\nserver = [\"vpn.example.com\"]\n\
         address = \"10.77.0.2/32\"\ntransports = \"udp,wss\"\n\
         proxy = \"http://proxy.corp:3128\"\n",
        key_text(9)
    );

    let settings = client(&ConnectArgs::default(), Some(&connect_file(&text))).unwrap();

    let urls: Vec<String> = settings
        .target
        .servers
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        urls,
        [
            "udp://vpn.example.com:51820",
            "wss://vpn.example.com:443/jvpn"
        ]
    );
    assert_eq!(
        settings.target.proxy.as_deref(),
        Some("http://proxy.corp:3128")
    );
}

#[test]
fn the_proxy_flag_wins_over_the_file() {
    let text = format!("{}proxy = \"http://file:1\"\n", minimal_connect_file());
    let mut args = ConnectArgs::default();
    args.target.proxy = Some("http://flag:2".into());

    let settings = client(&args, Some(&connect_file(&text))).unwrap();

    assert_eq!(settings.target.proxy.as_deref(), Some("http://flag:2"));
}

#[test]
fn an_mtu_larger_than_a_candidate_carries_is_refused_naming_it() {
    let mut args = ConnectArgs::default();
    args.common.mtu = Some(1500);
    args.target.transports = vec![TransportName::Wss, TransportName::Udp];

    let error = client(&args, Some(&connect_file(&minimal_connect_file()))).unwrap_err();

    let message = error.to_string();
    assert!(message.contains("--mtu"), "{message}");
    assert!(message.contains("udp://vpn.example.com:51820"), "{message}");
}

#[test]
fn netcheck_checks_every_transport_unless_told_otherwise() {
    let args = crate::cli::NetcheckArgs::default();

    let settings = netcheck(&args, Some(&connect_file(&minimal_connect_file()))).unwrap();

    let kinds: Vec<String> = settings
        .target
        .servers
        .iter()
        .map(|u| u.kind.to_string())
        .collect();
    assert_eq!(kinds, ["udp", "quic", "wss"]);
}
