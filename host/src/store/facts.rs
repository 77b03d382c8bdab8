//! Facts: named values per entity (number, text or flag) with where they
//! came from and when, the current value in `facts` and every change in
//! `fact_history`. A fact name holds one type across the catalog, so that
//! ranking and predicates mean the same thing everywhere.

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

use super::{CampaignSpecs, ChangeFeed, Facts, Sqlite, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FactValue {
    Number(f64),
    Text(String),
    Flag(bool),
}

impl FactValue {
    /// `number`, `text` or `flag`.
    pub fn type_name(&self) -> &'static str {
        match self {
            FactValue::Number(_) => "number",
            FactValue::Text(_) => "text",
            FactValue::Flag(_) => "flag",
        }
    }

    pub(super) fn columns(&self) -> (Option<f64>, Option<&str>) {
        match self {
            FactValue::Number(n) => (Some(*n), None),
            FactValue::Flag(b) => (Some(if *b { 1.0 } else { 0.0 }), None),
            FactValue::Text(t) => (None, Some(t.as_str())),
        }
    }

    pub(super) fn from_columns(kind: &str, number: Option<f64>, text: Option<String>) -> FactValue {
        match kind {
            "flag" => FactValue::Flag(number.unwrap_or(0.0) != 0.0),
            "text" => FactValue::Text(text.unwrap_or_default()),
            _ => FactValue::Number(number.unwrap_or(0.0)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FactRecord {
    pub entity_ref: String,
    pub name: String,
    pub value: FactValue,
    /// `plugin:github`, or `push:<token name>`.
    pub source: String,
    pub url: Option<String>,
    pub at_ms: i64,
}

impl FactRecord {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<FactRecord> {
        let kind: String = r.get(2)?;
        Ok(FactRecord {
            entity_ref: r.get(0)?,
            name: r.get(1)?,
            value: FactValue::from_columns(&kind, r.get(3)?, r.get(4)?),
            source: r.get(5)?,
            url: r.get(6)?,
            at_ms: r.get(7)?,
        })
    }
}

/// A row of a ranking: the fact and the entity's title and owner.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RankedFact {
    #[serde(flatten)]
    pub fact: FactRecord,
    pub title: Option<String>,
    pub owner: Option<String>,
}

/// `coverage.lines`: lower-case dotted words, at most 100 characters.
pub fn valid_fact_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        })
}

/// Whether pushing `f` changes nothing over the stored value `before`
/// (`type, number, text, at_ms`): same value, measured no earlier. A
/// change goes to the history.
pub(super) fn repeats(
    before: Option<(String, Option<f64>, Option<String>, i64)>,
    f: &FactRecord,
) -> bool {
    let (number, text) = f.value.columns();
    before.is_some_and(|(t, n, x, at)| {
        t == f.value.type_name() && n == number && x.as_deref() == text && at <= f.at_ms
    })
}

const COLUMNS: &str = "f.entity_ref, f.name, f.type, f.number, f.text, f.source, f.url, f.at_ms";

