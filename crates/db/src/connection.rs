//! `[database]` options every service shares (oslo.db's names), and connecting
//! with retries: a service that starts before its database server, or finds it
//! restarting, waits for it instead of exiting.

use std::time::Duration;

use common::{Config, ConfigError, Opt};

use crate::{Db, DbError};

pub const MAX_RETRIES: Opt = Opt {
    section: "database",
    name: "max_retries",
    default: "10",
    help: "Attempts to reach the database at start before giving up; -1 tries forever.",
};

pub const RETRY_INTERVAL: Opt = Opt {
    section: "database",
    name: "retry_interval",
    default: "10",
    help: "Seconds between attempts to reach the database at start.",
};

pub const POOL_TIMEOUT: Opt = Opt {
    section: "database",
    name: "pool_timeout",
    default: "10",
    help: "Seconds a request waits for a database connection (the server is down, or every\n\
           connection is busy) before it fails with 503.",
};

/// The options besides `connection`, which each service defaults differently.
pub const OPTS: &[Opt] = &[MAX_RETRIES, RETRY_INTERVAL, POOL_TIMEOUT];

/// How a service reaches its database.
#[derive(Debug, Clone)]
pub struct Connection {
    /// An oslo.db URL; see [`Db::connect`].
    pub url: String,
    /// `None`: retry forever.
    pub max_retries: Option<u32>,
    pub retry_interval: Duration,
    pub pool_timeout: Duration,
}

impl Connection {
    /// Reads `[database]`; `connection` is the service's own option, with its default.
    pub fn from_config(c: &Config, connection: &Opt) -> Result<Self, ConfigError> {
        let retries: i64 = MAX_RETRIES.get(c)?;
        Ok(Connection {
            url: connection.get(c)?,
            max_retries: u32::try_from(retries).ok(),
            retry_interval: Duration::from_secs(RETRY_INTERVAL.get(c)?),
            pool_timeout: Duration::from_secs(POOL_TIMEOUT.get(c)?),
        })
    }

    /// Connects, trying again after `retry_interval` while the server cannot be
    /// reached; any other failure (a wrong password, a bad URL) ends at once.
    pub async fn open(&self) -> Result<Db, DbError> {
        let mut attempt = 0u32;
        loop {
            match Db::connect_with_timeout(&self.url, self.pool_timeout).await {
                Ok(db) => return Ok(db),
                Err(e) if e.is_unavailable() && self.max_retries.is_none_or(|max| attempt < max) => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "database unreachable; retrying in {:?}", self.retry_interval);
                    tokio::time::sleep(self.retry_interval).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
