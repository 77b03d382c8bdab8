//! Reading entities: Backstage's filter language over the `search` table,
//! ordering, offset and cursor paging, facets, and the assembly of the
//! final entity JSON (stored body + live relations + status).
//!
//! Responses are assembled as strings from the stored JSON: an entity is
//! never parsed on the way out unless `fields` asks for a projection.

use std::fmt::Write as _;

use base64::Engine as _;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use roaring::RoaringBitmap;

use super::index::{self, Current, TextField};
use super::{Catalog, Facets, Locations, ORPHAN_SQL, Sqlite, Stats, StoreError};
use crate::catalog::EntityRef;
use crate::catalog::relations;
use std::sync::atomic::Ordering;

pub use crate::catalog::filter::{Filter, FilterSet, Order, QueryError};

/// `GET /entities`: filter, order, offset paging, projection.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub filter: Filter,
    pub order: Vec<Order>,
    pub limit: Option<usize>,
    pub offset: usize,
    pub fields: Vec<String>,
}

/// A full-text condition of by-query, lower-cased once when made (search
/// values are stored lower-cased).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FullText {
    term: String,
    fields: Vec<String>,
}

impl FullText {
    /// `term` matched as a substring of `fields` (of name and title when
    /// none are given).
    pub fn new(term: &str, fields: &[String]) -> FullText {
        FullText {
            term: term.to_lowercase(),
            fields: fields.iter().map(|f| f.to_lowercase()).collect(),
        }
    }
}

/// `GET /entities/by-query`: the first request names the query, later ones
/// pass only the cursor, which carries it.
#[derive(Debug, Clone, Default)]
pub struct PageQuery {
    pub filter: Filter,
    pub order: Option<Order>,
    pub full_text: Option<FullText>,
    pub limit: usize,
    pub cursor: Option<String>,
    pub fields: Vec<String>,
}

/// One page of by-query.
#[derive(Debug, Clone)]
pub struct EntityPage {
    pub items: Vec<String>,
    pub total_items: i64,
    pub next_cursor: Option<String>,
    pub prev_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cursor {
    filter: Filter,
    order: Order,
    text: Option<FullText>,
    /// Sort value and id of the row to continue after (or before).
    key: (String, i64),
    backward: bool,
    total: i64,
    limit: usize,
}

type CursorMac = hmac::Hmac<sha2::Sha256>;

impl Cursor {
    /// `base64(json).base64(hmac)`: the cursor carries the whole query, so
    /// it is signed with the store's key; a client can pass it back but not
    /// change it (to skip the filter's limits, say).
    fn encode(&self, key: &[u8]) -> String {
        use hmac::{KeyInit, Mac};
        let b64 = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let body = b64.encode(serde_json::to_vec(self).unwrap_or_default());
        let mut mac = CursorMac::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(body.as_bytes());
        format!("{body}.{}", b64.encode(mac.finalize().into_bytes()))
    }

