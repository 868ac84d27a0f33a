//! Connecting to the PostgreSQL store: URLs (and their redaction in messages), connecting with
//! backoff, reconnecting a broken connection and retrying what is safe to retry, and migrations.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use postgres::{Client, Transaction};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::schema::migrations;
use super::security;
use crate::SCHEMA_VERSION;

/// Whether `--db` names a PostgreSQL store rather than a SQLite file.
pub fn is_postgres_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// The URL without its password (`user:secret@host` → `user:***@host`, `password=…` → `***`, in
/// a URL's query or a libpq `key=value` string, quoted or not), for messages and logs.
pub fn redact(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..].find('/').map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, "***");
            }
        }
    }
    let mut from = 0;
    while let Some(found) = out[from..].find("password") {
        let key_end = from + found + "password".len();
        let after_key = &out[key_end..];
        let spaces = after_key.len() - after_key.trim_start().len();
        if !after_key.trim_start().starts_with('=') {
            from = key_end;
            continue;
        }
        let eq = key_end + spaces + 1;
        let value_start = eq + (out[eq..].len() - out[eq..].trim_start().len());
        let value_end = if out[value_start..].starts_with('\'') {
            // A quoted libpq value: up to the closing quote (`\'` escapes one).
            let mut escaped = false;
            out[value_start + 1..]
                .char_indices()
                .find(|&(_, c)| {
                    let closes = c == '\'' && !escaped;
                    escaped = c == '\\' && !escaped;
                    closes
                })
                .map_or(out.len(), |(i, _)| value_start + 1 + i + 1)
        } else {
            out[value_start..]
                .find(|c: char| c == '&' || c.is_whitespace())
                .map_or(out.len(), |i| value_start + i)
        };
        out.replace_range(value_start..value_end, "***");
        from = value_start + 3;
    }
    out
}

/// Whether `url` holds a password (in its user info, or a `password=` setting): what
/// [`redact`] would hide. A launcher that hands the URL to other machines (Slurm's `sbatch`,
/// which keeps the job's environment in its records) refuses such a URL.
pub fn has_password(url: &str) -> bool {
    redact(url) != url
}

/// Commits `tx` for [`PgStore::retry_before_commit`], noting that the commit was sent.
pub(super) fn commit(tx: Transaction<'_>, sent: &std::cell::Cell<bool>) -> Result<(), postgres::Error> {
    sent.set(true);
    tx.commit()
}

/// Connects to `config` through `tls`, retrying after each of `waits`.
fn connect_with(
    config: &postgres::Config,
    tls: &MakeRustlsConnect,
    url: &str,
    waits: &[Duration],
) -> anyhow::Result<Client> {
    let mut attempt = 0;
    loop {
        match config.connect(tls.clone()) {
            Ok(client) => return Ok(client),
            // Refused (a wrong or missing password, no such database or role, a bad setting):
            // waiting changes nothing.
            Err(e) if !worth_retrying(&e) => anyhow::bail!(
                "the PostgreSQL store {} refused the connection: {}; check the user, the database and the password (in the URL, PGPASSWORD, or the password file PGPASSFILE or ~/.pgpass)",
                redact(url),
                with_causes(&e)
            ),
            Err(e) if attempt < waits.len() => {
                tracing::debug!("connecting to {}: {e}; retrying", redact(url));
                std::thread::sleep(waits[attempt]);
                attempt += 1;
            }
            Err(e) => anyhow::bail!(
                "cannot connect to the PostgreSQL store {} after {} attempts: {}; check that the server runs, the database exists (createdb) and the URL is right",
                redact(url),
                attempt + 1,
                with_causes(&e)
            ),
        }
    }
}

/// Whether a failed connection attempt may work later: the server was unreachable, starting,
/// shutting down or full; not when it refused us.
fn worth_retrying(e: &postgres::Error) -> bool {
    match e.code() {
        Some(code) => {
            let code = code.code();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
        }
        None => {
            let mut causes = std::iter::successors(std::error::Error::source(e), |s| s.source());
            // A certificate the TLS handshake refused stays refused.
            let refused_by_tls = |io: &std::io::Error| io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>());
            e.is_closed() || causes.any(|s| s.downcast_ref::<std::io::Error>().is_some_and(|io| !refused_by_tls(io)))
        }
    }
}

/// `e` with the errors under it (the `postgres` crate's message alone can be "invalid
/// configuration").
fn with_causes(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    for cause in std::iter::successors(std::error::Error::source(e), |s| s.source()) {
        text.push_str(&format!(": {cause}"));
    }
    text
}

/// Connection attempts when the store is opened, with the wait before each retry.
const RETRY_WAITS: [Duration; 4] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// Waits before each reconnection attempt when a connection broke (about 30 s in all: a server
/// restart or a failover).
const RECONNECT_WAITS: [Duration; 8] = [
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(15),
];

/// A connection idle for longer than this is checked (an empty query) before it is used, since
/// the server may have ended it meanwhile (restart, failover, `idle_session_timeout`).
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The store's connection and when it was last used.
pub(crate) struct Conn {
    client: Client,
    last_used: std::time::Instant,
}

impl std::ops::Deref for Conn {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        self.last_used = std::time::Instant::now();
        &mut self.client
    }
}

