//! The search loop on the synthetic evaluator: agents learn, resume is exact (also across real
//! SIGKILLs), masks hold, and a failing plugin loses nothing already stored.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use rand::{Rng, SeedableRng};

use common::{mean_of_last, plugin, run, synthetic_config};
use nas_core::arch::Architecture;
use nas_core::mdp::{Mdp, MdpConfig};
use nas_search::search;
use nas_search::search::Start;
use nas_store::Store;

const EPISODES: usize = 3000;

fn random_baseline() -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let (_, episodes) = run(synthetic_config("random", EPISODES, 1), dir.path().join("r.sqlite"));
    mean_of_last(&episodes, 100)
}

fn assert_valid(episodes: &[nas_core::record::EpisodeRecord]) {
    let mdp = Mdp::new(MdpConfig::default(), 28);
    for e in episodes {
        let arch: Architecture = e.architecture.parse().unwrap();
        mdp.validate(&arch)
            .unwrap_or_else(|err| panic!("episode {} built an invalid network {arch}: {err}", e.index));
    }
}

/// Q-learning with the seed's defaults (its ε schedule reaches 0.1 at episode 2700) must end
/// clearly above random: by at least 0.25 in mean reward over the last 100 episodes (observed:
/// random ≈ 0.25, Q-learning ≈ 0.7).
#[test]
fn qlearning_learns_on_the_synthetic_evaluator() {
    let dir = tempfile::tempdir().unwrap();
    let (_, episodes) = run(synthetic_config("qlearning", EPISODES, 1), dir.path().join("q.sqlite"));
    assert_valid(&episodes);
    let (q, r) = (mean_of_last(&episodes, 100), random_baseline());
    assert!(q > r + 0.25, "qlearning {q:.3} vs random {r:.3}");
    let last = &episodes.last().unwrap().metrics;
    assert_eq!(last["epsilon"], 0.1);
    assert!(last["table_size"].as_f64().unwrap() > 50.0);
}

/// Masked PPO with MaskablePPO's defaults must also end at least 0.25 above random (observed ≈ 0.75).
#[test]
fn ppo_learns_on_the_synthetic_evaluator() {
    let dir = tempfile::tempdir().unwrap();
    let (_, episodes) = run(synthetic_config("ppo", EPISODES, 1), dir.path().join("p.sqlite"));
    assert_valid(&episodes);
    let (p, r) = (mean_of_last(&episodes, 100), random_baseline());
    assert!(p > r + 0.25, "ppo {p:.3} vs random {r:.3}");
    let last = &episodes.last().unwrap().metrics;
    for key in ["policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction"] {
        assert!(last[key].as_f64().unwrap().is_finite(), "{key}");
    }
}

/// Stopping after `cut` episodes and resuming gives exactly the episodes of an uninterrupted run.
fn resume_is_exact(agent: &str, total: usize, cut: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (_, straight) = run(synthetic_config(agent, total, 5), dir.path().join("a.sqlite"));
    let db = dir.path().join("b.sqlite");
    let (run_id, partial) = run(synthetic_config(agent, cut, 5), db.clone());
    assert_eq!(partial.len(), cut);
    search::search(
        Start::Resume {
            run: run_id,
            force: false,
            episodes: Some(total),
        },
        &common::options(db.clone()),
    )
    .unwrap();
    let resumed = Store::open(&db).unwrap().episodes(run_id).unwrap();
    let key = |e: &nas_core::record::EpisodeRecord| (e.architecture.clone(), e.reward.to_bits());
    assert_eq!(
        straight.iter().map(key).collect::<Vec<_>>(),
        resumed.iter().map(key).collect::<Vec<_>>()
    );
}

#[test]
fn qlearning_save_load_continue_is_exact() {
    resume_is_exact("qlearning", 300, 137);
}

#[test]
fn ppo_save_load_continue_is_exact() {
    // 100 is mid-rollout (64 steps per update): the partial rollout must survive too.
    resume_is_exact("ppo", 400, 100);
}

#[test]
fn random_save_load_continue_is_exact() {
    resume_is_exact("random", 200, 77);
}

