//! An `async` run commits episodes in the order their children finish, so its committed episodes
//! have gaps (0, 1, 2, 4 while 3 trains). Every lookup of an episode's evaluation goes by the
//! episode's index, never by its position (issue #22, item 1).

use std::path::Path;

use nas_core::record::{EpisodeRecord, Outcome};
use nas_store::{NewEvaluation, NewRun, PluginRecord, Store};

fn plugin(name: &str) -> PluginRecord {
    PluginRecord {
        name: name.into(),
        version: "0".into(),
        path: format!("{name}.wasm"),
        sha256: "0".repeat(64),
    }
}

fn episode(index: usize, architecture: &str) -> EpisodeRecord {
    EpisodeRecord {
        index,
        env: (index % 2) as u32,
        architecture: architecture.into(),
        reward: index as f64,
        accuracy: index as f64 / 10.0,
        params: 1,
        depth: 1,
        cache_hit: false,
        failure: None,
        metrics: Default::default(),
        reported: 0,
        stopped: false,
    }
}

#[test]
fn evaluations_are_found_by_episode_index_across_gaps() {
    let mut store = Store::open(Path::new(":memory:")).unwrap();
    let (agent, reward) = (plugin("ppo"), plugin("accuracy"));
    let run = store
        .create_run(&NewRun {
            config_toml: "",
            dataset: "synthetic",
            evaluator: "synthetic",
            seed: 0,
            episodes_target: 5,
            agent: &agent,
            reward: &reward,
            assessor: None,
            device: "none",
            no_cache: false,
            table: None,
        })
        .unwrap();
    let mut ids = Vec::new();
    for index in [0, 1, 2, 4] {
        let outcome = Outcome {
            accuracy: index as f64 / 10.0,
            params: 1,
            seconds: 0.0,
            failure: None,
            transient: false,
            curve: Default::default(),
            predicted: false,
            cost: None,
        };
        let architecture = format!("conv({},3)", 10 + index);
        let id = store
            .insert_evaluation(&NewEvaluation {
                cache_key: &architecture,
                architecture: &architecture,
                dataset: "synthetic",
                evaluator: "synthetic",
                protocol_json: "{}",
                depth: 1,
                outcome: &outcome,
                origin: Some((run, index)),
            })
            .unwrap();
        store
            .commit_episodes(run, &[(episode(index, &architecture), id)], b"state", 5)
            .unwrap();
        ids.push((index, id));
    }
    let evaluations = store.episode_evaluations(run).unwrap();
    for (index, id) in ids {
        assert_eq!(evaluations[&index], id, "episode {index}");
    }
    assert!(!evaluations.contains_key(&3), "episode 3 is still in flight");
}
