//! A blocking face on tokio-postgres. The store's traits are synchronous
//! (their callers run on blocking threads), so each call waits for its
//! answer; the connections themselves are driven by a small runtime of
//! the backend's own. A call can so be made from any thread, a tokio
//! worker included (`Portal::open` at start-up), where the `postgres`
//! crate, which runs a runtime per connection, panics.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::TryStreamExt as _;
use futures::executor::block_on;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Error, Row, RowStream, Statement, ToStatement};

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Statements kept prepared per connection; past this many the cache
/// starts again (filters make SQL of many shapes).
const PREPARED: usize = 256;

/// One connection, with the statements it has prepared: a statement run
/// as text would cost a round trip to prepare it every time.
pub(in crate::store) struct Client {
    /// Shared only with a statement started and not yet waited for.
    inner: Arc<tokio_postgres::Client>,
    prepared: HashMap<String, Statement>,
}

/// A transaction, rolled back when dropped uncommitted.
pub(in crate::store) struct Transaction<'a>(tokio_postgres::Transaction<'a>);

/// Rows read as they are taken.
pub(in crate::store) struct Rows(Pin<Box<RowStream>>);

impl Rows {
    pub(in crate::store) fn next(&mut self) -> Result<Option<Row>, Error> {
        block_on(self.0.try_next())
    }
}

/// The statements a transaction runs (text, or prepared).
macro_rules! statements {
    ($t:ty) => {
        #[allow(dead_code, reason = "not every statement runs in a transaction")]
        impl $t {
            pub(in crate::store) fn query<T: ?Sized + ToStatement>(
                &mut self,
                q: &T,
                params: Params<'_>,
            ) -> Result<Vec<Row>, Error> {
                block_on(self.0.query(q, params))
            }

            pub(in crate::store) fn query_one<T: ?Sized + ToStatement>(
                &mut self,
                q: &T,
                params: Params<'_>,
            ) -> Result<Row, Error> {
                block_on(self.0.query_one(q, params))
            }

            pub(in crate::store) fn query_opt<T: ?Sized + ToStatement>(
                &mut self,
                q: &T,
                params: Params<'_>,
            ) -> Result<Option<Row>, Error> {
                block_on(self.0.query_opt(q, params))
            }

            pub(in crate::store) fn execute<T: ?Sized + ToStatement>(
                &mut self,
                q: &T,
                params: Params<'_>,
            ) -> Result<u64, Error> {
                block_on(self.0.execute(q, params))
            }

            pub(in crate::store) fn batch_execute(&mut self, sql: &str) -> Result<(), Error> {
                block_on(self.0.batch_execute(sql))
            }

            pub(in crate::store) fn prepare(&mut self, sql: &str) -> Result<Statement, Error> {
                block_on(self.0.prepare(sql))
            }
        }
    };
}

statements!(Transaction<'_>);

impl Client {
    pub(in crate::store) fn new(inner: tokio_postgres::Client) -> Client {
        Client {
            inner: Arc::new(inner),
            prepared: HashMap::new(),
        }
    }

    /// `sql` prepared on this connection, once.
    fn statement(&mut self, sql: &str) -> Result<Statement, Error> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = block_on(self.inner.prepare(sql))?;
        if self.prepared.len() >= PREPARED {
            self.prepared.clear();
        }
        self.prepared.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    pub(in crate::store) fn query(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<Row>, Error> {
        let s = self.statement(sql)?;
        block_on(self.inner.query(&s, params))
    }

    pub(in crate::store) fn query_one(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Row, Error> {
        let s = self.statement(sql)?;
        block_on(self.inner.query_one(&s, params))
    }

    pub(in crate::store) fn query_opt(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>, Error> {
        let s = self.statement(sql)?;
        block_on(self.inner.query_opt(&s, params))
    }

    pub(in crate::store) fn execute(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<u64, Error> {
        let s = self.statement(sql)?;
        block_on(self.inner.execute(&s, params))
    }

    pub(in crate::store) fn batch_execute(&mut self, sql: &str) -> Result<(), Error> {
        block_on(self.inner.batch_execute(sql))
    }

    /// Starts `task` (given this connection and `sql`, prepared) on
    /// `runtime`, so the caller can go on working while the database
    /// does. The caller waits for it before its next statement on this
    /// connection: statements reach the server in the order they start.
    pub(in crate::store) fn start<T, F>(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        sql: &str,
        task: impl FnOnce(Arc<tokio_postgres::Client>, Statement) -> F,
    ) -> Result<Started<T>, Error>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let statement = self.statement(sql)?;
        Ok(Started(runtime.spawn(task(self.inner.clone(), statement))))
    }

    /// Runs the statements of `sql` one after another on `runtime`
    /// without waiting for them; the connection closes when they are done.
    /// A failure stops them and is logged as `what`.
    pub(in crate::store) fn run_detached(
        self,
        runtime: &tokio::runtime::Runtime,
        sql: &'static [&'static str],
        what: &'static str,
    ) {
        runtime.spawn(async move {
            for statement in sql {
                if let Err(e) = self.inner.batch_execute(statement).await {
                    tracing::warn!(error = %e, "{what}");
                    return;
                }
            }
        });
    }

    pub(in crate::store) fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    pub(in crate::store) fn transaction(&mut self) -> Result<Transaction<'_>, Error> {
        let inner = Arc::get_mut(&mut self.inner)
            .expect("a transaction begins with no started statement in flight");
        Ok(Transaction(block_on(inner.transaction())?))
    }

    /// Rows of `sql`, read as they are taken.
    pub(in crate::store) fn query_raw(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Rows, Error> {
        let s = self.statement(sql)?;
        let stream = block_on(self.inner.query_raw(&s, params.iter().copied()))?;
        Ok(Rows(Box::pin(stream)))
    }
}

/// A statement started with [`Client::start`].
pub(in crate::store) struct Started<T>(tokio::task::JoinHandle<Result<T, Error>>);

impl<T> Started<T> {
    /// Its answer, once the database has given it.
    pub(in crate::store) fn wait(self) -> Result<T, crate::store::StoreError> {
        match block_on(self.0) {
            Ok(answer) => Ok(answer?),
            Err(e) => Err(crate::store::StoreError::Corrupt(format!(
                "a PostgreSQL statement's task ended without an answer: {e}"
            ))),
        }
    }
}

impl Transaction<'_> {
    pub(in crate::store) fn commit(self) -> Result<(), Error> {
        block_on(self.0.commit())
    }
}
