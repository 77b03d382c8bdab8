//! Writing one location refresh as one transaction.

use std::collections::{HashMap, HashSet};
use std::sync::MutexGuard;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{ProblemRecord, RefreshTx, Sqlite, StoreError, now_ms};
use crate::catalog::{EntityRef, ValidEntity};

/// A valid entity on its way to the store, with what a refresh writes
/// worked out from it. Its ref, relation targets and etag are worked out
/// at once; its stored JSON and search rows by [`Draft::work_out`] (the
/// thread that reads a group's locations calls it, while the writer
/// writes the location before) or else by the writer, when it finds the
/// entity new or changed. A sixth of the writer's time at 100,000
/// entities went to this work, all of it under the write lock.
pub struct Draft {
    pub(super) entity_ref: EntityRef,
    pub(super) key: String,
    /// `(type, target ref)` of each outgoing relation.
    pub(super) relations: Vec<(&'static str, String)>,
    pub(super) stored: Stored,
}

/// What of an entity a backend stores, worked out or not yet.
pub(super) struct Stored {
    etag: String,
    owner: Option<String>,
    form: Form,
}

enum Form {
    Value(Value),
    /// Worked out with a fresh uid.
    Ready(Box<Prepared>),
}

impl Draft {
    pub fn of(entity: ValidEntity) -> Result<Draft, StoreError> {
        let ValidEntity {
            entity_ref,
            value,
            owner,
            relations,
        } = entity;
        let plain =
            serde_json::to_string(&value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Draft {
            key: entity_ref.to_string(),
            entity_ref,
            relations: relations
                .into_iter()
                .map(|r| (r.kind, r.target.to_string()))
                .collect(),
            stored: Stored {
                etag: etag_of(&plain),
                owner: owner.map(|o| o.to_string()),
                form: Form::Value(value),
            },
        })
    }

    /// The entity's ref, as stored.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Works out the stored JSON (with a fresh uid) and the search rows,
    /// as if the entity were new.
    pub fn work_out(&mut self) -> Result<(), StoreError> {
        let stored = &mut self.stored;
        if let Form::Value(value) = &mut stored.form {
            let value = std::mem::take(value);
            let p = prepared(value, new_uid(), &stored.etag, &stored.owner)?;
            stored.form = Form::Ready(p);
        }
        Ok(())
    }
}

/// Time-ordered (v7): a new uid goes at the end of the uid index, where a
/// random one would dirty a page anywhere in it.
fn new_uid() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl Stored {
    /// The stored form, under the entity's uid when it has one already.
    fn prepare(self, uid: Option<&str>) -> Result<Box<Prepared>, StoreError> {
        match self.form {
            Form::Ready(mut p) => {
                if let Some(uid) = uid {
                    // The fresh uid (74 random bits) is nowhere else in
                    // the body.
                    p.body = p.body.replacen(&p.uid, uid, 1);
                    p.uid = uid.to_string();
                }
                Ok(p)
            }
            Form::Value(value) => {
                let uid = uid.map_or_else(new_uid, str::to_string);
                prepared(value, uid, &self.etag, &self.owner)
            }
        }
    }
}

/// The stored form of `value` under `uid`.
fn prepared(
    mut value: Value,
    uid: String,
    etag: &str,
    owner: &Option<String>,
) -> Result<Box<Prepared>, StoreError> {
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("uid".into(), Value::String(uid.clone()));
        meta.insert("etag".into(), Value::String(etag.to_string()));
    }
    let body = serde_json::to_string(&value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let title = value
        .pointer("/metadata/title")
        .and_then(Value::as_str)
        .map(str::to_lowercase);
    let mut flat = Vec::new();
    flatten(&value, &mut String::new(), &mut flat);
    // uid and etag are unique per entity: useless as filters or facets.
    flat.retain(|(k, _, _)| k != "metadata.uid" && k != "metadata.etag");
    // One row per key and value, the first spelling kept (`[Go, go]` is
    // one tag), so a backend inserts them without conflict checks.
    flat.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    flat.dedup_by(|later, first| (&later.0, &later.1) == (&first.0, &first.1));
    Ok(Box::new(Prepared {
        uid,
        etag: etag.to_string(),
        body,
        title,
        owner: owner.clone(),
        flat,
    }))
}

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

/// What a refresh has seen so far, and the rules every backend's refresh
/// follows with it: one definition per entity (the first wins), the first
/// location to claim an entity keeps it, an unchanged entity is not
/// written again, and what was not seen again goes at commit.
#[derive(Default)]
pub(super) struct RefreshBook {
    pub(super) location_id: String,
    /// Ids of the stored entities this refresh produced or kept.
    pub(super) seen: HashSet<i64>,
    /// Refs produced so far, with the source that produced each.
    seen_refs: HashMap<String, String>,
    /// Sources that could not be read: what they gave before stays.
    kept_sources: HashSet<String>,
    pub(super) problems: Vec<ProblemRecord>,
    pub(super) summary: RefreshSummary,
    /// Set when an unchanged entity's source or error status was rewritten.
    pub(super) touched: bool,
}

/// An entity about to be written: its new stored form.
pub(super) struct Prepared {
    pub(super) uid: String,
    pub(super) etag: String,
    pub(super) body: String,
    /// Lower-cased, for full text.
    pub(super) title: Option<String>,
    pub(super) owner: Option<String>,
    /// `(key, lower-cased value, original)` rows for `search`.
    pub(super) flat: Vec<(String, String, Option<String>)>,
}

/// What to do with a valid entity.
pub(super) enum Put {
    Refused(Rejected),
    /// Stored as it is; rewrite its source and clear its errors when asked.
    Unchanged {
        rewrite: bool,
    },
    Write(Box<Prepared>),
}

impl RefreshBook {
    pub(super) fn new(location_id: &str) -> RefreshBook {
        RefreshBook {
            location_id: location_id.to_string(),
            ..RefreshBook::default()
        }
    }

