//! The plugin system: round trips through the sandbox, hostile plugins, kinds, contract versions and
//! the compile cache.

mod common;

use common::{act_error, init_agent, mdp, plugin};
use nas_config::SandboxLimits;
use nas_core::arch::Architecture;
use nas_plugin_runtime::{AgentPlugin, EvaluationInput, PluginKind, RewardPlugin, Runtime};

fn runtime() -> (Runtime, tempfile::TempDir) {
    let cache = tempfile::tempdir().unwrap();
    (Runtime::new(Some(cache.path().to_path_buf())).unwrap(), cache)
}

fn hostile(mode: &str, target: &str, limits: SandboxLimits) -> (AgentPlugin, tempfile::TempDir) {
    let (rt, cache) = runtime();
    let config = serde_json::json!({ "mode": mode, "target": target }).to_string();
    (init_agent(&rt, "hostile", &config, limits), cache)
}

#[test]
fn agent_round_trips_every_call() {
    let (rt, _cache) = runtime();
    let loaded = rt.load(&plugin("random")).unwrap();
    assert_eq!(loaded.kind, PluginKind::Agent);
    let mut agent = AgentPlugin::instantiate(&rt, &loaded, SandboxLimits::default(), 3).unwrap();
    assert_eq!(agent.info().name, "random");
    assert_eq!(agent.info().version, "0.1.0");
    let m = mdp();
    agent.init(&m, "{}", 3).unwrap();
    let saved = agent.save().unwrap();
    assert!(saved.is_empty(), "the random agent is stateless");
    agent.reseed(17);
    let mut first = Vec::new();
    for _ in 0..20 {
        let s = m.start();
        let a = agent.act(0, &m, &s, &m.mask(&s), true).unwrap();
        assert!(m.mask(&s)[a]);
        first.push(a);
        agent.observe(0, 0.5, true).unwrap();
    }
    assert!(agent.metrics().unwrap().is_empty());
    // It draws from the host's randomness: the same episode seed replays the same choices.
    agent.load(&saved).unwrap();
    agent.reseed(17);
    let again: Vec<usize> = (0..20)
        .map(|_| {
            let s = m.start();
            agent.act(0, &m, &s, &m.mask(&s), true).unwrap()
        })
        .collect();
    assert_eq!(first, again);
    // A bad configuration is the plugin's error, with its name, version and call.
    let e = agent.init(&m, r#"{"bogus": 1}"#, 0).unwrap_err().to_string();
    assert!(
        e.starts_with("plugin random 0.1.0, call init:") && e.contains("bogus"),
        "{e}"
    );
}

#[test]
fn reward_round_trips_and_penalises_size() {
    let (rt, _cache) = runtime();
    let arch: Architecture = "conv(32,3) pool(5,3)".parse().unwrap();
    let cost = nas_core::cost::structural_cost(&arch, (1, 28, 28), 3);
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

    let mut accuracy =
        RewardPlugin::instantiate(&rt, &rt.load(&plugin("accuracy")).unwrap(), SandboxLimits::default(), 0).unwrap();
    accuracy.init("{}").unwrap();
    assert_eq!(accuracy.shape(&input(1000, None)).unwrap(), 0.9);
    assert_eq!(accuracy.shape(&input(1000, Some("diverged"))).unwrap(), 0.0);
    accuracy.init(r#"{"failure_reward": -1.0}"#).unwrap();
    assert_eq!(accuracy.shape(&input(1000, Some("diverged"))).unwrap(), -1.0);

    let mut penalty = RewardPlugin::instantiate(
        &rt,
        &rt.load(&plugin("size_penalty")).unwrap(),
        SandboxLimits::default(),
        0,
    )
    .unwrap();
    penalty.init(r#"{"beta": 0.01}"#).unwrap();
    let small = penalty.shape(&input(1_000, None)).unwrap();
    let large = penalty.shape(&input(1_000_000, None)).unwrap();
    assert!((small - (0.9 - 0.01 * (1e-8 * 1e3 + 1000f64.ln()))).abs() < 1e-12);
    assert!(large < small);
    assert!(penalty
        .init(r#"{"beta": -1}"#)
        .unwrap_err()
        .to_string()
        .contains("non-negative"));
}

#[test]
fn wrong_kind_is_refused_with_which() {
    let (rt, _cache) = runtime();
    let reward = rt.load(&plugin("accuracy")).unwrap();
    let e = AgentPlugin::instantiate(&rt, &reward, SandboxLimits::default(), 0)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("a reward shaper plugin, not an agent"), "{e}");
    let agent = rt.load(&plugin("random")).unwrap();
    let e = RewardPlugin::instantiate(&rt, &agent, SandboxLimits::default(), 0)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("an agent plugin, not a reward shaper"), "{e}");
}

/// `(component (instance $i) (export "nas:plugin/agent@0.4.0" (instance $i)))`, assembled by the
/// `wat` crate: a component claiming a future contract version.
const FUTURE_AGENT: &[u8] = &[
    0, 97, 115, 109, 13, 0, 1, 0, 5, 3, 1, 1, 0, 11, 28, 1, 0, 22, 110, 97, 115, 58, 112, 108, 117, 103, 105, 110, 47,
    97, 103, 101, 110, 116, 64, 48, 46, 52, 46, 48, 5, 0, 0, 0, 22, 14, 99, 111, 109, 112, 111, 110, 101, 110, 116, 45,
    110, 97, 109, 101, 1, 5, 5, 1, 0, 1, 105,
];

#[test]
fn other_contract_versions_and_non_plugins_are_refused() {
    let (rt, _cache) = runtime();
    let dir = tempfile::tempdir().unwrap();
    let future = dir.path().join("future.wasm");
    std::fs::write(&future, FUTURE_AGENT).unwrap();
    let e = rt.load(&future).err().unwrap().to_string();
    assert!(
        e.contains("nas:plugin@0.4.0")
            && e.contains("speaks nas:plugin@0.3.0")
            && e.contains("still loads agent plugins of nas:plugin@0.1.0")
            && e.contains("an agent"),
        "{e}"
    );

    let empty = dir.path().join("empty.wasm");
    std::fs::write(&empty, b"\0asm\x0d\x00\x01\x00").unwrap(); // `(component)`
    assert!(rt
        .load(&empty)
        .err()
        .unwrap()
        .to_string()
        .contains("not a nas-host plugin"));

    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm garbage").unwrap();
    assert!(rt
        .load(&garbage)
        .err()
        .unwrap()
        .to_string()
        .contains("not a valid WebAssembly component"));
}

#[test]
fn compiled_code_is_cached_on_disk() {
    let (rt, cache) = runtime();
    let first = rt.load(&plugin("ppo")).unwrap();
    assert!(!first.cache_hit);
    let entries: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(entries.len(), 1, "one compiled artifact");
    assert!(cache.path().join("index.json").is_file(), "its digest is recorded");
    let second = rt.load(&plugin("ppo")).unwrap();
    assert!(second.cache_hit, "second load must come from the cache");
    let mut agent = AgentPlugin::instantiate(&rt, &second, SandboxLimits::default(), 0).unwrap();
    agent.init(&mdp(), "{}", 0).unwrap();
    // A corrupt cache entry is ignored and rebuilt, not trusted. (Replaced by rename, as the
    // runtime writes it: the loaded components still map the old file.)
    drop((agent, first, second));
    let entry = std::fs::read_dir(cache.path()).unwrap().next().unwrap().unwrap().path();
    let tmp = cache.path().join("corrupt.tmp");
    std::fs::write(&tmp, b"corrupt").unwrap();
    std::fs::rename(&tmp, &entry).unwrap();
    let third = rt.load(&plugin("ppo")).unwrap();
    assert!(!third.cache_hit);
}

#[test]
fn infinite_loop_is_stopped_by_the_time_limit_and_the_store_is_never_reentered() {
    let limits = SandboxLimits {
        call_timeout_secs: 0.3,
        ..SandboxLimits::default()
    };
    let (mut agent, _c) = hostile("infinite-loop", "", limits);
    let started = std::time::Instant::now();
    let e = act_error(&mut agent);
    assert!(started.elapsed().as_secs_f64() < 10.0);
    assert!(e.fatal);
    let text = e.to_string();
    assert!(
        text.starts_with("plugin hostile 0.1.0, call act:") && text.contains("time limit of 0.3 s"),
        "{text}"
    );
    let again = agent.save().unwrap_err().to_string();
    assert!(again.contains("stopped after an earlier failure"), "{again}");
}

#[test]
fn memory_bomb_hits_the_memory_cap() {
    let limits = SandboxLimits {
        memory_mib: 64,
        ..SandboxLimits::default()
    };
    let (mut agent, _c) = hostile("memory-bomb", "", limits);
    let e = act_error(&mut agent);
    assert!(e.fatal);
    assert!(e.to_string().contains("memory cap of 64 MiB"), "{e}");
}

#[test]
fn hoarded_host_handles_hit_the_handle_cap() {
    let limits = SandboxLimits {
        handles: 200,
        ..SandboxLimits::default()
    };
    let (mut agent, _c) = hostile("handle-hoard", "", limits);
    let e = act_error(&mut agent);
    assert!(e.fatal);
    assert!(e.to_string().contains("more than 200 host handles"), "{e}");
}

#[test]
fn panic_is_a_crash_with_the_panic_message() {
    let (mut agent, _c) = hostile("panic", "", SandboxLimits::default());
    let e = act_error(&mut agent).to_string();
    assert!(e.contains("crashed") && e.contains("panics on purpose"), "{e}");
}

#[test]
fn actions_outside_the_mask_are_refused() {
    let (mut agent, _c) = hostile("outside-mask", "", SandboxLimits::default());
    let e = act_error(&mut agent);
    assert!(!e.fatal);
    assert!(
        e.to_string().contains("which the mask forbids") && e.to_string().contains("not executed"),
        "{e}"
    );
    let (mut agent, _c) = hostile("out-of-range", "", SandboxLimits::default());
    assert!(act_error(&mut agent).to_string().contains("only 38 actions"));
}

#[test]
fn files_are_out_of_reach() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "top secret").unwrap();
    let (mut agent, _c) = hostile("read-file", secret.to_str().unwrap(), SandboxLimits::default());
    let e = act_error(&mut agent).to_string();
    assert!(e.contains("denied: cannot read") && !e.contains("LEAK"), "{e}");
}

