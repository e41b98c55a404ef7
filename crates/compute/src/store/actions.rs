//! Instance actions and their events: what was asked of a server, by whom,
//! and what each part did about it (`openstack server event list`).

use db::{AnyRow, RowExt};
use serde::{Deserialize, Serialize};

use super::Store;
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub id: String,
    pub instance_uuid: String,
    pub request_id: String,
    pub action: String,
    pub project_id: String,
    pub user_id: String,
    pub start_time: i64,
    pub finish_time: Option<i64>,
    pub message: Option<String>,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub event: String,
    pub start_time: i64,
    pub finish_time: Option<i64>,
    pub result: Option<String>,
    pub traceback: Option<String>,
    pub host: Option<String>,
    pub details: Option<String>,
}

fn action_from_row(r: &AnyRow) -> Result<Action> {
    Ok(Action {
        id: r.str("id")?,
        instance_uuid: r.str("instance_uuid")?,
        request_id: r.str("request_id")?,
        action: r.str("action")?,
        project_id: r.str("project_id")?,
        user_id: r.str("user_id")?,
        start_time: r.int("start_time")?,
        finish_time: r.opt_int("finish_time")?,
        message: r.opt_str("message")?,
        updated_at: r.int("updated_at")?,
    })
}

/// An action a request asks for, to record with the change it makes.
#[derive(Debug, Clone)]
pub struct NewAction {
    pub instance: String,
    pub request_id: String,
    pub action: String,
    pub project: String,
    pub user: String,
}

impl NewAction {
    pub fn new(instance: &str, request_id: &str, action: &str, project: &str, user: &str) -> NewAction {
        NewAction {
            instance: instance.into(),
            request_id: request_id.into(),
            action: action.into(),
            project: project.into(),
            user: user.into(),
        }
    }
}

impl Store {
    /// Records that an action was asked for.
    pub async fn start_action(
        &self,
        instance: &str,
        request_id: &str,
        action: &str,
        project: &str,
        user: &str,
    ) -> Result<()> {
        let a = NewAction::new(instance, request_id, action, project, user);
        let mut w = self.db.begin_write().await?;
        self.insert_action(w.conn(), &a).await?;
        w.commit().await?;
        Ok(())
    }

    /// Records an action inside the caller's transaction.
    pub async fn insert_action(&self, conn: &mut db::AnyConnection, a: &NewAction) -> Result<()> {
        let now = super::now();
        self.db
            .q("INSERT INTO instance_action (id, instance_uuid, request_id, action, project_id, user_id, start_time, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(common::id::new_uuid())
            .bind(a.instance.clone())
            .bind(a.request_id.clone())
            .bind(a.action.clone())
            .bind(a.project.clone())
            .bind(a.user.clone())
            .bind(now)
            .bind(now)
            .execute(conn)
            .await
            .map_err(db::DbError::from)?;
        Ok(())
    }

    /// The id of the action `request_id` started on `instance`, remembered:
    /// a workflow records several events on one action.
    async fn action_id(&self, instance: &str, request_id: &str) -> Result<Option<String>> {
        let key = (instance.to_string(), request_id.to_string());
        if let Some(id) = self.action_ids.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(Some(id.clone()));
        }
        let Some(action) = self.action_by_request(instance, request_id).await? else { return Ok(None) };
        let mut ids = self.action_ids.lock().unwrap_or_else(|p| p.into_inner());
        if ids.len() >= 4096 {
            ids.clear();
        }
        ids.insert(key, action.id.clone());
        Ok(Some(action.id))
    }

    async fn action_by_request(&self, instance: &str, request_id: &str) -> Result<Option<Action>> {
        let row = self
            .db
            .q("SELECT * FROM instance_action WHERE instance_uuid = ? AND request_id = ? ORDER BY start_time DESC")
            .bind(instance.to_string())
            .bind(request_id.to_string())
            .fetch_optional(self.db.pool())
            .await
            .map_err(db::DbError::from)?;
        row.as_ref().map(action_from_row).transpose()
    }