    /// Decides what the entity `key` (`stored`, from `source`; `existing`
    /// is its stored row, `claimed_by` names another location's target)
    /// comes to.
    pub(super) fn put(
        &mut self,
        key: &str,
        stored: Stored,
        source: &str,
        existing: Option<&Existing>,
        claimed_by: &mut dyn FnMut(&str) -> Result<String, StoreError>,
    ) -> Result<Put, StoreError> {
        if let Some(first) = self.seen_refs.get(key) {
            return Ok(Put::Refused(Rejected::Duplicate {
                first_source: first.clone(),
            }));
        }
        if let Some(e) = existing
            && e.location_id != self.location_id
        {
            return Ok(Put::Refused(Rejected::ClaimedElsewhere {
                location: claimed_by(&e.location_id)?,
            }));
        }
        self.seen_refs.insert(key.to_string(), source.to_string());
        if let Some(e) = existing {
            self.seen.insert(e.id);
            if e.etag == stored.etag {
                let rewrite = e.source != source || e.has_errors;
                self.touched |= rewrite;
                self.summary.unchanged += 1;
                return Ok(Put::Unchanged { rewrite });
            }
        }
        if existing.is_some() {
            self.summary.updated += 1;
        } else {
            self.summary.added += 1;
        }
        Ok(Put::Write(
            stored.prepare(existing.map(|e| e.uid.as_str()))?,
        ))
    }

    /// Takes back the decision to write `key` as a new entity: the
    /// database found it was another location's after all.
    pub(super) fn refuse_new(&mut self, key: &str) {
        self.seen_refs.remove(key);
        self.summary.added -= 1;
    }