#[test]
fn environment_is_out_of_reach() {
    // PATH is set in every test process; the plugin must not see it.
    assert!(std::env::var("PATH").is_ok());
    let (mut agent, _c) = hostile("env", "PATH", SandboxLimits::default());
    let e = act_error(&mut agent).to_string();
    assert!(
        e.contains("denied: no environment variable PATH") && !e.contains("LEAK"),
        "{e}"
    );
}

#[test]
fn network_is_out_of_reach() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (mut agent, _c) = hostile("socket", &addr, SandboxLimits::default());
    let e = act_error(&mut agent).to_string();
    assert!(e.contains("denied: cannot connect") && !e.contains("LEAK"), "{e}");
    assert!(
        listener.accept().is_err(),
        "no connection may have reached the listener"
    );
}

#[test]
fn huge_output_is_cut_and_the_host_survives() {
    let (mut agent, _c) = hostile("huge-output", "", SandboxLimits::default());
    let e = act_error(&mut agent).to_string();
    assert!(e.len() < 10_000, "error of {} bytes", e.len());
    assert!(e.contains("67108864 bytes in all, cut"), "{}", &e[e.len() - 100..]);
    // Not fatal: the plugin returned an error, so the instance is still usable.
    agent.save().unwrap();
}

// --- Limits that hold whatever the plugin does (issue #9) ---

