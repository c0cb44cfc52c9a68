//! `AllowedIps<T>`: longest-prefix-match table from IP prefixes to values (e.g. peer handles).

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::prefix::{IpPrefix, mask_v4, mask_v6};

/// A longest-prefix-match table over IPv4 and IPv6 prefixes.
///
/// The server uses it to route an inner packet to the peer whose allowed IPs contain the
/// packet's destination: [`lookup`](Self::lookup) returns the value of the most specific prefix
/// containing the address (a `/32` beats a `/24` beats `0.0.0.0/0`). IPv4 and IPv6 are separate
/// tables: `0.0.0.0/0` never matches an IPv6 address, and IPv4-mapped IPv6 addresses
/// (`::ffff:a.b.c.d`) are looked up as IPv6.
///
/// Prefixes are stored by their network (`10.77.0.9/24` is stored as `10.77.0.0/24`).
/// Everything is in `BTreeMap`s, so iteration and results are deterministic. A lookup does one
/// map probe per distinct prefix length present (most specific first) and never allocates; with
/// host routes only that is a single probe.
#[derive(Clone, Debug)]
pub struct AllowedIps<T> {
    v4: Table<u32, T>,
    v6: Table<u128, T>,
}

/// One family's prefixes, grouped by length, longest first.
#[derive(Clone, Debug)]
struct Table<K, T> {
    by_len: BTreeMap<Reverse<u8>, BTreeMap<K, T>>,
}

impl<K: Ord + Copy, T> Table<K, T> {
    fn new() -> Self {
        Self {
            by_len: BTreeMap::new(),
        }
    }

    fn insert(&mut self, len: u8, key: K, value: T) -> Option<T> {
        self.by_len
            .entry(Reverse(len))
            .or_default()
            .insert(key, value)
    }

    fn remove(&mut self, len: u8, key: K) -> Option<T> {
        let bucket = self.by_len.get_mut(&Reverse(len))?;
        let removed = bucket.remove(&key);
        if bucket.is_empty() {
            self.by_len.remove(&Reverse(len));
        }
        removed
    }

    fn get(&self, len: u8, key: K) -> Option<&T> {
        self.by_len.get(&Reverse(len))?.get(&key)
    }

    fn lookup(&self, mask: impl Fn(u8) -> K) -> Option<&T> {
        self.by_len
            .iter()
            .find_map(|(Reverse(len), bucket)| bucket.get(&mask(*len)))
    }

    fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) -> usize {
        let mut removed = 0;
        for bucket in self.by_len.values_mut() {
            let before = bucket.len();
            bucket.retain(|_, v| keep(v));
            removed += before - bucket.len();
        }
        self.by_len.retain(|_, bucket| !bucket.is_empty());
        removed
    }

    fn len(&self) -> usize {
        self.by_len.values().map(BTreeMap::len).sum()
    }
}

impl<T> Default for AllowedIps<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> AllowedIps<T> {
    /// An empty table.
    pub fn new() -> Self {
        Self {
            v4: Table::new(),
            v6: Table::new(),
        }
    }

    /// Maps `prefix` (host bits ignored) to `value`; returns the value it replaced, if any.
    pub fn insert(&mut self, prefix: IpPrefix, value: T) -> Option<T> {
        let len = prefix.prefix_len();
        match prefix.network().addr() {
            IpAddr::V4(a) => self.v4.insert(len, u32::from(a), value),
            IpAddr::V6(a) => self.v6.insert(len, u128::from(a), value),
        }
    }

    /// Removes exactly `prefix` (host bits ignored); returns its value, if it was present.
    pub fn remove(&mut self, prefix: IpPrefix) -> Option<T> {
        let len = prefix.prefix_len();
        match prefix.network().addr() {
            IpAddr::V4(a) => self.v4.remove(len, u32::from(a)),
            IpAddr::V6(a) => self.v6.remove(len, u128::from(a)),
        }
    }

    /// The value stored for exactly `prefix` (no longest-prefix match).
    pub fn get(&self, prefix: IpPrefix) -> Option<&T> {
        let len = prefix.prefix_len();
        match prefix.network().addr() {
            IpAddr::V4(a) => self.v4.get(len, u32::from(a)),
            IpAddr::V6(a) => self.v6.get(len, u128::from(a)),
        }
    }

    /// The value of the longest prefix containing `ip`, or `None` (the caller drops the packet
    /// and counts it).
    pub fn lookup(&self, ip: IpAddr) -> Option<&T> {
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.lookup(|len| a & mask_v4(len))
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.lookup(|len| a & mask_v6(len))
            }
        }
    }

    /// Removes every prefix whose value equals `value` (e.g. a peer that left); returns how many.
    pub fn remove_value(&mut self, value: &T) -> usize
    where
        T: PartialEq,
    {
        self.retain(|v| v != value)
    }

    /// Keeps only the entries for which `keep` returns true; returns how many were removed.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) -> usize {
        self.v4.retain(&mut keep) + self.v6.retain(&mut keep)
    }

    /// Number of prefixes stored.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// True if no prefix is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every `(prefix, value)`, deterministic order: IPv4 before IPv6, longer prefixes first,
    /// then by address.
    pub fn iter(&self) -> impl Iterator<Item = (IpPrefix, &T)> + '_ {
        let v4 = self.v4.by_len.iter().flat_map(|(Reverse(len), bucket)| {
            bucket
                .iter()
                .map(move |(a, v)| (prefix_of(IpAddr::V4(Ipv4Addr::from(*a)), *len), v))
        });
        let v6 = self.v6.by_len.iter().flat_map(|(Reverse(len), bucket)| {
            bucket
                .iter()
                .map(move |(a, v)| (prefix_of(IpAddr::V6(Ipv6Addr::from(*a)), *len), v))
        });
        v4.chain(v6)
    }
}

