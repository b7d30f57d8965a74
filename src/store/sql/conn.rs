//! A connection to either engine, with the part of rusqlite's interface the store
//! uses: `execute`, `query_row`, `prepare_cached` and its statement's `execute`,
//! `query_row`, `query_map` and `query`, transactions.
//!
//! A PostgreSQL client needs `&mut` for every query while the store passes shared
//! references around (as rusqlite allows), so it sits in a `RefCell`: a connection
//! belongs to one thread, and no borrow outlives a call (rows are read first, then
//! handed to the caller's closure).

use std::cell::RefCell;
use std::collections::HashMap;

use super::dialect;
use super::error::{SqlError, SqlResult};
use super::params::Params;
use super::row::Row;
use super::value::Value;

/// Which engine a connection talks to, for the few statements that differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

pub enum Conn {
    Sqlite(rusqlite::Connection),
    /// Boxed: a client and its caches are several times a SQLite handle's size.
    Postgres(Box<PgConn>),
}

pub struct PgConn {
    client: RefCell<postgres::Client>,
    /// Whether a transaction is open: the client does not say, and PostgreSQL
    /// refuses a SAVEPOINT outside one (SQLite opens one), so `atomically` asks.
    in_transaction: std::cell::Cell<bool>,
    /// Prepared statements by their SQLite-dialect text.
    statements: RefCell<HashMap<String, postgres::Statement>>,
}

impl From<rusqlite::Connection> for Conn {
    fn from(c: rusqlite::Connection) -> Conn {
        Conn::Sqlite(c)
    }
}

impl From<postgres::Client> for Conn {
    fn from(c: postgres::Client) -> Conn {
        Conn::Postgres(Box::new(PgConn {
            client: RefCell::new(c),
            in_transaction: std::cell::Cell::new(false),
            statements: RefCell::new(HashMap::new()),
        }))
    }
}

impl Conn {
    pub fn kind(&self) -> Kind {
        match self {
            Conn::Sqlite(_) => Kind::Sqlite,
            Conn::Postgres(_) => Kind::Postgres,
        }
    }