fn wat_reward(name: &str, extra: &str, limits: SandboxLimits) -> anyhow::Result<RewardPlugin> {
    let dir = tempfile::tempdir().unwrap();
    let path = common::wat::wat_reward(dir.path(), "wat_reward", name, extra);
    let (rt, _cache) = runtime();
    let loaded = rt.load(&path)?;
    RewardPlugin::instantiate(&rt, &loaded, limits, 0)
}

fn short_calls() -> SandboxLimits {
    SandboxLimits {
        call_timeout_secs: 0.3,
        ..SandboxLimits::default()
    }
}

/// The hand-written plugin works when it misbehaves in no way, so each test below fails only for
/// the limit it exercises.
#[test]
fn the_wat_reward_shaper_behaves_by_default() {
    let mut reward = wat_reward("wat", "", SandboxLimits::default()).unwrap();
    assert_eq!(reward.info().name, "wat");
    reward.init("{\"beta\": 1}").unwrap();
    let arch: Architecture = "conv(32,3) fc(64)".parse().unwrap();
    let input = EvaluationInput {
        architecture: &arch,
        accuracy: 0.75,
        params: 1000,
        train_seconds: 1.0,
        failure: None,
        epochs_trained: 5,
        epochs: 5,
        stopped: false,
        cost: &nas_core::cost::structural_cost(&arch, (1, 28, 28), 3),
    };
    assert_eq!(reward.shape(&input).unwrap(), 0.75);
}

