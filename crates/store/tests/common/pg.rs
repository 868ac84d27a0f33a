//! A throwaway PostgreSQL server for the store's tests: initdb in a temporary directory, listening
//! on a Unix socket only, stopped (and its directory removed) when dropped. As root (CI), the
//! server runs as the `postgres` user, since initdb refuses root.
//!
//! The host's tests use this file too (`host/tests/common/mod.rs`). Without PostgreSQL installed
//! the tests print a note and pass, except under `NAS_TEST_PG=1` (CI), where a missing PostgreSQL
//! fails them.
//! `scripts/ensure-postgres.sh` installs PostgreSQL 15.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct PgServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Server settings added to the command line (`-c name=value …`).
    extra: String,
}

/// The directory of PostgreSQL's server programs: where `initdb` is on the PATH, else the
/// distribution's `/usr/lib/postgresql/*/bin`.
fn bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|d| d.join("initdb").is_file());
    on_path.or_else(|| {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|d| d.join("initdb").is_file())
            .collect();
        dirs.sort();
        dirs.pop()
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn run(mut command: Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl PgServer {
    /// Starts a server, or `None` (with a note on stderr) when PostgreSQL is not installed and
    /// `NAS_TEST_PG=1` is not set.
    pub fn start() -> Option<PgServer> {
        PgServer::start_with(5432, |_| String::new())
    }

    /// Starts a server on `port` after `setup` (given the server, initialized but not started)
    /// returned extra settings for its command line (`-c name=value …`), e.g. TCP and TLS.
    pub fn start_with(port: u16, setup: impl FnOnce(&PgServer) -> String) -> Option<PgServer> {
        let Some(bin) = bin_dir() else {
            assert!(
                std::env::var("NAS_TEST_PG").as_deref() != Ok("1"),
                "NAS_TEST_PG=1 but PostgreSQL's initdb is not installed (scripts/ensure-postgres.sh installs it)"
            );
            eprintln!("skipped: PostgreSQL is not installed (scripts/ensure-postgres.sh installs it; NAS_TEST_PG=1 makes this an error)");
            return None;
        };
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "nas-store-pg-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let mut server = PgServer {
            dir,
            bin,
            port,
            extra: String::new(),
        };
        let mut initdb = server.as_postgres("initdb");
        initdb
            .arg("-D")
            .arg(server.dir.join("data"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync"]);
        run(initdb, "initdb");
        server.extra = setup(&server);
        server.pg_ctl("start");
        Some(server)
    }

    /// `program` from the server programs' directory, else from the PATH.
    fn program(&self, program: &str) -> PathBuf {
        let there = self.bin.join(program);
        if there.is_file() {
            there
        } else {
            PathBuf::from(program)
        }
    }

    /// `program` run as the server's user (`postgres` when the tests run as root).
    pub fn as_postgres(&self, program: &str) -> Command {
        let program = self.program(program);
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn pg_ctl(&self, action: &str) {
        let mut command = self.as_postgres("pg_ctl");
        command
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .arg("-o")
            .arg(format!(
                "-k {} -c listen_addresses='' -c fsync=off -c max_connections=50 -c port={} {}",
                self.dir.display(),
                self.port,
                self.extra
            ))
            .args(["-m", "fast", "-w", action]);
        run(command, &format!("pg_ctl {action}"));
    }

    /// Restarts the server: every open connection is closed by it.
    pub fn restart(&self) {
        self.pg_ctl("restart");
    }

    /// Stops the server (fast shutdown: sessions are ended); [`PgServer::start_again`] brings it
    /// back with its data.
    pub fn stop(&self) {
        self.pg_ctl("stop");
    }

    pub fn start_again(&self) {
        self.pg_ctl("start");
    }

    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// The server's data directory (`pg_hba.conf` is there).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs `sql` with psql as the superuser in database `db`.
    pub fn psql(&self, db: &str, sql: &str) {
        let mut psql = Command::new(self.program("psql"));
        psql.arg("-h")
            .arg(&self.dir)
            .args(["-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-c", sql]);
        run(psql, &format!("psql {sql}"));
    }

    /// Runs one query with psql and returns its rows, one per line, fields joined by `|`.
    pub fn query(&self, db: &str, sql: &str) -> String {
        self.try_query(db, sql).unwrap_or_else(|e| panic!("psql {sql}: {e}"))
    }

    /// [`PgServer::query`] for polling: the error (a table not made yet) instead of a panic.
    pub fn try_query(&self, db: &str, sql: &str) -> Result<String, String> {
        let output = Command::new(self.program("psql"))
            .arg("-h")
            .arg(&self.dir)
            .args(["-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", db, "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .map_err(|e| e.to_string())?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// Creates database `name` and returns its URL.
    pub fn database(&self, name: &str) -> PathBuf {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        PathBuf::from(format!(
            "postgresql:///{name}?host={}&port={}&user=postgres",
            self.dir.display(),
            self.port
        ))
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let mut stop = self.as_postgres("pg_ctl");
        stop.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = stop.output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
