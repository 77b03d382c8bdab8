//! The record of plugin actions run from the portal: what, on which
//! entity, by whom, and how it ended. A run is written before the plugin is
//! called and completed after, so even a run that never finished is on
//! record.

use rusqlite::{Row, params};
use serde::Serialize;

use super::{ActionRuns, Sqlite, StoreError, now_ms};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionRun {
    pub id: i64,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    pub plugin: String,
    pub action: String,
    pub label: String,
    pub entity_ref: String,
    /// The user the client named (`user:default/jane`).
    pub user: String,
    /// The input as JSON text.
    pub input: String,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    pub message: Option<String>,
}

impl ActionRun {
    /// Marks the run finished now: its end time and status, to store.
    pub(super) fn finish(&mut self, succeeded: bool, message: &str) -> (i64, &'static str) {
        let finished = super::now_ms();
        let status = if succeeded { "succeeded" } else { "failed" };
        self.finished_ms = Some(finished);
        self.status = status.into();
        self.message = Some(message.into());
        (finished, status)
    }
}

impl ActionRun {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<ActionRun> {
        Ok(ActionRun {
            id: r.get(0)?,
            started_ms: r.get(1)?,
            finished_ms: r.get(2)?,
            plugin: r.get(3)?,
            action: r.get(4)?,
            label: r.get(5)?,
            entity_ref: r.get(6)?,
            user: r.get(7)?,
            input: r.get(8)?,
            status: r.get(9)?,
            message: r.get(10)?,
        })
    }
}

const COLUMNS: &str = "id, started_ms, finished_ms, plugin_id, action_id, label, entity_ref, user_ref, input, status, message";

impl ActionRuns for Sqlite {
    fn action_started(
        &self,
        plugin: &str,
        action: &str,
        label: &str,
        entity_ref: &str,
        user: &str,
        input: &str,
    ) -> Result<ActionRun, StoreError> {
        let started = now_ms();
        let conn = self.writer();
        conn.execute(
            "INSERT INTO action_runs (started_ms, plugin_id, action_id, label, entity_ref, user_ref, input, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running')",
            params![started, plugin, action, label, entity_ref, user, input],
        )?;
        Ok(ActionRun {
            id: conn.last_insert_rowid(),
            started_ms: started,
            finished_ms: None,
            plugin: plugin.into(),
            action: action.into(),
            label: label.into(),
            entity_ref: entity_ref.into(),
            user: user.into(),
            input: input.into(),
            status: "running".into(),
            message: None,
        })
    }

    fn action_finished(
        &self,
        run: &mut ActionRun,
        succeeded: bool,
        message: &str,
    ) -> Result<(), StoreError> {
        let (finished, status) = run.finish(succeeded, message);
        self.writer().execute(
            "UPDATE action_runs SET finished_ms = ?1, status = ?2, message = ?3 WHERE id = ?4",
            params![finished, status, message, run.id],
        )?;
        Ok(())
    }

    fn action_runs(
        &self,
        entity_ref: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ActionRun>, StoreError> {
        self.read(|conn| {
            let rows = match entity_ref {
                Some(r) => conn
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM action_runs WHERE entity_ref = ?1 ORDER BY started_ms DESC, id DESC LIMIT ?2"
                    ))?
                    .query_map(params![r, limit as i64], ActionRun::from_row)?
                    .collect::<Result<Vec<_>, _>>()?,
                None => conn
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM action_runs ORDER BY started_ms DESC, id DESC LIMIT ?1"
                    ))?
                    .query_map(params![limit as i64], ActionRun::from_row)?
                    .collect::<Result<Vec<_>, _>>()?,
            };
            Ok(rows)
        })
    }
}
