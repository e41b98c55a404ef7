//! IP address management. This module is arithmetic: CIDRs, subnet defaults
//! (gateway, allocation pools), the lowest free address, IPv6 SLAAC addresses.
//! `allocate` applies it to ports inside their transactions; the store's keys
//! refuse an address held twice.

pub mod allocate;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// An inclusive range of addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    pub start: IpAddr,
    pub end: IpAddr,
}

pub fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

pub fn from_u128(n: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(n))
    } else {
        IpAddr::V4(Ipv4Addr::from(n as u32))
    }
}

/// The first and last address of a CIDR.
pub fn bounds(net: &IpNet) -> (u128, u128) {
    (to_u128(net.network()), to_u128(net.broadcast()))
}

/// The addresses a port may have: IPv4 skips the network and broadcast
/// addresses; IPv6 skips the subnet-router anycast address (the first).
pub fn usable(net: &IpNet) -> Option<(u128, u128)> {
    let (first, last) = bounds(net);
    match net {
        IpNet::V4(n) if n.prefix_len() >= 31 => Some((first, last)),
        IpNet::V4(_) => (last >= first + 2).then_some((first + 1, last - 1)),
        IpNet::V6(n) if n.prefix_len() == 128 => Some((first, last)),
        IpNet::V6(_) => Some((first + 1, last)),
    }
}

/// Neutron's default gateway: the first address after the network address.
pub fn default_gateway(net: &IpNet) -> Option<IpAddr> {
    let (first, last) = bounds(net);
    (last > first).then(|| from_u128(first + 1, net.addr().is_ipv6()))
}

/// The default pools: every usable address but the gateway.
pub fn default_pools(net: &IpNet, gateway: Option<IpAddr>) -> Vec<Pool> {
    let Some((lo, hi)) = usable(net) else { return Vec::new() };
    let v6 = net.addr().is_ipv6();
    let mut out = Vec::new();
    match gateway.map(to_u128).filter(|g| (lo..=hi).contains(g)) {
        None => out.push((lo, hi)),
        Some(g) => {
            if g > lo {
                out.push((lo, g - 1));
            }
            if g < hi {
                out.push((g + 1, hi));
            }
        }
    }
    out.into_iter().map(|(a, b)| Pool { start: from_u128(a, v6), end: from_u128(b, v6) }).collect()
}

/// Why a set of pools is wrong for a subnet, if it is.
pub fn check_pools(net: &IpNet, pools: &[Pool]) -> Result<(), String> {
    let (first, last) = bounds(net);
    let mut ranges: Vec<(u128, u128)> = Vec::new();
    for p in pools {
        if p.start.is_ipv6() != net.addr().is_ipv6() || p.end.is_ipv6() != net.addr().is_ipv6() {
            return Err(format!("The allocation pool {}-{} is not of the subnet's IP version", p.start, p.end));
        }
        let (a, b) = (to_u128(p.start), to_u128(p.end));
        if a > b {
            return Err(format!("The allocation pool {}-{} is not valid: the start is after the end", p.start, p.end));
        }
        if a < first || b > last {
            return Err(format!("The allocation pool {}-{} spans beyond the subnet cidr {net}.", p.start, p.end));
        }
        if let Some((x, y)) = ranges.iter().find(|(x, y)| a <= *y && *x <= b) {
            return Err(format!(
                "Found overlapping allocation pools: {}-{} and {}-{}",
                p.start,
                p.end,
                from_u128(*x, net.addr().is_ipv6()),
                from_u128(*y, net.addr().is_ipv6())
            ));
        }
        ranges.push((a, b));
    }
    Ok(())
}

pub fn in_pools(pools: &[Pool], ip: IpAddr) -> bool {
    let n = to_u128(ip);
    pools.iter().any(|p| (to_u128(p.start)..=to_u128(p.end)).contains(&n))
}

/// The lowest address of the pools not in `used`.
pub fn first_free(pools: &[Pool], used: &std::collections::HashSet<u128>, v6: bool) -> Option<IpAddr> {
    for p in pools {
        let (a, b) = (to_u128(p.start), to_u128(p.end));
        // Bounded walk: a pool is at most as big as what is used plus one.
        let mut n = a;
        while n <= b {
            if !used.contains(&n) {
                return Some(from_u128(n, v6));
            }
            if n == u128::MAX {
                break;
            }
            n += 1;
        }
    }
    None
}