    /// The SQLite connection underneath, for what only SQLite has (pragmas,
    /// migrations, backups); `None` on PostgreSQL.
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Conn::Sqlite(c) => Some(c),
            Conn::Postgres(_) => None,
        }
    }

    /// The PostgreSQL client underneath, for what needs it whole (migrations).
    pub fn postgres_mut(&mut self) -> Option<&mut postgres::Client> {
        match self {
            Conn::Sqlite(_) => None,
            Conn::Postgres(p) => Some(p.client.get_mut()),
        }
    }

    /// A SQLite database file as it is, without the server's pragmas (tests and
    /// tools; the server opens files with `store::open`).
    pub fn open(path: &std::path::Path) -> SqlResult<Conn> {
        Ok(Conn::Sqlite(rusqlite::Connection::open(path)?))
    }

    /// A private in-memory SQLite database, for tests and scratch work.
    pub fn open_in_memory() -> SqlResult<Conn> {
        Ok(Conn::Sqlite(rusqlite::Connection::open_in_memory()?))
    }

    pub fn prepare_cached(&self, sql: &str) -> SqlResult<Stmt<'_>> {
        match self {
            Conn::Sqlite(c) => Ok(Stmt::Sqlite(c.prepare_cached(sql)?)),
            Conn::Postgres(p) => p
                .prepare(sql)
                .map(|s| Stmt::Postgres(p, s, TxEffect::of(sql))),
        }
    }

    /// As `prepare_cached`: statements are cached either way.
    pub fn prepare(&self, sql: &str) -> SqlResult<Stmt<'_>> {
        self.prepare_cached(sql)
    }

    pub fn execute<P: Params>(&self, sql: &str, params: P) -> SqlResult<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    pub fn query_row<T, P: Params, F>(&self, sql: &str, params: P, f: F) -> SqlResult<T>
    where
        F: FnOnce(&Row<'_>) -> SqlResult<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    /// Runs statements separated by `;`, without parameters.
    pub fn execute_batch(&self, sql: &str) -> SqlResult<()> {
        match self {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Postgres(p) => {
                p.client
                    .borrow_mut()
                    .batch_execute(&dialect::to_postgres(sql))?;
                // A batch ends in the state of its last statement.
                if let Some(last) = sql.rsplit(';').map(str::trim).find(|t| !t.is_empty()) {
                    p.note_transaction(TxEffect::of(last));
                }
                Ok(())
            }
        }
    }

    /// Whether no transaction is open.
    pub fn is_autocommit(&self) -> bool {
        match self {
            Conn::Sqlite(c) => c.is_autocommit(),
            Conn::Postgres(p) => !p.in_transaction.get(),
        }
    }

    /// Opens a transaction, ended by `Tx::commit` or rolled back on drop. On
    /// SQLite it takes the write lock at its first write (`BEGIN`).
    pub fn transaction(&self) -> SqlResult<Tx<'_>> {
        self.begin("BEGIN")
    }

    /// The same, kept for the call sites written against rusqlite.
    pub fn unchecked_transaction(&self) -> SqlResult<Tx<'_>> {
        self.transaction()
    }

    /// A transaction that takes SQLite's write lock at once (`BEGIN IMMEDIATE`), so
    /// one that reads before it writes cannot fail with "database is locked" when
    /// another connection commits in between. PostgreSQL locks rows as it writes.
    pub fn transaction_immediate(&self) -> SqlResult<Tx<'_>> {
        self.begin("BEGIN IMMEDIATE")
    }

    fn begin(&self, sql: &str) -> SqlResult<Tx<'_>> {
        self.prepare_cached(sql)?.execute(())?;
        Ok(Tx {
            conn: self,
            open: true,
        })
    }

    /// Whether a PostgreSQL connection is closed (pools drop such connections).
    pub fn is_broken(&self) -> bool {
        match self {
            Conn::Sqlite(_) => false,
            Conn::Postgres(p) => p.client.borrow().is_closed(),
        }
    }
}

impl PgConn {
    /// Follows the transaction statements the store sends (`BEGIN`, `COMMIT`,
    /// `ROLLBACK`, not `ROLLBACK TO` a savepoint).
    fn note_transaction(&self, effect: TxEffect) {
        match effect {
            TxEffect::Begin => self.in_transaction.set(true),
            TxEffect::End => self.in_transaction.set(false),
            TxEffect::None => {}
        }
    }

