//! Status history in PostgreSQL: the same rows and rules as SQLite's
//! (`store::history`).

use super::Postgres;
use crate::store::history::{PRUNE_GONE, PRUNE_REPLACED};
use crate::store::{Status, StatusChange, StatusHistory, StoreError};

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
