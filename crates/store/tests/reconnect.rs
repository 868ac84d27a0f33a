//! The PostgreSQL store survives its server restarting (#22 item 7): after `pg_ctl restart` (or
//! a session the server ends, as an idle-session timeout or a failover does), the next calls
//! reconnect and succeed.

mod common;

use common::pg::PgServer;
use common::{evaluation, job, outcome};
use nas_store::{Store, SCHEMA_VERSION};

#[test]
fn the_postgres_store_reconnects_after_a_server_restart() {
    let Some(server) = PgServer::start() else { return };
    let db = server.database("restart");
    let store = Store::open(&db).unwrap();
    let id = store.enqueue(&job("k")).unwrap();
    let held = store.claim("w", "cpu", 60.0).unwrap().unwrap();

    server.restart();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION, "a read");
    server.restart();
    assert!(store.renew_lease(&held, "w", 60.0).unwrap(), "a heartbeat");
    server.restart();
    store.worker_seen("w", Some(id), false).unwrap();
    server.restart();
    assert_ne!(store.enqueue(&job("k2")).unwrap(), id);
    server.restart();
    let good = outcome(0.9);
    let recorded = store
        .complete(&held, "w", &held.evaluation(1, &good), None)
        .unwrap()
        .unwrap();
    // `complete` is idempotent: a repeat (a retry after a lost reply) records nothing more.
    assert_eq!(
        store.complete(&held, "w", &held.evaluation(1, &good), None).unwrap(),
        None
    );
    assert_eq!(store.cached_evaluation("k").unwrap().unwrap().id, recorded);
    server.restart();
    store.insert_evaluation(&evaluation("k3", &good, None)).unwrap();
    server.restart();
    assert_eq!(store.claim("w", "cpu", 60.0).unwrap().unwrap().cache_key, "k2");

    // The server ends the session (idle-session timeout, failover).
    server.psql(
        "postgres",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'restart'",
    );
    assert_eq!(store.queue_counts().unwrap().running, 1);
}
