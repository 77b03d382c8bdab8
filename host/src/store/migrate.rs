//! `greenroom migrate`: a SQLite store copied into an empty PostgreSQL
//! database, table by table in one PostgreSQL transaction, and every
//! table's row count checked against the source before it commits. Ids,
//! uids, etags, the paging cursors' key and the audit trail's sequence
//! come across unchanged, so links, cursors and caches stay valid; the
//! change feed does not (every process builds its search index afresh
//! from the catalog).

use std::path::Path;

use rusqlite::types::ValueRef;
use tokio_postgres::types::ToSql;

use super::pg::Postgres;
use super::{Sqlite, StoreError};

/// How a column is read from SQLite and written to PostgreSQL.
#[derive(Clone, Copy)]
enum Kind {
    Int,
    /// PostgreSQL `INTEGER` (line numbers, HTTP statuses).
    Int32,
    Real,
    Text,
    Bytes,
    /// SQLite's 0/1.
    Bool,
}

struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    /// Source order: ids, or the order rows were written in.
    order: &'static str,
    /// The identity column whose values come across (and whose sequence
    /// then moves past them).
    identity: Option<&'static str>,
    /// What to do on a row the target already has.
    conflict: &'static str,
}

use Kind::{Bool, Bytes, Int, Int32, Real, Text};

/// Every table a portal's data lives in, parents first.
const TABLES: &[Table] = &[
    Table {
        name: "host_keys",
        columns: &[("name", Text), ("value", Bytes)],
        order: "name",
        identity: None,
        // The target made a cursor key of its own when it was created.
        conflict: "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
    },
    Table {
        name: "locations",
        columns: &[
            ("id", Text),
            ("type", Text),
            ("target", Text),
            ("origin", Text),
            ("created_ms", Int),
            ("last_refresh_ms", Int),
        ],
        order: "rowid",
        identity: None,
        conflict: "",
    },
    Table {
        name: "entities",
        columns: &[
            ("id", Int),
            ("uid", Text),
            ("ref", Text),
            ("kind", Text),
            ("namespace", Text),
            ("name", Text),
            ("title", Text),
            ("owner_ref", Text),
            ("location_id", Text),
            ("source", Text),
            ("etag", Text),
            ("body", Text),
            ("errors", Text),
            ("created_ms", Int),
            ("updated_ms", Int),
        ],
        order: "id",
        identity: Some("id"),
        conflict: "",
    },
    Table {
        name: "search",
        columns: &[
            ("key", Text),
            ("value", Text),
            ("entity_id", Int),
            ("original", Text),
        ],
        order: "entity_id",
        identity: None,
        conflict: "",
    },
    Table {
        name: "relations",
        columns: &[("source_ref", Text), ("type", Text), ("target_ref", Text)],
        order: "source_ref",
        identity: None,
        conflict: "",
    },
    Table {
        name: "problems",
        columns: &[
            ("location_id", Text),
            ("source", Text),
            ("line", Int32),
            ("col", Int32),
            ("entity_ref", Text),
            ("field", Text),
            ("message", Text),
        ],
        order: "id",
        identity: None,
        conflict: "",
    },
    Table {
        name: "plugin_kv",
        columns: &[
            ("plugin_id", Text),
            ("key", Text),
            ("value", Bytes),
            ("expires_ms", Int),
        ],
        order: "plugin_id, key",
        identity: None,
        conflict: "",
    },
    Table {
        name: "plugin_grants",
        columns: &[
            ("plugin_id", Text),
            ("hosts", Text),
            ("secrets", Text),
            ("disabled", Bool),
        ],
        order: "plugin_id",
        identity: None,
        conflict: "",
    },
    Table {
        name: "action_runs",
        columns: &[
            ("id", Int),
            ("started_ms", Int),
            ("finished_ms", Int),
            ("plugin_id", Text),
            ("action_id", Text),
            ("label", Text),
            ("entity_ref", Text),
            ("user_ref", Text),
            ("input", Text),
            ("status", Text),
            ("message", Text),
        ],
        order: "id",
        identity: Some("id"),
        conflict: "",
    },
    Table {
        name: "facts",
        columns: &[
            ("entity_ref", Text),
            ("name", Text),
            ("type", Text),
            ("number", Real),
            ("text", Text),
            ("source", Text),
            ("url", Text),
            ("at_ms", Int),
        ],
        order: "entity_ref, name",
        identity: None,
        conflict: "",
    },
    Table {
        name: "fact_history",
        columns: &[
            ("entity_ref", Text),
            ("name", Text),
            ("at_ms", Int),
            ("type", Text),
            ("number", Real),
            ("text", Text),
            ("source", Text),
        ],
        // Written in this order, so equal times keep their order.
        order: "rowid",
        identity: None,
        conflict: "",
    },
    Table {
        name: "events",
        columns: &[
            ("id", Int),
            ("source", Text),
            ("source_id", Text),
            ("kind", Text),
            ("entity_ref", Text),
            ("title", Text),
            ("url", Text),
            ("at_ms", Int),
            ("tone", Text),
            ("actor", Text),
        ],
        order: "id",
        identity: Some("id"),
        conflict: "",
    },
    Table {
        name: "campaigns",
        columns: &[
            ("name", Text),
            ("body", Text),
            ("created_by", Text),
            ("created_ms", Int),
        ],
        order: "name",
        identity: None,
        conflict: "",
    },
    Table {
        name: "status_history",
        columns: &[
            ("subject", Text),
            ("entity_ref", Text),
            ("at_ms", Int),
            ("status", Int32),
        ],
        order: "subject, entity_ref, at_ms",
        identity: None,
        conflict: "",
    },
    Table {
        name: "nudge_log",
        columns: &[
            ("id", Int),
            ("at_ms", Int),
            ("subject", Text),
            ("team", Text),
            ("channel", Text),
            ("status", Text),
            ("targets", Text),
            ("attempts", Int32),
            ("detail", Text),
        ],
        order: "id",
        identity: Some("id"),
        conflict: "",
    },
    Table {
        name: "nudge_snoozes",
        columns: &[
            ("subject", Text),
            ("team", Text),
            ("until_ms", Int),
            ("by", Text),
        ],
        order: "subject, team",
        identity: None,
        conflict: "",
    },
    Table {
        name: "api_tokens",
        columns: &[
            ("id", Text),
            ("name", Text),
            ("hash", Bytes),
            ("scopes", Text),
            ("owner", Text),
            ("created_by", Text),
            ("created_ms", Int),
            ("expires_ms", Int),
            ("revoked_ms", Int),
            ("person", Text),
        ],
        order: "created_ms, id",
        identity: None,
        conflict: "",
    },
    Table {
        name: "sessions",
        columns: &[
            ("id", Text),
            ("hash", Bytes),
            ("csrf", Text),
            ("login", Text),
            ("subject", Text),
            ("user_ref", Text),
            ("address", Text),
            ("created_ms", Int),
            ("seen_ms", Int),
            ("expires_ms", Int),
            ("ended_ms", Int),
        ],
        order: "created_ms, id",
        identity: None,
        conflict: "",
    },
    Table {
        name: "audit",
        columns: &[
            ("seq", Int),
            ("at_ms", Int),
            ("actor", Text),
            ("action", Text),
            ("target", Text),
            ("address", Text),
            ("outcome", Text),
            ("status", Int32),
        ],
        order: "seq",
        identity: Some("seq"),
        conflict: "",
    },
];

