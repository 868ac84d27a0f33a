//! Leases under clock skew (#22 item 6): a worker whose clock runs 5 minutes ahead must not take a
//! child whose lease is still live. The PostgreSQL store compares leases in the database server's
//! clock. (The SQLite store's processes all run on one machine, so it has no skew to test.)
//!
//! This file is its own test process: it sets `NAS_TEST_CLOCK_SKEW_SECS`, which `unix_now` reads.

mod common;

use common::job;
use common::pg::PgServer;
use nas_store::{QueueCounts, Store};

fn skew(secs: f64) {
    std::env::set_var("NAS_TEST_CLOCK_SKEW_SECS", secs.to_string());
}

#[test]
fn a_worker_whose_clock_runs_ahead_does_not_steal_a_live_lease_postgres() {
    let Some(server) = PgServer::start() else { return };
    let db = server.database("skew");
    let store = Store::open(&db).unwrap();
    store.enqueue(&job("k")).unwrap();
    skew(0.0);
    let held = store.claim("w1", "cpu", 60.0).unwrap().unwrap();

    // w2's machine runs 5 minutes ahead.
    skew(300.0);
    let ahead = Store::open(&db).unwrap();
    assert_eq!(ahead.claim("w2", "cpu", 60.0).unwrap(), None, "w2 stole a live lease");
    assert_eq!(ahead.queue_counts().unwrap(), QueueCounts { pending: 0, running: 1 });
    let now = ahead.now().unwrap();
    let real = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - real).abs() < 60.0,
        "the store's clock is the server's: {now} vs {real}"
    );

    // w1's heartbeat, from a machine 5 minutes behind, keeps the lease live.
    skew(-300.0);
    assert!(store.renew_lease(&held, "w1", 60.0).unwrap());
    skew(300.0);
    assert_eq!(
        ahead.claim("w2", "cpu", 60.0).unwrap(),
        None,
        "w2 stole a renewed lease"
    );

    // A worker seen from a machine 5 minutes behind is in the pool by the store's clock.
    skew(-300.0);
    let behind_now = nas_store::queue::unix_now();
    store
        .register_worker(&nas_store::WorkerRow {
            name: "w1".into(),
            host: "behind".into(),
            pid: 1,
            device: "cpu".into(),
            threads: 1,
            started_at: behind_now,
            seen_at: behind_now,
            job: None,
            trained: 0,
            stopped: false,
        })
        .unwrap();
    store.worker_seen("w1", Some(held.id), false).unwrap();
    skew(300.0);
    let pool = ahead.workers_seen_within(10.0).unwrap();
    assert_eq!(pool.len(), 1, "{pool:?}");
    assert!((pool[0].seen_at - real).abs() < 60.0, "seen_at by the server's clock");

    // A lease that really ran out is taken over, whatever the clocks.
    skew(0.0);
    assert!(store.renew_lease(&held, "w1", 0.2).unwrap());
    std::thread::sleep(std::time::Duration::from_millis(400));
    skew(-300.0);
    let taken = ahead.claim("w2", "cpu", 60.0).unwrap().unwrap();
    assert_eq!((taken.id, taken.attempt), (held.id, 2));
    skew(0.0);
}
