//! Writing one location refresh as one transaction.

use std::collections::{HashMap, HashSet};
use std::sync::MutexGuard;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{ProblemRecord, RefreshTx, Sqlite, StoreError, now_ms};
use crate::catalog::{EntityRef, ValidEntity};

/// What a refresh changed.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshSummary {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub removed: usize,
    /// Invalid entities whose last good version stays served.
    pub kept_invalid: usize,
    pub problems: usize,
    /// Files not parsed again: byte for byte what they were (with what
    /// they substitute) when their entities were written. Their entities
    /// count as `unchanged`.
    pub unchanged_files: usize,
}

/// Why an entity was not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// Another location claimed it first.
    ClaimedElsewhere { location: String },
    /// This refresh already wrote it from another place.
    Duplicate { first_source: String },
}

/// A refresh in progress: entities are written as they are read, so memory
/// stays bounded by one file, and everything commits or nothing does.
pub(super) struct SqliteRefresh<'s> {
    store: &'s Sqlite,
    conn: MutexGuard<'s, Connection>,
    location_id: String,
    seen: HashSet<i64>,
    seen_refs: HashMap<String, String>,
    kept_sources: HashSet<String>,
    problems: Vec<ProblemRecord>,
    summary: RefreshSummary,
    open: bool,
    /// Set when an unchanged entity's source or error status was rewritten.
    touched: bool,
    flat: Vec<(String, String, Option<String>)>,
}

impl<'s> SqliteRefresh<'s> {
    pub(super) fn begin(store: &'s Sqlite, location_id: &str) -> Result<Self, StoreError> {
        let conn = store.writer();
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(SqliteRefresh {
            store,
            conn,
            location_id: location_id.to_string(),
            seen: HashSet::new(),
            seen_refs: HashMap::new(),
            kept_sources: HashSet::new(),
            problems: Vec::new(),
            summary: RefreshSummary::default(),
            open: true,
            touched: false,
            flat: Vec::new(),
        })
    }

    fn existing(&self, key: &str) -> Result<Option<Existing>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT id, uid, location_id, etag, source, errors IS NOT NULL FROM entities WHERE ref = ?1")?
            .query_row([key], |r| {
                Ok(Existing {
                    id: r.get(0)?,
                    uid: r.get(1)?,
                    location_id: r.get(2)?,
                    etag: r.get(3)?,
                    source: r.get(4)?,
                    has_errors: r.get(5)?,
                })
            })
            .optional()?)
    }
}

