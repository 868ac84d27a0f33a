//! Trained weights (#22 item 19): kept weights belong to a run and an evaluation together, so a
//! second run keeping the same evaluation neither takes them over nor prunes them from the first;
//! and weights handed back with a job do not stay in the queue nobody takes them from. On both
//! backends.

mod common;

use std::path::Path;

use common::pg::PgServer;
use common::{evaluation, job, new_run, outcome};
use nas_store::queue::WEIGHTS_GRACE_SECS;
use nas_store::{NewJob, Store};

fn sqlite() -> (Store, impl Fn(&str)) {
    let path = common::temp_dir("weights").join("w.sqlite");
    let store = Store::open(&path).unwrap();
    let sql = move |sql: &str| {
        rusqlite::Connection::open(&path).unwrap().execute_batch(sql).unwrap();
    };
    (store, sql)
}

fn postgres(test: impl FnOnce(&Store, &dyn Fn(&str))) {
    if let Some(server) = PgServer::start() {
        let store = Store::open(&server.database("weights")).unwrap();
        test(&store, &|sql: &str| server.psql("weights", sql));
    }
}

fn kept_weights_belong_to_their_run(store: &Store) {
    let (first, second) = (new_run(store, None), new_run(store, None));
    let good = outcome(0.9);
    let shared = store
        .insert_evaluation(&evaluation("k", &good, Some((first, 0))))
        .unwrap();
    store.keep_weights(first, shared, &[1]).unwrap();
    // The second run keeps the same evaluation, then prunes it from its best.
    store.keep_weights(second, shared, &[2]).unwrap();
    assert_eq!(store.kept_weights(second, shared).unwrap(), Some(vec![2]));
    store.prune_weights(second, &[]).unwrap();
    assert_eq!(store.kept_weights(second, shared).unwrap(), None);
    assert_eq!(
        store.kept_weights(first, shared).unwrap(),
        Some(vec![1]),
        "the first run's weights stay"
    );
    // Keeping again replaces the run's own copy only.
    store.keep_weights(first, shared, &[3]).unwrap();
    assert_eq!(store.kept_weights(first, shared).unwrap(), Some(vec![3]));
    store.prune_weights(first, &[shared]).unwrap();
    assert_eq!(store.kept_weights(first, shared).unwrap(), Some(vec![3]));
}

#[test]
fn kept_weights_belong_to_their_run_sqlite() {
    kept_weights_belong_to_their_run(&Store::open(Path::new(":memory:")).unwrap());
}

#[test]
fn kept_weights_belong_to_their_run_postgres() {
    postgres(|store, _| kept_weights_belong_to_their_run(store));
}

fn weights_nobody_keeps_are_not_stored(store: &Store) {
    let id = store.enqueue(&job("k")).unwrap();
    let claimed = store.claim("w", "cpu", 60.0).unwrap().unwrap();
    store
        .complete(&claimed, "w", &claimed.evaluation(1, &outcome(0.9)), Some(&[1, 2, 3]))
        .unwrap()
        .unwrap();
    assert_eq!(store.take_job_weights(id).unwrap(), None);
}

#[test]
fn weights_nobody_keeps_are_not_stored_sqlite() {
    weights_nobody_keeps_are_not_stored(&sqlite().0);
}

#[test]
fn weights_nobody_keeps_are_not_stored_postgres() {
    postgres(|store, _| weights_nobody_keeps_are_not_stored(store));
}

fn kept(key: &str) -> NewJob<'_> {
    NewJob {
        keep_weights: true,
        ..job(key)
    }
}

fn weights_left_behind_are_cleared(store: &Store, sql: &dyn Fn(&str)) {
    // A job whose search was killed before it took the weights (the resumed search finds the
    // evaluation by its episode and never waits on the job again).
    let orphan = store.enqueue(&kept("orphan")).unwrap();
    let claimed = store.claim("w", "cpu", 60.0).unwrap().unwrap();
    store
        .complete(&claimed, "w", &claimed.evaluation(1, &outcome(0.9)), Some(&[1]))
        .unwrap()
        .unwrap();
    // Finished longer ago than any live search waits to take its weights.
    sql(&format!(
        "UPDATE queue SET finished_at = finished_at - {} WHERE id = {orphan}",
        WEIGHTS_GRACE_SECS + 60.0
    ));
    // A fresh job finished just now keeps its weights for its search.
    let fresh = store.enqueue(&kept("fresh")).unwrap();
    let claimed = store.claim("w", "cpu", 60.0).unwrap().unwrap();
    store
        .complete(&claimed, "w", &claimed.evaluation(1, &outcome(0.8)), Some(&[2]))
        .unwrap()
        .unwrap();
    assert_eq!(
        store.take_job_weights(orphan).unwrap(),
        None,
        "the orphan's weights are cleared"
    );
    assert_eq!(store.take_job_weights(fresh).unwrap(), Some(vec![2]));
}

#[test]
fn weights_left_behind_are_cleared_sqlite() {
    let (store, sql) = sqlite();
    weights_left_behind_are_cleared(&store, &sql);
}

#[test]
fn weights_left_behind_are_cleared_postgres() {
    postgres(weights_left_behind_are_cleared);
}

/// Two searches (or two environments of one) that keep weights wait on one job: each takes the
/// weights once; they leave the queue after the last taker, not the first.
fn every_search_joined_to_a_job_takes_its_weights(store: &Store) {
    let first = store.enqueue(&kept("shared")).unwrap();
    let joined = store.enqueue(&kept("shared")).unwrap();
    assert_eq!(first, joined, "the second search joins the live job");
    let claimed = store.claim("w", "cpu", 60.0).unwrap().unwrap();
    store
        .complete(&claimed, "w", &claimed.evaluation(1, &outcome(0.9)), Some(&[4, 5]))
        .unwrap()
        .unwrap();
    assert_eq!(store.take_job_weights(first).unwrap(), Some(vec![4, 5]));
    assert_eq!(
        store.take_job_weights(joined).unwrap(),
        Some(vec![4, 5]),
        "the joined search takes them too"
    );
    assert_eq!(
        store.take_job_weights(first).unwrap(),
        None,
        "gone after the last taker"
    );
    // A search that joins without keeping weights does not hold them back.
    let kept_once = store.enqueue(&kept("once")).unwrap();
    assert_eq!(store.enqueue(&job("once")).unwrap(), kept_once);
    let claimed = store.claim("w", "cpu", 60.0).unwrap().unwrap();
    store
        .complete(&claimed, "w", &claimed.evaluation(1, &outcome(0.8)), Some(&[6]))
        .unwrap()
        .unwrap();
    assert_eq!(store.take_job_weights(kept_once).unwrap(), Some(vec![6]));
    assert_eq!(store.take_job_weights(kept_once).unwrap(), None);
}

#[test]
fn every_search_joined_to_a_job_takes_its_weights_sqlite() {
    every_search_joined_to_a_job_takes_its_weights(&sqlite().0);
}

#[test]
fn every_search_joined_to_a_job_takes_its_weights_postgres() {
    postgres(|store, _| every_search_joined_to_a_job_takes_its_weights(store));
}
