//! Domain configuration (`/v3/domains/{id}/config`): per-domain identity driver
//! settings, stored as group / option / JSON value.

use db::{DbError, RowExt};
use serde_json::{Map, Value};

use super::{flag, Store};
use crate::error::Result;

/// `{group: {option: value}}`
pub type DomainConfig = Map<String, Value>;

impl Store {
    /// The domain's settings; `sensitive` ones (passwords) only when asked.
    pub async fn get_domain_config(&self, domain_id: &str, include_sensitive: bool) -> Result<DomainConfig> {
        let rows = self
            .db
            .fetch_all(
                self.db
                    .q("SELECT * FROM domain_config WHERE domain_id = ? ORDER BY group_name, option_name")
                    .bind(domain_id),
            )
            .await?;
        let mut out = DomainConfig::new();
        for r in &rows {
            if r.flag("sensitive")? && !include_sensitive {
                continue;
            }
            let value: Value = serde_json::from_str(&r.str("value")?).unwrap_or(Value::Null);
            let group = out.entry(r.str("group_name")?).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(g) = group {
                g.insert(r.str("option_name")?, value);
            }
        }
        Ok(out)
    }

    /// Replaces the domain's whole configuration with `config`.
    pub async fn set_domain_config(&self, domain_id: &str, config: &DomainConfig, sensitive: &[&str]) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        self.db
            .q("DELETE FROM domain_config WHERE domain_id = ?")
            .bind(domain_id)
            .execute(w.conn())
            .await
            .map_err(DbError::from)?;
        for (group, options) in config {
            let Some(options) = options.as_object() else {
                continue;
            };
            for (option, value) in options {
                let is_sensitive = sensitive.contains(&format!("{group}.{option}").as_str());
                self.db
                    .q("INSERT INTO domain_config (domain_id, group_name, option_name, value, \"sensitive\") VALUES (?, ?, ?, ?, ?)")
                    .bind(domain_id)
                    .bind(group)
                    .bind(option)
                    .bind(value.to_string())
                    .bind(flag(is_sensitive))
                    .execute(w.conn())
                    .await
                    .map_err(DbError::from)?;
            }
        }
        w.commit().await?;
        Ok(())
    }

    pub async fn delete_domain_config(&self, domain_id: &str) -> Result<()> {
        self.db
            .q("DELETE FROM domain_config WHERE domain_id = ?")
            .bind(domain_id)
            .execute(self.db.pool())
            .await
            .map_err(DbError::from)?;
        Ok(())
    }
}