/// The binary, killed with SIGKILL at several points and resumed each time, ends with exactly the
/// episodes and rewards of an uninterrupted run.
#[test]
fn killed_runs_resume_exactly() {
    let bin = env!("CARGO_BIN_EXE_nas-host");
    let dir = tempfile::tempdir().unwrap();
    let total = 2000;
    let args = |db: &str| -> Vec<String> {
        [
            "search",
            "--agent",
            plugin("ppo").to_str().unwrap(),
            "--reward",
            plugin("accuracy").to_str().unwrap(),
            "--dataset",
            "mnist3",
            "--evaluator",
            "synthetic",
            "--episodes",
            &total.to_string(),
            "--seed",
            "11",
            "--db",
            db,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let straight_db = dir.path().join("straight.sqlite");
    let status = Command::new(bin)
        .args(args(straight_db.to_str().unwrap()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());

    let killed_db = dir.path().join("killed.sqlite");
    let killed = killed_db.to_str().unwrap().to_string();
    let mut kills = 0;
    let mut child = Command::new(bin)
        .args(args(&killed))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut last_done = 0;
    // Random kill points, different in every test run; the seed is printed to replay a failure.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("kill delays seeded with {seed}");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..5 {
        let delay_ms = rng.random_range(150..450);
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        // Killed before it recorded the run (while loading plugins): start it again; else resume.
        let next_args = match Store::open(&killed_db).unwrap().run(1) {
            Ok(run) => {
                assert!(run.episodes_done >= last_done, "committed episodes never go back");
                last_done = run.episodes_done;
                ["search", "--resume", "1", "--db", &killed].map(String::from).to_vec()
            }
            Err(_) => args(&killed),
        };
        child = Command::new(bin)
            .args(next_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
    }
    assert!(child.wait().unwrap().success());
    assert!(kills >= 2, "the run finished before it could be killed twice ({kills})");

    let a = Store::open(&straight_db).unwrap().episodes(1).unwrap();
    let b = Store::open(&killed_db).unwrap().episodes(1).unwrap();
    assert_eq!(a.len(), total);
    let key = |e: &nas_core::record::EpisodeRecord| (e.index, e.architecture.clone(), e.reward.to_bits());
    assert_eq!(
        a.iter().map(key).collect::<Vec<_>>(),
        b.iter().map(key).collect::<Vec<_>>()
    );
    assert_eq!(Store::open(&killed_db).unwrap().run(1).unwrap().status, "finished");
}

#[test]
fn a_changed_plugin_is_refused_on_resume_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("myagent.wasm");
    std::fs::copy(plugin("random"), &copy).unwrap();
    let mut config = synthetic_config("random", 10, 0);
    config.agent = copy.display().to_string();
    let db = dir.path().join("c.sqlite");
    let (run_id, _) = run(config, db.clone());
    std::fs::copy(plugin("qlearning"), &copy).unwrap();
    let e = search::search(
        Start::Resume {
            run: run_id,
            force: false,
            episodes: Some(20),
        },
        &common::options(db.clone()),
    )
    .err()
    .unwrap();
    let text = format!("{e:#}");
    assert!(
        text.contains("changed since the run started") && text.contains("--force"),
        "{text}"
    );
    // Forced: resumes; the new agent cannot read the old checkpoint, which is reported by name.
    let e = search::search(
        Start::Resume {
            run: run_id,
            force: true,
            episodes: Some(20),
        },
        &common::options(db),
    )
    .err()
    .unwrap();
    assert!(format!("{e:#}").contains("plugin qlearning 0.1.0, call load"), "{e:#}");
}

/// A resume whose agent traps in `load` leaves the run as it was: same target, same status.
#[test]
fn a_resume_that_fails_to_load_leaves_the_run_record_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("l.sqlite");
    let mut config = synthetic_config("hostile", 10, 0);
    config
        .plugins
        .insert("hostile".into(), toml::toml! { mode = "load-panic" });
    let (run_id, episodes) = run(config, db.clone());
    assert_eq!(episodes.len(), 10);
    let before = Store::open(&db).unwrap().run(run_id).unwrap();
    let e = search::search(
        Start::Resume {
            run: run_id,
            force: false,
            episodes: Some(20),
        },
        &common::options(db.clone()),
    )
    .err()
    .unwrap();
    assert!(
        format!("{e:#}").contains("plugin hostile 0.1.0, call load: crashed"),
        "{e:#}"
    );
    let after = Store::open(&db).unwrap().run(run_id).unwrap();
    assert_eq!(
        (after.episodes_target, after.status.as_str(), after.error.as_deref()),
        (10, "finished", None)
    );
    assert_eq!(
        (before.episodes_target, before.status.as_str()),
        (after.episodes_target, after.status.as_str())
    );
}

#[test]
fn a_failing_plugin_keeps_every_committed_episode() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.sqlite");
    let mut config = synthetic_config("hostile", 50, 0);
    // Behaves for 40 act calls, then panics.
    config.plugins.insert(
        "hostile".into(),
        toml::toml! { mode = "panic"
        after = 40 },
    );
    let e = search::search(Start::New(Box::new(config)), &common::options(db.clone()))
        .err()
        .unwrap();
    let text = format!("{e:#}");
    assert!(
        text.contains("plugin hostile 0.1.0, call act") && text.contains("--resume 1"),
        "{text}"
    );
    let store = Store::open(&db).unwrap();
    let run = store.run(1).unwrap();
    assert_eq!(run.status, "failed");
    assert!(run.error.unwrap().contains("crashed"));
    let episodes = store.episodes(1).unwrap();
    assert!(!episodes.is_empty() && episodes.len() < 50);
    assert_eq!(store.checkpoint(1).unwrap().unwrap().0, episodes.len());
}