#[test]
fn a_plugin_sleeping_in_a_call_is_stopped_at_the_time_limit() {
    for wait in ["20", "forever"] {
        let (mut agent, _c) = hostile("sleep", wait, short_calls());
        let started = std::time::Instant::now();
        let e = act_error(&mut agent);
        let waited = started.elapsed().as_secs_f64();
        assert!(waited < 5.0, "a {wait} s sleep held the host for {waited:.1} s");
        assert!(e.fatal);
        assert!(e.to_string().contains("exceeded its time limit of 0.3 s"), "{e}");
        let again = agent.save().unwrap_err().to_string();
        assert!(again.contains("stopped after an earlier failure"), "{again}");
    }
    // A short sleep inside the limit is allowed.
    let (mut agent, _c) = hostile("sleep", "0.05", short_calls());
    let e = act_error(&mut agent);
    assert!(!e.fatal && e.to_string().contains("came back"), "{e}");
}

#[test]
fn a_plugin_sleeping_while_it_starts_is_stopped_at_the_time_limit() {
    let started = std::time::Instant::now();
    let e = wat_reward("sleeper", "(start $sleep_forever)", short_calls()).unwrap_err();
    assert!(started.elapsed().as_secs_f64() < 5.0);
    let text = format!("{e:#}");
    assert!(text.contains("exceeded its time limit of 0.3 s"), "{text}");
    assert!(!text.contains('\n'), "one line: {text}");
    // Spinning instead of waiting ends the same way, in one line rather than a raw trap.
    let e = wat_reward("spinner", "(func $spin (loop $l (br $l))) (start $spin)", short_calls()).unwrap_err();
    let text = format!("{e:#}");
    assert!(
        text.contains("exceeded its time limit of 0.3 s") && !text.contains('\n'),
        "{text}"
    );
}

#[test]
fn tables_count_against_the_memory_cap() {
    let limits = SandboxLimits {
        memory_mib: 16,
        ..SandboxLimits::default()
    };
    // 4M function references are 32 MiB of host memory: declared...
    let e = wat_reward("tables", "(table 4194304 funcref)", limits).unwrap_err();
    assert!(format!("{e:#}").contains("exceeded its memory cap of 16 MiB"), "{e:#}");
    // ...or grown at run time; a small table is fine.
    let grow = "(table $t 1 funcref)
        (func $grow (drop (table.grow $t (ref.null func) (i32.const 4194304))))
        (start $grow)";
    let e = wat_reward("tables", grow, limits).unwrap_err();
    assert!(format!("{e:#}").contains("exceeded its memory cap of 16 MiB"), "{e:#}");
    wat_reward("tables", "(table 1024 funcref)", limits).unwrap();
}

