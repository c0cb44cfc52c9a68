//! Unique names. A testbed's prefix is `jvpn-<pid>-<counter>-<test-slug>`: the process id separates
//! processes, the per-process counter separates testbeds of one process (tests run on parallel
//! threads), and the slug tells a person which test left something behind. Namespace names are
//! `<prefix>-<role>`. Interface names must fit Linux's 15 bytes (IFNAMSIZ - 1), so they use a short
//! hash of the prefix instead: `jv<5 hex>s<subnet><a|b>`. Interfaces are created directly inside the
//! testbed's own namespaces, so even a hash collision could not make two testbeds clash.

use std::sync::atomic::{AtomicU64, Ordering};

/// Every name this crate creates starts with this, so leftovers are easy to find
/// (`ip netns list | grep jvpn-`).
pub const NAME_PREFIX: &str = "jvpn-";

/// Longest interface name Linux accepts.
#[cfg(test)]
pub(crate) const IFNAME_MAX: usize = 15;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The next value of the per-process counter (testbeds and capability probes share it).
pub(crate) fn next_counter() -> u64 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// `jvpn-<pid>-<counter>-<slug of test_name>`.
pub(crate) fn testbed_prefix(test_name: &str) -> String {
    format!(
        "{NAME_PREFIX}{}-{}-{}",
        std::process::id(),
        next_counter(),
        slug(test_name, 32)
    )
}

/// Lowercase ASCII letters, digits and single dashes, at most `max` bytes; never empty.
pub(crate) fn slug(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(max);
    for c in text.chars() {
        if out.len() >= max {
            break;
        }
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push('x');
    }
    out
}

/// Five hex digits of FNV-1a over `text`: short enough for interface names.
pub(crate) fn short_hash(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:05x}", hash & 0xf_ffff)
}

/// The veth device name for `side` (`'a'` or `'b'`) of the path on `subnet` in the testbed whose
/// interface tag is `tag`: at most 2 + 5 + 1 + 3 + 1 = 12 bytes.
pub(crate) fn veth_name(tag: &str, subnet: u8, side: char) -> String {
    format!("jv{tag}s{subnet}{side}")
}

/// The process id embedded in a name made by [`testbed_prefix`], if the name has that shape.
pub(crate) fn owner_pid(namespace: &str) -> Option<u32> {
    namespace
        .strip_prefix(NAME_PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_keeps_words_and_drops_punctuation() {
        assert_eq!(
            slug("tests::ping_over_two_paths", 64),
            "tests-ping-over-two-paths"
        );
        assert_eq!(slug("::", 64), "x");
        assert_eq!(slug("abcdef", 3), "abc");
    }

    #[test]
    fn two_prefixes_for_the_same_test_differ() {
        let first = testbed_prefix("same test");
        let second = testbed_prefix("same test");
        assert_ne!(first, second);
        assert!(first.starts_with(&format!("jvpn-{}-", std::process::id())));
    }

    #[test]
    fn veth_names_fit_ifnamsiz_for_every_subnet() {
        let tag = short_hash("jvpn-4194304-18446744073709551615-some-very-long-test-name");
        for subnet in 0..=u8::MAX {
            for side in ['a', 'b'] {
                assert!(veth_name(&tag, subnet, side).len() <= IFNAME_MAX);
            }
        }
    }

    #[test]
    fn owner_pid_is_read_back_from_a_prefix() {
        let prefix = testbed_prefix("owner");
        assert_eq!(
            owner_pid(&format!("{prefix}-client")),
            Some(std::process::id())
        );
        assert_eq!(owner_pid("jvpn-demo-client"), None);
        assert_eq!(owner_pid("other-12-3"), None);
    }
}