    /// The errors to keep on `existing` (the stored `entity_ref`, now
    /// invalid), as its status items; `None` when it is not this refresh's
    /// to keep.
    pub(super) fn keep_invalid(
        &mut self,
        entity_ref: &EntityRef,
        existing: Option<Existing>,
        errors: &[String],
    ) -> Option<(i64, String)> {
        let key = entity_ref.to_string();
        let e = existing?;
        if e.location_id != self.location_id || self.seen_refs.contains_key(&key) {
            return None;
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
        self.seen.insert(e.id);
        self.seen_refs.insert(key, e.source);
        self.summary.kept_invalid += 1;
        Some((e.id, Value::Array(items).to_string()))
    }

    /// Keeps the `count` entities stored from an unchanged `source`
    /// (`rows`: each one's id, ref and whether it has errors), when they
    /// are all there and clean.
    pub(super) fn keep_unchanged(
        &mut self,
        source: &str,
        count: usize,
        rows: Vec<(i64, String, bool)>,
    ) -> bool {
        if rows.len() != count
            || rows
                .iter()
                .any(|(_, r, errors)| *errors || self.seen_refs.contains_key(r))
        {
            return false;
        }
        for (id, entity_ref, _) in rows {
            self.seen.insert(id);
            self.seen_refs.insert(entity_ref, source.to_string());
        }
        self.summary.unchanged += count;
        self.summary.unchanged_files += 1;
        true
    }

    pub(super) fn keep_source(&mut self, source: &str) {
        self.kept_sources.insert(source.to_string());
    }

    /// Whether a stored entity of this location (`id`, from `source`) goes
    /// at commit: not seen again, and its source was read.
    pub(super) fn gone(&self, id: i64, source: &str) -> bool {
        !self.seen.contains(&id) && !self.kept_sources.contains(source)
    }

    /// Whether anything an entity shows changed (caches are dropped).
    pub(super) fn changed(&self) -> bool {
        let s = &self.summary;
        s.added + s.updated + s.removed + s.kept_invalid > 0 || self.touched
    }
}

/// A refresh in progress: entities are written as they are read, so memory
/// stays bounded by one file, and everything commits or nothing does.
pub(super) struct SqliteRefresh<'s> {
    store: &'s Sqlite,
    conn: MutexGuard<'s, Connection>,
    book: RefreshBook,
    open: bool,
    /// Whether anything an entity shows changed, in any location so far.
    changed: bool,
}

impl<'s> SqliteRefresh<'s> {
    pub(super) fn begin(store: &'s Sqlite, location_id: &str) -> Result<Self, StoreError> {
        let conn = store.writer();
        super::checkpoint::restart_large_wal(&conn, &store.path);
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(SqliteRefresh {
            store,
            conn,
            book: RefreshBook::new(location_id),
            open: true,
            changed: false,
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
        &self.book.location_id
    }

    fn put(&mut self, draft: Draft, source: &str) -> Result<Result<(), Rejected>, StoreError> {
        let Draft {
            entity_ref,
            key,
            relations,
            stored,
        } = draft;
        let existing = self.existing(&key)?;
        let conn = &self.conn;
        let decided = self
            .book
            .put(&key, stored, source, existing.as_ref(), &mut |location| {
                Ok(conn
                    .query_row(
                        "SELECT type || ':' || target FROM locations WHERE id = ?1",
                        [location],
                        |r| r.get(0),
                    )
                    .optional()?
                    .unwrap_or_else(|| location.to_string()))
            })?;
        let p = match decided {
            Put::Refused(why) => return Ok(Err(why)),
            Put::Unchanged { rewrite } => {
                if let (true, Some(e)) = (rewrite, &existing) {
                    self.conn
                        .prepare_cached(
                            "UPDATE entities SET source = ?2, errors = NULL WHERE id = ?1",
                        )?
                        .execute(params![e.id, source])?;
                }
                return Ok(Ok(()));
            }
            Put::Write(p) => p,
        };
        let now = now_ms();
        let id = match &existing {
            Some(e) => {
                self.conn
                    .prepare_cached(
                        "UPDATE entities SET title = ?2, owner_ref = ?3, source = ?4, etag = ?5, body = ?6,
                         errors = NULL, updated_ms = ?7 WHERE id = ?1",
                    )?
                    .execute(params![e.id, p.title, p.owner, source, p.etag, p.body, now])?;
                self.conn
                    .prepare_cached("DELETE FROM search WHERE entity_id = ?1")?
                    .execute([e.id])?;
                self.conn
                    .prepare_cached("DELETE FROM entity_relations WHERE source_id = ?1")?
                    .execute([e.id])?;
                record_change(&self.conn, &key, e.id)?;
                e.id
            }
            None => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO entities (uid, ref, kind, namespace, name, title, owner_ref, location_id, source,
                         etag, body, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
                    )?
                    .execute(params![
                        p.uid,
                        key,
                        entity_ref.kind,
                        entity_ref.namespace,
                        entity_ref.name,
                        p.title,
                        p.owner,
                        self.book.location_id,
                        source,
                        p.etag,
                        p.body,
                        now
                    ])?;
                let id = self.conn.last_insert_rowid();
                record_change(&self.conn, &key, id)?;
                self.book.seen.insert(id);
                id
            }
        };
        let search: Vec<[&dyn rusqlite::ToSql; 4]> = p
            .flat
            .iter()
            .map(|(k, v, original)| [k as &dyn rusqlite::ToSql, v, &id, original])
            .collect();
        insert_all(
            &self.conn,
            "search (key, value, entity_id, original)",
            &search,
        )?;
        let relations: Vec<[&dyn rusqlite::ToSql; 3]> = relations
            .iter()
            .map(|(kind, target)| [&id as &dyn rusqlite::ToSql, kind, target])
            .collect();
        insert_all(
            &self.conn,
            "entity_relations (source_id, type, target_ref)",
            &relations,
        )?;
        Ok(Ok(()))
    }

    fn keep_invalid(
        &mut self,
        entity_ref: &EntityRef,
        errors: &[String],
    ) -> Result<bool, StoreError> {
        let existing = self.existing(&entity_ref.to_string())?;
        let Some((id, json)) = self.book.keep_invalid(entity_ref, existing, errors) else {
            return Ok(false);
        };
        self.conn
            .prepare_cached("UPDATE entities SET errors = ?2 WHERE id = ?1")?
            .execute(params![id, json])?;
        Ok(true)
    }

    fn keep_unchanged(&mut self, source: &str, count: usize) -> Result<bool, StoreError> {
        let rows: Vec<(i64, String, bool)> = self
            .conn
            .prepare_cached(
                "SELECT id, ref, errors IS NOT NULL FROM entities WHERE location_id = ?1 AND source = ?2",
            )?
            .query_map(params![self.book.location_id, source], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        Ok(self.book.keep_unchanged(source, count, rows))
    }

    fn keep_source(&mut self, source: &str) {
        self.book.keep_source(source);
    }

    fn problem(&mut self, problem: ProblemRecord) {
        self.book.problems.push(problem);
    }

    fn next_location(&mut self, location_id: &str) -> Result<RefreshSummary, StoreError> {
        let summary = self.finish_location()?;
        self.book = RefreshBook::new(location_id);
        Ok(summary)
    }

    fn commit(mut self: Box<Self>) -> Result<RefreshSummary, StoreError> {
        let summary = self.finish_location()?;
        self.conn.execute_batch("COMMIT")?;
        self.open = false;
        // Cached answers (facets) stay valid when nothing an entity shows
        // changed; a periodic refresh of an unchanged catalog keeps them.
        if self.changed {
            self.store.bump();
        }
        Ok(summary)
    }
}

impl SqliteRefresh<'_> {
    /// Removes what the current location no longer produced and records
    /// its problems and refresh time; answers its summary.
    fn finish_location(&mut self) -> Result<RefreshSummary, StoreError> {
        let mut gone = Vec::new();
        {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT id, source, ref FROM entities WHERE location_id = ?1")?;
            let mut rows = stmt.query([&self.book.location_id])?;
            while let Some(row) = rows.next()? {
                let id: i64 = row.get(0)?;
                if self.book.gone(id, &row.get::<_, String>(1)?) {
                    gone.push((id, row.get::<_, String>(2)?));
                }
            }
        }
        for (id, entity_ref) in &gone {
            record_change(&self.conn, entity_ref, *id)?;
            self.conn
                .prepare_cached("DELETE FROM search WHERE entity_id = ?1")?
                .execute([id])?;
            self.conn
                .prepare_cached("DELETE FROM entity_relations WHERE source_id = ?1")?
                .execute([id])?;
            self.conn
                .prepare_cached("DELETE FROM entities WHERE id = ?1")?
                .execute([id])?;
        }
        self.book.summary.removed = gone.len();
        self.conn
            .prepare_cached("DELETE FROM problems WHERE location_id = ?1")?
            .execute([&self.book.location_id])?;
        {
            let mut insert = self.conn.prepare_cached(
                "INSERT INTO problems (location_id, source, line, col, entity_ref, field, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for p in &self.book.problems {
                insert.execute(params![
                    self.book.location_id,
                    p.source,
                    p.line,
                    p.column,
                    p.entity_ref,
                    p.field,
                    p.message
                ])?;
            }
        }
        self.book.summary.problems = self.book.problems.len();
        self.conn
            .prepare_cached("UPDATE locations SET last_refresh_ms = ?2 WHERE id = ?1")?
            .execute(params![self.book.location_id, now_ms()])?;
        self.changed |= self.book.changed();
        Ok(std::mem::take(&mut self.book.summary))
    }
}

impl Drop for SqliteRefresh<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Rows written by one statement at most. A statement per row made the
/// writer bind, step and reset one for each search row and relation (18
/// for a component of the Backstage benchmark).
const ROWS_PER_INSERT: usize = 16;

/// Inserts `rows` into `into` (a table and its columns), up to
/// [`ROWS_PER_INSERT`] a statement, ignoring rows already there. Such a
/// statement never needs undoing half-way (a conflict skips its row), so
/// SQLite keeps no statement journal for it, however many rows it holds.
fn insert_all<const W: usize>(
    conn: &Connection,
    into: &str,
    rows: &[[&dyn rusqlite::ToSql; W]],
) -> Result<(), StoreError> {
    let row = format!("({})", vec!["?"; W].join(", "));
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT OR IGNORE INTO {into} VALUES {}",
            vec![row.as_str(); chunk.len()].join(", ")
        );
        let args: Vec<&dyn rusqlite::ToSql> = chunk.iter().flatten().copied().collect();
        conn.prepare_cached(&sql)?.execute(&*args)?;
    }
    Ok(())
}

/// Records that entity `id` (`entity_ref`) was added, changed or removed,
/// for the query and search indexes to follow. Every write of what an
/// entity shows (its row, not only its source or errors) calls this.
pub(super) fn record_change(
    conn: &Connection,
    entity_ref: &str,
    id: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO entity_changes (ref, entity_id) VALUES (?1, ?2)")?
        .execute(params![entity_ref, id])?;
    Ok(())
}

/// The stored row of an entity a refresh meets again.
pub(super) struct Existing {
    pub(super) id: i64,
    pub(super) uid: String,
    pub(super) location_id: String,
    pub(super) etag: String,
    pub(super) source: String,
    pub(super) has_errors: bool,
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
