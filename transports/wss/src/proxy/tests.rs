use std::collections::BTreeMap;

use super::*;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn no_proxy_variables_means_direct() {
    let config = ProxyConfig::from_lookup(env(&[("NO_PROXY", "example.com")]));

    assert_eq!(config, ProxyConfig::Direct);
}

#[test]
fn https_proxy_wins_over_all_proxy() {
    let config = ProxyConfig::from_vars(
        Some("http://https-proxy:3128"),
        Some("http://all-proxy:3128"),
        None,
    );

    let proxy = config.proxy_for("vpn.example.com").unwrap().unwrap();

    assert_eq!(proxy.host, "https-proxy");
    assert_eq!(proxy.port, 3128);
}

#[test]
fn all_proxy_is_used_when_https_proxy_is_blank() {
    let config = ProxyConfig::from_vars(Some("  "), Some("http://all-proxy:8080"), None);

    let proxy = config.proxy_for("vpn.example.com").unwrap().unwrap();

    assert_eq!(proxy.host, "all-proxy");
}

#[test]
fn upper_case_variables_win_and_lower_case_ones_are_read_too() {
    let both = ProxyConfig::from_lookup(env(&[
        ("HTTPS_PROXY", "http://upper:1"),
        ("https_proxy", "http://lower:2"),
    ]));
    let lower_only = ProxyConfig::from_lookup(env(&[
        ("all_proxy", "http://lower-all:3"),
        ("no_proxy", "internal.example"),
    ]));

    assert_eq!(both.proxy_for("x").unwrap().unwrap().host, "upper");
    assert_eq!(
        lower_only.proxy_for("x").unwrap().unwrap().host,
        "lower-all"
    );
    assert!(
        lower_only
            .proxy_for("vpn.internal.example")
            .unwrap()
            .is_none()
    );
}

#[test]
fn no_proxy_hosts_bypass_the_environment_proxy() {
    let config = ProxyConfig::from_vars(
        Some("http://proxy:3128"),
        None,
        Some("localhost, .corp.example,10.1.2.3"),
    );

    assert!(config.proxy_for("localhost").unwrap().is_none());
    assert!(config.proxy_for("vpn.corp.example").unwrap().is_none());
    assert!(config.proxy_for("10.1.2.3").unwrap().is_none());
    assert!(config.proxy_for("vpn.example.com").unwrap().is_some());
}

#[test]
fn an_explicit_proxy_ignores_no_proxy() {
    let config = ProxyConfig::explicit_or_env(Some("http://proxy:3128".into()));

    assert!(matches!(config, ProxyConfig::Http { .. }));
    assert!(config.proxy_for("localhost").unwrap().is_some());
}

#[test]
fn no_proxy_domain_entries_match_the_domain_and_its_subdomains_only() {
    for list in [
        "example.com",
        ".example.com",
        "*.example.com",
        "EXAMPLE.com.",
    ] {
        let no_proxy = NoProxy::parse(list);

        assert!(no_proxy.matches("example.com"), "{list}");
        assert!(no_proxy.matches("vpn.Example.COM"), "{list}");
        assert!(no_proxy.matches("a.b.example.com."), "{list}");
        assert!(!no_proxy.matches("badexample.com"), "{list}");
        assert!(!no_proxy.matches("example.com.evil"), "{list}");
    }
}

#[test]
fn no_proxy_star_alone_bypasses_every_host() {
    let no_proxy = NoProxy::parse(" * ");

    assert!(no_proxy.is_all());
    assert!(no_proxy.matches("anything.example"));
}

#[test]
fn no_proxy_star_inside_a_list_entry_is_not_a_wildcard_for_all() {
    let no_proxy = NoProxy::parse("*.corp");

    assert!(!no_proxy.is_all());
    assert!(!no_proxy.matches("example.com"));
}

#[test]
fn no_proxy_ip_entries_match_exactly_with_or_without_brackets_and_ports() {
    let no_proxy = NoProxy::parse("127.0.0.1:8443,[::1]:443,fe80::1");

    assert!(no_proxy.matches("127.0.0.1"));
    assert!(!no_proxy.matches("127.0.0.10"));
    assert!(no_proxy.matches("::1"));
    assert!(no_proxy.matches("[::1]"));
    assert!(no_proxy.matches("fe80::1"));
}

#[test]
fn empty_no_proxy_entries_are_skipped() {
    let no_proxy = NoProxy::parse(",, ,\t");

    assert_eq!(no_proxy, NoProxy::default());
    assert!(!no_proxy.matches("example.com"));
}

#[test]
fn proxy_urls_parse_with_and_without_scheme_credentials_and_port() {
    let full = ProxyUrl::parse("http://alice:s%40cret@proxy.example:3128/").unwrap();
    let bare = ProxyUrl::parse("proxy.example").unwrap();
    let v6 = ProxyUrl::parse("HTTP://[::1]:8080").unwrap();

    assert_eq!((full.host.as_str(), full.port), ("proxy.example", 3128));
    assert_eq!(
        full.credentials.as_deref().map(String::as_str),
        Some("alice:s@cret")
    );
    assert_eq!(
        (bare.host.as_str(), bare.port, bare.has_credentials()),
        ("proxy.example", 80, false)
    );
    assert_eq!((v6.host.as_str(), v6.port), ("::1", 8080));
    assert_eq!(v6.authority(), "[::1]:8080");
}

#[test]
fn basic_authorization_encodes_user_and_password() {
    let proxy = ProxyUrl::parse("http://Aladdin:open%20sesame@p:1").unwrap();

    let header = proxy.authorization().unwrap();

    // RFC 7617 section 2's example.
    assert_eq!(header.as_str(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
}

#[test]
fn unsupported_or_malformed_proxy_urls_are_refused_without_showing_the_password() {
    for bad in [
        "https://user:hunter2@proxy:443",
        "socks5://proxy:1080",
        "http://user:hunter2@proxy:port",
        "http://user:hunter2@:3128",
        "http://proxy:3128/path",
        "http://us%zzer:hunter2@proxy:1",
        "http://proxy:99999",
    ] {
        let error = ProxyUrl::parse(bad).unwrap_err();

        let message = error.to_string();
        assert!(matches!(error, WssError::InvalidProxyUrl { .. }), "{bad}");
        assert!(!message.contains("hunter2"), "{message}");
        assert!(
            message.contains("http://[user:pass@]host:port"),
            "{message}"
        );
    }
}

#[test]
fn validate_reports_a_bad_explicit_proxy_early() {
    assert!(
        ProxyConfig::Http {
            url: "ftp://p:1".into()
        }
        .validate()
        .is_err()
    );
    assert!(
        ProxyConfig::Http {
            url: "http://p:1".into()
        }
        .validate()
        .is_ok()
    );
    assert!(ProxyConfig::Direct.validate().is_ok());
}

#[test]
fn debug_never_shows_proxy_credentials() {
    let explicit = ProxyConfig::Http {
        url: "http://alice:hunter2@proxy:3128".into(),
    };
    let from_env = ProxyConfig::from_vars(Some("alice:hunter2@proxy:3128"), None, None);
    let parsed = ProxyUrl::parse("http://alice:hunter2@proxy:3128").unwrap();

    for debug in [
        format!("{explicit:?}"),
        format!("{from_env:?}"),
        format!("{parsed:?}"),
    ] {
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("alice"), "{debug}");
        assert!(debug.contains("proxy"), "{debug}");
    }
}