    fn decode(text: &str, key: &[u8]) -> Result<Cursor, QueryError> {
        use hmac::{KeyInit, Mac};
        let b64 = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let forged = || {
            QueryError::Cursor(
                "it was changed or made by another portal; start again from the first page".into(),
            )
        };
        let (body, sig) = text.split_once('.').ok_or_else(forged)?;
        let sig = b64.decode(sig).map_err(|_| forged())?;
        let mut mac = CursorMac::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(body.as_bytes());
        mac.verify_slice(&sig).map_err(|_| forged())?;
        let bytes = b64
            .decode(body)
            .map_err(|e| QueryError::Cursor(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| QueryError::Cursor(e.to_string()))
    }
}

/// A condition matching at most this many entities is selective: it drives
/// the query and the rest are checked per row.
const SELECTIVE: usize = 2000;

/// One condition of a filter set.
enum Cond<'a> {
    Search {
        key: &'a str,
        values: &'a [String],
    },
    Relation {
        kind: String,
        back: Option<&'static str>,
        values: &'a [String],
    },
    Text(&'a FullText),
}

fn conds(set: &FilterSet) -> Vec<Cond<'_>> {
    set.0
        .iter()
        .map(|(key, values)| match key.strip_prefix("relations.") {
            Some(rel) => {
                let kind =
                    relations::canonical(rel).map_or_else(|| rel.to_string(), str::to_string);
                Cond::Relation {
                    back: relations::reverse(&kind),
                    kind,
                    values,
                }
            }
            None => Cond::Search { key, values },
        })
        .collect()
}

/// The ids of the entities `c` matches, when there are at most
/// [`SELECTIVE`]; `None` when there are more.
fn candidates(conn: &Connection, c: &Cond<'_>) -> Result<Option<Vec<i64>>, StoreError> {
    let mut sql = Sql::default();
    sql.push("SELECT DISTINCT id FROM (");
    sql.driver(c);
    let _ = write!(sql.text, ") LIMIT {}", SELECTIVE + 1);
    let mut stmt = conn.prepare_cached(&sql.text)?;
    let ids = stmt
        .query_map(params_from_iter(sql.args.iter()), |r| r.get(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    Ok((ids.len() <= SELECTIVE).then_some(ids))
}

/// SQL text with numbered parameters, for SQLite (`?1`) or, with `pg`,
/// PostgreSQL (`$1`). Every parameter is text.
#[derive(Default)]
pub(super) struct Sql {
    pub(super) text: String,
    pub(super) args: Vec<String>,
    pub(super) pg: bool,
    /// Ends each `EXISTS` subquery: `OFFSET 0` keeps PostgreSQL from
    /// turning it into a join, so it is checked per row as rows come.
    fence: &'static str,
}

impl Sql {
    pub(super) fn postgres() -> Sql {
        Sql {
            pg: true,
            ..Sql::default()
        }
    }

    fn arg(&mut self, v: impl Into<String>) -> String {
        self.args.push(v.into());
        if self.pg {
            format!("${}", self.args.len())
        } else {
            format!("?{}", self.args.len())
        }
    }

    /// An integer parameter (parameters are bound as text).
    fn int_arg(&mut self, v: i64) -> String {
        let a = self.arg(v.to_string());
        if self.pg {
            format!("CAST({a}::TEXT AS BIGINT)")
        } else {
            format!("CAST({a} AS INTEGER)")
        }
    }

    /// The condition that always holds.
    fn truth(&self) -> &'static str {
        if self.pg { "TRUE" } else { "1" }
    }

    pub(super) fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    fn values(&mut self, column: &str, values: &[String]) {
        let _ = write!(self.text, " AND {column} IN (");
        for (n, v) in values.iter().enumerate() {
            if n > 0 {
                self.push(", ");
            }
            let a = self.arg(v.clone());
            self.push(&a);
        }
        self.push(")");
    }

    fn like(&mut self, term: &str) -> String {
        let escaped = term
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        self.arg(format!("%{escaped}%"))
    }

    /// A SELECT of the ids of the entities matching `c`.
    fn driver(&mut self, c: &Cond<'_>) {
        match c {
            Cond::Search { key, values } => {
                let k = self.arg(*key);
                let _ = write!(
                    self.text,
                    "SELECT entity_id AS id FROM search WHERE key = {k}"
                );
                if !values.is_empty() {
                    self.values("value", values);
                }
            }
            Cond::Relation { kind, back, values } => {
                let t = self.arg(kind.clone());
                let _ = write!(
                    self.text,
                    "SELECT e2.id AS id FROM relations r JOIN entities e2 ON e2.ref = r.source_ref WHERE r.type = {t}"
                );
                if !values.is_empty() {
                    self.values("r.target_ref", values);
                }
                if let Some(b) = back {
                    let b = self.arg(*b);
                    let _ = write!(
                        self.text,
                        " UNION ALL SELECT e2.id AS id FROM relations r JOIN entities e2 ON e2.ref = r.target_ref WHERE r.type = {b}"
                    );
                    if !values.is_empty() {
                        self.values("r.source_ref", values);
                    }
                }
            }
            Cond::Text(t) if t.fields.is_empty() => {
                let p = self.like(&t.term);
                let _ = write!(
                    self.text,
                    "SELECT id FROM entities INDEXED BY entities_text WHERE name LIKE {p} ESCAPE '\\' OR title LIKE {p} ESCAPE '\\'"
                );
            }
            Cond::Text(t) => {
                let p = self.like(&t.term);
                self.push("SELECT entity_id AS id FROM search WHERE 1");
                self.values("key", &t.fields);
                let _ = write!(self.text, " AND value LIKE {p} ESCAPE '\\'");
            }
        }
    }

    /// A condition on the row `e`.
    fn exists(&mut self, c: &Cond<'_>) {
        match c {
            Cond::Search { key, values: [] } => {
                let k = self.arg(*key);
                let fence = self.fence;
                let _ = write!(
                    self.text,
                    "EXISTS (SELECT 1 FROM search s WHERE s.entity_id = e.id AND s.key = {k}{fence})"
                );
            }
            Cond::Search {
                key: "kind",
                values,
            } => {
                // The kind column (lower-cased like search values) lets the
                // (kind, name) index serve "components, by name".
                let t = self.truth();
                self.push(t);
                self.values("e.kind", values);
            }
            Cond::Search { key, values } => {
                let k = self.arg(*key);
                let _ = write!(
                    self.text,
                    "EXISTS (SELECT 1 FROM search s WHERE s.key = {k}"
                );
                self.values("s.value", values);
                let fence = self.fence;
                let _ = write!(self.text, " AND s.entity_id = e.id{fence})");
            }
            Cond::Relation { kind, back, values } => {
                let t = self.arg(kind.clone());
                let _ = write!(
                    self.text,
                    "(EXISTS (SELECT 1 FROM relations r WHERE r.source_ref = e.ref AND r.type = {t}"
                );
                if !values.is_empty() {
                    self.values("r.target_ref", values);
                }
                self.push(self.fence);
                self.push(")");
                if let Some(b) = back {
                    let b = self.arg(*b);
                    let _ = write!(
                        self.text,
                        " OR EXISTS (SELECT 1 FROM relations r WHERE r.target_ref = e.ref AND r.type = {b}"
                    );
                    if !values.is_empty() {
                        self.values("r.source_ref", values);
                    }
                    self.push(")");
                }
                self.push(")");
            }
            Cond::Text(t) if t.fields.is_empty() => {
                let p = self.like(&t.term);
                let _ = write!(
                    self.text,
                    "(e.name LIKE {p} ESCAPE '\\' OR e.title LIKE {p} ESCAPE '\\')"
                );
            }
            Cond::Text(t)
                if t.fields
                    .iter()
                    .all(|f| f == "metadata.name" || f == "metadata.title") =>
            {
                // The columns hold what `search` holds for these fields,
                // lower-cased alike, and have indexes of their own.
                let p = self.like(&t.term);
                let checks: Vec<String> = t
                    .fields
                    .iter()
                    .map(|f| {
                        let column = if f == "metadata.name" {
                            "e.name"
                        } else {
                            "e.title"
                        };
                        format!("{column} LIKE {p} ESCAPE '\\'")
                    })
                    .collect();
                let _ = write!(self.text, "({})", checks.join(" OR "));
            }
            Cond::Text(t) => {
                let p = self.like(&t.term);
                self.push("EXISTS (SELECT 1 FROM search s WHERE s.entity_id = e.id");
                self.values("s.key", &t.fields);
                let _ = write!(self.text, " AND s.value LIKE {p} ESCAPE '\\')");
            }
        }
    }

    /// Writes `FROM … WHERE …` selecting the entities of `filter` (and the
    /// full-text condition), and returns the expression to order by for
    /// "by id". Planned by hand, because SQLite cannot know which condition
    /// is selective (`kind=component` matches half the catalog,
    /// `spec.owner=team-x` a few dozen):
    ///
    /// - a condition matching fewer than [`SELECTIVE`] entities drives: its
    ///   ids are fetched once and joined, the rest checked per row;
    /// - otherwise, when the caller orders by id, a single-value condition's
    ///   index range (already in id order) drives and the query stops at
    ///   the limit;
    /// - otherwise entities are scanned (in `kind, name` order when a kind
    ///   is given) and checked per row.
    fn push_from_where(
        &mut self,
        conn: &Connection,
        filter: &Filter,
        text: Option<&FullText>,
        by_id: bool,
    ) -> Result<&'static str, StoreError> {
        if filter.0.len() > 1 {
            self.push_scan(filter, text);
            return Ok("e.id");
        }
        let mut all: Vec<Cond<'_>> = filter.0.first().map(conds).unwrap_or_default();
        if let Some(t) = text {
            all.push(Cond::Text(t));
        }
        let mut best: Option<(usize, Vec<i64>)> = None;
        for (i, c) in all.iter().enumerate() {
            if let Some(ids) = candidates(conn, c)?
                && best.as_ref().is_none_or(|(_, b)| ids.len() < b.len())
            {
                best = Some((i, ids));
            }
        }
        let id = if let Some((i, ids)) = best {
            all.remove(i);
            let list = self.arg(serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into()));
            let _ = write!(
                self.text,
                "FROM json_each({list}) d CROSS JOIN entities e ON e.id = d.value WHERE 1"
            );
            "e.id"
        } else if let Some(i) = all
            .iter()
            .position(|c| by_id && matches!(c, Cond::Search { values, .. } if values.len() == 1))
        {
            let Cond::Search { key, values } = all.remove(i) else {
                unreachable!("matched above")
            };
            let (k, v) = (self.arg(key), self.arg(values[0].clone()));
            let _ = write!(
                self.text,
                "FROM search d CROSS JOIN entities e ON e.id = d.entity_id WHERE d.key = {k} AND d.value = {v}"
            );
            "d.entity_id"
        } else {
            self.push("FROM entities e WHERE 1");
            "e.id"
        };
        for c in &all {
            self.push(" AND ");
            self.exists(c);
        }
        Ok(id)
    }

