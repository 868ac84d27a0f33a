//! A throwaway PostgreSQL server for tests: initdb in a temporary directory, listening on a Unix
//! socket only, stopped when dropped. As root (CI), the server runs as the `postgres` user, since
//! initdb refuses root.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PgServer {
    dir: tempfile::TempDir,
}

fn as_postgres(program: &str) -> Command {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", program]);
        command
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (PostgreSQL 15 must be installed; .ci/run installs it)"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl PgServer {
    pub fn start() -> PgServer {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let mut initdb = as_postgres("initdb");
        initdb
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync"]);
        run(initdb, "initdb");
        let mut start = as_postgres("pg_ctl");
        start
            .arg("-D")
            .arg(dir.path().join("data"))
            .arg("-l")
            .arg(dir.path().join("server.log"))
            .arg("-o")
            .arg(format!(
                "-k {} -c listen_addresses='' -c fsync=off -c max_connections=50",
                dir.path().display()
            ))
            .args(["-w", "start"]);
        run(start, "pg_ctl start");
        PgServer { dir }
    }

    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Creates database `name` and returns its URL.
    pub fn database(&self, name: &str) -> PathBuf {
        let mut create = Command::new("psql");
        create.arg("-h").arg(self.socket_dir()).args([
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            &format!("CREATE DATABASE {name}"),
        ]);
        run(create, "createdb");
        PathBuf::from(format!(
            "postgresql:///{name}?host={}&user=postgres",
            self.socket_dir().display()
        ))
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let mut stop = as_postgres("pg_ctl");
        stop.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = stop.output();
    }
}
