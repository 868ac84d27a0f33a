//! The dashboard over a PostgreSQL store: the same pages' data as over SQLite, read while a run is
//! being written. Skips without PostgreSQL, except under `NAS_TEST_PG=1` (CI).

mod common;

// The store's throwaway-PostgreSQL helper (this test uses only part of it).
#[allow(dead_code)]
#[path = "../../store/tests/common/pg.rs"]
mod pg;

use common::*;
use nas_store::Store;

#[test]
fn the_api_serves_a_postgres_store() {
    let Some(server) = pg::PgServer::start() else { return };
    let db = server.database("dashboard");
    let mut store = Store::open(&db).unwrap();
    let finished = create_run(&store, &RunSpec::default());
    let episodes = write_episodes(&mut store, finished, 0..40, "cifar5", false);
    finish(&store, finished, 12.0);
    let live = create_run(
        &store,
        &RunSpec {
            agent: "qlearning",
            ..Default::default()
        },
    );
    write_episodes(&mut store, live, 0..3, "cifar5", false);

    let dashboard = start_server(&db, "127.0.0.1", None);
    let runs = get(dashboard.addr, "/api/runs").json();
    assert_eq!(runs.as_array().unwrap().len(), 2, "{runs}");
    let served = get(dashboard.addr, &format!("/api/runs/{finished}/episodes")).json();
    assert_eq!(served.as_array().unwrap().len(), 40);
    assert_eq!(served[7]["architecture"], episodes[7].architecture.as_str());
    assert_eq!(served[7]["accuracy"].as_f64().unwrap(), episodes[7].accuracy);

    // An episode committed while the dashboard is open shows up.
    write_episodes(&mut store, live, 3..4, "cifar5", false);
    let since = get(dashboard.addr, &format!("/api/runs/{live}/episodes?since=3")).json();
    assert_eq!(since.as_array().unwrap().len(), 1, "{since}");
}
