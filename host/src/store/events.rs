//! The activity feed: deployments, builds, incidents and catalog changes,
//! from plugins and from `POST /api/events`. An event is stored once per
//! source and id, so polling a plugin again adds nothing twice.

use rusqlite::{Row, params};
use serde::Serialize;

use super::{Events, Sqlite, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    /// `plugin:github`, `push:<token name>`, `catalog`.
    pub source: String,
    /// Unique within the source.
    pub id: String,
    /// `deployment`, `build`, `incident`, `catalog`, …
    pub kind: String,
    pub entity_ref: Option<String>,
    pub title: String,
    pub url: Option<String>,
    pub at_ms: i64,
    /// `neutral`, `info`, `good`, `warning`, `critical`.
    pub tone: String,
    pub actor: Option<String>,
    /// The entity's owner, when the entity is in the catalog (filled on
    /// read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl EventRecord {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<EventRecord> {
        Ok(EventRecord {
            source: r.get(0)?,
            id: r.get(1)?,
            kind: r.get(2)?,
            entity_ref: r.get(3)?,
            title: r.get(4)?,
            url: r.get(5)?,
            at_ms: r.get(6)?,
            tone: r.get(7)?,
            actor: r.get(8)?,
            owner: r.get(9)?,
        })
    }
}

/// Which events to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub since_ms: i64,
    /// Events of entities this owner (`group:default/team-a`) owns.
    pub owner: Option<String>,
    pub kind: Option<String>,
    /// Leaves out events of this kind ("recent activity" that is not
    /// deployments, shown beside them).
    pub except_kind: Option<String>,
    pub entity_ref: Option<String>,
    pub limit: usize,
}

/// Events with their entity's owner, for both backends.
pub(super) const EVENTS_SELECT: &str = "SELECT v.source, v.source_id, v.kind, v.entity_ref, v.title, v.url, v.at_ms, v.tone, v.actor, e.owner_ref
     FROM events v LEFT JOIN entities e ON e.ref = v.entity_ref";

impl Events for Sqlite {
    fn put_events(&self, events: &[EventRecord]) -> Result<usize, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let mut added = 0;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO events (source, source_id, kind, entity_ref, title, url, at_ms, tone, actor)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for e in events {
                added += insert.execute(params![
                    e.source,
                    e.id,
                    e.kind,
                    e.entity_ref,
                    e.title,
                    e.url,
                    e.at_ms,
                    e.tone,
                    e.actor
                ])?;
            }
        }
        tx.commit()?;
        Ok(added)
    }

    fn events(&self, q: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        let mut sql = format!("{EVENTS_SELECT} WHERE v.at_ms >= ?1");
        let mut args: Vec<rusqlite::types::Value> = vec![q.since_ms.into()];
        for (column, value) in [
            ("e.owner_ref =", &q.owner),
            ("v.kind =", &q.kind),
            ("v.kind <>", &q.except_kind),
            ("v.entity_ref =", &q.entity_ref),
        ] {
            if let Some(v) = value {
                args.push(v.clone().into());
                sql.push_str(&format!(" AND {column} ?{}", args.len()));
            }
        }
        args.push((q.limit as i64).into());
        sql.push_str(&format!(
            " ORDER BY v.at_ms DESC, v.id DESC LIMIT ?{}",
            args.len()
        ));
        self.read(|conn| {
            Ok(conn
                .prepare_cached(&sql)?
                .query_map(rusqlite::params_from_iter(args), EventRecord::from_row)?
                .collect::<Result<Vec<_>, _>>()?)
        })
    }
}