#[test]
fn cache_hits_are_recorded_and_no_cache_forces_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.sqlite");
    let (_, first) = run(synthetic_config("random", 100, 3), db.clone());
    let (_, second) = run(synthetic_config("random", 100, 3), db.clone());
    assert!(first.iter().any(|e| !e.cache_hit));
    assert!(
        second.iter().all(|e| e.cache_hit),
        "same seed, same architectures: all cached"
    );
    let mut options = common::options(db.clone());
    options.no_cache = true;
    let summary = search::search(Start::New(Box::new(synthetic_config("random", 20, 3))), &options).unwrap();
    assert!(Store::open(&db)
        .unwrap()
        .episodes(summary.run)
        .unwrap()
        .iter()
        .all(|e| !e.cache_hit));
}

/// A run extended with `--resume N --episodes E` keeps E as its target: a later plain `--resume`
/// continues to E instead of stopping at the configuration's original episode count.
#[test]
fn a_plain_resume_keeps_an_extended_target() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.sqlite");
    let (run_id, episodes) = run(synthetic_config("random", 10, 0), db.clone());
    assert_eq!(episodes.len(), 10);
    // As if `--resume 1 --episodes 50` had been killed at episode 30: the target is stored.
    let store = Store::open(&db).unwrap();
    store.set_episodes_target(run_id, 30).unwrap();
    store.set_status(run_id, "failed", Some("killed")).unwrap();
    drop(store);
    let resume = |episodes| {
        search::search(
            Start::Resume {
                run: run_id,
                force: false,
                episodes,
            },
            &common::options(db.clone()),
        )
        .unwrap()
    };
    assert_eq!(resume(None).episodes.len(), 30);
    let record = Store::open(&db).unwrap().run(run_id).unwrap();
    assert_eq!((record.episodes_target, record.status.as_str()), (30, "finished"));
    assert_eq!(resume(Some(35)).episodes.len(), 35);
    assert_eq!(resume(None).episodes.len(), 35);
}

/// Runs record their device kind and cache use; resuming on another device is refused unless
/// forced, and resuming a `--no-cache` run keeps training every architecture.
#[test]
fn a_resumed_run_keeps_its_device_and_cache_setting() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.sqlite");
    let mut options = common::options(db.clone());
    options.no_cache = true;
    let summary = search::search(Start::New(Box::new(synthetic_config("random", 5, 1))), &options).unwrap();
    let store = Store::open(&db).unwrap();
    let record = store.run(summary.run).unwrap();
    assert_eq!((record.device.as_deref(), record.no_cache), (Some("none"), true));
    // A run trained on a GPU cannot silently continue on this machine's CPU.
    store.set_run_environment(summary.run, "cuda", true).unwrap();
    let resume = |force: bool, episodes: usize| {
        search::search(
            Start::Resume {
                run: summary.run,
                force,
                episodes: Some(episodes),
            },
            &common::options(db.clone()),
        )
    };
    let text = format!("{:#}", resume(false, 10).err().unwrap());
    assert!(
        text.contains("trained its children on cuda") && text.contains("--force"),
        "{text}"
    );
    let record = Store::open(&db).unwrap().run(summary.run).unwrap();
    assert_eq!(record.episodes_target, 5, "a refused resume changes nothing");
    let resumed = resume(true, 10).unwrap();
    assert_eq!(resumed.episodes.len(), 10);
    // The run's own --no-cache holds although this resume did not repeat the flag.
    assert!(resumed.episodes.iter().all(|e| !e.cache_hit));
    assert_eq!(
        Store::open(&db).unwrap().run(summary.run).unwrap().device.as_deref(),
        Some("none")
    );
}

/// The metrics recorded with an episode are the ones in force while it was designed: with an ε
/// schedule of 1.0 for two episodes, then 0.5, episode 1 was designed with ε = 1.0.
#[test]
fn recorded_epsilon_is_the_one_the_episode_was_designed_with() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = synthetic_config("qlearning", 5, 0);
    config.plugins.insert(
        "qlearning".into(),
        toml::toml! { epsilon_schedule = [[1.0, 2], [0.5, 2], [0.0, 1]] },
    );
    let (_, episodes) = run(config, dir.path().join("e.sqlite"));
    let epsilons: Vec<f64> = episodes
        .iter()
        .map(|e| e.metrics["epsilon"].as_f64().unwrap())
        .collect();
    assert_eq!(epsilons, vec![1.0, 1.0, 0.5, 0.5, 0.0]);
}

