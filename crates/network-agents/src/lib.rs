//! Neutron's agents, apart from the server: they know the bus and the
//! messages of `network-rpc`, nothing else of it. One agent loop
//! ([`agent::Agent`]) reports state, consumes the server's notifications and
//! resyncs, and drives a [`datapath::Datapath`]: the Linux bridge agent's
//! (`linuxbridge`, bridges and VXLAN over netlink) or the state-only stand-in
//! (`standin`, which wires nothing and says so), with a
//! [`firewall::Firewall`] enforcing the ports' security groups
//! (`nftables`, or `noop`). [`dhcp`] holds the DHCP agent's dnsmasq driver.

pub mod agent;
pub mod config;
pub mod datapath;
pub mod dhcp;
pub mod firewall;

pub use agent::{Agent, AgentIdentity};
