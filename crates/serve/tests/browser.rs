//! The dashboard in a real browser (headless Chromium through chromedriver): `serve` on a test
//! store with a finished run, a run being written by a thread during the test and a run whose
//! plugins' names hold markup; each page checked for what a person would see.
//!
//! Skips with a notice when Chromium or chromedriver is missing, except with
//! `NAS_TEST_BROWSER=1` (`.ci/run`), where that fails.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::browser::Browser;
use common::*;
use fantoccini::Locator;
use nas_core::record::EpisodeRecord;
use serde_json::json;

const HOSTILE_AGENT: &str = "<script>alert(1)</script>";
const HOSTILE_REWARD: &str = "<img src=x onerror=window.__xss=1>";
const HOSTILE_ARCH: &str = "<img src=x onerror=window.__xss=2>";
const HOSTILE_METRIC: &str = "<b>m</b>";

fn acc(v: f64) -> String {
    format!("{v:.4}")
}

fn best(episodes: &[EpisodeRecord]) -> f64 {
    episodes
        .iter()
        .filter(|e| e.failure.is_none())
        .map(|e| e.accuracy)
        .fold(f64::MIN, f64::max)
}

/// The size of the Pareto front over (params, accuracy), written apart from the page's code:
/// a child is on it when no other child has at most its parameters and a higher accuracy, or
/// fewer parameters and the same accuracy (the first of equal points counts once).
fn pareto_front_size(episodes: &[EpisodeRecord]) -> usize {
    let points: Vec<(u64, f64)> = episodes
        .iter()
        .filter(|e| e.failure.is_none() && e.params > 0)
        .map(|e| (e.params, e.accuracy))
        .collect();
    let mut front: Vec<(u64, f64)> = points
        .iter()
        .copied()
        .filter(|&(p, a)| !points.iter().any(|&(q, b)| (q <= p && b > a) || (q < p && b >= a)))
        .collect();
    front.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.total_cmp(&y.1)));
    front.dedup();
    front.len()
}

/// A command to the thread writing the live run: commit its next episode, then answer when.
struct Writer {
    commit: mpsc::Sender<()>,
    committed: mpsc::Receiver<Instant>,
}

