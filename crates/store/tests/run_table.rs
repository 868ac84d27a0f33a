//! A table run records its benchmark table (#24): the checksum and the surrogate's quality come
//! back as written, a forced resume replaces them, and other runs have none. On both backends.

mod common;

use common::new_run;
use common::pg::PgServer;
use nas_store::{Store, TableRecord};

fn the_run_keeps_its_table(store: &Store) {
    let started = TableRecord {
        sha256: "a".repeat(64),
        surrogate_quality: Some(
            "surrogate held-out Kendall τ 0.512, MAE 0.0160 (5-fold cross-validation, 155 rows)".into(),
        ),
    };
    let small = TableRecord {
        sha256: "b".repeat(64),
        surrogate_quality: None,
    };
    let table_run = new_run(store, Some(&started));
    let small_run = new_run(store, Some(&small));
    let train_run = new_run(store, None);
    assert_eq!(store.run(table_run).unwrap().table.as_ref(), Some(&started));
    assert_eq!(store.run(small_run).unwrap().table.as_ref(), Some(&small));
    assert_eq!(store.run(train_run).unwrap().table, None);
    // A forced resume on a grown table records the new one for that run only.
    let grown = TableRecord {
        sha256: "c".repeat(64),
        surrogate_quality: Some(
            "surrogate held-out Kendall τ 0.530, MAE 0.0155 (5-fold cross-validation, 160 rows)".into(),
        ),
    };
    store.set_run_table(table_run, &grown).unwrap();
    let runs = store.runs().unwrap();
    assert_eq!(runs[0].table.as_ref(), Some(&grown));
    assert_eq!(runs[1].table.as_ref(), Some(&small));
}

#[test]
fn the_run_keeps_its_table_sqlite() {
    let path = common::temp_dir("run_table").join("t.sqlite");
    the_run_keeps_its_table(&Store::open(&path).unwrap());
}

#[test]
fn the_run_keeps_its_table_postgres() {
    if let Some(server) = PgServer::start() {
        the_run_keeps_its_table(&Store::open(&server.database("run_table")).unwrap());
    }
}