/// An episode redone after a kill between storing its evaluation and committing it is recorded
/// exactly as the uninterrupted run records it: same evaluation, not a cache hit — with the cache
/// on or off.
#[test]
fn an_episode_redone_after_a_kill_is_recorded_as_the_first_attempt() {
    for no_cache in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let straight_db = dir.path().join("s.sqlite");
        let mut options = common::options(straight_db.clone());
        options.no_cache = no_cache;
        let straight = search::search(Start::New(Box::new(synthetic_config("random", 6, 4))), &options).unwrap();

        // The killed run: 3 episodes committed, the 4th evaluated and stored but not committed.
        let killed_db = dir.path().join("k.sqlite");
        let mut options = common::options(killed_db.clone());
        options.no_cache = no_cache;
        let first = search::search(Start::New(Box::new(synthetic_config("random", 4, 4))), &options).unwrap();
        let store = rusqlite::Connection::open(&killed_db).unwrap();
        store
            .execute("DELETE FROM episodes WHERE run_id = ?1 AND idx = 3", [first.run])
            .unwrap();
        let checkpoint_after_3: Vec<u8> = {
            // Replay to the checkpoint after episode 3: a 3-episode run from the same seed.
            let db3 = dir.path().join("three.sqlite");
            let three = search::search(
                Start::New(Box::new(synthetic_config("random", 3, 4))),
                &common::options(db3.clone()),
            )
            .unwrap();
            Store::open(&db3).unwrap().checkpoint(three.run).unwrap().unwrap().1
        };
        store
            .execute(
                "UPDATE checkpoints SET episodes = 3, agent_state = ?2 WHERE run_id = ?1",
                rusqlite::params![first.run, checkpoint_after_3],
            )
            .unwrap();
        drop(store);
        let resumed = search::search(
            Start::Resume {
                run: first.run,
                force: false,
                episodes: Some(6),
            },
            &options,
        )
        .unwrap();
        let key =
            |e: &nas_core::record::EpisodeRecord| (e.index, e.architecture.clone(), e.reward.to_bits(), e.cache_hit);
        assert_eq!(
            straight.episodes.iter().map(key).collect::<Vec<_>>(),
            resumed.episodes.iter().map(key).collect::<Vec<_>>(),
            "no_cache = {no_cache}"
        );
    }
}

/// `eval` samples a frozen policy: the agent is never told a reward. The hostile test agent fails
/// any `observe` under `[eval.plugins.hostile] mode = "refuse-observe"`.
#[test]
fn eval_never_updates_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.sqlite");
    let mut config = synthetic_config("hostile", 5, 0);
    config
        .eval
        .plugins
        .insert("hostile".into(), toml::toml! { mode = "refuse-observe" });
    let (run_id, _) = run(config, db.clone());
    let summary = nas_search::frozen_policy::eval(run_id, Some(4), None, &common::options(db.clone())).unwrap();
    assert_eq!(summary.samples.len(), 4);
}

/// A sink receives the committed episodes in order, exactly as the store has them, and is told
/// where a resumed run starts.
#[test]
fn a_sink_receives_every_committed_episode() {
    #[derive(Default)]
    struct Recording {
        started: Vec<(usize, usize)>,
        episodes: Vec<nas_core::record::EpisodeRecord>,
        finished: usize,
    }
    impl nas_search::sink::EpisodeSink for Recording {
        fn started(&mut self, _run: i64, committed: &[nas_core::record::EpisodeRecord], total: usize) {
            self.started.push((committed.len(), total));
        }
        fn episode(&mut self, _run: i64, episode: &nas_core::record::EpisodeRecord) {
            self.episodes.push(episode.clone());
        }
        fn finished(&mut self) {
            self.finished += 1;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.sqlite");
    let mut sink = Recording::default();
    let options = common::options(db.clone());
    let first = search::search_with(
        Start::New(Box::new(synthetic_config("random", 6, 2))),
        &options,
        &mut sink,
    )
    .unwrap();
    let resume = Start::Resume {
        run: first.run,
        force: false,
        episodes: Some(9),
    };
    let all = search::search_with(resume, &options, &mut sink).unwrap();
    assert_eq!(sink.started, vec![(0, 6), (6, 9)]);
    assert_eq!(sink.finished, 2);
    assert_eq!(sink.episodes, all.episodes);
}
