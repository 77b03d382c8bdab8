//! A blocking face on tokio-postgres. The store's traits are synchronous
//! (their callers run on blocking threads), so each call waits for its
//! answer; the connections themselves are driven by a small runtime of
//! the backend's own. A call can so be made from any thread, a tokio
//! worker included (`Portal::open` at start-up), where the `postgres`
//! crate, which runs a runtime per connection, panics.

use std::pin::Pin;

use futures::TryStreamExt as _;
use futures::executor::block_on;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Error, Row, RowStream, Statement, ToStatement};

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// One connection.
pub(in crate::store) struct Client(pub(in crate::store) tokio_postgres::Client);

/// A transaction, rolled back when dropped uncommitted.
pub(in crate::store) struct Transaction<'a>(tokio_postgres::Transaction<'a>);

/// Rows read as they are taken.
pub(in crate::store) struct Rows(Pin<Box<RowStream>>);

impl Rows {
    pub(in crate::store) fn next(&mut self) -> Result<Option<Row>, Error> {
        block_on(self.0.try_next())
    }
}

/// The statements both a connection and a transaction run.
macro_rules! statements {
    ($t:ty) => {
        #[allow(dead_code, reason = "not every statement runs in both")]
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

statements!(Client);
statements!(Transaction<'_>);

impl Client {
    pub(in crate::store) fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    pub(in crate::store) fn transaction(&mut self) -> Result<Transaction<'_>, Error> {
        Ok(Transaction(block_on(self.0.transaction())?))
    }

    /// Rows of `sql`, read as they are taken.
    pub(in crate::store) fn query_raw(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Rows, Error> {
        let stream = block_on(self.0.query_raw(sql, params.iter().copied()))?;
        Ok(Rows(Box::pin(stream)))
    }
}

impl Transaction<'_> {
    pub(in crate::store) fn commit(self) -> Result<(), Error> {
        block_on(self.0.commit())
    }
}
