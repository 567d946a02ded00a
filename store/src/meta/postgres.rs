//! `PgMeta`: the metadata on PostgreSQL (scale-out, `fsgate serve --meta postgres://…`).
//!
//! Every column family is a range of one table, `fsgate_kv (cf, k, v)`, keyed by the family's
//! number and the same key bytes RocksDB holds (`FORMAT.md`); `bytea` sorts byte by byte, as
//! RocksDB's default comparator does, so cursors walk the same order.
//!
//! - **A commit is one statement**: the batch's upserts and deletes in one data-modifying
//!   `WITH`, which PostgreSQL applies atomically and durably (`synchronous_commit` is the
//!   server's). Serialization failures and deadlocks, which CockroachDB and YugabyteDB also
//!   report, are retried.
//! - **A cursor reads a page of rows per statement** and holds nothing between pages: each page
//!   is a consistent view, the walk as a whole is not (as a listing over S3's pages is not);
//!   the store's logic holds its own locks where it needs a stable view.
//! - **Connections**: a few sessions, shared (tokio-postgres pipelines concurrent statements on
//!   one connection), each with its statements prepared once. They run on a small runtime of
//!   their own, so the blocking calls of the [`MetaEngine`] work from any thread, the gateway's
//!   async workers included. A session PostgreSQL closed (a restart) is replaced on first use.
//! - **Schema**: versioned (`fsgate_schema`) and migrated at open, under an advisory lock so
//!   that gateways starting together apply each step once.
//! - **Metrics** (`fsgate_postgres_*`, listed in the README): each round trip's time by
//!   operation, failures by operation and kind, retries by reason, connections made; the
//!   open sessions are counted at scrape time ([`EngineStats::connections`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls, Statement};

use super::{Cf, EngineStats, MetaCursor, MetaEngine, Op, Value};
use crate::error::{MetaFailure, StoreError, StoreResult};

/// Sessions (connections) per gateway.
const SESSIONS: usize = 8;

/// How long PostgreSQL may take to accept a connection. An outage costs a request this long
/// at most (then 503), not the client's whole timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Attempts of a commit that fails on a serialization conflict or deadlock.
const COMMIT_ATTEMPTS: u32 = 8;

/// Rows a cursor's first page fetches (most cursors read a handful: one key's versions), and
/// its later pages (listings).
const FIRST_PAGE: i64 = 32;
const NEXT_PAGE: i64 = 1000;

/// The schema, one migration per version, applied in order at open.
const MIGRATIONS: &[&str] = &["CREATE TABLE fsgate_kv (
        cf SMALLINT NOT NULL,
        k BYTEA NOT NULL,
        v BYTEA NOT NULL,
        PRIMARY KEY (cf, k)
    )"];

/// The advisory lock key that serializes migrations between gateways ("fsgate" in ASCII).
const MIGRATION_LOCK: i64 = 0x0000_6673_6761_7465;

type PgError = tokio_postgres::Error;

/// The statements every session prepares once.
struct Statements {
    get: Statement,
    commit: Statement,
    forward_from: Statement,
    forward_after: Statement,
    backward_to: Statement,
    backward_before: Statement,
    first: Statement,
    last: Statement,
}

/// A connection and its prepared statements.
struct Session {
    client: Client,
    stmts: Statements,
}

async fn prepare(client: &Client) -> Result<Statements, PgError> {
    let page = "SELECT k, v FROM fsgate_kv WHERE cf = $1";
    Ok(Statements {
        get: client
            .prepare("SELECT v FROM fsgate_kv WHERE cf = $1 AND k = $2")
            .await?,
        commit: client
            .prepare(
                "WITH deleted AS (DELETE FROM fsgate_kv WHERE (cf, k) IN \
                   (SELECT * FROM unnest($4::int2[], $5::bytea[]))) \
                 INSERT INTO fsgate_kv (cf, k, v) \
                 SELECT * FROM unnest($1::int2[], $2::bytea[], $3::bytea[]) \
                 ON CONFLICT (cf, k) DO UPDATE SET v = EXCLUDED.v",
            )
            .await?,
        forward_from: client
            .prepare(&format!("{page} AND k >= $2 ORDER BY k LIMIT $3"))
            .await?,
        forward_after: client
            .prepare(&format!("{page} AND k > $2 ORDER BY k LIMIT $3"))
            .await?,
        backward_to: client
            .prepare(&format!("{page} AND k <= $2 ORDER BY k DESC LIMIT $3"))
            .await?,
        backward_before: client
            .prepare(&format!("{page} AND k < $2 ORDER BY k DESC LIMIT $3"))
            .await?,
        first: client
            .prepare(&format!("{page} ORDER BY k LIMIT $2"))
            .await?,
        last: client
            .prepare(&format!("{page} ORDER BY k DESC LIMIT $2"))
            .await?,
    })
}

