//! Catalog reads in PostgreSQL: the filter language through SQLite's SQL
//! builder in its PostgreSQL form (`query::Sql::postgres`), every
//! condition checked per row and planned by PostgreSQL; pages and cursors
//! through the same `query::paged`; entities assembled by
//! `query::splice`, their relations read in the same statement.

use std::cell::RefCell;
use std::sync::atomic::Ordering;

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::Postgres;
use super::client::Client;
use crate::catalog::EntityRef;
use crate::store::query::{
    EntityPage, Filter, ListQuery, PageQuery, PageRows, QueryError, Sql, Stored, each_by_id, paged,
    splice,
};
use crate::store::{Catalog, Facets, Location, Locations, ORPHAN_SQL, Stats, StoreError};

/// What every entity read selects: `id, body, errors, ref, orphan`, and the
/// relations it declares and those declared towards it, each
/// `type <US> other ref`.
fn entity_columns() -> String {
    format!(
        "e.id, e.body, e.errors, e.ref, ({ORPHAN_SQL}),
         ARRAY(SELECT r.type || chr(31) || r.target_ref FROM relations r WHERE r.source_ref = e.ref),
         ARRAY(SELECT r.type || chr(31) || r.source_ref FROM relations r WHERE r.target_ref = e.ref)"
    )
}

/// The served JSON of a row of [`entity_columns`].
fn entity(row: &Row, fields: &[String]) -> Result<String, StoreError> {
    let mut relations = Vec::new();
    for (column, reversed) in [(5, false), (6, true)] {
        for pair in row.get::<_, Vec<String>>(column) {
            if let Some((kind, other)) = pair.split_once('\u{1f}') {
                relations.push((reversed, kind.to_string(), other.to_string()));
            }
        }
    }
    splice(
        &Stored {
            entity_ref: row.get(3),
            body: row.get(1),
            errors: row.get(2),
            orphan: row.get(4),
        },
        relations,
        fields,
    )
}

/// Every group a User (`$1`) is in, directly or through parents: SQLite's
/// query, with its two recursive steps in one (PostgreSQL allows one).
const GROUPS_OF: &str = "WITH RECURSIVE g(ref) AS (
        SELECT target_ref FROM relations WHERE source_ref = $1 AND type = 'memberOf'
        UNION SELECT source_ref FROM relations WHERE target_ref = $1 AND type = 'hasMember'
        UNION SELECT CASE WHEN r.type = 'childOf' THEN r.target_ref ELSE r.source_ref END
            FROM g JOIN relations r
            ON (r.source_ref = g.ref AND r.type = 'childOf') OR (r.target_ref = g.ref AND r.type = 'parentOf')
     ) SELECT ref FROM g ORDER BY ref";

impl Postgres {
    /// The one row of numbers `sql` answers.
    fn counts(&self, sql: &Sql) -> Result<Vec<i64>, StoreError> {
        self.with(|c| {
            let row = c.query_one(&sql.text, &params(&sql.args))?;
            Ok((0..row.len()).map(|i| row.get(i)).collect())
        })
    }

    /// Where the shared change feed stands: moved by every write of an
    /// entity through any process.
    fn feed_head(&self) -> Result<i64, StoreError> {
        self.with(|c| {
            Ok(c.query_one(
                "SELECT GREATEST((SELECT COALESCE(max(seq), 0) FROM entity_changes),
                                 (SELECT forgotten FROM feed_state))",
                &[],
            )?
            .get::<_, i64>(0))
        })
    }
}

