//! What every ferrostack service shares and nothing service-specific: identifiers,
//! the fault bodies each OpenStack API uses, INI configuration with OpenStack's option
//! names, and the timestamp formats clients parse.

pub mod config;
pub mod fault;
pub mod id;
pub mod time;

pub use config::{Config, ConfigError, Opt};
pub use fault::{Fault, FaultFormat};