/// Applies the migrations the database has not seen, in one transaction.
async fn migrate(client: &mut Client) -> Result<(), PgError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS fsgate_schema (version INTEGER NOT NULL)")
        .await?;
    let have: i64 = tx
        .query_one("SELECT count(*) FROM fsgate_schema", &[])
        .await?
        .get(0);
    for (n, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(have).unwrap_or(0))
    {
        tx.batch_execute(sql).await?;
        let version = i32::try_from(n + 1).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO fsgate_schema (version) VALUES ($1)",
            &[&version],
        )
        .await?;
    }
    tx.commit().await
}

/// A PostgreSQL error as the store's.
fn pg_error(e: &PgError) -> StoreError {
    let (kind, message) = pg_failure(e);
    StoreError::Metadata { kind, message }
}

/// A PostgreSQL error's kind: a lost or refused connection, a full disk, corruption, the rest.
fn pg_failure(e: &PgError) -> (MetaFailure, String) {
    let kind = match e.code() {
        Some(c) if *c == SqlState::DISK_FULL => MetaFailure::NoSpace,
        Some(c) if *c == SqlState::DATA_CORRUPTED || *c == SqlState::INDEX_CORRUPTED => {
            MetaFailure::Corruption
        }
        // Class 08 (connection exceptions) and 57P01-57P03 (the server shutting down or
        // starting): the database is away, not wrong.
        Some(c) if c.code().starts_with("08") || c.code().starts_with("57P") => {
            MetaFailure::Unavailable
        }
        // No SQLSTATE: the socket failed, closed, or timed out connecting.
        None => MetaFailure::Unavailable,
        Some(_) => MetaFailure::Other,
    };
    (kind, format!("PostgreSQL: {e}"))
}

/// True for the errors a commit is retried on.
fn retryable(e: &PgError) -> bool {
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    })
}

/// True for PostgreSQL telling a session it is being closed (57P01-57P03).
fn is_shutdown(e: &PgError) -> bool {
    e.code().is_some_and(|c| c.code().starts_with("57P"))
}

/// Records a round trip of `op` (`get`, `scan`, `commit`, `stats`) that started at `started`:
/// its time, and its failure's kind when it failed.
fn observe<T>(op: &'static str, started: Instant, result: &StoreResult<T>) {
    metrics::histogram!("fsgate_postgres_seconds", "op" => op)
        .record(started.elapsed().as_secs_f64());
    if let Err(e) = result {
        let kind = match e {
            StoreError::Metadata { kind, .. } => kind.label(),
            _ => MetaFailure::Other.label(),
        };
        metrics::counter!("fsgate_postgres_errors_total", "op" => op, "kind" => kind).increment(1);
    }
}

/// Counts a retry: `conflict` (a commit's serialization failure or deadlock) or `reconnect`
/// (a statement run again on a new session after PostgreSQL closed the old one).
fn count_retry(reason: &'static str) {
    metrics::counter!("fsgate_postgres_retries_total", "reason" => reason).increment(1);
}

/// The family's number in the table (its place in [`Cf::ALL`]).
fn cf_id(cf: Cf) -> i16 {
    // At most 13 families: the cast cannot truncate.
    cf as i16
}

/// The metadata in a PostgreSQL database.
pub struct PgMeta {
    /// Drives the connections (their I/O); `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    config: Config,
    /// The sessions, connected on first use and again after PostgreSQL closed them.
    sessions: Vec<RwLock<Option<Arc<Session>>>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for PgMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgMeta").finish_non_exhaustive()
    }
}

