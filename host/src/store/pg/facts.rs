//! Facts with their history, and the activity feed, in PostgreSQL: the
//! same rules as SQLite's (`facts::repeats`, a backfill goes to the
//! history only, an event is kept once per source and id).

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::Postgres;
use crate::store::events::EVENTS_SELECT;
use crate::store::facts::repeats;
use crate::store::{
    EventQuery, EventRecord, Events, FactRecord, FactValue, Facts, RankedFact, StoreError,
};

const COLUMNS: &str = "f.entity_ref, f.name, f.type, f.number, f.text, f.source, f.url, f.at_ms";

fn fact(r: &Row) -> FactRecord {
    FactRecord {
        entity_ref: r.get(0),
        name: r.get(1),
        value: FactValue::from_columns(r.get(2), r.get(3), r.get(4)),
        source: r.get(5),
        url: r.get(6),
        at_ms: r.get(7),
    }
}

impl Facts for Postgres {
    fn fact_type(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            Ok(
                c.query_opt("SELECT type FROM facts WHERE name = $1 LIMIT 1", &[&name])?
                    .map(|r| r.get(0)),
            )
        })
    }

    fn fact_names(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        self.with(|c| {
            Ok(c.query(
                "SELECT name, min(type), count(*) FROM facts GROUP BY name ORDER BY name",
                &[],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get::<_, i64>(2) as u64))
            .collect())
        })
    }

    fn put_facts(&self, facts: &[FactRecord]) -> Result<usize, StoreError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            let current = tx.prepare(
                "SELECT type, number, text, at_ms FROM facts WHERE entity_ref = $1 AND name = $2
                 FOR UPDATE",
            )?;
            // A value measured before the stored one (a backfill) goes to
            // the history only; the current value stays the newest.
            let upsert = tx.prepare(
                "INSERT INTO facts (entity_ref, name, type, number, text, source, url, at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (entity_ref, name) DO UPDATE SET type = $3, number = $4, text = $5,
                 source = $6, url = $7, at_ms = $8 WHERE $8 >= facts.at_ms",
            )?;
            let history = tx.prepare(
                "INSERT INTO fact_history (entity_ref, name, at_ms, type, number, text, source)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )?;
            let mut changed = 0;
            for f in facts {
                let (number, text) = f.value.columns();
                let before = tx
                    .query_opt(&current, &[&f.entity_ref, &f.name])?
                    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)));
                let same = repeats(before, f);
                let kind = f.value.type_name();
                tx.execute(
                    &upsert,
                    &[
                        &f.entity_ref,
                        &f.name,
                        &kind,
                        &number,
                        &text,
                        &f.source,
                        &f.url,
                        &f.at_ms,
                    ],
                )?;
                if !same {
                    tx.execute(
                        &history,
                        &[
                            &f.entity_ref,
                            &f.name,
                            &f.at_ms,
                            &kind,
                            &number,
                            &text,
                            &f.source,
                        ],
                    )?;
                    changed += 1;
                }
            }
            tx.commit()?;
            Ok(changed)
        })
    }

    fn entity_facts(&self, entity_ref: &str) -> Result<Vec<FactRecord>, StoreError> {
        self.with(|c| {
            Ok(c.query(
                &format!("SELECT {COLUMNS} FROM facts f WHERE f.entity_ref = $1 ORDER BY f.name"),
                &[&entity_ref],
            )?
            .iter()
            .map(fact)
            .collect())
        })
    }

    fn fact_history(
        &self,
        entity_ref: &str,
        name: &str,
        limit: usize,
    ) -> Result<Vec<(i64, FactValue, String)>, StoreError> {
        let mut rows: Vec<(i64, FactValue, String)> = self.with(|c| {
            Ok(c.query(
                "SELECT at_ms, type, number, text, source FROM fact_history
                 WHERE entity_ref = $1 AND name = $2 ORDER BY at_ms DESC, seq DESC LIMIT $3",
                &[&entity_ref, &name, &(limit as i64)],
            )?
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    FactValue::from_columns(r.get(1), r.get(2), r.get(3)),
                    r.get(4),
                )
            })
            .collect())
        })?;
        rows.reverse();
        Ok(rows)
    }

    fn facts_named(&self, name: &str) -> Result<Vec<(String, FactValue)>, StoreError> {
        self.with(|c| {
            Ok(c.query(
                "SELECT entity_ref, type, number, text FROM facts WHERE name = $1",
                &[&name],
            )?
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    FactValue::from_columns(r.get(1), r.get(2), r.get(3)),
                )
            })
            .collect())
        })
    }

    fn fact_changes(&self, name: &str) -> Result<Vec<(String, i64, FactValue)>, StoreError> {
        self.with(|c| {
            Ok(c.query(
                "SELECT entity_ref, at_ms, type, number, text FROM fact_history WHERE name = $1
                 ORDER BY entity_ref, at_ms, seq",
                &[&name],
            )?
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    r.get(1),
                    FactValue::from_columns(r.get(2), r.get(3), r.get(4)),
                )
            })
            .collect())
        })
    }

    fn fact_history_head(&self) -> Result<i64, StoreError> {
        self.with(|c| {
            Ok(
                c.query_one("SELECT coalesce(max(seq), 0) FROM fact_history", &[])?
                    .get(0),
            )
        })
    }

    fn top_facts(
        &self,
        name: &str,
        ascending: bool,
        limit: usize,
        kind: Option<&str>,
    ) -> Result<Vec<RankedFact>, StoreError> {
        let order = if ascending { "ASC" } else { "DESC" };
        // The title as written comes from the body (the title column is
        // lower-cased for search), read only for the rows kept.
        let sql = format!(
            "SELECT t.entity_ref, t.name, t.type, t.number, t.text, t.source, t.url, t.at_ms,
                    e.body::jsonb #>> '{{metadata,title}}', t.owner
             FROM (SELECT {COLUMNS}, e.owner_ref AS owner, e.id AS entity_id FROM facts f
                   JOIN entities e ON e.ref = f.entity_ref
                   WHERE f.name = $1 AND f.type = 'number' AND ($3::TEXT IS NULL OR e.kind = $3)
                   ORDER BY f.number {order}, f.entity_ref LIMIT $2) t
             JOIN entities e ON e.id = t.entity_id
             ORDER BY t.number {order}, t.entity_ref"
        );
        self.with(|c| {
            Ok(c.query(&sql, &[&name, &(limit as i64), &kind])?
                .iter()
                .map(|r| RankedFact {
                    fact: fact(r),
                    title: r.get(8),
                    owner: r.get(9),
                })
                .collect())
        })
    }
}