#[test]
fn the_memory_cap_bounds_all_memories_together() {
    let limits = SandboxLimits {
        memory_mib: 16,
        ..SandboxLimits::default()
    };
    // Two extra memories of 10 MiB (160 pages): each is under the cap, together they are not.
    let e = wat_reward("memories", "(memory 160) (memory 160)", limits).unwrap_err();
    let text = format!("{e:#}");
    assert!(text.contains("exceeded its memory cap of 16 MiB"), "{text}");
    wat_reward("memories", "(memory 80) (memory 80)", limits).unwrap();
    // The number of memories is bounded too.
    let few = SandboxLimits {
        memories: 2,
        ..SandboxLimits::default()
    };
    let e = wat_reward("memories", "(memory 1) (memory 1) (memory 1)", few).unwrap_err();
    assert!(format!("{e:#}").contains("creates more than 2 memories"), "{e:#}");
}

#[test]
fn instances_and_tables_are_counted() {
    let (rt, _cache) = runtime();
    let loaded = rt.load(&plugin("random")).unwrap();
    let one = SandboxLimits {
        instances: 1,
        ..SandboxLimits::default()
    };
    let e = AgentPlugin::instantiate(&rt, &loaded, one, 0).err().unwrap();
    assert!(format!("{e:#}").contains("creates more than 1 instances"), "{e:#}");
    let one = SandboxLimits {
        tables: 1,
        ..SandboxLimits::default()
    };
    let e = AgentPlugin::instantiate(&rt, &loaded, one, 0).err().unwrap();
    assert!(format!("{e:#}").contains("creates more than 1 tables"), "{e:#}");
}

fn assert_shown_escaped(text: &str) {
    assert!(
        !text.chars().any(|c| c.is_control()),
        "raw control characters in {text:?}"
    );
    assert!(text.contains("\\u{1b}[2J"), "{text}");
}

#[test]
fn plugin_text_is_shown_escaped() {
    let (mut agent, _c) = hostile("escape", "", SandboxLimits::default());
    let e = act_error(&mut agent);
    assert_shown_escaped(&e.to_string());
    let metrics = agent.metrics().unwrap();
    assert_shown_escaped(&metrics[0].0);

    let name = "\u{1b}[2J\u{1b}]0;pwned\u{7}evil\r\nerror: run 1 finished 9999 episodes";
    let reward = wat_reward(name, "", SandboxLimits::default()).unwrap();
    assert_shown_escaped(&reward.info().name);
}

#[test]
fn plugins_inspect_prints_plugin_text_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let name = "\u{1b}[2Jevil\r\nerror: forged";
    let path = common::wat::wat_reward(dir.path(), "evil", name, "");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nas-host"))
        .args(["plugins", "inspect"])
        .arg(&path)
        .env("NAS_CACHE_DIR", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    assert!(!stdout.contains('\u{1b}') && !stdout.contains('\r'), "{stdout:?}");
    assert!(
        stdout.contains("name:        \\u{1b}[2Jevil\\r\\nerror: forged\n"),
        "{stdout}"
    );
}

#[test]
fn a_checkpoint_may_be_as_large_as_the_memory_cap_allows() {
    // wasmtime's default allows 128 MiB per call; 200 MiB fits under the 512 MiB cap.
    let (mut agent, _c) = hostile("huge-save", "200", SandboxLimits::default());
    assert_eq!(agent.save().unwrap().len(), 200 << 20);
}

#[test]
fn directories_and_random_bytes_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("agent.wasm");
    std::fs::create_dir(&folder).unwrap();
    let e = nas_plugin_runtime::resolve(folder.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("is a directory"), "{e}");

    let junk = dir.path().join("junk.wasm");
    std::fs::write(
        &junk,
        (0..4096u32)
            .map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let (rt, _cache) = runtime();
    let e = format!("{:#}", rt.load(&junk).err().unwrap());
    assert!(!e.contains('\n'), "one line: {e}");
    assert!(
        e.starts_with(&junk.display().to_string()) && e.contains("not a valid WebAssembly component"),
        "{e}"
    );
}