    /// Records one part's work on the action the request started: begun
    /// (`result` None) or done (`Success` / `Error`). A failed event marks
    /// the action's message as Nova does. Written with other small records
    /// in one transaction (`sagas::ProgressWriter`).
    pub async fn action_event(
        &self,
        instance: &str,
        request_id: &str,
        event: &str,
        host: Option<&str>,
        result: Option<&str>,
        details: Option<&str>,
    ) -> Result<()> {
        let Some(action_id) = self.action_id(instance, request_id).await? else { return Ok(()) };
        let e = super::sagas::EventChange {
            action_id,
            event: event.into(),
            host: host.map(String::from),
            result: result.map(String::from),
            details: details.map(String::from),
        };
        self.progress_writer().event(e).await.map_err(|e| crate::error::ComputeError::Internal(e.0))
    }

    /// An instance's actions, newest first.
    pub async fn actions(&self, instance: &str) -> Result<Vec<Action>> {
        let rows = self
            .db
            .fetch_all(
                self.db
                    .q("SELECT * FROM instance_action WHERE instance_uuid = ? ORDER BY start_time DESC, id DESC")
                    .bind(instance.to_string()),
            )
            .await?;
        rows.iter().map(action_from_row).collect()
    }

    pub async fn action_events(&self, action_id: &str) -> Result<Vec<Event>> {
        let rows = self
            .db
            .fetch_all(
                self.db
                    .q("SELECT * FROM instance_action_event WHERE action_id = ? ORDER BY seq")
                    .bind(action_id.to_string()),
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Event {
                    event: r.str("event")?,
                    start_time: r.int("start_time")?,
                    finish_time: r.opt_int("finish_time")?,
                    result: r.opt_str("result")?,
                    traceback: r.opt_str("traceback")?,
                    host: r.opt_str("host")?,
                    details: r.opt_str("details")?,
                })
            })
            .collect()
    }
}

/// One event on an action, inside the caller's transaction.
pub(super) async fn write_event(
    db: &db::Db,
    conn: &mut db::AnyConnection,
    action_id: &str,
    event: &str,
    host: Option<&str>,
    result: Option<&str>,
    details: Option<&str>,
) -> Result<(), db::DbError> {
    let now = super::now();
    let updated = match result {
            Some(result) => db
                .q("UPDATE instance_action_event SET finish_time = ?, result = ?, details = ? WHERE action_id = ? AND event = ? AND finish_time IS NULL")
                .bind(now)
                .bind(result.to_string())
                .bind(details.map(String::from))
                .bind(action_id.to_string())
                .bind(event.to_string())
                .execute(&mut *conn)
                .await
                ?
                .rows_affected(),
            None => 0,
        };
    if updated == 0 {
        let seq: i64 = db::query_scalar(&db.sql("SELECT COUNT(*) FROM instance_action_event WHERE action_id = ?"))
            .bind(action_id.to_string())
            .fetch_one(&mut *conn)
            .await?;
        db
                .q("INSERT INTO instance_action_event (action_id, event, start_time, finish_time, result, host, details, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(action_id.to_string())
                .bind(event.to_string())
                .bind(now)
                .bind(result.map(|_| now))
                .bind(result.map(String::from))
                .bind(host.map(String::from))
                .bind(details.map(String::from))
                .bind(seq)
                .execute(&mut *conn)
                .await
                ?;
    }
    let message = (result == Some("Error")).then(|| "Error".to_string());
    db
            .q("UPDATE instance_action SET updated_at = ?, finish_time = CASE WHEN ? IS NULL THEN finish_time ELSE ? END, message = COALESCE(?, message) WHERE id = ?")
            .bind(now)
            .bind(result.map(|_| now))
            .bind(now)
            .bind(message)
            .bind(action_id.to_string())
            .execute(&mut *conn)
            .await
            ?;
    Ok(())
}
