//! Status history in PostgreSQL: the same rows and rules as SQLite's
//! (`store::history`).

use super::Postgres;
use crate::store::history::{LAST_NUDGED, NUDGE_COLUMNS, PRUNE_GONE, PRUNE_REPLACED};
use crate::store::{NudgeLog, NudgeRecord, Status, StatusChange, StatusHistory, StoreError};

/// SQLite's `?1` as PostgreSQL's `$1`.
fn numbered(sql: &str) -> String {
    sql.replace("?1", "$1")
}

impl StatusHistory for Postgres {
    fn latest_statuses(&self, subject: &str) -> Result<Vec<(String, Status)>, StoreError> {
        self.with(|c| {
            Ok(c.query(
                "SELECT DISTINCT ON (entity_ref) entity_ref, status FROM status_history
                 WHERE subject = $1 ORDER BY entity_ref, at_ms DESC",
                &[&subject],
            )?
            .iter()
            .map(|r| (r.get(0), Status::from_code(r.get(1))))
            .collect())
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
        let refs: Vec<&str> = changes.iter().map(|(r, _)| r.as_str()).collect();
        let codes: Vec<i32> = changes.iter().map(|(_, s)| s.code()).collect();
        self.with(|c| {
            // One statement for any number of changes; a ref given twice
            // keeps its last status, as in SQLite.
            c.execute(
                "INSERT INTO status_history (subject, entity_ref, at_ms, status)
                 SELECT DISTINCT ON (r) $1, r, $2, s
                 FROM unnest($3::text[], $4::int[]) WITH ORDINALITY AS u(r, s, n)
                 ORDER BY r, n DESC
                 ON CONFLICT (subject, entity_ref, at_ms) DO UPDATE SET status = EXCLUDED.status",
                &[&subject, &at_ms, &refs, &codes],
            )?;
            Ok(())
        })
    }

    fn status_changes(&self, subject: &str) -> Result<Vec<StatusChange>, StoreError> {
        self.with(|c| {
            Ok(c.query(
                "SELECT entity_ref, at_ms, status FROM status_history
                 WHERE subject = $1 ORDER BY at_ms, entity_ref",
                &[&subject],
            )?
            .iter()
            .map(|r| StatusChange {
                entity_ref: r.get(0),
                at_ms: r.get(1),
                status: Status::from_code(r.get(2)),
            })
            .collect())
        })
    }

    fn status_subjects(&self) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            Ok(c.query(
                "SELECT DISTINCT subject FROM status_history ORDER BY subject",
                &[],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })
    }

    fn prune_statuses(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            let mut removed = tx.execute(numbered(PRUNE_REPLACED).as_str(), &[&before_ms])?;
            removed += tx.execute(numbered(PRUNE_GONE).as_str(), &[&before_ms])?;
            tx.commit()?;
            Ok(removed as usize)
        })
    }

    fn forget_statuses(&self, subject: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute("DELETE FROM status_history WHERE subject = $1", &[&subject])?;
            Ok(())
        })
    }
}

impl NudgeLog for Postgres {
    fn record_nudge(&self, n: &NudgeRecord) -> Result<(), StoreError> {
        let targets = serde_json::to_string(&n.targets).unwrap_or_default();
        let attempts = n.attempts as i32;
        self.with(|c| {
            c.execute(
                &format!(
                    "INSERT INTO nudge_log ({NUDGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ),
                &[
                    &n.at_ms,
                    &n.subject,
                    &n.team,
                    &n.channel,
                    &n.status,
                    &targets,
                    &attempts,
                    &n.detail,
                ],
            )?;
            Ok(())
        })
    }

    fn nudges(&self, subject: &str, limit: usize) -> Result<Vec<NudgeRecord>, StoreError> {
        self.with(|c| {
            Ok(c.query(
                &format!(
                    "SELECT {NUDGE_COLUMNS} FROM nudge_log WHERE subject = $1
                     ORDER BY at_ms DESC, id DESC LIMIT $2"
                ),
                &[&subject, &(limit as i64)],
            )?
            .iter()
            .map(|r| NudgeRecord {
                at_ms: r.get(0),
                subject: r.get(1),
                team: r.get(2),
                channel: r.get(3),
                status: r.get(4),
                targets: serde_json::from_str(r.get(5)).unwrap_or_default(),
                attempts: r.get::<_, i32>(6) as u32,
                detail: r.get(7),
            })
            .collect())
        })
    }

    fn last_nudged(&self, subject: &str) -> Result<Vec<(String, i64)>, StoreError> {
        self.with(|c| {
            Ok(c.query(numbered(LAST_NUDGED).as_str(), &[&subject])?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect())
        })
    }

    fn snooze(&self, subject: &str, team: &str, until_ms: i64, by: &str) -> Result<(), StoreError> {
        self.with(|c| {
            if until_ms <= 0 {
                c.execute(
                    "DELETE FROM nudge_snoozes WHERE subject = $1 AND team = $2",
                    &[&subject, &team],
                )?;
            } else {
                c.execute(
                    "INSERT INTO nudge_snoozes (subject, team, until_ms, by) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (subject, team) DO UPDATE SET until_ms = $3, by = $4",
                    &[&subject, &team, &until_ms, &by],
                )?;
            }
            Ok(())
        })
    }

    fn snoozes(&self, subject: &str) -> Result<Vec<(String, i64, String)>, StoreError> {
        self.with(|c| {
            Ok(c.query(
                "SELECT team, until_ms, by FROM nudge_snoozes WHERE subject = $1 ORDER BY team",
                &[&subject],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
        })
    }
}
