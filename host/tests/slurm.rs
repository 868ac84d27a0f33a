//! `--launcher slurm` end to end on a single-node cluster (`scripts/slurm-local.sh up`, which
//! `.ci/run` runs): a PostgreSQL store, two workers submitted as a job array, one cancelled with
//! `scancel` while it trains, every child watched by an assessor through the store.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pg::PgServer;
use common::plugin;
use nas_store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_nas-host");

/// Whether a Slurm cluster answers. `.ci/run` brings one up and sets NAS_TEST_SLURM=1, which
/// makes a missing cluster an error instead of a skipped test.
fn slurm_available() -> bool {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    assert!(
        up || std::env::var_os("NAS_TEST_SLURM").is_none(),
        "NAS_TEST_SLURM is set but no Slurm cluster answers; run scripts/slurm-local.sh up"
    );
    if !up {
        eprintln!("skipped: no Slurm cluster here (scripts/slurm-local.sh up starts one)");
    }
    up
}

/// The job arrays a search's log says it submitted ("... as job array N").
fn arrays_in(log: &str) -> Vec<String> {
    log.split("as job array ")
        .skip(1)
        .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .collect()
}

/// Waits until none of a search's worker arrays is left in Slurm's queue (tests run side by side
/// on one cluster, so each looks at its own arrays only).
fn assert_no_job_left(log: &str) {
    let arrays = arrays_in(log);
    assert!(!arrays.is_empty(), "the log names no job array: {log}");
    let listed = || {
        let output = Command::new("squeue")
            .args(["-h", "-o", "%i %T", "-j", &arrays.join(",")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    let started = Instant::now();
    while !listed().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "jobs left in squeue: {}",
            listed()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_search_with_slurm_workers_survives_a_cancelled_worker_and_leaves_no_job() {
    if !slurm_available() {
        return;
    }
    let Some(server) = PgServer::start() else { return };
    let db = server.database("slurm");
    let dir = tempfile::tempdir().unwrap();
    // A short lease: the cancelled worker's child goes to the other worker within seconds.
    std::fs::write(
        dir.path().join("run.toml"),
        "[parallel]\nlease_secs = 3\n[slurm]\ncpus_per_worker = 1\npending_warn_secs = 60\n",
    )
    .unwrap();
    let log = dir.path().join("search.log");
    let mut search = Command::new(BIN)
        .current_dir(dir.path())
        .args(["search", "--config", "run.toml"])
        .args([
            "--agent",
            plugin("random").to_str().unwrap(),
            "--reward",
            plugin("accuracy").to_str().unwrap(),
            // Loaded by path, `none` never stops a child but watches each: every epoch's curve
            // and verdict pass between the Slurm workers and the search through PostgreSQL.
            "--assessor",
            plugin("none").to_str().unwrap(),
        ])
        .args([
            "--dataset",
            "synthetic",
            "--episodes",
            "8",
            "--epochs",
            "3",
            "--seed",
            "2",
        ])
        .args(["--workers", "2", "--launcher", "slurm", "--db"])
        .arg(&db)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();

    // Cancel the Slurm task of a worker that is training a child.
    let started = Instant::now();
    let (task, job) = loop {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "no Slurm worker started training"
        );
        assert!(
            search.try_wait().unwrap().is_none(),
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        let busy = Store::open(&db)
            .ok()
            .and_then(|store| store.workers(0.0).ok())
            .and_then(|workers| workers.into_iter().find(|w| w.job.is_some()));
        if let Some(worker) = busy {
            let task = worker
                .name
                .rsplit_once(":slurm-")
                .expect("a Slurm worker names its task")
                .1
                .to_string();
            break (task, worker.job.unwrap().0);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(Command::new("scancel").arg(&task).status().unwrap().success());

    let status = search.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{text}");
    let store = Store::open(&db).unwrap();
    let episodes = store.episodes(1).unwrap();
    assert_eq!(
        episodes.iter().map(|e| e.index).collect::<Vec<_>>(),
        (0..8).collect::<Vec<_>>()
    );
    let distinct: std::collections::BTreeSet<&str> = episodes.iter().map(|e| e.architecture.as_str()).collect();
    assert_eq!(
        episodes.iter().filter(|e| !e.cache_hit).count(),
        distinct.len(),
        "every architecture trained for one episode only"
    );
    // Each child trained all 3 epochs with its curve judged, the retrained one from scratch.
    for id in store.episode_evaluations(1).unwrap().into_values() {
        let curve = store.evaluation(id).unwrap().outcome.curve;
        assert!(!curve.stopped && curve.accuracy.len() == 3, "{curve:?}");
    }
    // The cancelled worker's child was trained again, by the worker that took it over.
    let retrained = store.job_states(&[job]).unwrap();
    assert!(matches!(retrained[0].1, nas_store::JobState::Done { .. }));
    assert_eq!(
        server.query("slurm", &format!("SELECT attempt FROM queue WHERE id = {job}")),
        "2",
        "{text}"
    );
    assert!(text.contains("submitted 2 Slurm workers"), "{text}");
    // No worker job is left behind.
    assert_no_job_left(&text);
}

#[test]
fn slurm_script_prints_the_array_it_would_submit() {
    let output = Command::new(BIN)
        .args([
            "slurm",
            "script",
            "--workers",
            "4",
            "--db",
            "postgresql://nas:pw@db/nas",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let script = String::from_utf8_lossy(&output.stdout);
    assert!(
        script.starts_with("#!/bin/bash") && script.contains("#SBATCH --array=0-3"),
        "{script}"
    );
    assert!(script.contains(" worker --device cpu"), "{script}");
    assert!(!script.contains("pw@"), "{script}");
    let refused = Command::new(BIN)
        .args(["slurm", "script", "--workers", "4", "--db", "runs/nas.sqlite"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("PostgreSQL"));
}

/// Faults of a long search on a cluster (#22 item 9): a busy controller whose `squeue` fails
/// twice, and workers that exit idle while the agent thinks (here a slow agent pauses 3 s before
/// each network, and workers exit after 1 s without a child). The search goes on, submits workers
/// again when its next child waits, and finishes every episode.
#[test]
fn a_slurm_search_outlives_failing_squeue_answers_and_workers_that_exit_idle() {
    if !slurm_available() {
        return;
    }
    let Some(server) = PgServer::start() else { return };
    let db = server.database("slurm_idle");
    let dir = tempfile::tempdir().unwrap();
    let real_squeue = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v squeue"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let fake_bin = dir.path().join("bin");
    std::fs::create_dir(&fake_bin).unwrap();
    let count = dir.path().join("squeue-calls");
    let squeue = fake_bin.join("squeue");
    std::fs::write(
        &squeue,
        format!(
            "#!/bin/sh\nn=$(( $(cat '{count}' 2>/dev/null || echo 0) + 1 ))\necho $n > '{count}'\n\
             if [ $n -eq 3 ] || [ $n -eq 4 ]; then\n  echo 'slurm_load_jobs error: Socket timed out on send/recv operation' >&2\n  exit 1\nfi\n\
             exec '{real_squeue}' \"$@\"\n",
            count = count.display()
        ),
    )
    .unwrap();
    let mut permissions = std::fs::metadata(&squeue).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&squeue, permissions).unwrap();
    std::fs::write(
        dir.path().join("run.toml"),
        "[parallel]\nlease_secs = 5\n[slurm]\ncpus_per_worker = 1\nidle_exit_secs = 1\n\
         [plugins.hostile]\nmode = \"pause\"\ntarget = \"3\"\n",
    )
    .unwrap();
    let path = format!("{}:{}", fake_bin.display(), std::env::var("PATH").unwrap());
    let log = dir.path().join("search.log");
    let status = Command::new(BIN)
        .current_dir(dir.path())
        .env("PATH", path)
        .args(["search", "--config", "run.toml"])
        .args([
            "--agent",
            plugin("hostile").to_str().unwrap(),
            "--reward",
            plugin("accuracy").to_str().unwrap(),
        ])
        .args([
            "--dataset",
            "synthetic",
            "--episodes",
            "3",
            "--epochs",
            "1",
            "--seed",
            "4",
        ])
        .args(["--workers", "2", "--launcher", "slurm", "--db"])
        .arg(&db)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{text}");
    assert!(
        text.matches("could not ask Slurm about the workers").count() >= 2,
        "both failed answers were taken as unknown: {text}"
    );
    assert!(text.contains("exited idle"), "workers were submitted again: {text}");
    let store = Store::open(&db).unwrap();
    assert_eq!(
        store.episodes(1).unwrap().iter().map(|e| e.index).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert_no_job_left(&text);
}