impl Facts for Sqlite {
    fn fact_type(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT type FROM facts WHERE name = ?1 LIMIT 1")?
                .query_row(params![name], |r| r.get(0))
                .optional()?)
        })
    }

    fn fact_names(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT name, min(type), count(*) FROM facts GROUP BY name ORDER BY name",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn put_facts(&self, facts: &[FactRecord]) -> Result<usize, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let mut changed = 0;
        {
            let mut current = tx.prepare_cached(
                "SELECT type, number, text, at_ms FROM facts WHERE entity_ref = ?1 AND name = ?2",
            )?;
            // A value measured before the stored one (a backfill) goes to
            // the history only; the current value stays the newest.
            let mut upsert = tx.prepare_cached(
                "INSERT INTO facts (entity_ref, name, type, number, text, source, url, at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (entity_ref, name) DO UPDATE SET type = ?3, number = ?4, text = ?5,
                 source = ?6, url = ?7, at_ms = ?8 WHERE ?8 >= facts.at_ms",
            )?;
            let mut history = tx.prepare_cached(
                "INSERT INTO fact_history (entity_ref, name, at_ms, type, number, text, source)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for f in facts {
                let (number, text) = f.value.columns();
                let before: Option<(String, Option<f64>, Option<String>, i64)> = current
                    .query_row(params![f.entity_ref, f.name], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })
                    .optional()?;
                let same = repeats(before, f);
                upsert.execute(params![
                    f.entity_ref,
                    f.name,
                    f.value.type_name(),
                    number,
                    text,
                    f.source,
                    f.url,
                    f.at_ms
                ])?;
                if !same {
                    history.execute(params![
                        f.entity_ref,
                        f.name,
                        f.at_ms,
                        f.value.type_name(),
                        number,
                        text,
                        f.source
                    ])?;
                    changed += 1;
                }
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    fn entity_facts(&self, entity_ref: &str) -> Result<Vec<FactRecord>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM facts f WHERE f.entity_ref = ?1 ORDER BY f.name"
                ))?
                .query_map(params![entity_ref], FactRecord::from_row)?
                .collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn fact_history(
        &self,
        entity_ref: &str,
        name: &str,
        limit: usize,
    ) -> Result<Vec<(i64, FactValue, String)>, StoreError> {
        self.read(|conn| {
            let mut rows = conn
                .prepare_cached(
                    "SELECT at_ms, type, number, text, source FROM fact_history
                     WHERE entity_ref = ?1 AND name = ?2 ORDER BY at_ms DESC, rowid DESC LIMIT ?3",
                )?
                .query_map(params![entity_ref, name, limit as i64], |r| {
                    let kind: String = r.get(1)?;
                    Ok((
                        r.get(0)?,
                        FactValue::from_columns(&kind, r.get(2)?, r.get(3)?),
                        r.get(4)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.reverse();
            Ok(rows)
        })
    }

    fn facts_named(&self, name: &str) -> Result<Vec<(String, FactValue)>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT entity_ref, type, number, text FROM facts WHERE name = ?1")?
                .query_map(params![name], |r| {
                    let kind: String = r.get(1)?;
                    Ok((
                        r.get(0)?,
                        FactValue::from_columns(&kind, r.get(2)?, r.get(3)?),
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn fact_changes(&self, name: &str) -> Result<Vec<(String, i64, FactValue)>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT entity_ref, at_ms, type, number, text FROM fact_history WHERE name = ?1
                     ORDER BY entity_ref, at_ms, rowid",
                )?
                .query_map(params![name], |r| {
                    let kind: String = r.get(2)?;
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        FactValue::from_columns(&kind, r.get(3)?, r.get(4)?),
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn fact_history_head(&self) -> Result<i64, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT coalesce(max(rowid), 0) FROM fact_history")?
                .query_row([], |r| r.get(0))?)
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
        let kind_clause = if kind.is_some() {
            "AND e.kind = ?3"
        } else {
            ""
        };
        // The title as written comes from the body (the title column is
        // lower-cased for search), read only for the rows kept.
        let sql = format!(
            "SELECT t.entity_ref, t.name, t.type, t.number, t.text, t.source, t.url, t.at_ms,
                    json_extract(e.body, '$.metadata.title'), t.owner
             FROM (SELECT {COLUMNS}, e.owner_ref AS owner, e.id AS entity_id FROM facts f
                   JOIN entities e ON e.ref = f.entity_ref
                   WHERE f.name = ?1 AND f.type = 'number' {kind_clause}
                   ORDER BY f.number {order}, f.entity_ref LIMIT ?2) t
             JOIN entities e ON e.id = t.entity_id
             ORDER BY t.number {order}, t.entity_ref"
        );
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let map = |r: &Row<'_>| {
                Ok(RankedFact {
                    fact: FactRecord::from_row(r)?,
                    title: r.get(8)?,
                    owner: r.get(9)?,
                })
            };
            let rows = match kind {
                Some(k) => stmt.query_map(params![name, limit as i64, k], map)?,
                None => stmt.query_map(params![name, limit as i64], map)?,
            };
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }
}

impl CampaignSpecs for Sqlite {
    fn api_campaigns(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT name, body FROM campaigns ORDER BY name")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn put_campaign(&self, name: &str, body: &str, by: &str) -> Result<(), StoreError> {
        self.writer().execute(
            "INSERT INTO campaigns (name, body, created_by, created_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET body = ?2, created_by = ?3",
            params![name, body, by, super::now_ms()],
        )?;
        Ok(())
    }

    fn delete_campaign(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .writer()
            .execute("DELETE FROM campaigns WHERE name = ?1", params![name])?
            > 0)
    }
}

/// One process serves a SQLite store (the lease file keeps a second from
/// background work): it forgets only what its own followers applied.
impl ChangeFeed for Sqlite {
    fn forgotten_through(&self) -> Result<i64, StoreError> {
        Ok(0)
    }

    fn last_entity_change(&self) -> Result<i64, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT COALESCE(max(seq), 0) FROM entity_changes")?
                .query_row([], |r| r.get(0))?)
        })
    }

    fn entity_changes_after(
        &self,
        seq: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT seq, ref FROM entity_changes WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )?
                .query_map(params![seq, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn forget_entity_changes(&self, seq: i64) -> Result<(), StoreError> {
        let seq = self.index.keep_changes_after(seq);
        self.writer()
            .execute("DELETE FROM entity_changes WHERE seq <= ?1", params![seq])?;
        Ok(())
    }
}