/// Rows sent to PostgreSQL in one statement.
const BATCH: usize = 5_000;

/// One table's rows as PostgreSQL arrays, a column at a time.
enum Column {
    Int(Vec<Option<i64>>),
    Int32(Vec<Option<i32>>),
    Real(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
    Bytes(Vec<Option<Vec<u8>>>),
    Bool(Vec<Option<bool>>),
}

impl Column {
    fn new(kind: Kind) -> Column {
        match kind {
            Int => Column::Int(Vec::new()),
            Int32 => Column::Int32(Vec::new()),
            Real => Column::Real(Vec::new()),
            Text => Column::Text(Vec::new()),
            Bytes => Column::Bytes(Vec::new()),
            Bool => Column::Bool(Vec::new()),
        }
    }

    /// The array type `unnest` reads this column as.
    fn array_type(&self) -> &'static str {
        match self {
            Column::Int(_) => "BIGINT[]",
            Column::Int32(_) => "INTEGER[]",
            Column::Real(_) => "DOUBLE PRECISION[]",
            Column::Text(_) => "TEXT[]",
            Column::Bytes(_) => "BYTEA[]",
            Column::Bool(_) => "BOOLEAN[]",
        }
    }

    fn push(&mut self, table: &str, value: ValueRef<'_>) -> Result<(), StoreError> {
        /// Pushes `read`, or says no when a value was there but not of
        /// the column's type.
        fn one<T>(v: &mut Vec<Option<T>>, null: bool, read: Option<T>) -> bool {
            if read.is_none() && !null {
                return false;
            }
            v.push(read);
            true
        }
        let null = value == ValueRef::Null;
        let int = match value {
            ValueRef::Integer(n) => Some(n),
            _ => None,
        };
        let pushed = match self {
            Column::Int(v) => one(v, null, int),
            Column::Int32(v) => one(v, null, int.map(|n| i32::try_from(n).unwrap_or(i32::MAX))),
            Column::Bool(v) => one(v, null, int.map(|n| n != 0)),
            Column::Real(v) => one(
                v,
                null,
                match value {
                    ValueRef::Real(x) => Some(x),
                    ValueRef::Integer(n) => Some(n as f64),
                    _ => None,
                },
            ),
            Column::Text(v) => one(
                v,
                null,
                match value {
                    ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
                    _ => None,
                },
            ),
            Column::Bytes(v) => one(
                v,
                null,
                match value {
                    ValueRef::Blob(b) | ValueRef::Text(b) => Some(b.to_vec()),
                    _ => None,
                },
            ),
        };
        if pushed {
            Ok(())
        } else {
            Err(StoreError::Corrupt(format!(
                "{table} holds a {:?} value where {} was expected",
                value.data_type(),
                self.array_type()
            )))
        }
    }

