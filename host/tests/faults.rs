//! Fault injection (issue #22): parallel searches killed, resumed, and served by workers that
//! stall or fail, checked for what a user loses — nothing — and for what the agent is told.
//! These run the binary, since a search starts its workers as processes of it.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::pg::PgServer;
use common::plugin;
use common::process::{poll, spawn, spawn_env, spawn_group, sql, try_sql, wait_ok, BIN};
use nas_store::Store;

/// A run configuration file: real training on the synthetic images, `extra` appended.
fn config_file(dir: &Path, agent: &str, episodes: usize, extra: &str) -> PathBuf {
    let path = dir.join("run.toml");
    std::fs::write(
        &path,
        format!(
            "agent = {agent:?}\nreward = {reward:?}\ndataset = \"synthetic\"\nepisodes = {episodes}\nseed = 3\n{extra}\n",
            agent = plugin(agent).display().to_string(),
            reward = plugin("accuracy").display().to_string(),
        ),
    )
    .unwrap();
    path
}

fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn run_ok(items: &[&str]) -> String {
    let output = Command::new(BIN).args(items).output().unwrap();
    assert!(
        output.status.success(),
        "`nas-host {}` failed: {}",
        items.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Item 1: an `async` run commits episodes as children finish, so its committed episodes have
/// gaps. Killed with children in flight, with kept weights and an assessor, it resumes without
/// a panic, `report` and `export` read it, and the weights kept are the best children's.
#[test]
fn an_async_run_with_kept_weights_and_an_assessor_survives_a_kill_with_children_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nas.sqlite");
    let db_arg = db.to_str().unwrap();
    let total = 14;
    let config = config_file(
        dir.path(),
        "random",
        total,
        &format!(
            "assessor = {:?}\n[train]\nepochs = 3\n[search]\nkeep_weights = 3\n[parallel]\nworkers = 2\nenvs = 3\nschedule = \"async\"\nthreads_per_worker = 1\n[plugins.median_stop]\nmin_completed = 2\n",
            plugin("median_stop").display().to_string()
        ),
    );
    let log = dir.path().join("search.log");
    let first = spawn(
        &args(&[
            "search",
            "--config",
            config.to_str().unwrap(),
            "--db",
            db_arg,
            "--no-cache",
        ]),
        &log,
    );
    // Killed once some episodes are committed while others' children train.
    poll(
        Duration::from_secs(300),
        "committed episodes with children in flight",
        || {
            let done = try_sql::<i64>(&db, "SELECT COUNT(*) FROM episodes")?
                .first()?
                .first()
                .copied()?;
            let running = try_sql::<i64>(&db, "SELECT COUNT(*) FROM queue WHERE status = 'running'")?
                .first()?
                .first()
                .copied()?;
            (done >= 3 && running >= 1).then_some(())
        },
    );
    let mut first = first;
    first.kill().unwrap();
    first.wait().unwrap();
    let committed = sql::<i64>(&db, "SELECT idx FROM episodes ORDER BY idx");
    println!("committed before the kill: {committed:?}");

    let resumed = spawn(&args(&["search", "--resume", "1", "--db", db_arg]), &log);
    wait_ok(resumed, &log);

    let store = Store::open(&db).unwrap();
    let episodes = store.episodes(1).unwrap();
    let indices: Vec<usize> = episodes.iter().map(|e| e.index).collect();
    assert_eq!(indices, (0..total).collect::<Vec<_>>());
    assert_eq!(store.run(1).unwrap().status, "finished");

    // The weights kept are those of the best distinct children the assessor did not stop.
    let evaluations = store.episode_evaluations(1).unwrap();
    let finished: Vec<_> = episodes.iter().filter(|e| !e.stopped).cloned().collect();
    let best: BTreeSet<i64> = nas_core::record::top_distinct(&finished, 3)
        .iter()
        .map(|e| evaluations[&e.index])
        .collect();
    let kept: BTreeSet<i64> = sql::<i64>(&db, "SELECT evaluation_id FROM kept_weights WHERE run_id = 1")
        .into_iter()
        .map(|row| row[0])
        .collect();
    assert!(
        !kept.is_empty() && kept.is_subset(&best),
        "kept {kept:?}, best {best:?}"
    );

    let report_dir = dir.path().join("report");
    run_ok(&["report", "1", "--db", db_arg, "--out", report_dir.to_str().unwrap()]);
    let out = dir.path().join("export");
    run_ok(&[
        "export",
        "1",
        "--top",
        "2",
        "--db",
        db_arg,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(std::fs::read_dir(&out).unwrap().count() >= 2);
}

/// Item 8: a worker paused (SIGSTOP) past its lease loses the child to another worker; resumed,
/// its late result is refused and it stops training the child; nothing is recorded twice.
#[test]
fn a_worker_paused_past_its_lease_cannot_record_its_late_result() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nas.sqlite");
    let db_arg = db.to_str().unwrap();
    let total = 4;
    let config = config_file(
        dir.path(),
        "random",
        total,
        "[train]\nepochs = 4\n[parallel]\nlauncher = \"none\"\nlease_secs = 2.0\n",
    );
    let log = dir.path().join("search.log");
    let search = spawn(
        &args(&["search", "--config", config.to_str().unwrap(), "--db", db_arg]),
        &log,
    );
    let worker = |n: usize| {
        spawn(
            &args(&[
                "worker",
                "--db",
                db_arg,
                "--threads",
                "1",
                "--lease-secs",
                "2",
                "--idle-exit",
                "5",
            ]),
            &dir.path().join(format!("worker{n}.log")),
        )
    };
    let mut first = worker(1);
    let pid = first.id();
    poll(Duration::from_secs(120), "the first worker to train a child", || {
        let owners = try_sql::<String>(&db, "SELECT owner FROM queue WHERE status = 'running'")?;
        owners.iter().any(|o| o[0].contains(&format!(":{pid}"))).then_some(())
    });
    let stopped = |signal: &str| {
        let status = Command::new("kill").args([signal, &pid.to_string()]).status().unwrap();
        assert!(status.success());
    };
    stopped("-STOP");
    // Past its lease, another worker takes the child over.
    std::thread::sleep(Duration::from_secs(4));
    let second = worker(2);
    poll(Duration::from_secs(120), "the second worker to take a child", || {
        let owners = try_sql::<String>(&db, "SELECT owner FROM queue WHERE status = 'running'")?;
        owners.iter().any(|o| !o[0].contains(&format!(":{pid}"))).then_some(())
    });
    stopped("-CONT");
    wait_ok(search, &log);
    let _ = first.wait();
    let mut second = second;
    let _ = second.wait();

    let store = Store::open(&db).unwrap();
    let episodes = store.episodes(1).unwrap();
    assert_eq!(episodes.len(), total);
    // One evaluation per architecture trained: the paused worker's late result was refused.
    let distinct: BTreeSet<&str> = episodes.iter().map(|e| e.architecture.as_str()).collect();
    let evaluations = sql::<String>(&db, "SELECT architecture FROM evaluations");
    assert_eq!(evaluations.len(), distinct.len(), "{evaluations:?}");
    let first_log = std::fs::read_to_string(dir.path().join("worker1.log")).unwrap();
    assert!(first_log.contains("lease"), "{first_log}");
}

/// Item 2: Ctrl-C (SIGINT to the search and its workers) three times during real training, each
/// time resumed: the interrupted children go back to the queue without counting as attempts, so
/// none is given up as "workers died while training it".
#[test]
fn three_interruptions_give_no_child_up() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nas.sqlite");
    let db_arg = db.to_str().unwrap();
    let total = 10;
    let config = config_file(
        dir.path(),
        "random",
        total,
        "[train]\nepochs = 10\n[parallel]\nworkers = 2\nthreads_per_worker = 1\n",
    );
    let log = dir.path().join("search.log");
    let mut child = spawn_group(
        &args(&[
            "search",
            "--config",
            config.to_str().unwrap(),
            "--db",
            db_arg,
            "--no-cache",
        ]),
        &log,
    );
    let mut interrupted = 0;
    for _ in 0..3 {
        // Until a worker trains a child (or the run has finished).
        let training = poll(Duration::from_secs(300), "workers training children", || {
            if child.try_wait().ok()?.is_some() {
                return Some(false);
            }
            let running = try_sql::<i64>(&db, "SELECT COUNT(*) FROM queue WHERE status = 'running'")?
                .first()?
                .first()
                .copied()?;
            (running >= 1).then_some(true)
        });
        if !training {
            break;
        }
        // Ctrl-C reaches the search and its workers, as a terminal sends it to the foreground
        // process group.
        let group = child.id();
        assert!(Command::new("kill")
            .args(["-INT", "--", &format!("-{group}")])
            .status()
            .unwrap()
            .success());
        let _ = child.wait();
        interrupted += 1;
        child = spawn_group(&args(&["search", "--resume", "1", "--db", db_arg, "--no-cache"]), &log);
    }
    assert!(
        interrupted >= 2,
        "the run ended before it was interrupted twice ({interrupted}; {:?} episodes stored): {}",
        try_sql::<i64>(&db, "SELECT COUNT(*) FROM episodes"),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    wait_ok(child, &log);
    let failures = sql::<String>(&db, "SELECT COALESCE(failure, '') FROM evaluations");
    assert!(
        failures.iter().all(|f| !f[0].contains("died while training")),
        "{failures:?}"
    );
    let store = Store::open(&db).unwrap();
    assert_eq!(store.episodes(1).unwrap().len(), total);
}

/// Item 11: workers started by hand at once on a store that does not exist yet all open it (one
/// migrates, the others wait for it), and each exits cleanly when idle.
#[test]
fn three_workers_opening_a_fresh_store_at_once_all_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fresh.sqlite");
    let workers: Vec<_> = (0..3)
        .map(|n| {
            let log = dir.path().join(format!("worker{n}.log"));
            let child = spawn(
                &args(&[
                    "worker",
                    "--db",
                    db.to_str().unwrap(),
                    "--idle-exit",
                    "1",
                    "--threads",
                    "1",
                ]),
                &log,
            );
            (child, log)
        })
        .collect();
    for (child, log) in workers {
        wait_ok(child, &log);
    }
    assert_eq!(
        Store::open(&db).unwrap().schema_version().unwrap(),
        nas_store::SCHEMA_VERSION
    );
}

/// Item 7, end to end: the PostgreSQL server stops for a few seconds while two workers train and
/// the search waits; it comes back, and the run completes with every episode once and every
/// architecture trained once (nothing lost, nothing doubled).
#[test]
fn a_postgres_restart_during_a_two_worker_search_loses_and_doubles_nothing() {
    let Some(server) = PgServer::start() else { return };
    let db = server.database("restart_search");
    let dir = tempfile::tempdir().unwrap();
    let total = 10;
    let config = config_file(
        dir.path(),
        "random",
        total,
        "[train]\nepochs = 4\n[parallel]\nworkers = 2\nthreads_per_worker = 1\n",
    );
    let log = dir.path().join("search.log");
    let child = spawn(
        &args(&[
            "search",
            "--config",
            config.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
        ]),
        &log,
    );
    let in_flight = || {
        server
            .try_query("restart_search", "SELECT COUNT(*) FROM queue WHERE status = 'running'")
            .ok()
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or(0)
    };
    poll(Duration::from_secs(300), "a child in training", || {
        (in_flight() >= 1).then_some(())
    });
    server.stop();
    std::thread::sleep(Duration::from_secs(5));
    server.start_again();
    wait_ok(child, &log);

    let store = Store::open(&db).unwrap();
    let episodes = store.episodes(1).unwrap();
    assert_eq!(
        episodes.iter().map(|e| e.index).collect::<Vec<_>>(),
        (0..total).collect::<Vec<_>>()
    );
    let distinct: BTreeSet<&str> = episodes.iter().map(|e| e.architecture.as_str()).collect();
    let trained = server.query("restart_search", "SELECT COUNT(*) FROM evaluations");
    assert_eq!(trained, distinct.len().to_string(), "each architecture trained once");
    assert_eq!(
        server.query("restart_search", "SELECT COUNT(*) FROM queue WHERE status <> 'done'"),
        "0"
    );
    assert_eq!(
        server.query("restart_search", "SELECT COALESCE(SUM(deaths), 0) FROM queue"),
        "0",
        "no worker was taken for dead"
    );
}

/// Item 6, end to end: a worker on a machine whose clock runs 5 minutes ahead (the test hook
/// `NAS_TEST_CLOCK_SKEW_SECS`) takes no lease from a worker that is alive: PostgreSQL leases are
/// written and compared in the database server's clock.
#[test]
fn a_worker_whose_clock_runs_five_minutes_ahead_steals_no_lease() {
    let Some(server) = PgServer::start() else { return };
    let db = server.database("skewed_clock");
    let db_arg = db.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let total = 6;
    let config = config_file(
        dir.path(),
        "random",
        total,
        "[train]\nepochs = 3\n[parallel]\nlauncher = \"none\"\nlease_secs = 20\n",
    );
    let log = dir.path().join("search.log");
    let search = spawn(
        &args(&[
            "search",
            "--config",
            config.to_str().unwrap(),
            "--db",
            db_arg,
            "--no-cache",
        ]),
        &log,
    );
    let worker_args = args(&["worker", "--db", db_arg, "--lease-secs", "20", "--idle-exit", "5"]);
    let on_time = spawn(&worker_args, &dir.path().join("on-time.log"));
    let ahead = spawn_env(
        &worker_args,
        &dir.path().join("ahead.log"),
        &[("NAS_TEST_CLOCK_SKEW_SECS", "300")],
    );
    wait_ok(search, &log);
    wait_ok(on_time, &dir.path().join("on-time.log"));
    wait_ok(ahead, &dir.path().join("ahead.log"));
    assert_eq!(Store::open(&db).unwrap().episodes(1).unwrap().len(), total);
    assert_eq!(
        server.query("skewed_clock", "SELECT COUNT(*) FROM queue WHERE attempt > 1"),
        "0",
        "no child was claimed twice"
    );
    assert_eq!(
        server.query("skewed_clock", "SELECT COUNT(*) FROM evaluations"),
        total.to_string(),
        "one result per child"
    );
}
