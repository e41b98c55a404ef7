//! The server's side of the agents: what it tells them (fanout notifications
//! when ports, networks and security groups change), what it answers them
//! (state reports, device details, device up/down, over RPC), and a minimal
//! in-tree agent that reports state and acknowledges ports, so that binding
//! works end to end before the real datapath agents exist.
//!
//! Topics follow Neutron's: agents report to `q-reports-plugin`, ask
//! `q-plugin`, and listen on `q-agent-notifier-<resource>-<event>`.

pub mod interfaces;
mod notifier;
pub mod reporter;
pub mod rpc;

pub use notifier::Notifier;

pub const REPORTS_TOPIC: &str = "q-reports-plugin";
pub const PLUGIN_TOPIC: &str = "q-plugin";
pub const PORT_UPDATE_TOPIC: &str = "q-agent-notifier-port-update";
pub const PORT_DELETE_TOPIC: &str = "q-agent-notifier-port-delete";
pub const NETWORK_UPDATE_TOPIC: &str = "q-agent-notifier-network-update";
pub const NETWORK_DELETE_TOPIC: &str = "q-agent-notifier-network-delete";
pub const SECURITY_GROUP_UPDATE_TOPIC: &str = "q-agent-notifier-security_group-update";
