//! After a search: `eval` samples the frozen policy, `report` writes the Markdown report with its
//! plots, and `compare` puts runs side by side.

mod common;

use common::{options, run, synthetic_config};
use nas_outputs::report;
use nas_store::Store;

#[test]
fn eval_report_and_compare_work_on_finished_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.sqlite");
    let (ppo_run, episodes) = run(synthetic_config("ppo", 300, 2), db.clone());
    let (random_run, _) = run(synthetic_config("random", 300, 2), db.clone());

    let summary = nas_search::frozen_policy::eval(ppo_run, Some(12), None, &options(db.clone())).unwrap();
    assert_eq!(summary.samples.len(), 12);
    // The summary's statistics, recomputed by hand from its samples (population std).
    let accuracies: Vec<f64> = summary.samples.iter().map(|s| s.accuracy).collect();
    let mean = accuracies.iter().sum::<f64>() / 12.0;
    let std = (accuracies.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / 12.0).sqrt();
    let depth = summary.samples.iter().map(|s| s.depth as f64).sum::<f64>() / 12.0;
    let params = summary.samples.iter().map(|s| s.params as f64).sum::<f64>() / 12.0;
    assert!((summary.mean_accuracy - mean).abs() < 1e-12);
    assert!((summary.std_accuracy - std).abs() < 1e-12);
    assert!((summary.mean_depth - depth).abs() < 1e-12 && (summary.mean_params - params).abs() < 1e-9);
    // Sampling again from the stored checkpoint gives the same samples.
    let again = nas_search::frozen_policy::eval(ppo_run, Some(12), Some(true), &options(db.clone())).unwrap();
    assert_eq!(
        summary.samples.iter().map(|s| &s.architecture).collect::<Vec<_>>(),
        again.samples.iter().map(|s| &s.architecture).collect::<Vec<_>>()
    );
    assert!(summary.to_markdown().contains("± "));

    let store = Store::open(&db).unwrap();
    let out = dir.path().join("report");
    let path = report::write_report(&store, ppo_run, &out).unwrap();
    let md = std::fs::read_to_string(&path).unwrap();
    let best = episodes.iter().max_by(|a, b| a.reward.total_cmp(&b.reward)).unwrap();
    assert!(
        md.contains(&format!("`{}`", best.architecture)),
        "the best architecture is named"
    );
    assert!(md.contains("Frozen-policy evaluation") && md.contains("12 samples"));
    // The synthetic evaluator measures no latency: the Pareto set is against multiply-adds (#28).
    assert!(md.contains("Pareto-optimal children against multiply-adds"), "{md}");
    assert!(!out.join("accuracy_vs_latency.png").exists());
    for figure in [
        "reward",
        "accuracy_vs_params",
        "exploration",
        "best_architecture",
        "accuracy_vs_mult_adds",
    ] {
        let png = std::fs::read(out.join(format!("{figure}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 2000, "{figure}.png");
        let svg = std::fs::read_to_string(out.join(format!("{figure}.svg"))).unwrap();
        assert!(svg.contains("<svg"), "{figure}.svg");
        assert!(md.contains(&format!("({figure}.png)")), "report links {figure}.png");
    }
    let diagram = std::fs::read_to_string(out.join("best_architecture.svg")).unwrap();
    assert!(diagram.contains("FC(3)"), "the diagram ends in the classifier");
    assert!(
        diagram.contains("params") && diagram.contains('×'),
        "boxes show shapes and parameters"
    );
    // The report's layer table counts the best architecture's recorded parameters.
    assert!(
        md.contains(&format!(
            "Total params: {}",
            nas_core::summary::with_thousands(best.params)
        )),
        "{md}"
    );
    // The synthetic evaluator scores; it does not measure accuracy.
    assert!(
        md.contains("| reward | score | params |") && md.contains("## Score vs size"),
        "{md}"
    );

    let table = nas_outputs::compare::compare_table(&store, &[ppo_run, random_run]).unwrap();
    let md = table.to_markdown();
    assert_eq!(md.lines().count(), 6, "{md}");
    assert!(md.contains("| ppo 0.1.0 |") && md.contains("| random 0.1.0 |"));
    assert!(md.contains("(n=12)") && md.contains("run `nas-host eval`"));
    // Each compared column marks one best value: only ppo was evaluated, so its eval cell is bold.
    assert_eq!(md.matches("**").count(), 2 * 4, "{md}");
    assert!(md.contains(&format!("**{:.4} ± ", summary.mean_accuracy)), "{md}");
    let best_of = |run| {
        store
            .episodes(run)
            .unwrap()
            .iter()
            .map(|e| e.accuracy)
            .fold(f64::NAN, f64::max)
    };
    let winner = best_of(ppo_run).max(best_of(random_run));
    assert!(md.contains(&format!("| **{winner:.4}** |")), "{md}");
    let csv = table.to_csv();
    assert_eq!(csv.lines().count(), 3);
    assert!(csv.starts_with("run,agent,reward,dataset,episodes,best score") && !csv.contains("**"));
}

#[test]
fn a_comparison_plan_runs_agents_times_seeds_then_compares() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.toml");
    let mut config = synthetic_config("random", 50, 0);
    config.eval.samples = 5;
    std::fs::write(&base, config.to_toml()).unwrap();
    let plan_path = dir.path().join("plan.toml");
    let agents =
        [common::plugin("random"), common::plugin("qlearning")].map(|p| format!("{:?}", p.display().to_string()));
    std::fs::write(
        &plan_path,
        format!(
            "base = \"base.toml\"\nagents = [{}]\nseeds = [3, 4]\nepisodes = 40\n",
            agents.join(", ")
        ),
    )
    .unwrap();
    let (plan, base_config) = nas_config::ComparePlan::from_file(&plan_path, &[]).unwrap();
    let db = dir.path().join("p.sqlite");
    let runs = nas_search::plan::run_plan(&plan, &base_config, &options(db.clone())).unwrap();
    assert_eq!(runs.len(), 4);
    let store = Store::open(&db).unwrap();
    let seeds: Vec<u64> = runs.iter().map(|&r| store.run(r).unwrap().seed).collect();
    assert_eq!(seeds, vec![3, 4, 3, 4]);
    for &r in &runs {
        assert_eq!(store.episodes(r).unwrap().len(), 40);
        assert_eq!(store.eval_samples(r).unwrap().len(), 5);
    }
    let md = nas_outputs::compare::compare_table(&store, &runs)
        .unwrap()
        .to_markdown();
    assert_eq!(md.matches("| random 0.1.0 |").count(), 2);
    assert_eq!(md.matches("| qlearning 0.1.0 |").count(), 2);

    std::fs::write(&plan_path, "base = \"base.toml\"\nagents = []\n").unwrap();
    assert!(nas_config::ComparePlan::from_file(&plan_path, &[])
        .unwrap_err()
        .to_string()
        .contains("no agents"));
}
