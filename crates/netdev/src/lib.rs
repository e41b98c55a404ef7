//! Kernel network devices over netlink, the few operations Neutron's Linux
//! bridge agent and a namespace "hypervisor" need: find, make and remove
//! links (bridges, veth pairs, VXLAN and VLAN devices), enslave them, set
//! addresses, routes, neighbours and a VXLAN device's forwarding entries, and
//! make network namespaces and talk netlink inside them. Every call is
//! idempotent where the kernel lets it be: making what exists or removing what
//! is gone succeeds.

mod namespace;

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, LinkVlan, LinkVxlan, RouteMessageBuilder,
};

pub use namespace::{command_in, create_namespace, delete_namespace, namespace_exists, run_in};

#[derive(Debug, thiserror::Error)]
pub enum NetdevError {
    #[error("netlink: {0}")]
    Netlink(#[from] rtnetlink::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no device {0}")]
    NoDevice(String),
    #[error("network namespace {0}: {1}")]
    Namespace(String, String),
}

pub type Result<T> = std::result::Result<T, NetdevError>;

const ENOENT: i32 = 2;
const ENODEV: i32 = 19;
const EEXIST: i32 = 17;

/// The errno a netlink request failed with.
pub fn errno(e: &NetdevError) -> Option<i32> {
    match e {
        NetdevError::Netlink(rtnetlink::Error::NetlinkError(m)) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

fn ok_if(r: std::result::Result<(), rtnetlink::Error>, allowed: &[i32]) -> Result<()> {
    match r.map_err(NetdevError::from) {
        Err(e) if errno(&e).is_some_and(|n| allowed.contains(&n)) => Ok(()),
        other => other,
    }
}

/// One link as the kernel shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// The bridge it is a port of.
    pub controller: Option<u32>,
    /// `bridge`, `vxlan`, `veth`, … (empty for a plain device).
    pub kind: String,
    pub up: bool,
    pub mtu: u32,
    /// Its hardware address (none for a device without one).
    pub mac: Option<[u8; 6]>,
}

impl Link {
    fn from_message(m: &LinkMessage) -> Link {
        let mut link = Link {
            index: m.header.index,
            name: String::new(),
            controller: None,
            kind: String::new(),
            up: m.header.flags.contains(netlink_packet_route::link::LinkFlags::Up),
            mtu: 0,
            mac: None,
        };
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => link.name = n.clone(),
                LinkAttribute::Controller(c) => link.controller = Some(*c),
                LinkAttribute::Mtu(mtu) => link.mtu = *mtu,
                LinkAttribute::Address(a) => link.mac = a.as_slice().try_into().ok(),
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        if let LinkInfo::Kind(k) = i {
                            link.kind = kind_name(k);
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

fn kind_name(k: &InfoKind) -> String {
    match k {
        InfoKind::Bridge => "bridge".into(),
        InfoKind::Vxlan => "vxlan".into(),
        InfoKind::Veth => "veth".into(),
        InfoKind::Vlan => "vlan".into(),
        InfoKind::Tun => "tun".into(),
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}

/// A MAC address as bytes.
pub fn parse_mac(mac: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = mac.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// A netlink connection in one network namespace.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// A connection in this process's network namespace.
    pub fn connect() -> Result<Netlink> {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(connection);
        Ok(Netlink { handle })
    }

    /// A connection inside the named namespace (`/run/netns/NAME`).
    pub async fn in_namespace(name: &str) -> Result<Netlink> {
        namespace::connect_in(name).await
    }

    pub async fn links(&self) -> Result<Vec<Link>> {
        let messages: Vec<LinkMessage> = self.handle.link().get().execute().try_collect().await?;
        Ok(messages.iter().map(Link::from_message).collect())
    }

    pub async fn link(&self, name: &str) -> Result<Option<Link>> {
        let mut s = self.handle.link().get().match_name(name.to_string()).execute();
        match s.try_next().await.map_err(NetdevError::from) {
            Ok(m) => Ok(m.as_ref().map(Link::from_message)),
            Err(e) if errno(&e).is_some_and(|n| n == ENODEV || n == ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn index(&self, name: &str) -> Result<u32> {
        self.link(name).await?.map(|l| l.index).ok_or_else(|| NetdevError::NoDevice(name.into()))
    }

    async fn add(&self, message: LinkMessage) -> Result<()> {
        ok_if(self.handle.link().add(message).execute().await, &[EEXIST])
    }

    /// A bridge (up), as Neutron's agent makes it: no STP, forward at once.
    pub async fn ensure_bridge(&self, name: &str) -> Result<u32> {
        if self.link(name).await?.is_none() {
            self.add(LinkBridge::new(name).forward_delay(0).up().build()).await?;
        }
        let index = self.index(name).await?;
        self.set_up(index).await?;
        Ok(index)
    }

    /// Whether bridged IPv4/IPv6 on bridge `name` goes through br_netfilter
    /// (to the inet hooks: conntrack, stateful filters) even with the
    /// namespace-wide `bridge-nf-call-iptables` off. The bridge must exist.
    pub async fn set_bridge_netfilter(&self, name: &str, on: bool) -> Result<()> {
        let message = LinkBridge::new(name).nf_call_iptables(on).nf_call_ip6tables(on).build();
        // A new-link request for an existing device, neither exclusive nor
        // replacing (the kernel refuses both), changes its bridge options.
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::NewLink(message));
        req.header.flags = NLM_F_REQUEST | NLM_F_ACK;
        self.send(req, &[]).await
    }

    /// A VXLAN device for `vni` from `local` over `dev` (up), without
    /// learning, answering ARP from its neighbour table when `proxy`.
    pub async fn ensure_vxlan(
        &self,
        name: &str,
        vni: u32,
        local: Ipv4Addr,
        dev: Option<u32>,
        port: u16,
        proxy: bool,
    ) -> Result<u32> {
        if self.link(name).await?.is_none() {
            let mut b = LinkVxlan::new(name, vni).local(local).port(port).learning(false).proxy(proxy);
            if let Some(d) = dev {
                b = b.dev(d);
            }
            self.add(b.build()).await?;
        }
        self.index(name).await
    }

    /// An 802.1Q device `name` for `vlan` on `base`.
    pub async fn ensure_vlan(&self, name: &str, base: u32, vlan: u16) -> Result<u32> {
        if self.link(name).await?.is_none() {
            self.handle.link().add(LinkVlan::new(name, base, vlan).build()).execute().await?;
        }
        self.index(name).await
    }

    /// A veth pair `name` ↔ `peer`, in this namespace.
    pub async fn ensure_veth(&self, name: &str, peer: &str) -> Result<u32> {
        if self.link(name).await?.is_none() {
            self.add(LinkVeth::new(name, peer).build()).await?;
        }
        self.index(name).await
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        match self.link(name).await? {
            Some(l) => ok_if(self.handle.link().del(l.index).execute().await, &[ENODEV]),
            None => Ok(()),
        }
    }

    pub async fn set_up(&self, index: u32) -> Result<()> {
        self.set(LinkUnspec::new_with_index(index).up()).await
    }

    pub async fn set_down(&self, index: u32) -> Result<()> {
        self.set(LinkUnspec::new_with_index(index).down()).await
    }

    /// Makes `index` a port of `bridge`, and up.
    pub async fn enslave(&self, index: u32, bridge: u32) -> Result<()> {
        self.set(LinkUnspec::new_with_index(index).controller(bridge).up()).await
    }

    /// Takes `index` out of its bridge.
    pub async fn release(&self, index: u32) -> Result<()> {
        self.set(LinkUnspec::new_with_index(index).nocontroller()).await
    }

    pub async fn set_mac(&self, index: u32, mac: [u8; 6]) -> Result<()> {
        self.set(LinkUnspec::new_with_index(index).address(mac.to_vec())).await
    }

    pub async fn set_mtu(&self, index: u32, mtu: u32) -> Result<()> {
        self.set(LinkUnspec::new_with_index(index).mtu(mtu)).await
    }

    pub async fn rename(&self, index: u32, name: &str) -> Result<()> {
        self.set(LinkUnspec::new_with_index(index).name(name.to_string())).await
    }

    /// Moves the link into the namespace whose file is open as `fd`.
    pub async fn move_to_namespace(&self, index: u32, namespace: &str) -> Result<()> {
        let file = namespace::open(namespace)?;
        use std::os::fd::AsRawFd;
        self.set(LinkUnspec::new_with_index(index).setns_by_fd(file.as_raw_fd())).await
    }

    async fn set(&self, b: LinkMessageBuilder<LinkUnspec>) -> Result<()> {
        Ok(self.handle.link().set(b.build()).execute().await?)
    }

    pub async fn add_address(&self, index: u32, ip: IpAddr, prefix: u8) -> Result<()> {
        ok_if(self.handle.address().add(index, ip, prefix).execute().await, &[EEXIST])
    }

    /// The addresses on a link, with their prefix lengths.
    pub async fn addresses(&self, index: u32) -> Result<Vec<(IpAddr, u8)>> {
        use netlink_packet_route::address::{AddressAttribute, AddressMessage};
        let all: Vec<AddressMessage> =
            self.handle.address().get().set_link_index_filter(index).execute().try_collect().await?;
        Ok(all
            .iter()
            .filter(|m| m.header.index == index)
            .filter_map(|m| {
                m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(ip) => Some((*ip, m.header.prefix_len)),
                    _ => None,
                })
            })
            .collect())
    }

    /// Removes one address from a link; one that is not there is fine.
    pub async fn delete_address(&self, index: u32, ip: IpAddr, prefix: u8) -> Result<()> {
        use netlink_packet_route::address::{AddressAttribute, AddressMessage};
        let mut m = AddressMessage::default();
        m.header.family = if ip.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
        m.header.index = index;
        m.header.prefix_len = prefix;
        m.attributes.push(AddressAttribute::Address(ip));
        if ip.is_ipv4() {
            m.attributes.push(AddressAttribute::Local(ip));
        }
        const EADDRNOTAVAIL: i32 = 99;
        ok_if(self.handle.address().del(m).execute().await, &[EADDRNOTAVAIL, ENODEV])
    }

    /// The link holding `ip`.
    pub async fn link_with_address(&self, ip: IpAddr) -> Result<Option<u32>> {
        use netlink_packet_route::address::{AddressAttribute, AddressMessage};
        let all: Vec<AddressMessage> = self.handle.address().get().execute().try_collect().await?;
        Ok(all
            .iter()
            .find(|m| m.attributes.iter().any(|a| matches!(a, AddressAttribute::Address(x) if *x == ip)))
            .map(|m| m.header.index))
    }

    pub async fn add_default_route(&self, gateway: IpAddr) -> Result<()> {
        let route = match gateway {
            IpAddr::V4(g) => RouteMessageBuilder::<Ipv4Addr>::new().gateway(g).build(),
            IpAddr::V6(g) => RouteMessageBuilder::<std::net::Ipv6Addr>::new().gateway(g).build(),
        };
        ok_if(self.handle.route().add(route).execute().await, &[EEXIST])
    }

    /// A permanent neighbour entry: `ip` is at `mac` behind `index` (on a
    /// VXLAN device with `proxy`, the device answers ARP for it).
    pub async fn set_neighbour(&self, index: u32, ip: IpAddr, mac: [u8; 6]) -> Result<()> {
        Ok(self.handle.neighbours().add(index, ip).link_layer_address(&mac).replace().execute().await?)
    }

    pub async fn delete_neighbour(&self, index: u32, ip: IpAddr) -> Result<()> {
        let mut m = NeighbourMessage::default();
        m.header.family = if ip.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
        m.header.ifindex = index;
        m.attributes.push(NeighbourAttribute::Destination(match ip {
            IpAddr::V4(v) => NeighbourAddress::Inet(v),
            IpAddr::V6(v) => NeighbourAddress::Inet6(v),
        }));
        ok_if(self.handle.neighbours().del(m).execute().await, &[ENOENT])
    }

    /// A VXLAN forwarding entry: frames for `mac` go to the tunnel endpoint
    /// `dst` (the all-zero MAC floods broadcasts there). Appended, so the
    /// flooding entry may name several endpoints.
    pub async fn add_fdb(&self, vxlan: u32, mac: [u8; 6], dst: Ipv4Addr) -> Result<()> {
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::NewNeighbour(fdb_message(vxlan, mac, dst)));
        req.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND;
        self.send(req, &[EEXIST]).await
    }

    pub async fn delete_fdb(&self, vxlan: u32, mac: [u8; 6], dst: Ipv4Addr) -> Result<()> {
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::DelNeighbour(fdb_message(vxlan, mac, dst)));
        req.header.flags = NLM_F_REQUEST | NLM_F_ACK;
        self.send(req, &[ENOENT]).await
    }

    /// The device's forwarding entries that name a tunnel endpoint.
    pub async fn fdb(&self, vxlan: u32) -> Result<Vec<([u8; 6], Ipv4Addr)>> {
        let all: Vec<NeighbourMessage> =
            self.handle.neighbours().get().set_address_family(AddressFamily::Bridge).execute().try_collect().await?;
        let mut out = Vec::new();
        for m in all.iter().filter(|m| m.header.ifindex == vxlan) {
            let mut mac = None;
            let mut dst = None;
            for a in &m.attributes {
                match a {
                    NeighbourAttribute::LinkLayerAddress(l) if l.len() == 6 => {
                        mac = <[u8; 6]>::try_from(l.as_slice()).ok();
                    }
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => dst = Some(*ip),
                    // A bridge-family message's destination is left unparsed.
                    NeighbourAttribute::Destination(NeighbourAddress::Other(b)) if b.len() == 4 => {
                        dst = Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]));
                    }
                    _ => {}
                }
            }
            if let (Some(mac), Some(dst)) = (mac, dst) {
                out.push((mac, dst));
            }
        }
        Ok(out)
    }

    /// The device's permanent IPv4 neighbours (ARP answers).
    pub async fn neighbours(&self, index: u32) -> Result<Vec<(Ipv4Addr, [u8; 6])>> {
        let all: Vec<NeighbourMessage> = self.handle.neighbours().get().execute().try_collect().await?;
        let mut out = Vec::new();
        for m in all.iter().filter(|m| m.header.ifindex == index && m.header.state == NeighbourState::Permanent) {
            let mut mac = None;
            let mut ip = None;
            for a in &m.attributes {
                match a {
                    NeighbourAttribute::LinkLayerAddress(l) if l.len() == 6 => {
                        mac = <[u8; 6]>::try_from(l.as_slice()).ok();
                    }
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(v)) => ip = Some(*v),
                    _ => {}
                }
            }
            if let (Some(ip), Some(mac)) = (ip, mac) {
                out.push((ip, mac));
            }
        }
        Ok(out)
    }