    /// PostgreSQL's `FROM … WHERE …` for a list in id order, and the
    /// expression to order by. PostgreSQL plans from statistics that
    /// assume values are spread evenly over ids; when they are not (a
    /// catalog read kind by kind), its merge of two broad conditions walks
    /// thousands of rows to fill a page of 50. So, as SQLite's planner
    /// does, when no condition is selective (`probe` counts each one's
    /// entities up to [`SELECTIVE`] + 1, in one statement), a one-value
    /// condition's index range drives in id order and the others are
    /// checked per row, stopping at the limit. Anything else is planned by
    /// PostgreSQL.
    pub(super) fn push_by_id(
        &mut self,
        filter: &Filter,
        probe: &mut dyn FnMut(&Sql) -> Result<Vec<i64>, StoreError>,
    ) -> Result<&'static str, StoreError> {
        let all: Vec<Cond<'_>> = match filter.0.as_slice() {
            [set] => conds(set),
            _ => Vec::new(),
        };
        let drives = |c: &Cond<'_>| matches!(c, Cond::Search { values, .. } if values.len() == 1);
        if !all.iter().any(drives) || all.iter().any(|c| matches!(c, Cond::Text(_))) {
            self.push_scan(filter, None);
            return Ok("e.id");
        }
        let mut counts = Sql::postgres();
        counts.push("SELECT ");
        for (i, c) in all.iter().enumerate() {
            if i > 0 {
                counts.push(", ");
            }
            counts.push("(SELECT count(*) FROM (");
            counts.driver(c);
            let _ = write!(counts.text, " LIMIT {}) x)", SELECTIVE + 1);
        }
        if probe(&counts)?.iter().any(|&n| n as usize <= SELECTIVE) {
            self.push_scan(filter, None);
            return Ok("e.id");
        }
        let mut all = all;
        let i = all.iter().position(drives).expect("checked above");
        let Cond::Search { key, values } = all.remove(i) else {
            unreachable!("matched above")
        };
        let (k, v) = (self.arg(key), self.arg(values[0].clone()));
        let _ = write!(
            self.text,
            "FROM search d JOIN entities e ON e.id = d.entity_id WHERE d.key = {k} AND d.value = {v}"
        );
        self.fence = " OFFSET 0";
        for c in &all {
            self.push(" AND ");
            self.exists(c);
        }
        self.fence = "";
        Ok("d.entity_id")
    }

    /// Writes the SQL of one facet's `(value, count)` rows, most frequent
    /// first, over the entities `filter` selects (`from_where` writes its
    /// `FROM … WHERE …`).
    pub(super) fn push_facet(
        &mut self,
        facet: &str,
        filter: &Filter,
        from_where: &mut dyn FnMut(&mut Sql) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let key = facet.to_lowercase();
        let t = self.truth();
        if let Some(rel) = key.strip_prefix("relations.") {
            // Pairs from both directions, each counted once.
            let kind = relations::canonical(rel).unwrap_or(rel);
            let k = self.arg(kind);
            let b = self.arg(relations::reverse(kind).unwrap_or(""));
            self.push(&format!(
                "SELECT tgt, count(*) AS n FROM (SELECT source_ref AS ent, target_ref AS tgt FROM relations WHERE type = {k} \
                 UNION SELECT target_ref, source_ref FROM relations WHERE type = {b}) p WHERE {t}"
            ));
            if !filter.0.is_empty() {
                self.push(" AND ent IN (SELECT e.ref ");
                from_where(self)?;
                self.push(")");
            }
            self.push(" GROUP BY tgt");
        } else {
            let k = self.arg(key);
            if self.pg {
                // Counted from the index alone; each value's original
                // spelling (the smallest among the selection's, as in
                // SQLite) from the index of the rows that have one:
                // PostgreSQL keeps `original` in the table, where the rows
                // of one key are spread over all of it.
                self.push(&format!(
                    "SELECT COALESCE((SELECT min(o.original) FROM search o \
                     WHERE o.key = {k} AND o.value = f.value AND o.original IS NOT NULL"
                ));
                if !filter.0.is_empty() {
                    self.push(" AND o.entity_id IN (SELECT e.id ");
                    from_where(self)?;
                    self.push(")");
                }
                self.push(&format!(
                    "), f.value), f.n AS n FROM (SELECT s.value, count(*) AS n FROM search s WHERE s.key = {k}"
                ));
            } else {
                self.push(&format!(
                    "SELECT COALESCE(min(s.original), s.value), count(*) AS n FROM search s WHERE s.key = {k}"
                ));
            }
            if !filter.0.is_empty() {
                self.push(" AND s.entity_id IN (SELECT e.id ");
                from_where(self)?;
                self.push(")");
            }
            self.push(" GROUP BY s.value");
            if self.pg {
                self.push(") f");
            }
        }
        self.push(" ORDER BY n DESC, 1 ASC");
        Ok(())
    }

    /// Writes `FROM entities e WHERE …`, every condition checked per row
    /// (the database plans the rest).
    pub(super) fn push_scan(&mut self, filter: &Filter, text: Option<&FullText>) {
        let t = self.truth();
        let _ = write!(self.text, "FROM entities e WHERE {t}");
        if !filter.0.is_empty() {
            self.push(" AND (");
            for (i, set) in filter.0.iter().enumerate() {
                if i > 0 {
                    self.push(" OR ");
                }
                let _ = write!(self.text, "({t}");
                for c in conds(set) {
                    self.push(" AND ");
                    self.exists(&c);
                }
                self.push(")");
            }
            self.push(")");
        }
        if let Some(text) = text {
            self.push(" AND ");
            self.exists(&Cond::Text(text));
        }
    }

    /// The SQL expression an order field sorts by.
    pub(super) fn sort_expr(&mut self, field: &str) -> String {
        match field {
            "metadata.name" => "e.name".into(),
            "kind" => "e.kind".into(),
            "metadata.namespace" => "e.namespace".into(),
            "metadata.title" => "COALESCE(e.title, e.name)".into(),
            other => {
                let k = self.arg(other.to_string());
                format!(
                    "COALESCE((SELECT min(value) FROM search s WHERE s.entity_id = e.id AND s.key = {k}), '')"
                )
            }
        }
    }
}

