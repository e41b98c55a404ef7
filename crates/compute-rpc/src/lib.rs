//! What Nova's controller (API, conductor, scheduler) and its compute hosts
//! share, and nothing that reaches a database: the instance model, the typed
//! bus interfaces between them (`conductor`, `host`), compute's errors as they
//! travel, and the session both use to call the network and image services
//! (`session`, `ports`).

pub mod conductor;
pub mod config;
pub mod error;
pub mod host;
pub mod model;
pub mod ports;
pub mod session;

pub use error::{ComputeError, Result};
