//! Plugins written in Python (issue #27): the SDK's examples built by componentize-py (`make
//! plugins` builds plugins-py/*.py into plugins/ and tests/plugins-py/*.py into tests/plugins/)
//! round-trip through the same sandbox as Rust plugins, search, resume exactly, and a hostile
//! Python agent is stopped by every limit with the usual one-line error.

mod common;

use common::{act_error, init_agent, mdp, mean_of_last, plugin, run, synthetic_config};
use nas_config::{EvaluatorKind, SandboxLimits};
use nas_core::arch::Architecture;
use nas_core::record::EpisodeRecord;
use nas_plugin_runtime::{
    AgentPlugin, AssessorPlugin, CurveInput, EvaluationInput, PluginKind, RewardPlugin, Runtime, Verdict,
};
use nas_search::search;
use nas_search::search::Start;
use nas_store::Store;

/// The runtime with the user's compile cache, as searches use it: a CPython component takes tens of
/// seconds to compile cold, so each is compiled once per machine, not once per test.
fn runtime() -> Runtime {
    Runtime::new(Runtime::default_cache_dir()).unwrap()
}

fn agent(name: &str, config: &str, limits: SandboxLimits) -> AgentPlugin {
    init_agent(&runtime(), name, config, limits)
}

fn hostile(mode: &str, target: &str, limits: SandboxLimits) -> AgentPlugin {
    let config = serde_json::json!({ "mode": mode, "target": target }).to_string();
    agent("hostile_py", &config, limits)
}

fn assert_valid(episodes: &[EpisodeRecord]) {
    let mdp = mdp();
    for e in episodes {
        let arch: Architecture = e.architecture.parse().unwrap();
        mdp.validate(&arch)
            .unwrap_or_else(|err| panic!("episode {} built an invalid network {arch}: {err}", e.index));
    }
}

fn one_line(text: &str) {
    assert!(!text.contains('\n'), "one line: {text}");
}

// --- The examples ---