/// The rows of one page before their entities are read: each one's sort
/// value and id, in page order (one more than the limit when there is a
/// next page), and the size of the whole selection.
pub(super) struct PageRows {
    pub(super) keys: Vec<(String, i64)>,
    pub(super) total: i64,
}

/// The rows one by-query page asks for, whichever backend answers.
pub(super) struct PageSpec<'a> {
    pub(super) filter: &'a Filter,
    pub(super) order: &'a Order,
    pub(super) text: Option<&'a FullText>,
    pub(super) key: Option<&'a (String, i64)>,
    pub(super) ascending: bool,
    pub(super) limit: usize,
    /// Whether the total is wanted (a later page keeps the first's).
    pub(super) count: bool,
}

impl PageSpec<'_> {
    /// Over `from` (`FROM … WHERE …`): the SQL counting the selection,
    /// which takes the first `n` of the page's arguments, and the SQL of
    /// the page's rows (`id, sort value`).
    pub(super) fn statements(&self, from: Sql) -> (String, usize, Sql) {
        let count = format!("SELECT count(*) {}", from.text);
        let n = from.args.len();
        let mut sql = Sql {
            text: String::new(),
            args: from.args,
            pg: from.pg,
            fence: "",
        };
        let expr = sql.sort_expr(&self.order.field);
        sql.text = format!("SELECT e.id, {expr} {}", from.text);
        if let Some((v, id)) = self.key {
            let (v, id) = (sql.arg(v.clone()), sql.int_arg(*id));
            let cmp = if self.ascending { ">" } else { "<" };
            sql.push(&format!(
                " AND ({expr} {cmp} {v} OR ({expr} = {v} AND e.id {cmp} {id}))"
            ));
        }
        let dir = if self.ascending { "ASC" } else { "DESC" };
        sql.push(&format!(
            " ORDER BY {expr} {dir}, e.id {dir} LIMIT {}",
            self.limit + 1
        ));
        (count, n, sql)
    }

    /// The page's rows in SQLite, planned by hand: for orders the query
    /// index does not keep (anything but the name).
    fn run(&self, conn: &Connection) -> Result<PageRows, StoreError> {
        let mut from = Sql::default();
        from.push_from_where(conn, self.filter, self.text, false)?;
        let (count, n, sql) = self.statements(from);
        let total = if self.count {
            conn.prepare_cached(&count)?
                .query_row(params_from_iter(sql.args[..n].iter()), |r| r.get(0))?
        } else {
            0
        };
        let keys = conn
            .prepare_cached(&sql.text)?
            .query_map(params_from_iter(sql.args.iter()), |r| {
                Ok((r.get::<_, String>(1)?, r.get::<_, i64>(0)?))
            })?
            .collect::<Result<_, _>>()?;
        Ok(PageRows { keys, total })
    }
}

/// The entities `filter` and `text` select, from the query index where it
/// keeps the condition and from SQL where it does not (relations, full
/// text on other fields).
fn selection(
    index: &mut Current<'_>,
    conn: &Connection,
    filter: &Filter,
    text: Option<&FullText>,
) -> Result<RoaringBitmap, StoreError> {
    let mut selected = if filter.0.is_empty() {
        index.all()
    } else {
        let mut any = RoaringBitmap::new();
        for set in &filter.0 {
            let mut each = Vec::new();
            for c in conds(set) {
                each.push(match c {
                    Cond::Search { key, values } => index.search(key, values)?,
                    other => sql_ids(conn, &other)?,
                });
            }
            // Smallest first: the intersection shrinks fastest.
            each.sort_by_key(RoaringBitmap::len);
            let mut each = each.into_iter();
            let mut all = each.next().unwrap_or_default();
            for ids in each {
                all &= ids;
            }
            any |= all;
        }
        any
    };
    if let Some(t) = text {
        let fields: Option<Vec<TextField>> = if t.fields.is_empty() {
            Some(vec![TextField::Name, TextField::Title])
        } else {
            t.fields.iter().map(|f| TextField::of(f)).collect()
        };
        selected = match fields {
            Some(fields) => index.text(&t.term, &fields, &selected),
            None => selected & sql_ids(conn, &Cond::Text(t))?,
        };
    }
    Ok(selected)
}