fn spawn_writer(db: std::path::PathBuf, run: i64, first: usize) -> Writer {
    let (commit, commands) = mpsc::channel::<()>();
    let (done, committed) = mpsc::channel();
    std::thread::spawn(move || {
        let mut store = nas_store::Store::open(&db).unwrap();
        for (next, ()) in (first..).zip(commands) {
            write_episodes(&mut store, run, next..next + 1, "cifar5", false);
            done.send(Instant::now()).unwrap();
        }
    });
    Writer { commit, committed }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_real_browser() {
    let Some(browser) = Browser::start().await else { return };
    let (_dir, db, mut store) = temp_store();
    // Run 1: finished, 300 episodes, an assessor that stopped some children.
    let finished = create_run(
        &store,
        &RunSpec {
            assessor: Some("median_stop"),
            episodes_target: 300,
            ..Default::default()
        },
    );
    let finished_episodes = write_episodes(&mut store, finished, 0..300, "cifar5", true);
    finish(&store, finished, 1234.0);
    // Run 2: being written while the test runs.
    let live = create_run(
        &store,
        &RunSpec {
            agent: "qlearning",
            reward: "accuracy",
            seed: 3,
            ..Default::default()
        },
    );
    write_episodes(&mut store, live, 0..20, "cifar5", false);
    // Run 3: plugins and an architecture whose names hold markup and script.
    let hostile = create_run(
        &store,
        &RunSpec {
            agent: HOSTILE_AGENT,
            reward: HOSTILE_REWARD,
            episodes_target: 5,
            ..Default::default()
        },
    );
    write_episodes_with(
        &mut store,
        hostile,
        0..5,
        "cifar5",
        false,
        |i| (i == 0).then(|| HOSTILE_ARCH.to_string()),
        |i| Some((HOSTILE_METRIC.to_string(), i as f64)),
    );
    finish(&store, hostile, 5.0);
    drop(store);
    let writer = spawn_writer(db.clone(), live, 20);
    let server = start_server(&db, "127.0.0.1", None);
    let base = format!("http://127.0.0.1:{}", server.addr.port());

    // --- The runs page: one row per run, newest first.
    browser.open(&format!("{base}/")).await;
    let rows = browser.rows("#runs").await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    let row1 = rows.iter().find(|r| r[1] == "run 1").expect("run 1 listed");
    assert_eq!(row1[2], "finished");
    assert_eq!(row1[3], "ppo");
    assert_eq!(row1[5], "median_stop");
    assert_eq!(row1[8], "300 / 300");
    assert_eq!(row1[9], acc(best(&finished_episodes)));
    let row2 = rows.iter().find(|r| r[1] == "run 2").unwrap();
    assert_eq!(
        (row2[2].as_str(), row2[3].as_str(), row2[8].as_str()),
        ("running", "qlearning", "20 / 100")
    );
    let row3 = rows.iter().find(|r| r[1] == "run 3").unwrap();
    assert_eq!(row3[3], HOSTILE_AGENT, "the plugin's name is shown as text");
    assert_eq!(row3[4], HOSTILE_REWARD);
    assert_no_injection(&browser).await;

    // --- A finished run: charts with one point per episode, the table sorting and filtering.
    browser.open(&format!("{base}/run/{finished}")).await;
    let charts = browser
        .js(
            "const c = window.nasCharts; return {
                progress: c.progress.data.map(s => s.length),
                series: c.progress.series.map(s => s.label),
                best: c.progress.data[5][c.progress.data[5].length - 1],
                pareto: c.pareto.data[1].length,
                front: c.pareto.data[2].filter(v => v !== null).length,
                logx: c.pareto.scales.x.distr,
                metrics: Object.keys(c).filter(k => k.startsWith('metric:')).sort(),
                entropy: c['metric:entropy'].data[1].length };",
            vec![],
        )
        .await;
    assert_eq!(charts["progress"], json!([300, 300, 300, 300, 300, 300]));
    assert_eq!(
        charts["series"],
        json!([
            "episode",
            "reward",
            "reward (avg 20)",
            "accuracy",
            "accuracy (avg 20)",
            "best so far"
        ])
    );
    assert_eq!(charts["best"].as_f64().unwrap(), best(&finished_episodes));
    let succeeded = finished_episodes.iter().filter(|e| e.failure.is_none()).count();
    assert_eq!(charts["pareto"], succeeded);
    assert_eq!(charts["front"], pareto_front_size(&finished_episodes));
    assert_eq!(charts["logx"], 3, "parameters on a log scale");
    assert_eq!(charts["metrics"], json!(["metric:entropy", "metric:loss"]));
    assert_eq!(charts["entropy"], 300);
    browser
        .wait_for(
            "return document.querySelector('#chart-curves').hasAttribute('data-curves');",
            Duration::from_secs(10),
            "the learning curves",
        )
        .await;
    let stopped = finished_episodes
        .iter()
        .filter(|e| e.stopped && e.failure.is_none())
        .count();
    let curves = browser
        .js("const b = document.querySelector('#chart-curves'); return [b.dataset.curves, b.dataset.stopped, b.querySelector('h3').textContent];", vec![])
        .await;
    assert_eq!(curves[0], succeeded.to_string());
    assert_eq!(curves[1], stopped.to_string());
    assert_eq!(
        curves[2],
        format!("Learning curves ({succeeded} children, {stopped} stopped early)")
    );
    assert_eq!(browser.text("[data-fact=best] b").await, acc(best(&finished_episodes)));
    assert!(browser.text("#config").await.contains("epochs = 5"));

    // The table: 100 rows a page, sorting by a click on a header.
    assert_eq!(browser.rows("#episodes").await.len(), 100);
    assert_eq!(
        browser.text("#episode-count").await,
        "300 of 300 episodes · page 1 of 3"
    );
    let first_rows = browser.rows("#episodes").await;
    assert_eq!(first_rows[0][0], "0");
    assert_eq!(first_rows[0][1], finished_episodes[0].architecture);
    click(&browser, "#episodes th[data-key=accuracy]").await;
    let rows = browser.rows("#episodes").await;
    assert_eq!(
        rows[0][4],
        acc(best(&finished_episodes)),
        "sorted by accuracy, best first"
    );
    let accuracies: Vec<f64> = rows.iter().map(|r| r[4].parse().unwrap()).collect();
    assert!(accuracies.windows(2).all(|w| w[0] >= w[1]));
    click(&browser, "#episodes th[data-key=accuracy]").await;
    assert_eq!(browser.rows("#episodes").await[0][4], acc(0.0), "then worst first");
    click(&browser, "#page-next").await;
    assert!(browser.text("#episode-count").await.ends_with("page 2 of 3"));

    // Filters: architecture text, depth, accuracy range, stopped.
    let count = |f: &dyn Fn(&EpisodeRecord) -> bool| finished_episodes.iter().filter(|e| f(e)).count();
    type_into(&browser, "#filter-arch", "CONV(64").await;
    let expected = count(&|e| e.architecture.contains("conv(64"));
    assert_eq!(
        browser.text("#episode-count").await,
        format!("{expected} of 300 episodes · page 1 of {}", expected.div_ceil(100))
    );
    assert!(browser.rows("#episodes").await.iter().all(|r| r[1].contains("conv(64")));
    type_into(&browser, "#filter-arch", "").await;
    select(&browser, "#filter-depth", "2").await;
    let expected = count(&|e| e.depth == 2);
    assert!(browser
        .text("#episode-count")
        .await
        .starts_with(&format!("{expected} of 300 episodes")));
    assert!(browser.rows("#episodes").await.iter().all(|r| r[2] == "2"));
    select(&browser, "#filter-depth", "").await;
    type_into(&browser, "#filter-min", "0.5").await;
    type_into(&browser, "#filter-max", "0.8").await;
    let expected = count(&|e| e.accuracy >= 0.5 && e.accuracy <= 0.8);
    assert!(browser
        .text("#episode-count")
        .await
        .starts_with(&format!("{expected} of 300 episodes")));
    type_into(&browser, "#filter-min", "").await;
    type_into(&browser, "#filter-max", "").await;
    select(&browser, "#filter-stopped", "yes").await;
    let expected = count(&|e| e.stopped);
    assert_eq!(
        browser.text("#episode-count").await,
        format!("{expected} of 300 episodes")
    );
    assert!(browser.rows("#episodes").await.iter().all(|r| r[7] == "stopped"));

    // --- The live run: a new episode appears without a reload, within 2 s of its commit.
    browser.open(&format!("{base}/run/{live}")).await;
    assert_eq!(browser.js("return document.body.dataset.episodes;", vec![]).await, "20");
    assert!(browser.text("#queue").await.contains("children queued"));
    browser.js("window.__notReloaded = true;", vec![]).await;
    for n in 21..=22 {
        writer.commit.send(()).unwrap();
        let committed = writer.committed.recv().unwrap();
        browser
            .wait_for(
                &format!("return document.body.dataset.episodes === '{n}';"),
                Duration::from_secs(5),
                &format!("episode {} to appear", n - 1),
            )
            .await;
        let shown = committed.elapsed();
        assert!(
            shown < Duration::from_secs(2),
            "episode {} appeared {shown:?} after its commit",
            n - 1
        );
        eprintln!(
            "live: episode {} shown {:.0} ms after its commit",
            n - 1,
            shown.as_secs_f64() * 1000.0
        );
        let points = browser
            .js("return window.nasCharts.progress.data[0].length;", vec![])
            .await;
        assert_eq!(points, n);
        assert_eq!(
            browser.text("[data-fact=progress] b").await,
            format!("{n} / 100 episodes")
        );
    }
    assert_eq!(browser.js("return window.__notReloaded === true;", vec![]).await, true);
    assert!(browser.text("#episode-count").await.starts_with("22 of 22 episodes"));

    // --- An architecture: layer table, diagram, every evaluation, the export command.
    let text = "conv(32,3) pool(5,3) fc(64)";
    browser
        .open(&format!(
            "{base}/arch?text=conv(32%2C3)%20pool(5%2C3)%20fc(64)&dataset=cifar5"
        ))
        .await;
    let layers = browser.rows("#layers").await;
    assert_eq!(layers.len(), 5);
    assert_eq!(layers[1], ["conv(32,3)", "Conv2d", "[32, 30, 30]", "896", "777,600"]);
    assert!(browser.text("#layer-totals").await.starts_with("Total params: 167,173"));
    assert_eq!(
        browser
            .js("return document.querySelectorAll('#diagram .layer').length;", vec![])
            .await,
        5
    );
    let all: Vec<EpisodeRecord> = {
        let store = nas_store::Store::open(&db).unwrap();
        (1..=3).flat_map(|r| store.episodes(r).unwrap()).collect()
    };
    let evaluations = browser.rows("#evaluations").await;
    assert_eq!(evaluations.len(), all.iter().filter(|e| e.architecture == text).count());
    let best_run = {
        let store = nas_store::Store::open(&db).unwrap();
        (1..=3)
            .flat_map(|r| store.episodes(r).unwrap().into_iter().map(move |e| (r, e)))
            .filter(|(_, e)| e.architecture == text && e.failure.is_none())
            .max_by(|a, b| a.1.accuracy.total_cmp(&b.1.accuracy))
            .unwrap()
            .0
    };
    assert_eq!(evaluations[0][0], format!("run {best_run}"), "best first");
    assert_eq!(
        browser.text("#export-command").await,
        format!("nas-host export {best_run} --arch '{text}' --epochs 20")
    );

    // --- Compare: best-so-far curves overlaid, the table; picking another run adds it.
    browser.open(&format!("{base}/compare?runs={finished},{live}")).await;
    let lengths = browser
        .js("return window.nasCharts.compare.data.map(s => s.length);", vec![])
        .await;
    assert_eq!(lengths, json!([300, 300, 300]));
    let last = browser
        .js("return window.nasCharts.compare.data[1][299];", vec![])
        .await;
    assert_eq!(last.as_f64().unwrap(), best(&finished_episodes));
    let table = browser.rows("#compare-table").await;
    assert_eq!(table.len(), 2);
    assert_eq!(
        table[0][8],
        acc(best(&finished_episodes).max(table[1][8].parse().unwrap()))
    );
    click(&browser, &format!("#picker input[data-run='{hostile}']")).await;
    browser
        .wait_for(
            "return window.nasCharts.compare.data.length === 4;",
            Duration::from_secs(5),
            "a third run",
        )
        .await;
    assert_eq!(browser.rows("#compare-table").await.len(), 3);
    assert!(browser
        .client
        .current_url()
        .await
        .unwrap()
        .as_str()
        .ends_with("/compare?runs=1,2,3"));
    assert_no_injection(&browser).await;

    // --- Markup in plugin names, metrics and architectures is shown as text.
    browser.open(&format!("{base}/run/{hostile}")).await;
    assert!(browser.text("#run-title").await.contains(HOSTILE_AGENT));
    assert_eq!(browser.text("[data-fact=reward] b").await, HOSTILE_REWARD);
    let metric = browser
        .js(
            "return document.querySelector('#metrics-charts .chart h3').textContent;",
            vec![],
        )
        .await;
    assert_eq!(metric, HOSTILE_METRIC);
    assert_eq!(browser.rows("#episodes").await[0][1], HOSTILE_ARCH);
    assert_no_injection(&browser).await;
    drop(writer);
}

/// No markup from the data became elements, and none of its scripts ran.
async fn assert_no_injection(browser: &Browser) {
    let found = browser
        .js(
            "return [Array.from(document.querySelectorAll('main script, main img, main b')).filter(e => e.tagName !== 'B' || e.textContent === 'm').map(e => e.outerHTML), typeof window.__xss];",
            vec![],
        )
        .await;
    assert_eq!(found, json!([[], "undefined"]));
}

async fn click(browser: &Browser, css: &str) {
    browser
        .client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn type_into(browser: &Browser, css: &str, text: &str) {
    let input = browser.client.find(Locator::Css(css)).await.unwrap();
    input.clear().await.unwrap();
    if text.is_empty() {
        // `clear` fires no input event: the page reads the field on input.
        browser
            .js(
                "document.querySelector(arguments[0]).dispatchEvent(new Event('input'));",
                vec![json!(css)],
            )
            .await;
    } else {
        input.send_keys(text).await.unwrap();
    }
}

async fn select(browser: &Browser, css: &str, value: &str) {
    let select = browser.client.find(Locator::Css(css)).await.unwrap();
    select.select_by_value(value).await.unwrap();
}
