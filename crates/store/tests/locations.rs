//! What `--db` may name: a path or a `sqlite:` URL is a SQLite file, a `postgres://` URL a
//! PostgreSQL database; anything else that looks like a URL or a libpq connection string is an
//! error that says what is accepted, creates nothing and never shows a password.

mod common;

use std::path::{Path, PathBuf};

use nas_store::{Location, Store};

fn refused(db: &str) -> String {
    let error = match Store::open(Path::new(db)) {
        Ok(_) => panic!("{db} was opened as a store"),
        Err(e) => format!("{e:#}"),
    };
    assert!(!error.contains("s3cret"), "the password leaked: {error}");
    assert!(
        error.contains("sqlite:") && error.contains("postgres://"),
        "the error says what is accepted: {error}"
    );
    error
}

#[test]
fn a_mistyped_url_is_refused_and_creates_nothing() {
    for db in [
        "pgsql://nas:s3cret@db.lab/nas",
        "postgress://nas:s3cret@db.lab/nas",
        "mysql://nas:s3cret@db.lab/nas",
        "sqlite://db.lab/nas.sqlite",
    ] {
        refused(db);
        let first = db.split('/').next().unwrap();
        assert!(!Path::new(first).exists(), "{db} created {first}");
        assert!(!Store::describe(Path::new(db)).contains("s3cret"));
    }
}

#[test]
fn a_libpq_connection_string_is_refused_without_its_password() {
    for db in [
        "host=db.lab password=s3cret dbname=nas",
        "host=db.lab user=nas password='s3cret' dbname=nas",
        "dbname=nas password=s3cret",
    ] {
        let error = refused(db);
        assert!(error.contains("host=") || error.contains("dbname="), "{error}");
        assert!(!Path::new(db).exists() && !Path::new("host=db.lab password=s3cret").exists());
        assert!(
            !Store::describe(Path::new(db)).contains("s3cret"),
            "{}",
            Store::describe(Path::new(db))
        );
    }
}

#[test]
fn paths_and_sqlite_urls_are_sqlite_files() {
    let parse = |db: &str| Location::parse(Path::new(db)).unwrap();
    assert_eq!(
        parse("runs/nas.sqlite"),
        Location::Sqlite(PathBuf::from("runs/nas.sqlite"))
    );
    assert_eq!(
        parse("sqlite:runs/x.sqlite"),
        Location::Sqlite(PathBuf::from("runs/x.sqlite"))
    );
    assert_eq!(
        parse("sqlite:///abs/path.sqlite"),
        Location::Sqlite(PathBuf::from("/abs/path.sqlite"))
    );
    assert_eq!(
        parse("sqlite:/abs/path.sqlite"),
        Location::Sqlite(PathBuf::from("/abs/path.sqlite"))
    );
    assert_eq!(parse(":memory:"), Location::Sqlite(PathBuf::from(":memory:")));
    assert_eq!(parse("sqlite::memory:"), Location::Sqlite(PathBuf::from(":memory:")));
    // A file whose name looks like a setting is still reachable through `sqlite:`.
    assert_eq!(
        parse("sqlite:a=b.sqlite"),
        Location::Sqlite(PathBuf::from("a=b.sqlite"))
    );
    assert_eq!(
        parse("postgres://nas@db.lab/nas"),
        Location::Postgres("postgres://nas@db.lab/nas".into())
    );
    assert_eq!(
        parse("postgresql:///nas?host=/tmp"),
        Location::Postgres("postgresql:///nas?host=/tmp".into())
    );

    let dir = common::temp_dir("locations");
    let relative_style = format!("sqlite:{}", dir.join("a/x.sqlite").display());
    Store::open(Path::new(&relative_style)).unwrap();
    assert!(dir.join("a/x.sqlite").is_file());
    let absolute = format!("sqlite://{}", dir.join("b/y.sqlite").display());
    assert!(absolute.starts_with("sqlite:///"));
    Store::open(Path::new(&absolute)).unwrap();
    assert!(dir.join("b/y.sqlite").is_file());
    Store::open(Path::new("sqlite::memory:")).unwrap();
    assert!(!Path::new("sqlite:").exists());
}