/// Every entity condition `c` matches, from SQL.
fn sql_ids(conn: &Connection, c: &Cond<'_>) -> Result<RoaringBitmap, StoreError> {
    let mut sql = Sql::default();
    sql.push("SELECT id FROM (");
    sql.driver(c);
    sql.push(")");
    index::load(conn, &sql.text, params_from_iter(sql.args.iter()))
}

/// Columns every entity read selects, in this order.
const ENTITY_COLUMNS: &str = "e.id, e.body, e.errors, e.ref";

fn orphan_column() -> String {
    format!("({ORPHAN_SQL})")
}

impl Catalog for Sqlite {
    fn entity_by_ref(
        &self,
        r: &EntityRef,
        fields: &[String],
    ) -> Result<Option<String>, StoreError> {
        self.read(|conn| {
            let sql = format!(
                "SELECT {ENTITY_COLUMNS}, {} FROM entities e WHERE e.ref = ?1",
                orphan_column()
            );
            one_entity(conn, &sql, r.to_string(), fields)
        })
    }

    fn each_entity(&self, page: usize, each: &mut dyn FnMut(String)) -> Result<(), StoreError> {
        let sql = format!(
            "SELECT {ENTITY_COLUMNS}, {} FROM entities e WHERE e.id > ?1 ORDER BY e.id LIMIT ?2",
            orphan_column()
        );
        each_by_id(each, &mut |after| {
            self.read(|conn| {
                let mut stmt = conn.prepare_cached(&sql)?;
                let mut rows = stmt.query(params![after, page as i64])?;
                let mut out = Vec::with_capacity(page);
                while let Some(row) = rows.next()? {
                    out.push((row.get(0)?, assemble(conn, row, &[])?));
                }
                Ok(out)
            })
        })
    }

    fn entity_by_uid(&self, uid: &str, fields: &[String]) -> Result<Option<String>, StoreError> {
        self.read(|conn| {
            let sql = format!(
                "SELECT {ENTITY_COLUMNS}, {} FROM entities e WHERE e.uid = ?1",
                orphan_column()
            );
            one_entity(conn, &sql, uid, fields)
        })
    }

    fn entities_by_refs(
        &self,
        refs: &[Option<EntityRef>],
        fields: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        self.read(|conn| {
            let sql = format!(
                "SELECT {ENTITY_COLUMNS}, {} FROM entities e WHERE e.ref = ?1",
                orphan_column()
            );
            refs.iter()
                .map(|r| match r {
                    Some(r) => one_entity(conn, &sql, r.to_string(), fields),
                    None => Ok(None),
                })
                .collect()
        })
    }

    fn list_each(
        &self,
        q: &ListQuery,
        each: &mut dyn FnMut(String) -> bool,
    ) -> Result<(), StoreError> {
        self.read(|conn| {
            let mut sql = Sql::default();
            let orphan = orphan_column();
            sql.push(&format!("SELECT {ENTITY_COLUMNS}, {orphan} "));
            let id = sql.push_from_where(conn, &q.filter, None, q.order.is_empty())?;
            sql.push(" ORDER BY ");
            for o in &q.order {
                let expr = sql.sort_expr(&o.field);
                let dir = if o.desc { "DESC" } else { "ASC" };
                sql.push(&format!("{expr} {dir}, "));
            }
            sql.push(id);
            if let Some(limit) = q.limit {
                sql.push(&format!(" LIMIT {limit}"));
            } else if q.offset > 0 {
                sql.push(" LIMIT -1");
            }
            if q.offset > 0 {
                sql.push(&format!(" OFFSET {}", q.offset));
            }
            let mut stmt = conn.prepare_cached(&sql.text)?;
            let mut rows = stmt.query(params_from_iter(sql.args.iter()))?;
            while let Some(row) = rows.next()? {
                let json = assemble(conn, row, &q.fields)?;
                if !each(json) {
                    break;
                }
            }
            Ok(())
        })
    }

    /// Kept while this process's catalog generation stands (SQLite has
    /// one writing process).
    fn filter_refs(
        &self,
        filter: &Filter,
    ) -> Result<Vec<(i64, String, Option<String>)>, StoreError> {
        let refs = self.refs_cache.get_or_within(
            format!("{filter:?}"),
            self.generation(),
            super::KEPT_FILTERS,
            || self.filter_refs_uncached(filter).map(std::sync::Arc::new),
        )?;
        Ok(refs.as_ref().clone())
    }

