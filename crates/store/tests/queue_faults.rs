//! The queue under faults (#22), on both backends: SQLite always, PostgreSQL on a throwaway
//! server (skipped with a note when PostgreSQL is not installed, unless `NAS_TEST_PG=1`).

mod common;

use common::job;
use common::pg::PgServer;
use nas_store::Store;

fn sqlite() -> Store {
    Store::open(&common::temp_dir("queue").join("q.sqlite")).unwrap()
}

fn postgres(test: impl FnOnce(&Store)) {
    if let Some(server) = PgServer::start() {
        test(&Store::open(&server.database("faults")).unwrap());
    }
}

fn lease_secs_must_be_positive_and_finite(store: &Store) {
    store.enqueue(&job("k")).unwrap();
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let error = store.claim("w", "cpu", bad).unwrap_err().to_string();
        assert!(error.contains("lease_secs"), "{error}");
    }
    let held = store.claim("w", "cpu", 60.0).unwrap().unwrap();
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let error = store.renew_lease(&held, "w", bad).unwrap_err().to_string();
        assert!(error.contains("lease_secs"), "{error}");
    }
    assert!(store.renew_lease(&held, "w", 0.5).unwrap());
}

#[test]
fn lease_secs_must_be_positive_and_finite_sqlite() {
    lease_secs_must_be_positive_and_finite(&sqlite());
}

#[test]
fn lease_secs_must_be_positive_and_finite_postgres() {
    postgres(lease_secs_must_be_positive_and_finite);
}