impl Drop for PgMeta {
    fn drop(&mut self) {
        // Without waiting: a store may be dropped on an async worker, where a blocking
        // shutdown is not allowed.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl PgMeta {
    /// Connects to `url` (`postgres://USER@HOST:PORT/DB`, or libpq's `key=value` form) and
    /// brings its schema up to date.
    pub fn open(url: &str) -> StoreResult<Self> {
        let mut config: Config = url.parse().map_err(|e: PgError| {
            StoreError::InvalidRequest(format!("--meta {url}: not a PostgreSQL URL: {e}"))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("fsgate");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fsgate-postgres")
            .enable_all()
            .build()?;
        let meta = Self {
            runtime: Some(runtime),
            config,
            sessions: (0..SESSIONS).map(|_| RwLock::new(None)).collect(),
            next: AtomicUsize::new(0),
        };
        let config = meta.config.clone();
        meta.run(async move {
            let (mut client, connection) = config.connect(NoTls).await?;
            tokio::spawn(connection);
            migrate(&mut client).await
        })?
        .map_err(|e| pg_error(&e))?;
        Ok(meta)
    }

    /// Runs `fut` on the connections' runtime and waits for it (from any thread).
    fn run<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = T> + Send + 'static,
    ) -> StoreResult<T> {
        let rt = self.runtime.as_ref().ok_or_else(|| StoreError::Metadata {
            kind: MetaFailure::Unavailable,
            message: "PostgreSQL: closing".into(),
        })?;
        futures::executor::block_on(rt.spawn(fut)).map_err(|e| StoreError::Metadata {
            kind: MetaFailure::Other,
            message: format!("PostgreSQL: {e}"),
        })
    }

    /// A new session: connected, its statements prepared.
    fn connect(&self) -> StoreResult<Session> {
        let config = self.config.clone();
        let session = self
            .run(async move {
                let (client, connection) = config.connect(NoTls).await?;
                tokio::spawn(connection);
                let stmts = prepare(&client).await?;
                Ok::<_, PgError>(Session { client, stmts })
            })?
            .map_err(|e| pg_error(&e));
        let result = if session.is_ok() { "ok" } else { "failed" };
        metrics::counter!("fsgate_postgres_connects_total", "result" => result).increment(1);
        session
    }

    /// Sessions connected and not closed.
    fn open_sessions(&self) -> u64 {
        let open = self.sessions.iter().filter(|slot| {
            slot.read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
                .is_some_and(|s| !s.client.is_closed())
        });
        open.count() as u64
    }

    /// The next session, round robin, connecting it when it is not (or no longer) connected.
    fn session(&self) -> StoreResult<(usize, Arc<Session>)> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % SESSIONS;
        let slot = self.sessions.get(i).ok_or_else(|| StoreError::Metadata {
            kind: MetaFailure::Other,
            message: "PostgreSQL: no session slot".into(),
        })?;
        let live = |s: &Option<Arc<Session>>| s.as_ref().filter(|s| !s.client.is_closed()).cloned();
        if let Some(s) = live(
            &slot
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        ) {
            return Ok((i, s));
        }
        let mut w = slot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = live(&w) {
            return Ok((i, s));
        }
        let s = Arc::new(self.connect()?);
        *w = Some(Arc::clone(&s));
        Ok((i, s))
    }

    /// Forgets session `i` if it is still `s` (closed: the next use connects anew).
    fn forget(&self, i: usize, s: &Arc<Session>) {
        if let Some(slot) = self.sessions.get(i) {
            let mut w = slot
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if w.as_ref().is_some_and(|cur| Arc::ptr_eq(cur, s)) {
                *w = None;
            }
        }
    }

    /// Runs `work` on a session. When the session turns out to be one PostgreSQL closed (it
    /// restarted, or ended an idle connection), `work` runs once more on a fresh one: every
    /// `work` here is safe to repeat (reads, or a commit of final values). The outer error:
    /// no session; the inner: PostgreSQL's answer.
    fn with_session<T>(
        &self,
        mut work: impl FnMut(&Session) -> Result<T, PgError>,
    ) -> StoreResult<Result<T, PgError>> {
        let (i, s) = self.session()?;
        match work(&s) {
            Err(e) if s.client.is_closed() || is_shutdown(&e) => {
                self.forget(i, &s);
                count_retry("reconnect");
                let (_, s) = self.session()?;
                Ok(work(&s))
            }
            result => Ok(result),
        }
    }
}

impl MetaEngine for PgMeta {
    fn get(&self, cf: Cf, key: &[u8]) -> StoreResult<Option<Value<'_>>> {
        let started = Instant::now();
        let row = self
            .with_session(|s| {
                futures::executor::block_on(s.client.query_opt(&s.stmts.get, &[&cf_id(cf), &key]))
            })
            .and_then(|r| r.map_err(|e| pg_error(&e)));
        observe("get", started, &row);
        Ok(row?.map(|r| Box::new(r.get::<_, Vec<u8>>(0)) as Value<'_>))
    }

    fn cursor(&self, cf: Cf) -> StoreResult<Box<dyn MetaCursor + '_>> {
        Ok(Box::new(PgCursor {
            meta: self,
            cf: cf_id(cf),
            rows: Vec::new(),
            at: None,
            error: None,
        }))
    }