impl Events for Postgres {
    fn put_events(&self, events: &[EventRecord]) -> Result<usize, StoreError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            let insert = tx.prepare(
                "INSERT INTO events (source, source_id, kind, entity_ref, title, url, at_ms, tone, actor)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            )?;
            let mut added = 0;
            for e in events {
                added += tx.execute(
                    &insert,
                    &[
                        &e.source,
                        &e.id,
                        &e.kind,
                        &e.entity_ref,
                        &e.title,
                        &e.url,
                        &e.at_ms,
                        &e.tone,
                        &e.actor,
                    ],
                )?;
            }
            tx.commit()?;
            Ok(added as usize)
        })
    }

    fn events(&self, q: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        let limit = q.limit as i64;
        let mut sql = format!("{EVENTS_SELECT} WHERE v.at_ms >= $1");
        let mut args: Vec<&(dyn ToSql + Sync)> = vec![&q.since_ms];
        for (column, value) in [
            ("e.owner_ref =", &q.owner),
            ("v.kind =", &q.kind),
            ("v.kind <>", &q.except_kind),
            ("v.entity_ref =", &q.entity_ref),
        ] {
            if let Some(v) = value {
                args.push(v);
                sql.push_str(&format!(" AND {column} ${}", args.len()));
            }
        }
        args.push(&limit);
        sql.push_str(&format!(
            " ORDER BY v.at_ms DESC, v.id DESC LIMIT ${}",
            args.len()
        ));
        self.with(|c| {
            Ok(c.query(&sql, &args)?
                .iter()
                .map(|r| EventRecord {
                    source: r.get(0),
                    id: r.get(1),
                    kind: r.get(2),
                    entity_ref: r.get(3),
                    title: r.get(4),
                    url: r.get(5),
                    at_ms: r.get(6),
                    tone: r.get(7),
                    actor: r.get(8),
                    owner: r.get(9),
                })
                .collect())
        })
    }
}