    fn values_of_key(&self, key: &str) -> Result<Vec<(i64, String)>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT entity_id, COALESCE(original, value) FROM search WHERE key = ?1",
                )?
                .query_map(params![key], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn entity_values(&self, id: i64) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT key, COALESCE(original, value) FROM search WHERE entity_id = ?1
                     ORDER BY key, value",
                )?
                .query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn list(&self, q: &ListQuery) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        self.list_each(q, &mut |e| {
            out.push(e);
            true
        })?;
        Ok(out)
    }

    fn page(&self, q: &PageQuery) -> Result<Result<EntityPage, QueryError>, StoreError> {
        self.read(|conn| {
            let entity = format!(
                "SELECT {ENTITY_COLUMNS}, {} FROM entities e WHERE e.id = ?1",
                orphan_column()
            );
            paged(
                q,
                &self.cursor_key,
                &mut |spec| {
                    if spec.order.field == "metadata.name" {
                        self.page_by_name(conn, spec)
                    } else {
                        spec.run(conn)
                    }
                },
                &mut |id, fields| one_entity(conn, &entity, id, fields),
            )
        })
    }

    fn facets(&self, facets: &[String], filter: &Filter) -> Result<Facets, StoreError> {
        self.facet_cache
            .get_or(format!("{facets:?}|{filter:?}"), self.generation(), || {
                self.facets_uncached(facets, filter)
            })
    }

    fn facets_uncached(&self, facets: &[String], filter: &Filter) -> Result<Facets, StoreError> {
        self.read(|conn| {
            let mut out = Facets::new();
            for facet in facets {
                let mut sql = Sql::default();
                sql.push_facet(facet, filter, &mut |sql| {
                    sql.push_from_where(conn, filter, None, false).map(drop)
                })?;
                let mut stmt = conn.prepare_cached(&sql.text)?;
                let rows = stmt.query_map(params_from_iter(sql.args.iter()), |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
                out.insert(facet.clone(), rows.collect::<Result<Vec<_>, _>>()?);
            }
            Ok(out)
        })
    }

    fn orphans(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT e.ref, e.owner_ref FROM entities e WHERE {ORPHAN_SQL} ORDER BY e.ref"
            ))?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn location_of_entity(&self, r: &EntityRef) -> Result<Option<super::Location>, StoreError> {
        match self.entity_origin(r)? {
            Some((id, _)) => Locations::location(self, &id),
            None => Ok(None),
        }
    }

    fn entity_origin(&self, r: &EntityRef) -> Result<Option<(String, String)>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT location_id, source FROM entities WHERE ref = ?1")?
                .query_row([r.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?)
        })
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Counted again when this process's generation moves, and at least
    /// every few seconds (`StatsCache`).
    fn stats(&self) -> Result<Stats, StoreError> {
        self.stats_cache.get_or((0, self.generation()), || {
            self.read(|conn| {
                let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0));
                Ok(Stats {
                    entities: count("SELECT count(*) FROM entities")?,
                    locations: count("SELECT count(*) FROM locations")?,
                    problems: count("SELECT count(*) FROM problems")?,
                    orphans: count(&format!(
                        "SELECT count(*) FROM entities e WHERE {ORPHAN_SQL}"
                    ))?,
                })
            })
        })
    }

    fn entity_count(&self) -> Result<i64, StoreError> {
        let generation = self.generation();
        if let Some((g, n)) = *self.count_cache.lock().unwrap_or_else(|p| p.into_inner())
            && g == generation
        {
            return Ok(n);
        }
        let n = self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT count(*) FROM entities")?
                .query_row([], |r| r.get::<_, i64>(0))?)
        })?;
        *self.count_cache.lock().unwrap_or_else(|p| p.into_inner()) = Some((generation, n));
        Ok(n)
    }

    fn user_by(&self, field: &str, value: &str) -> Result<Option<String>, StoreError> {
        let key = super::user_key(field);
        let value = value.trim().to_lowercase();
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT e.ref FROM search s JOIN entities e ON e.id = s.entity_id
                     WHERE s.key = ?1 AND s.value = ?2 AND e.kind = 'user' ORDER BY e.id LIMIT 1",
                )?
                .query_row(params![key, value], |r| r.get(0))
                .optional()?)
        })
    }

    fn groups_of(&self, user_ref: &str) -> Result<Vec<String>, StoreError> {
        let generation = self.generation();
        if let Some((g, groups)) = self
            .groups_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(user_ref)
            && *g == generation
        {
            return Ok(groups.clone());
        }
        let groups = self.groups_of_uncached(user_ref)?;
        let mut cache = self.groups_cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= 100_000 {
            cache.clear();
        }
        cache.insert(user_ref.to_string(), (generation, groups.clone()));
        Ok(groups)
    }

    fn existing_refs(&self, refs: &[&str]) -> Result<Vec<bool>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT 1 FROM entities WHERE ref = ?1")?;
            refs.iter().map(|r| Ok(stmt.exists(params![r])?)).collect()
        })
    }

    fn facet_values(&self) -> Result<Vec<String>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT DISTINCT kind FROM entities
                     UNION SELECT DISTINCT owner_ref FROM entities WHERE owner_ref IS NOT NULL
                     UNION SELECT DISTINCT value FROM search WHERE key = 'spec.type'",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<_>, _>>()?)
        })
    }
}

