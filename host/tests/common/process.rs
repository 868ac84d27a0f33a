//! Running the binary from tests: start it with a log, wait for it, poll for a condition, and
//! read the SQLite store directly.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_nas-host");

/// The binary with `args`, its stderr going to `log`, logging at `info`.
fn command(args: &[String], log: &Path) -> Command {
    let log = std::fs::File::create(log).unwrap();
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("NAS_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log);
    command
}

/// Starts the binary with `args`, its stderr going to `log`.
pub fn spawn(args: &[String], log: &Path) -> Child {
    command(args, log).spawn().unwrap()
}

/// [`spawn`] with `env` set.
pub fn spawn_env(args: &[String], log: &Path, env: &[(&str, &str)]) -> Child {
    command(args, log).envs(env.iter().copied()).spawn().unwrap()
}

/// [`spawn`] as the leader of a new process group, which the workers it starts join: a signal
/// to the group reaches them all, as Ctrl-C in a terminal does.
pub fn spawn_group(args: &[String], log: &Path) -> Child {
    use std::os::unix::process::CommandExt;
    let mut command = command(args, log);
    // A test run from a background job (`cmd &` in a script, as a CI runner may start it)
    // inherits SIGINT ignored, and so would the search: give it Ctrl-C back, as a terminal would.
    // SAFETY: signal() is async-signal-safe, as pre_exec requires.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    command.process_group(0).spawn().unwrap()
}

pub fn wait_ok(mut child: Child, log: &Path) {
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "search failed: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Polls `check` every 10 ms until it returns something (or panics after `limit`).
pub fn poll<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn sql<T: rusqlite::types::FromSql>(db: &Path, query: &str) -> Vec<Vec<T>> {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(30)).unwrap();
    let mut stmt = conn.prepare(query).unwrap();
    let columns = stmt.column_count();
    stmt.query_map([], |r| (0..columns).map(|i| r.get(i)).collect::<Result<Vec<T>, _>>())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// [`sql`] for polling a store that may not exist yet: `None` until the file and the query's
/// tables do (and without creating the file, which the search must make itself).
pub fn try_sql<T: rusqlite::types::FromSql>(db: &Path, query: &str) -> Option<Vec<Vec<T>>> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE).ok()?;
    conn.busy_timeout(Duration::from_secs(30)).ok()?;
    let mut stmt = conn.prepare(query).ok()?;
    let columns = stmt.column_count();
    let rows = stmt
        .query_map([], |r| (0..columns).map(|i| r.get(i)).collect::<Result<Vec<T>, _>>())
        .ok()?
        .collect::<Result<_, _>>()
        .ok()?;
    Some(rows)
}
