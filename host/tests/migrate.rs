//! A run store written by the first release (schema version 0, no `user_version`) opens with this
//! build, is migrated without loss, and its run resumes.
//!
//! `fixtures/store-v1.sql` is a dump of a store written by the release binary (commit e8502b8):
//! `nas-host search --agent random --reward accuracy --evaluator synthetic --episodes 5 --seed 3`
//! then `nas-host eval 1 --samples 3`.

mod common;

use nas_search::search;

use nas_search::search::Start;
use nas_store::{Store, SCHEMA_VERSION};

#[test]
fn a_store_of_the_first_release_migrates_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.sqlite");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(include_str!("fixtures/store-v1.sql")).unwrap();
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, 0, "the first release did not version its schema");
        // The plugins live elsewhere on this machine than where the fixture was written.
        conn.execute(
            "UPDATE runs SET agent_path = ?1, reward_path = ?2",
            [
                common::plugin("random").display().to_string(),
                common::plugin("accuracy").display().to_string(),
            ],
        )
        .unwrap();
    }
    let store = Store::open(&db).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let before = store.episodes(1).unwrap();
    assert_eq!(before.len(), 5);
    let run = store.run(1).unwrap();
    assert_eq!((run.status.as_str(), run.episodes_target), ("finished", 5));
    assert_eq!((run.device, run.no_cache), (None, false));
    assert_eq!(store.eval_samples(1).unwrap().len(), 3);
    assert!(before.iter().all(|e| e.failure.is_none()));
    drop(store);
    // Opening again is a no-op.
    assert_eq!(Store::open(&db).unwrap().schema_version().unwrap(), SCHEMA_VERSION);

    // The plugin binaries were rebuilt since, so their hashes may differ: force.
    let summary = search::search(
        Start::Resume {
            run: 1,
            force: true,
            episodes: Some(9),
        },
        &common::options(db.clone()),
    )
    .unwrap();
    assert_eq!(summary.episodes.len(), 9);
    assert_eq!(&summary.episodes[..5], &before[..]);
    let run = Store::open(&db).unwrap().run(1).unwrap();
    assert_eq!((run.status.as_str(), run.device.as_deref()), ("finished", Some("none")));
}