    fn param(&self) -> &(dyn ToSql + Sync) {
        match self {
            Column::Int(v) => v,
            Column::Int32(v) => v,
            Column::Real(v) => v,
            Column::Text(v) => v,
            Column::Bytes(v) => v,
            Column::Bool(v) => v,
        }
    }

    fn clear(&mut self) {
        match self {
            Column::Int(v) => v.clear(),
            Column::Int32(v) => v.clear(),
            Column::Real(v) => v.clear(),
            Column::Text(v) => v.clear(),
            Column::Bytes(v) => v.clear(),
            Column::Bool(v) => v.clear(),
        }
    }
}

/// One table copied: how many rows the source and the target hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub table: &'static str,
    pub source: i64,
    pub target: i64,
}

/// Copies the SQLite store at `from` into the empty PostgreSQL database
/// at `to` (migrating both to this greenroom's schema first), committing
/// only when every table's count matches.
pub fn sqlite_to_postgres(from: &Path, to: &str) -> Result<Vec<Copied>, StoreError> {
    if !from.is_file() {
        return Err(StoreError::Config(format!(
            "no SQLite store at {}; name the greenroom.db of the portal to copy",
            from.display()
        )));
    }
    let source = Sqlite::open(from)?;
    let target = Postgres::open(to)?;
    let mut client = target.take()?;
    let mut tx = client.transaction()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&super::pg::CATALOG_LOCK],
    )?;
    let held: i64 = tx
        .query_one(
            "SELECT (SELECT count(*) FROM locations) + (SELECT count(*) FROM entities)
             + (SELECT count(*) FROM facts) + (SELECT count(*) FROM events)
             + (SELECT count(*) FROM api_tokens) + (SELECT count(*) FROM audit)",
            &[],
        )?
        .get(0);
    if held > 0 {
        return Err(StoreError::Config(format!(
            "the PostgreSQL database at {to} already holds a portal's data; migrate into an empty database"
        )));
    }
    let mut report = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let names: Vec<&str> = table.columns.iter().map(|(n, _)| *n).collect();
        let casts: Vec<String> = (1..=names.len())
            .zip(table.columns)
            .map(|(i, (_, kind))| format!("${i}::{}", Column::new(*kind).array_type()))
            .collect();
        let overriding = if table.identity.is_some() {
            "OVERRIDING SYSTEM VALUE "
        } else {
            ""
        };
        let insert = tx.prepare(&format!(
            "INSERT INTO {} ({}) {overriding}SELECT * FROM unnest({}) {}",
            table.name,
            names.join(", "),
            casts.join(", "),
            table.conflict
        ))?;
        let mut columns: Vec<Column> = table.columns.iter().map(|(_, k)| Column::new(*k)).collect();
        let mut flush = |columns: &mut Vec<Column>| -> Result<(), StoreError> {
            let params: Vec<&(dyn ToSql + Sync)> = columns.iter().map(Column::param).collect();
            tx.execute(&insert, &params)?;
            columns.iter_mut().for_each(Column::clear);
            Ok(())
        };
        let rows = source.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {} FROM {} ORDER BY {}",
                names.join(", "),
                table.name,
                table.order
            ))?;
            let mut rows = stmt.query([])?;
            let (mut n, mut pending) = (0i64, 0usize);
            while let Some(row) = rows.next()? {
                for (i, column) in columns.iter_mut().enumerate() {
                    column.push(table.name, row.get_ref(i)?)?;
                }
                n += 1;
                pending += 1;
                if pending == BATCH {
                    flush(&mut columns)?;
                    pending = 0;
                }
            }
            if pending > 0 {
                flush(&mut columns)?;
            }
            Ok(n)
        })?;
        if let Some(identity) = table.identity {
            tx.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{0}', '{identity}'),
                     GREATEST((SELECT max({identity}) FROM {0}), 1))",
                    table.name
                ),
                &[],
            )?;
        }
        let copied: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {}", table.name), &[])?
            .get(0);
        report.push(Copied {
            table: table.name,
            source: rows,
            target: copied,
        });
    }
    if let Some(bad) = report.iter().find(|c| c.source != c.target) {
        return Err(StoreError::Corrupt(format!(
            "{} has {} rows in SQLite but {} in PostgreSQL after the copy; nothing was kept",
            bad.table, bad.source, bad.target
        )));
    }
    tx.commit()?;
    Ok(report)
}