impl RefreshTx for SqliteRefresh<'_> {
    fn location_id(&self) -> &str {
        &self.location_id
    }

    fn put(
        &mut self,
        entity: ValidEntity,
        source: &str,
    ) -> Result<Result<(), Rejected>, StoreError> {
        let ValidEntity {
            entity_ref,
            mut value,
            owner,
            relations,
        } = entity;
        let key = entity_ref.to_string();
        if let Some(first) = self.seen_refs.get(&key) {
            return Ok(Err(Rejected::Duplicate {
                first_source: first.clone(),
            }));
        }
        let existing = self.existing(&key)?;
        if let Some(e) = &existing
            && e.location_id != self.location_id
        {
            let target: String = self
                .conn
                .query_row(
                    "SELECT type || ':' || target FROM locations WHERE id = ?1",
                    [&e.location_id],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or_else(|| e.location_id.clone());
            return Ok(Err(Rejected::ClaimedElsewhere { location: target }));
        }
        self.seen_refs.insert(key.clone(), source.to_string());

        let plain =
            serde_json::to_string(&value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let etag = etag_of(&plain);
        let now = now_ms();
        if let Some(e) = &existing {
            self.seen.insert(e.id);
            if e.etag == etag {
                if e.source != source || e.has_errors {
                    self.touched = true;
                    self.conn
                        .prepare_cached(
                            "UPDATE entities SET source = ?2, errors = NULL WHERE id = ?1",
                        )?
                        .execute(params![e.id, source])?;
                }
                self.summary.unchanged += 1;
                return Ok(Ok(()));
            }
        }
        let uid = existing
            .as_ref()
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), |e| e.uid.clone());
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("uid".into(), Value::String(uid.clone()));
            meta.insert("etag".into(), Value::String(etag.clone()));
        }
        let body = serde_json::to_string(&value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let title = value
            .pointer("/metadata/title")
            .and_then(Value::as_str)
            .map(str::to_lowercase);
        let owner = owner.map(|o| o.to_string());
        let id = match &existing {
            Some(e) => {
                self.conn
                    .prepare_cached(
                        "UPDATE entities SET title = ?2, owner_ref = ?3, source = ?4, etag = ?5, body = ?6,
                         errors = NULL, updated_ms = ?7 WHERE id = ?1",
                    )?
                    .execute(params![e.id, title, owner, source, etag, body, now])?;
                self.conn
                    .prepare_cached("DELETE FROM search WHERE entity_id = ?1")?
                    .execute([e.id])?;
                self.conn
                    .prepare_cached("DELETE FROM relations WHERE source_ref = ?1")?
                    .execute([&key])?;
                self.summary.updated += 1;
                e.id
            }
            None => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO entities (uid, ref, kind, namespace, name, title, owner_ref, location_id, source,
                         etag, body, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
                    )?
                    .execute(params![
                        uid,
                        key,
                        entity_ref.kind,
                        entity_ref.namespace,
                        entity_ref.name,
                        title,
                        owner,
                        self.location_id,
                        source,
                        etag,
                        body,
                        now
                    ])?;
                let id = self.conn.last_insert_rowid();
                self.seen.insert(id);
                self.summary.added += 1;
                id
            }
        };

        self.flat.clear();
        flatten(&value, &mut String::new(), &mut self.flat);
        // uid and etag are unique per entity: useless as filters or facets.
        self.flat
            .retain(|(k, _, _)| k != "metadata.uid" && k != "metadata.etag");
        let mut insert = self
            .conn
            .prepare_cached("INSERT OR IGNORE INTO search (key, value, entity_id, original) VALUES (?1, ?2, ?3, ?4)")?;
        for (k, v, original) in &self.flat {
            insert.execute(params![k, v, id, original])?;
        }
        drop(insert);
        let mut insert = self.conn.prepare_cached(
            "INSERT OR IGNORE INTO relations (source_ref, type, target_ref) VALUES (?1, ?2, ?3)",
        )?;
        for r in &relations {
            insert.execute(params![key, r.kind, r.target.to_string()])?;
        }
        Ok(Ok(()))
    }

    fn keep_invalid(
        &mut self,
        entity_ref: &EntityRef,
        errors: &[String],
    ) -> Result<bool, StoreError> {
        let key = entity_ref.to_string();
        let Some(e) = self.existing(&key)? else {
            return Ok(false);
        };
        if e.location_id != self.location_id || self.seen_refs.contains_key(&key) {
            return Ok(false);
        }
        let items: Vec<Value> = errors
            .iter()
            .map(|m| {
                serde_json::json!({
                    "type": "backstage.io/catalog-processing",
                    "level": "error",
                    "message": format!("InputError: {m}"),
                    "error": {"name": "InputError", "message": m},
                })
            })
            .collect();
        let json = Value::Array(items).to_string();
        self.conn
            .prepare_cached("UPDATE entities SET errors = ?2 WHERE id = ?1")?
            .execute(params![e.id, json])?;
        self.seen.insert(e.id);
        self.seen_refs.insert(key, e.source);
        self.summary.kept_invalid += 1;
        Ok(true)
    }

    fn keep_unchanged(&mut self, source: &str, count: usize) -> Result<bool, StoreError> {
        let rows: Vec<(i64, String, bool)> = self
            .conn
            .prepare_cached(
                "SELECT id, ref, errors IS NOT NULL FROM entities WHERE location_id = ?1 AND source = ?2",
            )?
            .query_map(params![self.location_id, source], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        if rows.len() != count
            || rows
                .iter()
                .any(|(_, r, errors)| *errors || self.seen_refs.contains_key(r))
        {
            return Ok(false);
        }
        for (id, entity_ref, _) in rows {
            self.seen.insert(id);
            self.seen_refs.insert(entity_ref, source.to_string());
        }
        self.summary.unchanged += count;
        self.summary.unchanged_files += 1;
        Ok(true)
    }

    fn keep_source(&mut self, source: &str) {
        self.kept_sources.insert(source.to_string());
    }

    fn problem(&mut self, problem: ProblemRecord) {
        self.problems.push(problem);
    }

    fn commit(mut self: Box<Self>) -> Result<RefreshSummary, StoreError> {
        let mut gone = Vec::new();
        {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT id, source, ref FROM entities WHERE location_id = ?1")?;
            let mut rows = stmt.query([&self.location_id])?;
            while let Some(row) = rows.next()? {
                let id: i64 = row.get(0)?;
                if self.seen.contains(&id) {
                    continue;
                }
                let source: String = row.get(1)?;
                if !self.kept_sources.contains(&source) {
                    gone.push((id, row.get::<_, String>(2)?));
                }
            }
        }
        for (id, entity_ref) in &gone {
            self.conn
                .prepare_cached("DELETE FROM search WHERE entity_id = ?1")?
                .execute([id])?;
            self.conn
                .prepare_cached("DELETE FROM relations WHERE source_ref = ?1")?
                .execute([entity_ref])?;
            self.conn
                .prepare_cached("DELETE FROM entities WHERE id = ?1")?
                .execute([id])?;
        }
        self.summary.removed = gone.len();
        self.conn
            .prepare_cached("DELETE FROM problems WHERE location_id = ?1")?
            .execute([&self.location_id])?;
        {
            let mut insert = self.conn.prepare_cached(
                "INSERT INTO problems (location_id, source, line, col, entity_ref, field, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for p in &self.problems {
                insert.execute(params![
                    self.location_id,
                    p.source,
                    p.line,
                    p.column,
                    p.entity_ref,
                    p.field,
                    p.message
                ])?;
            }
        }
        self.summary.problems = self.problems.len();
        self.conn
            .prepare_cached("UPDATE locations SET last_refresh_ms = ?2 WHERE id = ?1")?
            .execute(params![self.location_id, now_ms()])?;
        self.conn.execute_batch("COMMIT")?;
        self.open = false;
        // Cached answers (facets) stay valid when nothing an entity shows
        // changed; a periodic refresh of an unchanged catalog keeps them.
        let s = &self.summary;
        if s.added + s.updated + s.removed + s.kept_invalid > 0 || self.touched {
            self.store.bump();
        }
        Ok(std::mem::take(&mut self.summary))
    }
}

