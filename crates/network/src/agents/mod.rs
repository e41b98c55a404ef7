//! The server's side of the agents: what it tells them (fanout notifications
//! when ports, networks and security groups change, and l2population's
//! forwarding entries), and what it answers them (state reports, device
//! details, device up/down, over RPC). The messages themselves are the
//! `network-rpc` crate's, shared with the agents; the agents live in
//! `network-agents`.

mod notifier;
pub mod rpc;

pub use network_rpc as interfaces;
pub use network_rpc::{
    L2POPULATION_TOPIC, NETWORK_DELETE_TOPIC, NETWORK_UPDATE_TOPIC, PLUGIN_TOPIC, PORT_DELETE_TOPIC, PORT_UPDATE_TOPIC,
    REPORTS_TOPIC, SECURITY_GROUP_UPDATE_TOPIC,
};
pub use notifier::{DhcpEvent, Notifier};