    async fn send(&self, req: NetlinkMessage<RouteNetlinkMessage>, allowed: &[i32]) -> Result<()> {
        use futures::StreamExt;
        let mut handle = self.handle.clone();
        let mut response = handle.request(req)?;
        while let Some(message) = response.next().await {
            if let NetlinkPayload::Error(e) = message.payload {
                return ok_if(Err(rtnetlink::Error::NetlinkError(e)), allowed);
            }
        }
        Ok(())
    }
}

fn fdb_message(vxlan: u32, mac: [u8; 6], dst: Ipv4Addr) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Bridge;
    m.header.ifindex = vxlan;
    m.header.state = NeighbourState::Permanent;
    m.header.flags = NeighbourFlags::Own;
    m.attributes.push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    m.attributes.push(NeighbourAttribute::Destination(NeighbourAddress::Inet(dst)));
    m
}

/// Link changes in this namespace as they happen: the name of every link
/// that appears or changes. The stream ends with the connection.
pub fn watch_links() -> Result<tokio::sync::mpsc::UnboundedReceiver<String>> {
    use futures::StreamExt;
    use netlink_packet_route::RouteNetlinkMessage as M;
    use rtnetlink::sys::{AsyncSocket, SocketAddr};
    let (mut connection, _, mut messages) = rtnetlink::new_connection()?;
    connection.socket_mut().socket_mut().bind(&SocketAddr::new(0, rtnetlink::constants::RTMGRP_LINK))?;
    tokio::spawn(connection);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some((message, _)) = messages.next().await {
            if let NetlinkPayload::InnerMessage(M::NewLink(link)) = message.payload {
                if tx.send(Link::from_message(&link).name).is_err() {
                    break;
                }
            }
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse() {
        assert_eq!(parse_mac("fa:16:3e:00:00:33"), Some([0xfa, 0x16, 0x3e, 0, 0, 0x33]));
        assert_eq!(parse_mac("fa:16:3e:00:00"), None);
        assert_eq!(parse_mac("fa:16:3e:00:00:33:44"), None);
        assert_eq!(parse_mac("zz:16:3e:00:00:33"), None);
    }
}