impl Sqlite {
    fn filter_refs_uncached(
        &self,
        filter: &Filter,
    ) -> Result<Vec<(i64, String, Option<String>)>, StoreError> {
        self.read(|conn| {
            let mut sql = Sql::default();
            sql.push("SELECT e.id, e.ref, e.owner_ref ");
            let id = sql.push_from_where(conn, filter, None, true)?;
            sql.push(" ORDER BY ");
            sql.push(id);
            let mut stmt = conn.prepare_cached(&sql.text)?;
            let rows = stmt
                .query_map(params_from_iter(sql.args.iter()), |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// A page in name order from the query index: the selection is a
    /// bitmap expression, its size the total, and the page a walk of the
    /// name order (see `index.rs`).
    fn page_by_name(&self, conn: &Connection, spec: &PageSpec<'_>) -> Result<PageRows, StoreError> {
        let mut index = self.index.current(conn)?;
        let selected = selection(&mut index, conn, spec.filter, spec.text)?;
        let from = spec
            .key
            .map(|(name, id)| (name.as_str(), u32::try_from(*id).unwrap_or(u32::MAX)));
        let keys = index
            .by_name(&selected, from, spec.ascending, spec.limit + 1)
            .into_iter()
            .map(|(name, id)| (name, i64::from(id)))
            .collect();
        Ok(PageRows {
            keys,
            total: selected.len() as i64,
        })
    }
}

/// Every entity to `each`, in id order, from batches `batch` reads after
/// an id (each read on its own, so no read stays open between batches).
pub(super) fn each_by_id(
    each: &mut dyn FnMut(String),
    batch: &mut dyn FnMut(i64) -> Result<Vec<(i64, String)>, StoreError>,
) -> Result<(), StoreError> {
    let mut after = 0i64;
    loop {
        let found = batch(after)?;
        let Some(&(last, _)) = found.last() else {
            return Ok(());
        };
        after = last;
        for (_, json) in found {
            each(json);
        }
    }
}

/// Reads one entity by id, projected to the fields given.
pub(super) type EntityById<'a> =
    dyn FnMut(i64, &[String]) -> Result<Option<String>, StoreError> + 'a;

/// One by-query page, whichever backend answers: the query from `q` or
/// from its signed cursor, the page's `rows`, each `entity` by id (one
/// removed since it was selected is left out), and the cursors to the
/// pages on either side.
pub(super) fn paged(
    q: &PageQuery,
    cursor_key: &[u8],
    rows: &mut dyn FnMut(&PageSpec<'_>) -> Result<PageRows, StoreError>,
    entity: &mut EntityById<'_>,
) -> Result<Result<EntityPage, QueryError>, StoreError> {
    let (filter, order, text, key, backward, total, limit) = match &q.cursor {
        Some(c) => match Cursor::decode(c, cursor_key) {
            Ok(c) => (
                c.filter,
                c.order,
                c.text,
                Some(c.key),
                c.backward,
                Some(c.total),
                c.limit,
            ),
            Err(e) => return Ok(Err(e)),
        },
        None => (
            q.filter.clone(),
            q.order.clone().unwrap_or(Order {
                field: "metadata.name".into(),
                desc: false,
            }),
            q.full_text.clone(),
            None,
            false,
            None,
            q.limit,
        ),
    };
    let limit = limit.clamp(1, 1000);
    let found = rows(&PageSpec {
        filter: &filter,
        order: &order,
        text: text.as_ref(),
        key: key.as_ref(),
        // Walking backwards flips the comparison and the sort.
        ascending: order.desc == backward,
        limit,
        count: total.is_none(),
    })?;
    // A later page keeps the total of the first.
    let total = total.unwrap_or(found.total);
    let more = found.keys.len() > limit;
    let mut selected = found.keys;
    selected.truncate(limit);
    let mut items = Vec::with_capacity(selected.len());
    let mut keys = Vec::with_capacity(selected.len());
    for key in selected {
        if let Some(json) = entity(key.1, &q.fields)? {
            items.push(json);
            keys.push(key);
        }
    }
    if backward {
        items.reverse();
        keys.reverse();
    }
    let cursor = |key: &(String, i64), backward: bool| {
        Cursor {
            filter: filter.clone(),
            order: order.clone(),
            text: text.clone(),
            key: key.clone(),
            backward,
            total,
            limit,
        }
        .encode(cursor_key)
    };
    let (has_next, has_prev) = if backward {
        (true, more)
    } else {
        (more, key.is_some())
    };
    Ok(Ok(EntityPage {
        next_cursor: if has_next {
            keys.last().map(|k| cursor(k, false))
        } else {
            None
        },
        prev_cursor: if has_prev {
            keys.first().map(|k| cursor(k, true))
        } else {
            None
        },
        items,
        total_items: total,
    }))
}

fn one_entity(
    conn: &Connection,
    sql: &str,
    key: impl rusqlite::ToSql,
    fields: &[String],
) -> Result<Option<String>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query([key])?;
    match rows.next()? {
        Some(row) => Ok(Some(assemble(conn, row, fields)?)),
        None => Ok(None),
    }
}

/// Builds the served JSON of one entity from a row of
/// `id, body, errors, ref, orphan`.
fn assemble(
    conn: &Connection,
    row: &rusqlite::Row<'_>,
    fields: &[String],
) -> Result<String, StoreError> {
    let id: i64 = row.get(0)?;
    let entity_ref: String = row.get(3)?;
    let mut stmt = conn.prepare_cached(RELATIONS_SQL)?;
    let relations = stmt
        .query_map(params![entity_ref, id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    splice(
        &Stored {
            entity_ref: &entity_ref,
            body: &row.get::<_, String>(1)?,
            errors: row.get::<_, Option<String>>(2)?.as_deref(),
            orphan: row.get(4)?,
        },
        relations,
        fields,
    )
}

/// An entity's relations, declared (false) and declared by others
/// (true), by its ref (`?1`) and id (`?2`): its own are stored under its
/// id. (PostgreSQL reads them in the entity's own statement instead:
/// `pg::catalog::entity_columns`.)
const RELATIONS_SQL: &str = "SELECT 0, type, target_ref FROM entity_relations WHERE source_id = ?2 \
     UNION ALL SELECT 1, type, source_ref FROM relations WHERE target_ref = ?1";

/// An entity as stored.
pub(super) struct Stored<'a> {
    pub(super) entity_ref: &'a str,
    pub(super) body: &'a str,
    pub(super) errors: Option<&'a str>,
    pub(super) orphan: bool,
}

/// The served JSON of a stored entity: its body with the live relations
/// (`(reversed, type, other ref)` as [`RELATIONS_SQL`] reads them) and its
/// status spliced in, projected to `fields` when any are asked.
pub(super) fn splice(
    e: &Stored<'_>,
    relations: Vec<(bool, String, String)>,
    fields: &[String],
) -> Result<String, StoreError> {
    let mut out = String::with_capacity(e.body.len() + 256);
    let Some(open) = e.body.strip_suffix('}') else {
        return Err(StoreError::Corrupt(format!(
            "stored body of {} is not an object",
            e.entity_ref
        )));
    };
    out.push_str(open);
    out.push_str(",\"relations\":[");
    // Declared relations, and the reverse of those declared by others.
    let mut found = std::collections::BTreeSet::new();
    for (reversed, kind, other) in relations {
        let kind = if reversed {
            match relations::reverse(&kind) {
                Some(k) => k.to_string(),
                None => continue,
            }
        } else {
            kind
        };
        found.insert((kind, other));
    }
    let mut first = true;
    for (kind, target) in found {
        if !first {
            out.push(',');
        }
        first = false;
        let parsed = EntityRef::parse(&target, None, "default").ok();
        let target_obj = match parsed {
            Some(p) => {
                serde_json::json!({"kind": p.kind, "namespace": p.namespace, "name": p.name})
            }
            None => Value::Null,
        };
        let _ = write!(
            out,
            "{{\"type\":{},\"targetRef\":{},\"target\":{}}}",
            Value::String(kind),
            Value::String(target),
            target_obj
        );
    }
    out.push(']');
    if e.errors.is_some() || e.orphan {
        let mut items: Vec<Value> = match e.errors {
            Some(errors) => serde_json::from_str(errors).unwrap_or_default(),
            None => Vec::new(),
        };
        if e.orphan {
            items.push(serde_json::json!({
                "type": "greenroom.dev/orphan-owner",
                "level": "warning",
                "message": "The owner of this entity does not resolve to any Group or User in the catalog",
            }));
        }
        let _ = write!(out, ",\"status\":{}", serde_json::json!({ "items": items }));
    }
    out.push('}');
    if fields.is_empty() {
        return Ok(out);
    }
    let full: Value = serde_json::from_str(&out).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(project(&full, fields).to_string())
}

/// Keeps only the listed dotted paths of an entity (Backstage's `fields`).
pub fn project(entity: &Value, fields: &[String]) -> Value {
    let mut out = Value::Object(Default::default());
    for field in fields {
        let parts: Vec<&str> = field.split('.').collect();
        let mut src = entity;
        let mut found = true;
        for p in &parts {
            match src.get(p) {
                Some(v) => src = v,
                None => {
                    found = false;
                    break;
                }
            }
        }
        if !found {
            continue;
        }
        let mut dst = &mut out;
        for (i, p) in parts.iter().enumerate() {
            let Some(obj) = dst.as_object_mut() else {
                break;
            };
            if i == parts.len() - 1 {
                obj.insert((*p).to_string(), src.clone());
                break;
            }
            dst = obj
                .entry((*p).to_string())
                .or_insert_with(|| Value::Object(Default::default()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_filters_like_backstage() {
        let f = Filter::parse([
            "kind=Component,spec.type=service,spec.type=website,metadata.tags",
            "kind=API",
        ])
        .unwrap();
        assert_eq!(f.0.len(), 2);
        assert_eq!(
            f.0[0].0,
            vec![
                ("kind".to_string(), vec!["component".to_string()]),
                (
                    "spec.type".to_string(),
                    vec!["service".to_string(), "website".to_string()]
                ),
                ("metadata.tags".to_string(), vec![]),
            ]
        );
        assert!(Filter::parse([","]).is_err());
        assert!(Filter::parse(["=x"]).is_err());
    }

    #[test]
    fn parses_orders() {
        assert_eq!(
            Order::parse_prefixed("desc:metadata.name").unwrap(),
            Order {
                field: "metadata.name".into(),
                desc: true
            }
        );
        assert!(Order::parse_prefixed("up:metadata.name").is_err());
        assert_eq!(
            Order::parse_suffixed("spec.type,asc").unwrap(),
            Order {
                field: "spec.type".into(),
                desc: false
            }
        );
        assert!(!Order::parse_suffixed("metadata.title").unwrap().desc);
        assert!(Order::parse_suffixed("x,sideways").is_err());
    }

    #[test]
    fn projects_fields() {
        let e = json!({"kind": "Component", "metadata": {"name": "a", "tags": ["x"]}, "spec": {"owner": "t"}});
        assert_eq!(
            project(
                &e,
                &["metadata.name".into(), "spec".into(), "missing.x".into()]
            ),
            json!({"metadata": {"name": "a"}, "spec": {"owner": "t"}})
        );
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor {
            filter: Filter::default(),
            order: Order {
                field: "metadata.name".into(),
                desc: false,
            },
            text: None,
            key: ("a".into(), 7),
            backward: false,
            total: 9,
            limit: 20,
        };
        let key = b"0123456789abcdef0123456789abcdef";
        let text = c.encode(key);
        let back = Cursor::decode(&text, key).unwrap();
        assert_eq!(back.key, ("a".into(), 7));
        assert!(Cursor::decode("not a cursor!", key).is_err());
        // Another portal's key, or a changed body with the old signature:
        // refused, and the message says why.
        assert!(Cursor::decode(&text, b"another key").is_err());
        let (_, sig) = text.split_once('.').unwrap();
        let forged = Cursor {
            limit: 100_000,
            ..c.clone()
        }
        .encode(b"guessed");
        let (body, _) = forged.split_once('.').unwrap();
        let err = Cursor::decode(&format!("{body}.{sig}"), key).unwrap_err();
        assert!(err.to_string().contains("was changed"), "{err}");
        // An unsigned cursor of the old form is refused too.
        let (old_form, _) = text.split_once('.').unwrap();
        assert!(Cursor::decode(old_form, key).is_err());
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::super::*;

        fn piece() -> impl Strategy<Value = &'static str> {
            prop_oneof![
                Just("kind"),
                Just("="),
                Just(","),
                Just("spec.type"),
                Just("metadata.name"),
                Just("relations.ownedBy"),
                Just("!"),
                Just("component"),
                Just("group:default/a"),
                Just("metadata.annotations.backstage.io/x"),
                Just(" "),
                Just("%"),
                Just("\\"),
                Just("\u{0}"),
                Just("é"),
                Just("'"),
                Just(".."),
                Just("[0]"),
            ]
        }

        proptest! {
            /// Filters and orders from any query string: parsed or refused,
            /// and a parsed filter keeps its limit of conditions.
            #[test]
            fn fuzz_filters_and_orders(params in proptest::collection::vec(
                proptest::collection::vec(piece(), 0..40).prop_map(|p| p.concat()), 0..8),
                text in "\\PC{0,200}") {
                let mut all = params.clone();
                all.push(text.clone());
                if let Ok(f) = Filter::parse(all.iter().map(String::as_str)) {
                    let conditions: usize = f.0.iter().map(|s| s.0.len()).sum();
                    prop_assert!(conditions <= 100);
                }
                let _ = FilterSet::parse(&text);
                let _ = Order::parse_prefixed(&text);
                let _ = Order::parse_suffixed(&text);
            }

            /// Any cursor text is refused cleanly unless signed with the
            /// store's key.
            #[test]
            fn fuzz_cursors(text in "[A-Za-z0-9_.\\-]{0,300}", bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
                let key = b"fuzz key";
                prop_assert!(Cursor::decode(&text, key).is_err());
                // A signed body that is not a cursor: refused after the MAC.
                use base64::Engine;
                use hmac::{KeyInit, Mac};
                let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
                let mut mac = CursorMac::new_from_slice(key).unwrap();
                mac.update(body.as_bytes());
                let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
                let _ = Cursor::decode(&format!("{body}.{sig}"), key);
            }
        }
    }
}