#[test]
fn the_python_agent_round_trips_every_call() {
    let rt = runtime();
    let loaded = rt.load(&plugin("ucb")).unwrap();
    assert_eq!(loaded.kind, PluginKind::Agent);
    assert_eq!(loaded.contract_version, "0.3.0");
    let mut agent = AgentPlugin::instantiate(&rt, &loaded, SandboxLimits::default(), 3).unwrap();
    assert_eq!(
        (agent.info().name.as_str(), agent.info().version.as_str()),
        ("ucb", "0.1.0")
    );
    let m = mdp();
    // `act` before `init` is the SDK's error, as in Rust.
    let e = act_error(&mut agent).to_string();
    assert!(e.contains("`act` called before `init`"), "{e}");
    agent.init(&m, r#"{"c": 0.5}"#, 3).unwrap();
    let empty = agent.save().unwrap();
    let mut state = m.start();
    let mut steps = 0;
    while !state.terminated {
        let mask = m.mask(&state);
        let a = agent.act(0, &m, &state, &mask, true).unwrap();
        assert!(mask[a]);
        state = m.next_state(&state, &m.actions()[a]);
        steps += 1;
        let done = state.terminated;
        agent.observe(0, if done { 0.7 } else { 0.0 }, done).unwrap();
    }
    // Every step of the episode learned its return.
    assert_eq!(agent.metrics().unwrap(), vec![("table_size".to_string(), steps as f64)]);
    let learned = agent.save().unwrap();
    assert!(learned.len() > empty.len());
    agent.load(&empty).unwrap();
    assert_eq!(agent.metrics().unwrap()[0].1, 0.0, "load restores the saved state");
    agent.load(&learned).unwrap();
    assert_eq!(agent.metrics().unwrap()[0].1, steps as f64);
    let e = agent.load(b"garbage").unwrap_err();
    assert!(!e.fatal && e.to_string().contains("cannot restore the state"), "{e}");
    // Typed configuration: an unknown or mistyped field is the plugin's error, naming it.
    let e = agent.init(&m, r#"{"bogus": 1}"#, 0).unwrap_err().to_string();
    assert!(
        e.starts_with("plugin ucb 0.1.0, call init:") && e.contains("unknown field `bogus`"),
        "{e}"
    );
    let e = agent.init(&m, r#"{"c": "big"}"#, 0).unwrap_err().to_string();
    assert!(e.contains("`c` must be float"), "{e}");
}

/// Random on the synthetic evaluator, for comparison.
fn random_baseline(episodes: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let (_, e) = run(synthetic_config("random", episodes, 1), dir.path().join("r.sqlite"));
    mean_of_last(&e, 100)
}

/// UCB in Python learns as the Rust agents do: after 1000 episodes its last 100 are at least 0.25
/// above random's (observed: random ≈ 0.25, ucb ≈ 0.75).
#[test]
fn the_python_ucb_agent_learns_on_the_synthetic_evaluator() {
    let dir = tempfile::tempdir().unwrap();
    let (_, episodes) = run(synthetic_config("ucb", 1000, 1), dir.path().join("u.sqlite"));
    assert_valid(&episodes);
    let (u, r) = (mean_of_last(&episodes, 100), random_baseline(1000));
    assert!(u > r + 0.25, "ucb {u:.3} vs random {r:.3}");
    assert!(episodes.last().unwrap().metrics["table_size"].as_f64().unwrap() > 100.0);
}

/// Stopping and resuming gives exactly the episodes of an uninterrupted run: `save`/`load` carry
/// the whole table and the open episodes.
#[test]
fn the_python_ucb_agent_resumes_exactly() {
    let (total, cut) = (300, 137);
    let dir = tempfile::tempdir().unwrap();
    let (_, straight) = run(synthetic_config("ucb", total, 5), dir.path().join("a.sqlite"));
    let db = dir.path().join("b.sqlite");
    let (run_id, partial) = run(synthetic_config("ucb", cut, 5), db.clone());
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
    let key = |e: &EpisodeRecord| (e.architecture.clone(), e.reward.to_bits());
    assert_eq!(
        straight.iter().map(key).collect::<Vec<_>>(),
        resumed.iter().map(key).collect::<Vec<_>>()
    );
}

/// MnasNet's soft constraint with parameters for latency: accuracy * (params / target) ** -0.07.
fn mnas(accuracy: f64, params: u64, target: f64) -> f64 {
    accuracy * (params as f64 / target).powf(-0.07)
}

#[test]
fn the_python_reward_shaper_shapes_through_the_sandbox() {
    let rt = runtime();
    let loaded = rt.load(&plugin("mnas_reward")).unwrap();
    assert_eq!(loaded.kind, PluginKind::Reward);
    let mut shaper = RewardPlugin::instantiate(&rt, &loaded, SandboxLimits::default(), 0).unwrap();
    assert_eq!(shaper.info().name, "mnas_reward");
    let arch: Architecture = "conv(32,3) pool(5,3)".parse().unwrap();
    // With a latency, so the SDK's conversion of the cost (contract 0.3) runs too.
    let mut cost = nas_core::cost::structural_cost(&arch, (1, 28, 28), 3);
    cost.latency = Some(nas_core::record::Latency {
        device: "cpu".into(),
        batch: 1,
        runs: 30,
        threads: 1,
        median_ms: 0.2,
        p90_ms: 0.3,
        min_ms: 0.1,
        throughput: None,
        seconds: 0.0,
    });
    let input = |params: u64, failure: Option<&'static str>| EvaluationInput {
        architecture: &arch,
        accuracy: 0.9,
        params,
        train_seconds: 1.0,
        failure,
        epochs_trained: 5,
        epochs: 5,
        stopped: false,
        cost: &cost,
    };
    shaper.init("{}").unwrap();
    for params in [1_000, 100_000, 10_000_000] {
        let got = shaper.shape(&input(params, None)).unwrap();
        assert!((got - mnas(0.9, params, 1e5)).abs() < 1e-12, "{params}: {got}");
    }
    assert_eq!(shaper.shape(&input(1000, Some("diverged"))).unwrap(), 0.0);
    shaper
        .init(r#"{"target_params": 1000, "alpha": 0, "beta": -1, "failure_reward": -1}"#)
        .unwrap();
    assert!((shaper.shape(&input(4000, None)).unwrap() - 0.225).abs() < 1e-12);
    assert_eq!(shaper.shape(&input(10, None)).unwrap(), 0.9);
    assert_eq!(shaper.shape(&input(10, Some("out of memory"))).unwrap(), -1.0);
    let e = shaper.init(r#"{"beta": 0.5}"#).unwrap_err().to_string();
    assert!(
        e.starts_with("plugin mnas_reward 0.1.0, call init:") && e.contains("<= 0"),
        "{e}"
    );
}

/// Both Python examples drive a synthetic search together: every reward is the shaper's formula
/// applied to the stored child.
#[test]
fn both_python_examples_search_on_the_synthetic_evaluator() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = synthetic_config("ucb", 200, 2);
    config.reward = plugin("mnas_reward").display().to_string();
    config
        .plugins
        .insert("mnas_reward".into(), toml::toml! { target_params = 20000.0 });
    let (_, episodes) = run(config, dir.path().join("m.sqlite"));
    assert_eq!(episodes.len(), 200);
    assert_valid(&episodes);
    for e in &episodes {
        let want = mnas(e.accuracy, e.params, 2e4);
        assert!(
            (e.reward - want).abs() < 1e-12,
            "episode {}: {} vs {want}",
            e.index,
            e.reward
        );
    }
}

/// A short real search: children trained (1 epoch, the tiny synthetic dataset) with both Python
/// plugins.
#[test]
fn both_python_examples_run_a_short_real_search() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = synthetic_config("ucb", 3, 4);
    config.reward = plugin("mnas_reward").display().to_string();
    config.evaluator = EvaluatorKind::Train;
    config.dataset = nas_datasets::DatasetName::Synthetic.into();
    config.train.epochs = 1;
    let (_, episodes) = run(config, dir.path().join("t.sqlite"));
    assert_eq!(episodes.len(), 3);
    assert_valid(&episodes);
    for e in &episodes {
        assert!(e.failure.is_none(), "{:?}", e.failure);
        assert!(e.accuracy > 0.0 && e.params > 0);
        assert!((e.reward - mnas(e.accuracy, e.params, 1e5)).abs() < 1e-12);
    }
}

/// The assessor world's glue: a Python median rule told curves through the sandbox.
#[test]
fn a_python_assessor_assesses_through_the_sandbox() {
    let rt = runtime();
    let loaded = rt.load(&plugin("median_py")).unwrap();
    assert_eq!(loaded.kind, PluginKind::Assessor);
    let mut assessor = AssessorPlugin::instantiate(&rt, &loaded, SandboxLimits::default(), 0).unwrap();
    assert_eq!(assessor.info().name, "median_py");
    assessor.init("{}").unwrap();
    let arch: Architecture = "conv(32,3) fc(64)".parse().unwrap();
    let curve = |accuracy: &'static [f64]| CurveInput {
        architecture: &arch,
        params: 1000,
        accuracy,
        epochs: 3,
    };
    assert_eq!(
        assessor.assess(&curve(&[0.1])).unwrap(),
        Verdict::Continue,
        "nothing completed yet"
    );
    assessor.completed(&curve(&[0.5, 0.6, 0.7])).unwrap();
    assessor.completed(&curve(&[0.7, 0.8, 0.9])).unwrap();
    // Median at epoch 1 is 0.6, at epoch 2 0.7.
    assert_eq!(assessor.assess(&curve(&[0.5])).unwrap(), Verdict::Stop);
    assert_eq!(assessor.assess(&curve(&[0.65])).unwrap(), Verdict::Continue);
    assert_eq!(
        assessor.assess(&curve(&[0.75, 0.6])).unwrap(),
        Verdict::Continue,
        "its best"
    );
    assert_eq!(assessor.assess(&curve(&[0.6, 0.65])).unwrap(), Verdict::Stop);
    let e = assessor.completed(&curve(&[0.5])).unwrap_err().to_string();
    assert!(
        e.starts_with(
            "plugin median_py 0.1.0, call completed: ValueError: completed was told a curve of 1 of 3 epochs"
        ),
        "{e}"
    );
    let e = assessor.init(r#"{"min_completed": "two"}"#).unwrap_err().to_string();
    assert!(e.contains("`min_completed` must be int"), "{e}");
}

// --- Limits ---

/// The fewest of one count (instances, memories or tables) the component instantiates with.
fn fewest(name: &str, set: fn(&mut SandboxLimits, usize)) -> usize {
    let rt = runtime();
    let loaded = rt.load(&plugin(name)).unwrap();
    (1..=64)
        .find(|&n| {
            let mut limits = SandboxLimits::default();
            set(&mut limits, n);
            AgentPlugin::instantiate(&rt, &loaded, limits, 0).is_ok()
        })
        .unwrap()
}

/// What a CPython component creates, against a Rust one: the README's limits table says these
/// numbers, and the defaults must admit both.
#[test]
fn a_python_component_fits_the_default_limits() {
    let counts = |name| {
        (
            fewest(name, |l, n| l.instances = n),
            fewest(name, |l, n| l.memories = n),
            fewest(name, |l, n| l.tables = n),
        )
    };
    let (rust, python) = (counts("random"), counts("ucb"));
    eprintln!("instances, memories, tables: Rust {rust:?}, Python {python:?}");
    assert_eq!(rust, (3, 1, 2), "a Rust plugin (the README's limits table)");
    // CPython is linked dynamically inside the component (libc, libpython, the WASI adapter and
    // their shims are core instances of their own) but shares one memory.
    assert_eq!(
        python,
        (14, 1, 2),
        "a componentize-py 0.25 plugin (the README's limits table)"
    );
    let d = SandboxLimits::default();
    assert!(python.0 <= d.instances && python.1 <= d.memories && python.2 <= d.tables);
}

// --- A hostile Python agent ---

#[test]
fn python_endless_loop_in_act_is_stopped_by_the_time_limit() {
    let limits = SandboxLimits {
        call_timeout_secs: 0.3,
        ..SandboxLimits::default()
    };
    let mut agent = hostile("infinite-loop", "", limits);
    let started = std::time::Instant::now();
    let e = act_error(&mut agent);
    assert!(started.elapsed().as_secs_f64() < 10.0);
    assert!(e.fatal);
    let text = e.to_string();
    one_line(&text);
    assert!(
        text.starts_with("plugin hostile_py 0.1.0, call act:") && text.contains("time limit of 0.3 s"),
        "{text}"
    );
    let again = agent.save().unwrap_err().to_string();
    assert!(again.contains("stopped after an earlier failure"), "{again}");
}

#[test]
fn python_unbounded_allocation_hits_the_memory_cap() {
    let limits = SandboxLimits {
        memory_mib: 128,
        ..SandboxLimits::default()
    };
    let mut agent = hostile("memory-bomb", "", limits);
    let e = act_error(&mut agent);
    assert!(e.fatal);
    let text = e.to_string();
    one_line(&text);
    assert!(text.contains("memory cap of 128 MiB"), "{text}");
}

#[test]
fn python_huge_save_is_stopped_at_the_memory_cap_and_a_large_one_fits() {
    // A checkpoint twice the cap cannot even be built.
    let mut agent = hostile("huge-save", "1024", SandboxLimits::default());
    let e = agent.save().unwrap_err();
    assert!(e.fatal);
    let text = e.to_string();
    one_line(&text);
    assert!(
        text.starts_with("plugin hostile_py 0.1.0, call save:") && text.contains("memory cap of 512 MiB"),
        "{text}"
    );
    // 100 MiB fits under the default cap (CPython holds it and the copy the host reads).
    let mut agent = hostile("huge-save", "100", SandboxLimits::default());
    assert_eq!(agent.save().unwrap().len(), 100 << 20);
}

#[test]
fn python_exception_in_init_is_a_one_line_error_naming_the_line() {
    let rt = runtime();
    let loaded = rt.load(&plugin("hostile_py")).unwrap();
    let mut agent = AgentPlugin::instantiate(&rt, &loaded, SandboxLimits::default(), 0).unwrap();
    let e = agent.init(&mdp(), r#"{"mode": "init-exception"}"#, 0).unwrap_err();
    let text = e.to_string();
    one_line(&text);
    assert!(
        text.starts_with("plugin hostile_py 0.1.0, call init: ValueError: hostile_py refuses to start on purpose (hostile_py.py, line ")
            && text.ends_with(", in __init__)"),
        "{text}"
    );
    // A returned error, not a trap: the plugin can be initialised again.
    assert!(!e.fatal);
    agent.init(&mdp(), "{}", 0).unwrap();
    let m = mdp();
    let s = m.start();
    assert!(m.mask(&s)[agent.act(0, &m, &s, &m.mask(&s), true).unwrap()]);
}

#[test]
fn python_exception_in_act_is_the_calls_error() {
    let mut agent = hostile("exception", "", SandboxLimits::default());
    let e = act_error(&mut agent);
    assert!(!e.fatal);
    let text = e.to_string();
    assert!(
        text.starts_with("plugin hostile_py 0.1.0, call act: KeyError: 'no such state' (hostile_py.py, line "),
        "{text}"
    );
}

#[test]
fn python_output_flood_is_cut_and_the_host_survives() {
    let mut agent = hostile("huge-output", "", SandboxLimits::default());
    let e = act_error(&mut agent).to_string();
    one_line(&e);
    assert!(e.len() < 10_000, "error of {} bytes", e.len());
    assert!(e.contains("bytes in all, cut"), "{}", &e[e.len() - 100..]);
    agent.save().unwrap();
}

#[test]
fn python_sleeping_in_a_call_is_stopped_at_the_time_limit() {
    let limits = SandboxLimits {
        call_timeout_secs: 0.3,
        ..SandboxLimits::default()
    };
    for wait in ["20", "forever"] {
        let mut agent = hostile("sleep", wait, limits);
        let started = std::time::Instant::now();
        let e = act_error(&mut agent);
        let waited = started.elapsed().as_secs_f64();
        assert!(waited < 5.0, "a {wait} s sleep held the host for {waited:.1} s");
        assert!(e.fatal);
        assert!(e.to_string().contains("exceeded its time limit of 0.3 s"), "{e}");
    }
    let mut agent = hostile("sleep", "0.05", limits);
    let e = act_error(&mut agent);
    assert!(!e.fatal && e.to_string().contains("came back"), "{e}");
}

/// Files, the environment and the network are as far out of reach from CPython as from Rust.
#[test]
fn python_files_environment_and_network_are_out_of_reach() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "top secret").unwrap();
    let mut agent = hostile("read-file", secret.to_str().unwrap(), SandboxLimits::default());
    let e = act_error(&mut agent).to_string();
    assert!(e.contains("denied: cannot read") && !e.contains("LEAK"), "{e}");

    assert!(std::env::var("PATH").is_ok());
    let mut agent = hostile("env", "PATH", SandboxLimits::default());
    let e = act_error(&mut agent).to_string();
    assert!(
        e.contains("denied: no environment variable PATH") && !e.contains("LEAK"),
        "{e}"
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut agent = hostile("socket", &addr, SandboxLimits::default());
    let e = act_error(&mut agent).to_string();
    assert!(e.contains("denied: cannot connect") && !e.contains("LEAK"), "{e}");
    assert!(
        listener.accept().is_err(),
        "no connection may have reached the listener"
    );
}

/// The component holds the modules imported when it was built (componentize-py snapshots the
/// interpreter after importing the plugin's file); with no files granted, a module first imported
/// inside a call is not found. The SDK README tells plugin authors to import at the top.
#[test]
fn python_modules_first_imported_in_a_call_are_not_found() {
    let mut agent = hostile("lazy-import", "", SandboxLimits::default());
    let e = act_error(&mut agent);
    assert!(!e.fatal);
    let text = e.to_string();
    assert!(
        text.contains("call act: ModuleNotFoundError: No module named 'colorsys'"),
        "{text}"
    );
}

/// The host's per-episode randomness reaches Python (`PluginRng.from_host()`): reseeding replays.
#[test]
fn python_draws_from_the_hosts_randomness() {
    let mut agent = hostile("host-random", "", SandboxLimits::default());
    let m = mdp();
    let mut draw = |seed| {
        agent.reseed(seed);
        (0..20)
            .map(|_| {
                let s = m.start();
                agent.act(0, &m, &s, &m.mask(&s), true).unwrap()
            })
            .collect::<Vec<_>>()
    };
    let (a, b, c) = (draw(17), draw(17), draw(18));
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.iter().collect::<std::collections::BTreeSet<_>>().len() > 3, "{a:?}");
}

/// A Python agent stuck mid-run fails the search with the one-line reason; every episode it had
/// committed stays, with its checkpoint.
#[test]
fn a_stuck_python_agent_keeps_every_committed_episode() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.sqlite");
    let mut config = synthetic_config("hostile_py", 50, 0);
    config.sandbox.call_timeout_secs = 0.5;
    // Behaves for 40 act calls, then loops forever.
    config.plugins.insert(
        "hostile_py".into(),
        toml::toml! { mode = "infinite-loop"
        after = 40 },
    );
    let e = search::search(Start::New(Box::new(config)), &common::options(db.clone()))
        .err()
        .unwrap();
    let text = format!("{e:#}");
    assert!(
        text.contains("plugin hostile_py 0.1.0, call act") && text.contains("time limit of 0.5 s"),
        "{text}"
    );
    let store = Store::open(&db).unwrap();
    let run = store.run(1).unwrap();
    assert_eq!(run.status, "failed");
    assert!(run.error.unwrap().contains("time limit"));
    let episodes = store.episodes(1).unwrap();
    assert!(!episodes.is_empty() && episodes.len() < 50);
    assert_eq!(store.checkpoint(1).unwrap().unwrap().0, episodes.len());
}