/// The EUI-64 address of `mac` in a /64 `prefix` (SLAAC): the MAC split in two
/// with ff:fe between, the universal/local bit flipped.
pub fn eui64(prefix: &IpNet, mac: &str) -> Option<IpAddr> {
    let octets: Vec<u8> = mac.split(':').map(|o| u8::from_str_radix(o, 16)).collect::<Result<_, _>>().ok()?;
    if octets.len() != 6 || !prefix.addr().is_ipv6() {
        return None;
    }
    let iid = [octets[0] ^ 0x02, octets[1], octets[2], 0xff, 0xfe, octets[3], octets[4], octets[5]];
    let iid = u64::from_be_bytes(iid) as u128;
    let net = to_u128(prefix.network()) & !((1u128 << 64) - 1);
    Some(from_u128(net | iid, true))
}

/// Whether two networks share any address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_defaults_skip_network_gateway_and_broadcast() {
        let n = net("10.0.0.0/24");
        assert_eq!(default_gateway(&n), Some(ip("10.0.0.1")));
        assert_eq!(
            default_pools(&n, Some(ip("10.0.0.1"))),
            vec![Pool { start: ip("10.0.0.2"), end: ip("10.0.0.254") }]
        );
        // A gateway in the middle splits the pool.
        let pools = default_pools(&n, Some(ip("10.0.0.100")));
        assert_eq!(pools.len(), 2);
        assert_eq!(pools[0].end, ip("10.0.0.99"));
        assert_eq!(pools[1].start, ip("10.0.0.101"));
        assert_eq!(default_pools(&n, None), vec![Pool { start: ip("10.0.0.1"), end: ip("10.0.0.254") }]);
    }

    #[test]
    fn ipv6_defaults_skip_only_the_anycast_address() {
        let n = net("2001:db8::/64");
        assert_eq!(default_gateway(&n), Some(ip("2001:db8::1")));
        let pools = default_pools(&n, default_gateway(&n));
        assert_eq!(pools[0].start, ip("2001:db8::2"));
        assert_eq!(pools[0].end, ip("2001:db8::ffff:ffff:ffff:ffff"));
    }

    #[test]
    fn pools_must_fit_the_cidr_and_not_overlap() {
        let n = net("10.0.0.0/28");
        let p = |a: &str, b: &str| Pool { start: ip(a), end: ip(b) };
        assert!(check_pools(&n, &[p("10.0.0.2", "10.0.0.5"), p("10.0.0.7", "10.0.0.9")]).is_ok());
        assert!(check_pools(&n, &[p("10.0.0.2", "10.0.0.5"), p("10.0.0.5", "10.0.0.9")]).is_err());
        assert!(check_pools(&n, &[p("10.0.0.9", "10.0.0.2")]).is_err());
        assert!(check_pools(&n, &[p("10.0.0.2", "10.0.1.2")]).is_err());
    }

    #[test]
    fn first_free_walks_the_pools_in_order() {
        let pools = vec![
            Pool { start: ip("10.0.0.2"), end: ip("10.0.0.3") },
            Pool { start: ip("10.0.0.9"), end: ip("10.0.0.9") },
        ];
        let mut used = HashSet::new();
        used.insert(to_u128(ip("10.0.0.2")));
        assert_eq!(first_free(&pools, &used, false), Some(ip("10.0.0.3")));
        used.insert(to_u128(ip("10.0.0.3")));
        assert_eq!(first_free(&pools, &used, false), Some(ip("10.0.0.9")));
        used.insert(to_u128(ip("10.0.0.9")));
        assert_eq!(first_free(&pools, &used, false), None);
    }

    #[test]
    fn eui64_matches_rfc_4291() {
        assert_eq!(eui64(&net("2001:db8::/64"), "fa:16:3e:12:34:56"), Some(ip("2001:db8::f816:3eff:fe12:3456")));
        assert_eq!(eui64(&net("2001:db8::/64"), "nonsense"), None);
    }

    #[test]
    fn overlap_is_containment_either_way() {
        assert!(overlaps(&net("10.0.0.0/24"), &net("10.0.0.128/25")));
        assert!(overlaps(&net("10.0.0.128/25"), &net("10.0.0.0/16")));
        assert!(!overlaps(&net("10.0.0.0/25"), &net("10.0.0.128/25")));
    }
}
