//! Identity's database: one file per kind of record, each an `impl Store` block.
//! Nothing outside this module writes SQL.

mod app_creds;
mod assignments;
mod catalog;
mod consumers;
mod credentials;
mod domain_configs;
mod groups;
mod policies;
mod projects;
mod revocations;
mod roles;
mod users;

use std::sync::Arc;

use db::Db;
use serde_json::{Map, Value};

pub use app_creds::AppCred;
pub use assignments::{Assignment, AssignmentFilter, Target};
pub use catalog::{Endpoint, EndpointGroup, Region, Service};
pub use consumers::Consumer;
pub use credentials::Credential;
pub use domain_configs::DomainConfig;
pub use groups::Group;
pub use policies::Policy;
pub use projects::{Project, ProjectFilter};
pub use revocations::RevocationEvent;
pub use roles::Role;
pub use users::{User, UserFilter};

use crate::error::Result;

pub type Extra = Map<String, Value>;

#[derive(Clone)]
pub struct Store {
    pub(crate) db: Arc<Db>,
}

impl Store {
    pub async fn open(db: Arc<Db>) -> Result<Store> {
        db.migrate(crate::schema::MIGRATIONS).await?;
        Ok(Store { db })
    }
}

pub(crate) fn parse_map(text: &str) -> Extra {
    serde_json::from_str(text).unwrap_or_default()
}

pub(crate) fn to_text(map: &Extra) -> String {
    Value::Object(map.clone()).to_string()
}

pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}
