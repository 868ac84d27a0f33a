//! `make bench` part 2: the cost of calls through the sandbox and of loading a plugin.
//!
//! Prints one JSON object: µs per `act` of the PPO plugin (38 actions, [64, 64] MLP policy) greedy
//! and sampling, µs per bare call (an agent's empty `metrics`), and the cold and warm load times.
use std::path::Path;
use std::time::Instant;

use nas_config::SandboxLimits;
use nas_core::mdp::{Mdp, MdpConfig};
use nas_plugin_runtime::{AgentPlugin, Runtime};

fn per_call_us(calls: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..calls / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..calls {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / calls as f64
}

fn main() -> anyhow::Result<()> {
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    let cache = tempfile::tempdir()?;
    let runtime = Runtime::new(Some(cache.path().to_path_buf()))?;
    let ppo_path = plugins.join("ppo.wasm");

    let start = Instant::now();
    let cold = runtime.load(&ppo_path)?;
    let cold_ms = start.elapsed().as_secs_f64() * 1e3;
    let start = Instant::now();
    let warm = runtime.load(&ppo_path)?;
    let warm_ms = start.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(!cold.cache_hit && warm.cache_hit, "expected a cold then a cached load");
    let start = Instant::now();
    let mut ppo = AgentPlugin::instantiate(&runtime, &warm, SandboxLimits::default(), 0)?;
    let instantiate_ms = start.elapsed().as_secs_f64() * 1e3;

    let mdp = Mdp::new(MdpConfig::default(), 32);
    ppo.init(&mdp, "{}", 0)?;
    let state = mdp.start();
    let mask = mdp.mask(&state);
    let act_greedy_us = per_call_us(20_000, || {
        ppo.act(0, &mdp, &state, &mask, false).unwrap();
    });
    let act_sample_us = per_call_us(20_000, || {
        ppo.act(0, &mdp, &state, &mask, true).unwrap();
    });

    let random = runtime.load(&plugins.join("random.wasm"))?;
    let mut random = AgentPlugin::instantiate(&runtime, &random, SandboxLimits::default(), 0)?;
    random.init(&mdp, "{}", 0)?;
    let bare_call_us = per_call_us(200_000, || {
        random.metrics().unwrap();
    });
    let random_act_us = per_call_us(100_000, || {
        random.act(0, &mdp, &state, &mask, true).unwrap();
    });

    let report = serde_json::json!({
        "actions": mdp.actions().len(),
        "ppo_wasm_bytes": std::fs::metadata(&ppo_path)?.len(),
        "ppo_act_greedy_us": act_greedy_us,
        "ppo_act_sample_us": act_sample_us,
        "random_act_us": random_act_us,
        "bare_call_us": bare_call_us,
        "ppo_load_cold_ms": cold_ms,
        "ppo_load_warm_ms": warm_ms,
        "ppo_instantiate_ms": instantiate_ms,
    });
    println!("{report}");
    Ok(())
}