/// The PostgreSQL run store. It reconnects when its connection breaks: every call first checks
/// a connection that was closed or idle ([`PgStore::client`]), and the idempotent calls (reads,
/// heartbeats, verdicts) are retried once on a new connection when it breaks under them
/// ([`PgStore::idempotent`]). The other calls then fail once, the next ones work. `complete` is
/// safe to repeat: it checks the lease in its transaction, so a repeat after a commit whose reply
/// was lost records nothing and returns `None`.
pub struct PgStore {
    client: Mutex<Conn>,
    config: postgres::Config,
    /// TLS as the URL's `sslmode` asks.
    tls: MakeRustlsConnect,
    /// The URL without its password, for messages.
    url: String,
}

/// Whether `error` means the connection is gone (rather than a failed statement).
fn connection_lost(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<postgres::Error>().is_some_and(|e| {
            e.is_closed()
                || e.code().is_some_and(|code| {
                    let code = code.code();
                    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "57P05")
                })
                || (e.as_db_error().is_none() && std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()))
        })
    })
}

impl PgStore {
    /// Connects (retrying with backoff for about 8 s) and brings the schema up to date. TLS is
    /// as the URL's `sslmode` (and `sslrootcert`) say; a URL without a password takes it from
    /// `PGPASSWORD` or the password file (`PGPASSFILE`, else `~/.pgpass`), as libpq does
    /// (`security`).
    pub fn connect(url: &str) -> anyhow::Result<PgStore> {
        let invalid = || format!("{} is not a valid PostgreSQL URL", redact(url));
        let (rest, tls_settings) = security::split_tls(url).with_context(invalid)?;
        let mut config: postgres::Config = rest.parse().with_context(invalid)?;
        config.ssl_mode(security::ssl_mode(&tls_settings));
        if let Some(source) = security::fill_password(&mut config) {
            tracing::debug!("the password for {} comes from {source}", redact(url));
        }
        let tls = security::connector(&tls_settings).with_context(|| format!("connecting to {}", redact(url)))?;
        let client = connect_with(&config, &tls, url, &RETRY_WAITS)?;
        let store = PgStore {
            client: Mutex::new(Conn {
                client,
                last_used: std::time::Instant::now(),
            }),
            config,
            tls,
            url: redact(url),
        };
        store
            .migrate()
            .with_context(|| format!("preparing the PostgreSQL store {}", redact(url)))?;
        Ok(store)
    }

    /// The connection, reconnected first if it was closed, or idle and no longer answering.
    pub(super) fn client(&self) -> anyhow::Result<MutexGuard<'_, Conn>> {
        let mut conn = self.client.lock().unwrap_or_else(|p| p.into_inner());
        let stale = conn.client.is_closed()
            || (conn.last_used.elapsed() > CHECK_AFTER_IDLE && conn.client.is_valid(Duration::from_secs(10)).is_err());
        if stale {
            self.reconnect(&mut conn)?;
        }
        Ok(conn)
    }

    fn reconnect(&self, conn: &mut Conn) -> anyhow::Result<()> {
        tracing::warn!(
            "the connection to the PostgreSQL store {} broke; reconnecting",
            self.url
        );
        conn.client = connect_with(&self.config, &self.tls, &self.url, &RECONNECT_WAITS)?;
        conn.last_used = std::time::Instant::now();
        Ok(())
    }

    /// Runs `call`, which does its writes in a transaction it commits with [`commit`]; when the
    /// connection breaks under it before the commit was sent (nothing was written), reconnects
    /// and runs it once more. A break during the commit leaves its outcome unknown: that error is
    /// returned (the next call reconnects).
    pub(super) fn retry_before_commit<T>(
        &self,
        mut call: impl FnMut(&mut Client, &std::cell::Cell<bool>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut conn = self.client()?;
        let sent = std::cell::Cell::new(false);
        match call(&mut conn, &sent) {
            Err(e) if !sent.get() && (connection_lost(&e) || conn.client.is_closed()) => {
                self.reconnect(&mut conn)?;
                call(&mut conn, &sent)
            }
            result => result,
        }
    }

    /// Runs `call`, an idempotent call, on the connection; when the connection breaks under it,
    /// reconnects and runs it once more.
    pub(super) fn idempotent<T>(&self, mut call: impl FnMut(&mut Client) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let mut conn = self.client()?;
        match call(&mut conn) {
            Err(e) if connection_lost(&e) || conn.client.is_closed() => {
                self.reconnect(&mut conn)?;
                call(&mut conn)
            }
            result => result,
        }
    }

    /// Applies the migrations this database lacks, under an advisory lock so that workers
    /// starting together migrate once.
    fn migrate(&self) -> anyhow::Result<()> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock(7460521)", &[])?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS nas_schema_version (version BIGINT NOT NULL)")?;
        let current: i64 = match tx.query_opt("SELECT version FROM nas_schema_version", &[])? {
            Some(row) => row.get(0),
            None => {
                tx.execute("INSERT INTO nas_schema_version VALUES (0)", &[])?;
                0
            }
        };
        anyhow::ensure!(
            current as usize <= SCHEMA_VERSION,
            "the store has schema version {current}, newer than this nas-host's {SCHEMA_VERSION}; use a newer nas-host"
        );
        for (version, sql) in migrations().iter().enumerate().skip(current as usize) {
            tx.batch_execute(sql)
                .with_context(|| format!("migrating the store to schema version {}", version + 1))?;
            tx.execute("UPDATE nas_schema_version SET version = $1", &[&(version as i64 + 1)])?;
        }
        tx.commit()?;
        Ok(())
    }
}