impl Drop for SqliteRefresh<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

struct Existing {
    id: i64,
    uid: String,
    location_id: String,
    etag: String,
    source: String,
    has_errors: bool,
}

fn etag_of(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(24);
    for b in &digest[..12] {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Values longer than this are not indexed (an API definition, say): they
/// are useless as filter values and would bloat the table.
const MAX_INDEXED_VALUE: usize = 200;

/// Flattens an entity into `(key, lower-cased value, original value when it
/// differs)` rows: `metadata.tags` gives one row per tag, nested objects give
/// dotted keys (`metadata.annotations.github.com/project-slug`).
pub(crate) fn flatten(
    value: &Value,
    prefix: &mut String,
    out: &mut Vec<(String, String, Option<String>)>,
) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let len = prefix.len();
                if !prefix.is_empty() {
                    prefix.push('.');
                }
                prefix.push_str(&k.to_lowercase());
                flatten(v, prefix, out);
                prefix.truncate(len);
            }
        }
        Value::Array(items) => {
            for item in items {
                flatten(item, prefix, out);
            }
        }
        Value::Null => {}
        leaf => {
            let text = match leaf {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if text.len() > MAX_INDEXED_VALUE || prefix.len() > MAX_INDEXED_VALUE {
                return;
            }
            let lower = text.to_lowercase();
            let original = (lower != text).then_some(text);
            out.push((prefix.clone(), lower, original));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattens_nested_values_and_lists() {
        let mut out = Vec::new();
        flatten(
            &json!({"kind": "Component", "metadata": {"tags": ["a", "b"], "annotations": {"github.com/project-slug": "Acme/Pay"}},
                    "spec": {"definition": "x".repeat(500), "n": 3, "none": null}}),
            &mut String::new(),
            &mut out,
        );
        let keys: Vec<String> = out
            .iter()
            .map(|(k, v, o)| {
                format!(
                    "{k}={v}{}",
                    o.as_deref().map(|o| format!(" ({o})")).unwrap_or_default()
                )
            })
            .collect();
        assert_eq!(
            keys,
            vec![
                "kind=component (Component)",
                "metadata.annotations.github.com/project-slug=acme/pay (Acme/Pay)",
                "metadata.tags=a",
                "metadata.tags=b",
                "spec.n=3"
            ]
        );
    }

    #[test]
    fn etags_are_stable_and_content_sensitive() {
        assert_eq!(etag_of("a"), etag_of("a"));
        assert_ne!(etag_of("a"), etag_of("b"));
        assert_eq!(etag_of("a").len(), 24);
    }
}