    /// The batch's last write to each key, upserts and deletes, in one statement. `sync` is
    /// the server's to keep (`synchronous_commit`, on by default).
    fn commit(&self, ops: &[Op], _sync: bool) -> StoreResult<()> {
        // The last op on each key wins, as in a RocksDB batch; so no key is both upserted and
        // deleted.
        let mut last = std::collections::HashMap::with_capacity(ops.len());
        for op in ops {
            let (cf, k) = match op {
                Op::Put(cf, k, _) | Op::Delete(cf, k) => (*cf, k.as_slice()),
            };
            last.insert((cf_id(cf), k), op);
        }
        let (mut put_cf, mut put_k, mut put_v) = (Vec::new(), Vec::new(), Vec::new());
        let (mut del_cf, mut del_k) = (Vec::new(), Vec::new());
        for ((cf, k), op) in last {
            match op {
                Op::Put(_, _, v) => {
                    put_cf.push(cf);
                    put_k.push(k);
                    put_v.push(v.as_slice());
                }
                Op::Delete(..) => {
                    del_cf.push(cf);
                    del_k.push(k);
                }
            }
        }
        let started = Instant::now();
        let mut attempt = 0;
        let committed = loop {
            attempt += 1;
            let result = self.with_session(|s| {
                futures::executor::block_on(
                    s.client
                        .execute(&s.stmts.commit, &[&put_cf, &put_k, &put_v, &del_cf, &del_k]),
                )
            });
            match result {
                Ok(Ok(_)) => break Ok(()),
                Ok(Err(e)) if retryable(&e) && attempt < COMMIT_ATTEMPTS => {
                    count_retry("conflict");
                    std::thread::sleep(Duration::from_millis(2 << attempt));
                }
                Ok(Err(e)) => break Err(pg_error(&e)),
                Err(e) => break Err(e),
            }
        };
        observe("commit", started, &committed);
        committed
    }

    fn flush(&self) -> StoreResult<()> {
        Ok(())
    }

    fn checkpoint(&self, _dir: &std::path::Path) -> StoreResult<()> {
        Err(StoreError::InvalidRequest(
            "the metadata is on PostgreSQL: back it up with PostgreSQL's own tools \
             (pg_dump, or the operator's backups)"
                .into(),
        ))
    }

    fn stats(&self) -> StoreResult<EngineStats> {
        let started = Instant::now();
        let row = self
            .with_session(|s| {
                futures::executor::block_on(
                    s.client
                        .query_one("SELECT pg_total_relation_size('fsgate_kv')", &[]),
                )
            })
            .and_then(|r| r.map_err(|e| pg_error(&e)));
        observe("stats", started, &row);
        let live: i64 = row?.get(0);
        Ok(EngineStats {
            engine: "postgres",
            connections: self.open_sessions(),
            live_bytes: u64::try_from(live).unwrap_or(0),
            ..EngineStats::default()
        })
    }
}

/// A cursor over one family, holding a window of rows in key order and fetching the next or
/// previous page when it walks off either end.
struct PgCursor<'a> {
    meta: &'a PgMeta,
    cf: i16,
    /// The window, ascending.
    rows: Vec<(Vec<u8>, Vec<u8>)>,
    /// The position in the window; `None`: not on an entry.
    at: Option<usize>,
    /// The failure that stopped the cursor (`status`).
    error: Option<(MetaFailure, String)>,
}

