//! The DHCP agent's driver: one dnsmasq per network, in the network's
//! `qdhcp-<network id>` namespace. [`dnsmasq`] says what each one is given.

pub mod dnsmasq;