/// The text parameters of `sql`, as the driver takes them.
fn params(args: &[String]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

/// The entity whose `column` is `value`.
fn one(
    c: &mut Client,
    column: &str,
    value: &(dyn ToSql + Sync),
    fields: &[String],
) -> Result<Option<String>, StoreError> {
    let sql = format!(
        "SELECT {} FROM entities e WHERE e.{column} = $1",
        entity_columns()
    );
    c.query_opt(&sql, &[value])?
        .map(|r| entity(&r, fields))
        .transpose()
}

impl Catalog for Postgres {
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Counted again when the shared change feed or this process's
    /// generation moves, and at least every few seconds (`StatsCache`):
    /// at 100,000 entities a count costs about 150 ms of the database's
    /// time.
    fn stats(&self) -> Result<Stats, StoreError> {
        let version = (self.feed_head()?, self.generation());
        self.stats_cache.get_or(version, || {
            self.with(|c| {
                let r = c.query_one(
                    &format!(
                        "SELECT (SELECT count(*) FROM entities), (SELECT count(*) FROM locations),
                         (SELECT count(*) FROM problems), (SELECT count(*) FROM entities e WHERE {ORPHAN_SQL})"
                    ),
                    &[],
                )?;
                Ok(Stats {
                    entities: r.get(0),
                    locations: r.get(1),
                    problems: r.get(2),
                    orphans: r.get(3),
                })
            })
        })
    }

    fn entity_count(&self) -> Result<i64, StoreError> {
        self.with(|c| Ok(c.query_one("SELECT count(*) FROM entities", &[])?.get(0)))
    }

    fn entity_by_ref(
        &self,
        r: &EntityRef,
        fields: &[String],
    ) -> Result<Option<String>, StoreError> {
        self.with(|c| one(c, "ref", &r.to_string(), fields))
    }

    fn entity_by_uid(&self, uid: &str, fields: &[String]) -> Result<Option<String>, StoreError> {
        self.with(|c| one(c, "uid", &uid, fields))
    }

    fn entities_by_refs(
        &self,
        refs: &[Option<EntityRef>],
        fields: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        self.with(|c| {
            refs.iter()
                .map(|r| match r {
                    Some(r) => one(c, "ref", &r.to_string(), fields),
                    None => Ok(None),
                })
                .collect()
        })
    }

    fn each_entity(&self, page: usize, each: &mut dyn FnMut(String)) -> Result<(), StoreError> {
        let sql = format!(
            "SELECT {} FROM entities e WHERE e.id > $1 ORDER BY e.id LIMIT $2",
            entity_columns()
        );
        each_by_id(each, &mut |after| {
            self.with(|c| {
                c.query(&sql, &[&after, &(page as i64)])?
                    .iter()
                    .map(|r| Ok((r.get(0), entity(r, &[])?)))
                    .collect()
            })
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

    fn list_each(
        &self,
        q: &ListQuery,
        each: &mut dyn FnMut(String) -> bool,
    ) -> Result<(), StoreError> {
        let mut sql = Sql::postgres();
        sql.text = format!("SELECT {} ", entity_columns());
        let id = if q.order.is_empty() {
            sql.push_by_id(&q.filter, &mut |counts| self.counts(counts))?
        } else {
            sql.push_scan(&q.filter, None);
            "e.id"
        };
        sql.push(" ORDER BY ");
        for o in &q.order {
            let expr = sql.sort_expr(&o.field);
            let dir = if o.desc { "DESC" } else { "ASC" };
            sql.push(&format!("{expr} {dir}, "));
        }
        sql.push(id);
        if let Some(limit) = q.limit {
            sql.push(&format!(" LIMIT {limit}"));
        }
        if q.offset > 0 {
            sql.push(&format!(" OFFSET {}", q.offset));
        }
        self.with(|c| {
            // Streamed: rows are read as `each` takes them.
            let mut rows = c.query_raw(&sql.text, &params(&sql.args))?;
            while let Some(row) = rows.next()? {
                if !each(entity(&row, &q.fields)?) {
                    break;
                }
            }
            Ok(())
        })
    }

    fn page(&self, q: &PageQuery) -> Result<Result<EntityPage, QueryError>, StoreError> {
        self.with(|c| {
            let c = RefCell::new(c);
            paged(
                q,
                &self.cursor_key,
                &mut |spec| {
                    let mut from = Sql::postgres();
                    from.push_scan(spec.filter, spec.text);
                    let (count, n, sql) = spec.statements(from);
                    let mut c = c.borrow_mut();
                    let total = if spec.count {
                        c.query_one(&count, &params(&sql.args[..n]))?.get(0)
                    } else {
                        0
                    };
                    let keys = c
                        .query(&sql.text, &params(&sql.args))?
                        .iter()
                        .map(|r| (r.get(1), r.get(0)))
                        .collect();
                    Ok(PageRows { keys, total })
                },
                &mut |id, fields| one(&mut c.borrow_mut(), "id", &id, fields),
            )
        })
    }

    /// Kept while the shared change feed stands (any replica's write
    /// moves it).
    fn filter_refs(
        &self,
        filter: &Filter,
    ) -> Result<Vec<(i64, String, Option<String>)>, StoreError> {
        let head = self.feed_head()?;
        let refs = self.refs_cache.get_or_within(
            format!("{filter:?}"),
            head as u64,
            crate::store::KEPT_FILTERS,
            || self.filter_refs_uncached(filter).map(std::sync::Arc::new),
        )?;
        Ok(refs.as_ref().clone())
    }

    fn values_of_key(&self, key: &str) -> Result<Vec<(i64, String)>, StoreError> {
        self.with(|c| {
            Ok(c.query(
                "SELECT entity_id, COALESCE(original, value) FROM search WHERE key = $1",
                &[&key],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })
    }

    fn entity_values(&self, id: i64) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|c| {
            Ok(c.query(
                "SELECT key, COALESCE(original, value) FROM search WHERE entity_id = $1
                 ORDER BY key, value",
                &[&id],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })
    }

    /// Kept while the shared change feed stands still: a write through
    /// any process moves it.
    fn facets(&self, facets: &[String], filter: &Filter) -> Result<Facets, StoreError> {
        let head = self.feed_head()?;
        self.facet_cache
            .get_or(format!("{facets:?}|{filter:?}"), head as u64, || {
                self.facets_uncached(facets, filter)
            })
    }

    fn facets_uncached(&self, facets: &[String], filter: &Filter) -> Result<Facets, StoreError> {
        let mut out = Facets::new();
        for facet in facets {
            let mut sql = Sql::postgres();
            sql.push_facet(facet, filter, &mut |sql| {
                sql.push_scan(filter, None);
                Ok(())
            })?;
            let rows = self.with(|c| Ok(c.query(&sql.text, &params(&sql.args))?))?;
            out.insert(
                facet.clone(),
                rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
            );
        }
        Ok(out)
    }

    fn facet_values(&self) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            Ok(c.query(
                "SELECT DISTINCT kind FROM entities
                 UNION SELECT DISTINCT owner_ref FROM entities WHERE owner_ref IS NOT NULL
                 UNION SELECT DISTINCT value FROM search WHERE key = 'spec.type'",
                &[],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })
    }

    fn orphans(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|c| {
            Ok(c.query(
                &format!(
                    "SELECT e.ref, e.owner_ref FROM entities e WHERE {ORPHAN_SQL} ORDER BY e.ref"
                ),
                &[],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })
    }

    fn existing_refs(&self, refs: &[&str]) -> Result<Vec<bool>, StoreError> {
        let found: std::collections::HashSet<String> = self.with(|c| {
            Ok(
                c.query("SELECT ref FROM entities WHERE ref = ANY($1)", &[&refs])?
                    .iter()
                    .map(|r| r.get(0))
                    .collect(),
            )
        })?;
        Ok(refs.iter().map(|r| found.contains(*r)).collect())
    }

    fn location_of_entity(&self, r: &EntityRef) -> Result<Option<Location>, StoreError> {
        match self.entity_origin(r)? {
            Some((id, _)) => Locations::location(self, &id),
            None => Ok(None),
        }
    }

    fn entity_origin(&self, r: &EntityRef) -> Result<Option<(String, String)>, StoreError> {
        self.with(|c| {
            Ok(c.query_opt(
                "SELECT location_id, source FROM entities WHERE ref = $1",
                &[&r.to_string()],
            )?
            .map(|r| (r.get(0), r.get(1))))
        })
    }

    fn user_by(&self, field: &str, value: &str) -> Result<Option<String>, StoreError> {
        let key = crate::store::user_key(field);
        let value = value.trim().to_lowercase();
        self.with(|c| {
            Ok(c.query_opt(
                "SELECT e.ref FROM search s JOIN entities e ON e.id = s.entity_id
                 WHERE s.key = $1 AND s.value = $2 AND e.kind = 'user' ORDER BY e.id LIMIT 1",
                &[&key, &value],
            )?
            .map(|r| r.get(0)))
        })
    }

    fn groups_of(&self, user_ref: &str) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            Ok(c.query(GROUPS_OF, &[&user_ref])?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })
    }
}

impl Postgres {
    fn filter_refs_uncached(
        &self,
        filter: &Filter,
    ) -> Result<Vec<(i64, String, Option<String>)>, StoreError> {
        let mut sql = Sql::postgres();
        sql.text = "SELECT e.id, e.ref, e.owner_ref ".into();
        let id = sql.push_by_id(filter, &mut |counts| self.counts(counts))?;
        sql.push(" ORDER BY ");
        sql.push(id);
        self.with(|c| {
            Ok(c.query(&sql.text, &params(&sql.args))?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect())
        })
    }
}