    fn prepare(&self, sql: &str) -> SqlResult<postgres::Statement> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let statement = self
            .client
            .borrow_mut()
            .prepare(&dialect::to_postgres(sql))?;
        self.statements
            .borrow_mut()
            .insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    fn query(
        &self,
        s: &postgres::Statement,
        values: &[Value<'_>],
    ) -> SqlResult<Vec<postgres::Row>> {
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            values.iter().map(|v| v as _).collect();
        Ok(self.client.borrow_mut().query(s, &refs)?)
    }

    fn execute(&self, s: &postgres::Statement, values: &[Value<'_>]) -> SqlResult<usize> {
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            values.iter().map(|v| v as _).collect();
        let n = self.client.borrow_mut().execute(s, &refs)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}

/// A prepared statement.
pub enum Stmt<'c> {
    Sqlite(rusqlite::CachedStatement<'c>),
    Postgres(&'c PgConn, postgres::Statement, TxEffect),
}

/// What a statement does to the transaction, for `PgConn::in_transaction`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TxEffect {
    None,
    Begin,
    End,
}

impl TxEffect {
    /// Read from the statement's text: `BEGIN`, `COMMIT`, `END`, or `ROLLBACK`
    /// but not `ROLLBACK TO` a savepoint.
    fn of(sql: &str) -> TxEffect {
        let head = sql.trim_start().to_ascii_uppercase();
        if head.starts_with("BEGIN") {
            TxEffect::Begin
        } else if head.starts_with("COMMIT")
            || head.starts_with("END")
            || (head.starts_with("ROLLBACK") && !head.contains(" TO "))
        {
            TxEffect::End
        } else {
            TxEffect::None
        }
    }
}

impl Stmt<'_> {
    /// Runs the statement; the number of rows changed.
    pub fn execute<P: Params>(&mut self, params: P) -> SqlResult<usize> {
        let values = params.values();
        match self {
            Stmt::Sqlite(s) => {
                Ok(s.execute(rusqlite::params_from_iter(super::sqlite::binds(&values)))?)
            }
            Stmt::Postgres(p, s, effect) => {
                let n = p.execute(s, &values)?;
                p.note_transaction(*effect);
                Ok(n)
            }
        }
    }

    /// The first row through `f`; `SqlError::NoRows` when there is none.
    pub fn query_row<T, P: Params, F>(&mut self, params: P, f: F) -> SqlResult<T>
    where
        F: FnOnce(&Row<'_>) -> SqlResult<T>,
    {
        let mut rows = self.query(params)?;
        let row = rows.next()?.ok_or(SqlError::NoRows)?;
        f(&row)
    }

    /// Runs an `INSERT … RETURNING id`; the new row's id (`SqlError::NoRows` when
    /// the statement inserted nothing). Both engines support `RETURNING`, which
    /// PostgreSQL needs where SQLite also had `last_insert_rowid()`.
    pub fn insert<P: Params>(&mut self, params: P) -> SqlResult<i64> {
        self.query_row(params, |r| r.get(0))
    }

    /// Every row through `f`, read at once.
    pub fn query_map<T, P: Params, F>(
        &mut self,
        params: P,
        mut f: F,
    ) -> SqlResult<std::vec::IntoIter<SqlResult<T>>>
    where
        F: FnMut(&Row<'_>) -> SqlResult<T>,
    {
        let mut rows = self.query(params)?;
        let mut out = Vec::new();
        loop {
            match rows.next() {
                Ok(Some(row)) => out.push(f(&row)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e));
                    break;
                }
            }
        }
        Ok(out.into_iter())
    }

    /// Whether the query has a row.
    pub fn exists<P: Params>(&mut self, params: P) -> SqlResult<bool> {
        Ok(self.query(params)?.next()?.is_some())
    }

    /// The rows, one at a time (`Rows::next`).
    pub fn query<P: Params>(&mut self, params: P) -> SqlResult<Rows<'_>> {
        let values = params.values();
        match self {
            Stmt::Sqlite(s) => Ok(Rows::Sqlite(
                s.query(rusqlite::params_from_iter(super::sqlite::binds(&values)))?,
            )),
            Stmt::Postgres(p, s, _) => Ok(Rows::Postgres(p.query(s, &values)?.into_iter(), None)),
        }
    }

    pub fn column_count(&self) -> usize {
        match self {
            Stmt::Sqlite(s) => s.column_count(),
            Stmt::Postgres(_, s, _) => s.columns().len(),
        }
    }
}

/// A statement's rows.
pub enum Rows<'s> {
    Sqlite(rusqlite::Rows<'s>),
    Postgres(std::vec::IntoIter<postgres::Row>, Option<postgres::Row>),
}

impl Rows<'_> {
    #[allow(clippy::should_implement_trait)] // borrows from self, so it cannot be an Iterator
    pub fn next(&mut self) -> SqlResult<Option<Row<'_>>> {
        match self {
            Rows::Sqlite(r) => Ok(r.next()?.map(Row::Sqlite)),
            Rows::Postgres(rows, current) => {
                *current = rows.next();
                Ok(current.as_ref().map(Row::Postgres))
            }
        }
    }
}

/// An open transaction: `commit` ends it, dropping it rolls back.
pub struct Tx<'c> {
    conn: &'c Conn,
    open: bool,
}

impl Tx<'_> {
    pub fn commit(mut self) -> SqlResult<()> {
        self.open = false;
        self.conn.prepare_cached("COMMIT")?.execute(()).map(drop)
    }

    pub fn rollback(mut self) -> SqlResult<()> {
        self.open = false;
        self.conn.execute_batch("ROLLBACK")
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}
