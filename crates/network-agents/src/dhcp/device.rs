//! The network's DHCP port on this host, as Neutron's `DeviceManager` and
//! its bridge interface driver set it up: a `qdhcp-<network id>` namespace
//! holding `ns-<port id>`, one end of a veth pair whose other end,
//! `tap<port id>`, stays on the host for the L2 agent to plug into the
//! network's bridge like any port bound here. The inner end carries the
//! port's MAC, the network's MTU and the port's addresses, nothing else.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use netdev::{parse_mac, Netlink};
use network_rpc::{tap_name, DhcpNetwork, DhcpPort};

use super::DhcpError;

/// The namespace a network's DHCP lives in.
pub fn namespace_name(network_id: &str) -> String {
    format!("qdhcp-{network_id}")
}

/// The DHCP port's device inside the namespace (Neutron's `ns-` prefix).
pub fn device_name(port_id: &str) -> String {
    format!("ns-{}", port_id.get(..11).unwrap_or(port_id))
}

/// The addresses the DHCP port's device holds: each of its fixed IPs, with
/// the prefix of its subnet.
pub fn wanted_addresses(net: &DhcpNetwork, port: &DhcpPort) -> BTreeSet<(IpAddr, u8)> {
    port.fixed_ips
        .iter()
        .filter_map(|f| {
            let subnet = net.subnets.iter().find(|s| s.id == f.subnet_id)?;
            let cidr: IpNet = subnet.cidr.parse().ok()?;
            Some((f.ip_address.parse().ok()?, cidr.prefix_len()))
        })
        .collect()
}

/// Makes (or corrects) the namespace and the port's device in it. The host
/// end is left up and unplugged: wiring it is the L2 agent's work.
pub async fn ensure(host: &Netlink, net: &DhcpNetwork, port: &DhcpPort) -> Result<(), DhcpError> {
    let namespace = namespace_name(&net.id);
    netdev::create_namespace(&namespace).await?;
    let inside = Netlink::in_namespace(&namespace).await?;
    let name = device_name(&port.id);
    let tap = tap_name(&port.id);
    let device = match inside.link(&name).await? {
        Some(d) if host.link(&tap).await?.is_some() => d,
        stale => {
            // Half a pair (a crash between the steps below): start again.
            if stale.is_some() {
                inside.delete(&name).await?;
            }
            host.delete(&tap).await?;
            host.ensure_veth(&tap, &name).await?;
            let inner = host.link(&name).await?.ok_or_else(|| DhcpError::Device(format!("{name} vanished")))?;
            host.move_to_namespace(inner.index, &namespace).await?;
            inside.link(&name).await?.ok_or_else(|| DhcpError::Device(format!("{name} not in {namespace}")))?
        }
    };
    // An earlier DHCP port's device (the port was replaced) goes, with its
    // address and its host end.
    for stale in inside.links().await?.into_iter().filter(|l| l.name.starts_with("ns-") && l.name != name) {
        inside.delete(&stale.name).await?;
    }
    let outer = host.link(&tap).await?.ok_or_else(|| DhcpError::Device(format!("{tap} vanished")))?;
    if net.mtu > 0 {
        host.set_mtu(outer.index, net.mtu).await?;
        inside.set_mtu(device.index, net.mtu).await?;
    }
    host.set_up(outer.index).await?;
    if let Some(mac) = parse_mac(&port.mac_address) {
        inside.set_mac(device.index, mac).await?;
    }
    let wanted = wanted_addresses(net, port);
    for (ip, prefix) in inside.addresses(device.index).await? {
        // IPv6 link-local addresses are the kernel's own.
        let link_local = matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
        if !link_local && !wanted.contains(&(ip, prefix)) {
            inside.delete_address(device.index, ip, prefix).await?;
        }
    }
    for (ip, prefix) in &wanted {
        inside.add_address(device.index, *ip, *prefix).await?;
    }
    inside.set_up(device.index).await?;
    Ok(())
}

/// Removes the port's device (and with it its pair's host end) and the
/// namespace; a missing one is fine. The devices go first: a namespace
/// someone still holds open outlives its removal, and its veths with it.
pub async fn remove(network_id: &str) -> Result<(), DhcpError> {
    let namespace = namespace_name(network_id);
    if !netdev::namespace_exists(&namespace) {
        return Ok(());
    }
    let inside = Netlink::in_namespace(&namespace).await?;
    for link in inside.links().await?.into_iter().filter(|l| l.name.starts_with("ns-")) {
        inside.delete(&link.name).await?;
    }
    drop(inside);
    Ok(netdev::delete_namespace(&namespace).await?)
}