/// Which page to fetch.
#[derive(Clone, Copy)]
enum Page<'k> {
    From(&'k [u8]),
    After(&'k [u8]),
    To(&'k [u8]),
    Before(&'k [u8]),
    First,
    Last,
}

impl PgCursor<'_> {
    /// Replaces the window with a page; lands on its first row (forward pages) or its last
    /// (backward pages), or on nothing when the page is empty.
    fn fetch(&mut self, page: Page<'_>, size: i64) {
        let started = Instant::now();
        let cf = &self.cf;
        let backward = matches!(page, Page::To(_) | Page::Before(_) | Page::Last);
        let result = self.meta.with_session(|s| {
            let st = &s.stmts;
            let (stmt, key) = match page {
                Page::From(k) => (&st.forward_from, Some(k)),
                Page::After(k) => (&st.forward_after, Some(k)),
                Page::To(k) => (&st.backward_to, Some(k)),
                Page::Before(k) => (&st.backward_before, Some(k)),
                Page::First => (&st.first, None),
                Page::Last => (&st.last, None),
            };
            let with_key: [&(dyn tokio_postgres::types::ToSql + Sync); 3];
            let without: [&(dyn tokio_postgres::types::ToSql + Sync); 2];
            let params: &[&(dyn tokio_postgres::types::ToSql + Sync)] = match &key {
                Some(k) => {
                    with_key = [cf, k, &size];
                    &with_key
                }
                None => {
                    without = [cf, &size];
                    &without
                }
            };
            futures::executor::block_on(s.client.query(stmt, params))
        });
        let result = result.and_then(|r| r.map_err(|e| pg_error(&e)));
        observe("scan", started, &result);
        let result = match result {
            Ok(rows) => Ok(rows),
            Err(StoreError::Metadata { kind, message }) => Err((kind, message)),
            Err(e) => Err((MetaFailure::Other, e.to_string())),
        };
        match result {
            Ok(rows) => {
                self.rows = rows
                    .into_iter()
                    .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
                    .collect();
                if backward {
                    self.rows.reverse();
                    self.at = self.rows.len().checked_sub(1);
                } else {
                    self.at = (!self.rows.is_empty()).then_some(0);
                }
            }
            Err(failure) => {
                self.rows.clear();
                self.at = None;
                self.error = Some(failure);
            }
        }
    }
}

impl MetaCursor for PgCursor<'_> {
    fn seek(&mut self, key: &[u8]) {
        self.fetch(Page::From(key), FIRST_PAGE);
    }
    fn seek_for_prev(&mut self, key: &[u8]) {
        self.fetch(Page::To(key), FIRST_PAGE);
    }
    fn seek_to_first(&mut self) {
        self.fetch(Page::First, FIRST_PAGE);
    }
    fn seek_to_last(&mut self) {
        self.fetch(Page::Last, FIRST_PAGE);
    }
    fn valid(&self) -> bool {
        self.at.is_some()
    }
    fn key(&self) -> Option<&[u8]> {
        self.rows.get(self.at?).map(|(k, _)| k.as_slice())
    }
    fn value(&self) -> Option<&[u8]> {
        self.rows.get(self.at?).map(|(_, v)| v.as_slice())
    }
    fn next(&mut self) {
        let Some(at) = self.at else { return };
        if at + 1 < self.rows.len() {
            self.at = Some(at + 1);
        } else if let Some((last, _)) = self.rows.pop() {
            self.fetch(Page::After(&last), NEXT_PAGE);
        }
    }
    fn prev(&mut self) {
        let Some(at) = self.at else { return };
        if at > 0 {
            self.at = Some(at - 1);
        } else if !self.rows.is_empty() {
            let first = self.rows.swap_remove(0).0;
            self.fetch(Page::Before(&first), NEXT_PAGE);
        }
    }
    fn status(&self) -> StoreResult<()> {
        match &self.error {
            None => Ok(()),
            Some((kind, message)) => Err(StoreError::Metadata {
                kind: *kind,
                message: message.clone(),
            }),
        }
    }
}
