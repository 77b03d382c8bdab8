//! Status history: what each target of a campaign was (open, done, gone)
//! and since when, one row per change. A target that stays done for a
//! year is one row; pruning keeps each target's state at the horizon.

use rusqlite::params;
use serde::Serialize;

use super::{Sqlite, StatusHistory, StoreError};

/// A target's status at some time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    Open,
    Done,
    /// No longer a target (removed, or out of the campaign's filter).
    Gone,
}

impl Status {
    pub(super) fn code(self) -> i32 {
        match self {
            Status::Open => 0,
            Status::Done => 1,
            Status::Gone => 2,
        }
    }

    pub(super) fn from_code(code: i32) -> Status {
        match code {
            1 => Status::Done,
            2 => Status::Gone,
            _ => Status::Open,
        }
    }
}

/// One recorded change of a target's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub entity_ref: String,
    pub at_ms: i64,
    pub status: Status,
}

/// Rows recorded before the horizon that a later one (still before it)
/// replaced: what pruning removes first.
pub(super) const PRUNE_REPLACED: &str = "DELETE FROM status_history AS h
     WHERE h.at_ms < ?1 AND EXISTS (SELECT 1 FROM status_history n
        WHERE n.subject = h.subject AND n.entity_ref = h.entity_ref
        AND n.at_ms > h.at_ms AND n.at_ms < ?1)";

/// Then each target gone by the horizon: it was nothing there.
pub(super) const PRUNE_GONE: &str = "DELETE FROM status_history WHERE at_ms < ?1 AND status = 2";

impl StatusHistory for Sqlite {
    fn latest_statuses(&self, subject: &str) -> Result<Vec<(String, Status)>, StoreError> {
        self.read(|conn| {
            // SQLite takes the bare column from the row holding max().
            let mut stmt = conn.prepare_cached(
                "SELECT entity_ref, status, max(at_ms) FROM status_history
                 WHERE subject = ?1 GROUP BY entity_ref ORDER BY entity_ref",
            )?;
            let rows = stmt.query_map(params![subject], |r| {
                Ok((r.get(0)?, Status::from_code(r.get(1)?)))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn record_statuses(
        &self,
        subject: &str,
        at_ms: i64,
        changes: &[(String, Status)],
    ) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO status_history (subject, entity_ref, at_ms, status)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (entity_ref, status) in changes {
                insert.execute(params![subject, entity_ref, at_ms, status.code()])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn status_changes(&self, subject: &str) -> Result<Vec<StatusChange>, StoreError> {
        self.read(|conn| {
            // In the key's order (no sort in SQLite), then by time: a
            // stable sort keeps each moment's refs in order.
            let mut stmt = conn.prepare_cached(
                "SELECT entity_ref, at_ms, status FROM status_history
                 WHERE subject = ?1 ORDER BY entity_ref, at_ms",
            )?;
            let rows = stmt.query_map(params![subject], |r| {
                Ok(StatusChange {
                    entity_ref: r.get(0)?,
                    at_ms: r.get(1)?,
                    status: Status::from_code(r.get(2)?),
                })
            })?;
            let mut changes = rows.collect::<Result<Vec<_>, _>>()?;
            changes.sort_by_key(|c| c.at_ms);
            Ok(changes)
        })
    }

    fn status_subjects(&self) -> Result<Vec<String>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT DISTINCT subject FROM status_history ORDER BY subject")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn prune_statuses(&self, before_ms: i64) -> Result<usize, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let mut removed = tx.execute(PRUNE_REPLACED, params![before_ms])?;
        removed += tx.execute(PRUNE_GONE, params![before_ms])?;
        tx.commit()?;
        Ok(removed)
    }

    fn forget_statuses(&self, subject: &str) -> Result<(), StoreError> {
        self.writer().execute(
            "DELETE FROM status_history WHERE subject = ?1",
            params![subject],
        )?;
        Ok(())
    }
}

/// One nudge: who was told (or not) about what, when, through which
/// channel, and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NudgeRecord {
    pub at_ms: i64,
    /// `campaign:<name>` or `scorecard:<name>`.
    pub subject: String,
    /// The team's ref.
    pub team: String,
    /// `slack`, `webhook`, `email`, or `none`.
    pub channel: String,
    /// `sent`, `failed`, `no-channel`.
    pub status: String,
    /// The open targets it listed.
    pub targets: Vec<String>,
    pub attempts: u32,
    /// Where it went, or why it failed.
    pub detail: Option<String>,
}

/// The columns of `nudge_log` a [`NudgeRecord`] reads back.
pub(super) const NUDGE_COLUMNS: &str =
    "at_ms, subject, team, channel, status, targets, attempts, detail";

/// Teams' last nudge per subject: sent, or found without a channel (a
/// failure is tried again at the next check).
pub(super) const LAST_NUDGED: &str = "SELECT team, max(at_ms) FROM nudge_log
     WHERE subject = ?1 AND status IN ('sent', 'no-channel') GROUP BY team ORDER BY team";

impl super::NudgeLog for Sqlite {
    fn record_nudge(&self, n: &NudgeRecord) -> Result<(), StoreError> {
        self.writer().execute(
            &format!(
                "INSERT INTO nudge_log ({NUDGE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ),
            params![
                n.at_ms,
                n.subject,
                n.team,
                n.channel,
                n.status,
                serde_json::to_string(&n.targets).unwrap_or_default(),
                n.attempts,
                n.detail
            ],
        )?;
        Ok(())
    }

    fn nudges(&self, subject: &str, limit: usize) -> Result<Vec<NudgeRecord>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {NUDGE_COLUMNS} FROM nudge_log WHERE subject = ?1
                 ORDER BY at_ms DESC, id DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![subject, limit as i64], |r| {
                let targets: String = r.get(5)?;
                Ok(NudgeRecord {
                    at_ms: r.get(0)?,
                    subject: r.get(1)?,
                    team: r.get(2)?,
                    channel: r.get(3)?,
                    status: r.get(4)?,
                    targets: serde_json::from_str(&targets).unwrap_or_default(),
                    attempts: r.get(6)?,
                    detail: r.get(7)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn last_nudged(&self, subject: &str) -> Result<Vec<(String, i64)>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(LAST_NUDGED)?;
            let rows = stmt.query_map(params![subject], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn snooze(&self, subject: &str, team: &str, until_ms: i64, by: &str) -> Result<(), StoreError> {
        let conn = self.writer();
        if until_ms <= 0 {
            conn.execute(
                "DELETE FROM nudge_snoozes WHERE subject = ?1 AND team = ?2",
                params![subject, team],
            )?;
        } else {
            conn.execute(
                "INSERT INTO nudge_snoozes (subject, team, until_ms, by) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (subject, team) DO UPDATE SET until_ms = ?3, by = ?4",
                params![subject, team, until_ms, by],
            )?;
        }
        Ok(())
    }

    fn snoozes(&self, subject: &str) -> Result<Vec<(String, i64, String)>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT team, until_ms, by FROM nudge_snoozes WHERE subject = ?1 ORDER BY team",
            )?;
            let rows =
                stmt.query_map(params![subject], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }
}
