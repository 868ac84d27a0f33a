//! The store's password need not travel in the URL (#22 item 13): a URL without one takes it
//! from `PGPASSWORD`, else from the password file (`PGPASSFILE`, else `~/.pgpass`), as libpq
//! does. On a throwaway server that asks for passwords (scram-sha-256).
//!
//! This file is its own test process with one test: it sets `PGPASSWORD` and `PGPASSFILE`.

mod common;

use std::path::{Path, PathBuf};

use common::pg::PgServer;
use nas_store::Store;

fn write_private(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn open(url: &Path) -> Result<Store, String> {
    Store::open(url).map_err(|e| format!("{e:#}"))
}

#[test]
fn the_password_comes_from_pgpassword_or_the_password_file_postgres() {
    let Some(server) = PgServer::start_with(5432, |server| {
        // The superuser (the tests' psql) is trusted; `nas` must give its password.
        std::fs::write(
            server.data_dir().join("pg_hba.conf"),
            "local all postgres trust\nlocal all nas scram-sha-256\n",
        )
        .unwrap();
        String::new()
    }) else {
        return;
    };
    server.psql("postgres", "CREATE ROLE nas LOGIN PASSWORD 's3cret:x'");
    server.psql("postgres", "CREATE DATABASE pw OWNER nas");
    let socket = server.socket_dir().display().to_string();
    let url = PathBuf::from(format!(
        "postgresql:///pw?host={socket}&port={}&user=nas",
        server.port()
    ));
    let files = common::temp_dir("pgpass");
    let pgpass = files.join("pgpass");
    std::env::remove_var("PGPASSWORD");
    std::env::set_var("PGPASSFILE", &pgpass);

    // Neither: refused (at once, not after retries), and the message says where a password goes.
    let started = std::time::Instant::now();
    let error = open(&url).err().expect("no password, no connection");
    assert!(error.contains("password"), "{error}");
    assert!(
        started.elapsed().as_secs() < 5,
        "an authentication failure is not retried"
    );

    // The password file: the socket directory as the host, `\:` escaping the password's colon.
    let line = format!("{}:{}:pw:nas:s3cret\\:x\n", socket, server.port());
    write_private(&pgpass, &format!("# the store\nother:1:pw:nas:wrong\n{line}"), 0o600);
    let store = open(&url).unwrap();
    assert!(store.schema_version().unwrap() > 0);
    // Wildcards.
    write_private(&pgpass, "*:*:pw:nas:s3cret\\:x\n", 0o600);
    open(&url).unwrap();
    // A file others may read is ignored, as libpq ignores it.
    write_private(&pgpass, "*:*:pw:nas:s3cret\\:x\n", 0o644);
    assert!(open(&url).is_err(), "a world-readable password file is ignored");
    // A line for another database does not match.
    write_private(&pgpass, "*:*:otherdb:nas:s3cret\\:x\n", 0o600);
    assert!(open(&url).is_err());

    // PGPASSWORD, without a password file.
    std::fs::remove_file(&pgpass).unwrap();
    std::env::set_var("PGPASSWORD", "s3cret:x");
    open(&url).unwrap();
    // It comes before the password file, as in libpq; a password in the URL comes first of all.
    write_private(&pgpass, "*:*:*:*:s3cret\\:x\n", 0o600);
    std::env::set_var("PGPASSWORD", "wrong");
    assert!(open(&url).is_err());
    let with_password = PathBuf::from(format!(
        "postgresql://nas:s3cret%3Ax@/pw?host={socket}&port={}",
        server.port()
    ));
    open(&with_password).unwrap();
    std::env::remove_var("PGPASSWORD");
    open(&url).unwrap();
}