/// Rebuilds a stored prefix; lengths in the table came from valid `IpPrefix`es.
fn prefix_of(addr: IpAddr, len: u8) -> IpPrefix {
    IpPrefix::new(addr, len).unwrap_or_else(|_| IpPrefix::host(addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(text: &str) -> IpPrefix {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins() {
        let mut table = AllowedIps::new();
        table.insert(p("10.77.0.0/16"), "wide");
        table.insert(p("10.77.1.0/24"), "narrow");
        table.insert(p("10.77.1.7/32"), "host");

        assert_eq!(table.lookup(ip("10.77.1.7")), Some(&"host"));
        assert_eq!(table.lookup(ip("10.77.1.8")), Some(&"narrow"));
        assert_eq!(table.lookup(ip("10.77.2.1")), Some(&"wide"));
        assert_eq!(table.lookup(ip("10.78.0.1")), None);
    }

    #[test]
    fn default_route_catches_everything_of_its_family() {
        let mut table = AllowedIps::new();
        table.insert(p("0.0.0.0/0"), 1);
        table.insert(p("::/0"), 2);

        assert_eq!(table.lookup(ip("203.0.113.5")), Some(&1));
        assert_eq!(table.lookup(ip("0.0.0.0")), Some(&1));
        assert_eq!(table.lookup(ip("2001:db8::1")), Some(&2));
    }

    #[test]
    fn ipv4_and_ipv6_are_separate() {
        let mut table = AllowedIps::new();
        table.insert(p("0.0.0.0/0"), "v4");

        assert_eq!(table.lookup(ip("::1")), None);
        assert_eq!(table.lookup(ip("::ffff:10.0.0.1")), None);

        table.insert(p("fd00::/8"), "v6");
        assert_eq!(table.lookup(ip("fd00::2")), Some(&"v6"));
        assert_eq!(table.lookup(ip("10.0.0.1")), Some(&"v4"));
    }

    #[test]
    fn host_routes_match_only_their_address() {
        let mut table = AllowedIps::new();
        table.insert(p("10.77.0.2/32"), 'a');
        table.insert(p("fd00::2/128"), 'b');

        assert_eq!(table.lookup(ip("10.77.0.2")), Some(&'a'));
        assert_eq!(table.lookup(ip("10.77.0.3")), None);
        assert_eq!(table.lookup(ip("fd00::2")), Some(&'b'));
        assert_eq!(table.lookup(ip("fd00::3")), None);
    }

    #[test]
    fn host_bits_of_an_inserted_prefix_are_ignored() {
        let mut table = AllowedIps::new();
        let replaced = table.insert(p("10.77.0.9/24"), 1);
        let replaced_again = table.insert(p("10.77.0.0/24"), 2);

        assert_eq!(replaced, None);
        assert_eq!(replaced_again, Some(1));
        assert_eq!(table.len(), 1);
        assert_eq!(table.get(p("10.77.0.0/24")), Some(&2));
    }

    #[test]
    fn remove_value_drops_every_prefix_of_a_peer() {
        let mut table = AllowedIps::new();
        table.insert(p("10.77.0.2/32"), 7);
        table.insert(p("fd00::2/128"), 7);
        table.insert(p("10.77.0.3/32"), 8);

        let removed = table.remove_value(&7);

        assert_eq!(removed, 2);
        assert_eq!(table.len(), 1);
        assert_eq!(table.lookup(ip("10.77.0.2")), None);
        assert_eq!(table.lookup(ip("10.77.0.3")), Some(&8));
    }

    #[test]
    fn remove_falls_back_to_the_next_longest_prefix() {
        let mut table = AllowedIps::new();
        table.insert(p("10.0.0.0/8"), "wide");
        table.insert(p("10.1.0.0/16"), "narrow");

        assert_eq!(table.remove(p("10.1.0.0/16")), Some("narrow"));
        assert_eq!(table.lookup(ip("10.1.2.3")), Some(&"wide"));
        assert_eq!(table.remove(p("10.1.0.0/16")), None);
    }

    #[test]
    fn iteration_order_is_deterministic() {
        let mut table = AllowedIps::new();
        table.insert(p("fd00::/64"), 4);
        table.insert(p("10.0.0.0/8"), 3);
        table.insert(p("10.77.0.2/32"), 2);
        table.insert(p("10.77.0.1/32"), 1);

        let order: Vec<String> = table.iter().map(|(pfx, _)| pfx.to_string()).collect();

        assert_eq!(
            order,
            ["10.77.0.1/32", "10.77.0.2/32", "10.0.0.0/8", "fd00::/64"]
        );
    }

    proptest! {
        /// The table agrees with a brute-force longest-prefix scan.
        #[test]
        fn lookup_matches_a_linear_scan(
            entries in proptest::collection::vec((any::<u32>(), 0u8..=32), 0..20),
            probes in proptest::collection::vec(any::<u32>(), 1..20),
        ) {
            let mut table = AllowedIps::new();
            let mut reference: Vec<(IpPrefix, usize)> = Vec::new();
            for (i, (bits, len)) in entries.iter().enumerate() {
                let prefix = IpPrefix::new(IpAddr::V4(Ipv4Addr::from(*bits)), *len).unwrap();
                table.insert(prefix, i);
                reference.retain(|(q, _)| q.network() != prefix.network());
                reference.push((prefix, i));
            }
            for probe in probes {
                let addr = IpAddr::V4(Ipv4Addr::from(probe));
                let expected = reference
                    .iter()
                    .filter(|(q, _)| q.contains(addr))
                    .max_by_key(|(q, _)| q.prefix_len())
                    .map(|(_, v)| v);
                prop_assert_eq!(table.lookup(addr), expected);
            }
        }
    }
}