// --- Costs (BENCHMARKS.md, "Python plugins"): `make bench-python` ---

fn per_call_us(calls: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..calls / 10 {
        f();
    }
    let start = std::time::Instant::now();
    for _ in 0..calls {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / calls as f64
}

fn ms_since(start: std::time::Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// Loads an agent cold (fresh compile cache) and warm, and times its calls: whole episodes of
/// `act` (exploring, the table growing as in a search) with `observe`, greedy `act`, and a bare
/// call (`metrics`).
fn bench_agent(name: &str) -> serde_json::Value {
    let cache = tempfile::tempdir().unwrap();
    let rt = Runtime::new(Some(cache.path().to_path_buf())).unwrap();
    let path = plugin(name);
    let start = std::time::Instant::now();
    let cold = rt.load(&path).unwrap();
    let cold_ms = ms_since(start);
    let start = std::time::Instant::now();
    let warm = rt.load(&path).unwrap();
    let warm_ms = ms_since(start);
    assert!(!cold.cache_hit && warm.cache_hit);
    let start = std::time::Instant::now();
    let mut agent = AgentPlugin::instantiate(&rt, &warm, SandboxLimits::default(), 0).unwrap();
    let instantiate_ms = ms_since(start);
    let m = mdp();
    let start = std::time::Instant::now();
    agent.init(&m, "{}", 0).unwrap();
    let init_ms = ms_since(start);
    let (mut acts, mut act_s) = (0usize, 0.0f64);
    for episode in 0..2000 {
        let mut state = m.start();
        while !state.terminated {
            let mask = m.mask(&state);
            let start = std::time::Instant::now();
            let a = agent.act(0, &m, &state, &mask, true).unwrap();
            act_s += start.elapsed().as_secs_f64();
            acts += 1;
            state = m.next_state(&state, &m.actions()[a]);
            let reward = if state.terminated {
                (episode % 7) as f64 / 7.0
            } else {
                0.0
            };
            agent.observe(0, reward, state.terminated).unwrap();
        }
    }
    let s = m.start();
    let mask = m.mask(&s);
    let greedy_us = per_call_us(5000, || {
        agent.act(0, &m, &s, &mask, false).unwrap();
    });
    let bare_us = per_call_us(20_000, || {
        agent.metrics().unwrap();
    });
    let start = std::time::Instant::now();
    let saved = agent.save().unwrap();
    let save_ms = ms_since(start);
    serde_json::json!({
        "plugin": name,
        "wasm_bytes": std::fs::metadata(&path).unwrap().len(),
        "load_cold_ms": cold_ms,
        "load_warm_ms": warm_ms,
        "instantiate_ms": instantiate_ms,
        "init_ms": init_ms,
        "act_explore_us": act_s * 1e6 / acts as f64,
        "acts": acts,
        "act_greedy_us": greedy_us,
        "bare_call_us": bare_us,
        "save_ms_after_2000_episodes": save_ms,
        "save_bytes": saved.len(),
    })
}

fn bench_reward(name: &str) -> serde_json::Value {
    let cache = tempfile::tempdir().unwrap();
    let rt = Runtime::new(Some(cache.path().to_path_buf())).unwrap();
    let path = plugin(name);
    let start = std::time::Instant::now();
    rt.load(&path).unwrap();
    let cold_ms = ms_since(start);
    let start = std::time::Instant::now();
    let warm = rt.load(&path).unwrap();
    let warm_ms = ms_since(start);
    let start = std::time::Instant::now();
    let mut shaper = RewardPlugin::instantiate(&rt, &warm, SandboxLimits::default(), 0).unwrap();
    let instantiate_ms = ms_since(start);
    shaper.init("{}").unwrap();
    let arch: Architecture = "conv(32,3) pool(5,3) fc(64)".parse().unwrap();
    let input = EvaluationInput {
        architecture: &arch,
        accuracy: 0.9,
        params: 167_173,
        train_seconds: 1.0,
        failure: None,
        epochs_trained: 5,
        epochs: 5,
        stopped: false,
        cost: &nas_core::cost::structural_cost(&arch, (3, 32, 32), 5),
    };
    let shape_us = per_call_us(5000, || {
        shaper.shape(&input).unwrap();
    });
    serde_json::json!({
        "plugin": name,
        "wasm_bytes": std::fs::metadata(&path).unwrap().len(),
        "load_cold_ms": cold_ms,
        "load_warm_ms": warm_ms,
        "instantiate_ms": instantiate_ms,
        "shape_us": shape_us,
    })
}

/// Prints one JSON line per plugin: the Python examples beside the Rust plugins of the same kind
/// (tabular Q-learning, the size penalty). Run by `make bench-python`.
#[test]
#[ignore = "a benchmark: make bench-python"]
fn bench_python_plugins_beside_rust() {
    // hostile_py in its default mode takes the first valid action: the cost of a Python call alone.
    for name in ["ucb", "hostile_py", "qlearning", "random"] {
        println!("{}", bench_agent(name));
    }
    for name in ["mnas_reward", "size_penalty"] {
        println!("{}", bench_reward(name));
    }
}
