//! Quotas: how many of each resource a project may have, and the check every
//! create makes, inside its write transaction so concurrent creates cannot
//! both squeeze under the limit.

use db::AnyConnection;

use crate::error::{NetworkError, Result};
use crate::store::Kind;
use crate::Network;

/// The project's limits: configured defaults, then its overrides.
pub async fn limits(net: &Network, project_id: &str) -> Result<Vec<(&'static str, i64)>> {
    let overrides = net.store.quota_overrides(Some(project_id)).await?;
    Ok(net
        .config
        .quotas
        .iter()
        .map(|(res, default)| {
            let v = overrides.iter().find(|(_, r, _)| r == res).map_or(*default, |(_, _, l)| *l);
            (*res, v)
        })
        .collect())
}

/// Refuses creating `adding` more of `kind` past the project's limit.
pub async fn check_quota(
    net: &Network,
    conn: &mut AnyConnection,
    kind: &Kind,
    project_id: &str,
    adding: i64,
) -> Result<()> {
    let Some(default) = net.config.quotas.iter().find(|(r, _)| *r == kind.table).map(|(_, l)| *l) else {
        return Ok(());
    };
    let overrides = net.store.quota_overrides(Some(project_id)).await?;
    let limit = overrides.iter().find(|(_, r, _)| r == kind.table).map_or(default, |(_, _, l)| *l);
    if limit < 0 {
        return Ok(());
    }
    let used = net.store.count_owned(conn, kind, project_id).await?;
    if used + adding > limit {
        return Err(NetworkError::conflict("OverQuota", format!("Quota exceeded for resources: ['{}'].", kind.table)));
    }
    Ok(())
}
