//! Fernet tokens: the payload they carry and the provider that issues and
//! validates them.

pub mod payload;
pub mod provider;
