//! The README's screenshots and the dashboard's benchmark, taken with the same headless
//! Chromium as the browser tests (ignored by default: they write files and take a while).
//!
//! - `cargo test -p nas-serve --test showcase -- --ignored screenshots` writes
//!   docs/img/serve-run.png and docs/img/serve-compare.png.
//! - `bench/serve.sh` runs `bench_page_open` (release build): a run with 10,000 episodes opened
//!   in the browser, and a store with 100 runs listed; times are the page's own
//!   `performance.now()` once its data is drawn and painted (from the start of navigation).

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::browser::Browser;
use common::*;

fn docs_img() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/img")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes the README's screenshots"]
async fn screenshots() {
    let Some(browser) = Browser::start().await else { return };
    LEARNING.with(|l| l.set(true));
    let (_dir, db, mut store) = temp_store();
    let specs = [
        RunSpec {
            agent: "ppo",
            reward: "size_penalty",
            assessor: Some("median_stop"),
            episodes_target: 400,
            seed: 1,
            ..Default::default()
        },
        RunSpec {
            agent: "qlearning",
            reward: "size_penalty",
            episodes_target: 400,
            seed: 1,
            ..Default::default()
        },
        RunSpec {
            agent: "random",
            reward: "size_penalty",
            episodes_target: 400,
            seed: 1,
            ..Default::default()
        },
    ];
    for (k, spec) in specs.iter().enumerate() {
        let run = create_run(&store, spec);
        write_episodes(&mut store, run, 0..400, "cifar5", spec.assessor.is_some());
        finish(&store, run, 3600.0 + 600.0 * k as f64);
    }
    drop(store);
    let server = start_server(&db, "127.0.0.1", None);
    let base = format!("http://127.0.0.1:{}", server.addr.port());
    std::fs::create_dir_all(docs_img()).unwrap();
    browser.client.set_window_size(1400, 1500).await.unwrap();
    browser.open(&format!("{base}/run/1")).await;
    browser
        .wait_for(
            "return document.querySelector('#chart-curves').hasAttribute('data-curves');",
            Duration::from_secs(10),
            "curves",
        )
        .await;
    let png = browser.client.screenshot().await.unwrap();
    std::fs::write(docs_img().join("serve-run.png"), png).unwrap();
    browser.client.set_window_size(1400, 900).await.unwrap();
    browser.open(&format!("{base}/compare?runs=1,2,3")).await;
    let png = browser.client.screenshot().await.unwrap();
    std::fs::write(docs_img().join("serve-compare.png"), png).unwrap();
    eprintln!("wrote {}/serve-run.png and serve-compare.png", docs_img().display());
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Opens `url` `times` times; the page's own load time (ms) each time.
async fn page_times(browser: &Browser, url: &str, times: usize) -> Vec<f64> {
    let mut out = Vec::new();
    for _ in 0..times {
        browser.client.goto("about:blank").await.unwrap();
        browser.open(url).await;
        out.push(browser.js("return window.nasLoadedMs;", vec![]).await.as_f64().unwrap());
        let phases = browser
            .js(
                "const n = performance.getEntriesByType('navigation')[0]; return [n.responseEnd, n.domContentLoadedEventEnd, window.nasLoadedMs].map(Math.round);",
                vec![],
            )
            .await;
        println!("{url}: page received, scripts run, data drawn at (ms) {phases}");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the dashboard benchmark (bench/serve.sh)"]
async fn bench_page_open() {
    let Some(browser) = Browser::start().await else { return };
    LEARNING.with(|l| l.set(true));
    // A run with 10,000 episodes (an assessor's learning curves on each).
    let (_dir, db, mut store) = temp_store();
    let run = create_run(
        &store,
        &RunSpec {
            assessor: Some("median_stop"),
            episodes_target: 10_000,
            ..Default::default()
        },
    );
    let started = Instant::now();
    write_episodes(&mut store, run, 0..10_000, "cifar5", true);
    finish(&store, run, 1.0);
    eprintln!("wrote 10,000 episodes in {:.1} s", started.elapsed().as_secs_f64());
    drop(store);
    let server = start_server(&db, "127.0.0.1", None);
    let url = format!("http://127.0.0.1:{}/run/{run}", server.addr.port());
    let times = page_times(&browser, &url, 6).await;
    let curves_started = Instant::now();
    browser
        .wait_for(
            "return document.querySelector('#chart-curves').hasAttribute('data-curves');",
            Duration::from_secs(30),
            "curves",
        )
        .await;
    let curves_after = curves_started.elapsed().as_secs_f64() * 1000.0;
    let points = browser
        .js("return window.nasCharts.progress.data[0].length;", vec![])
        .await;
    assert_eq!(points, 10_000);
    let api = {
        let t = Instant::now();
        let episodes = get(server.addr, &format!("/api/runs/{run}/episodes"));
        (t.elapsed().as_secs_f64() * 1000.0, episodes.body.len())
    };

    // A store with 100 runs (50 episodes each).
    let (_dir100, db100, mut store) = temp_store();
    for k in 0..100 {
        let run = create_run(
            &store,
            &RunSpec {
                seed: k,
                episodes_target: 50,
                ..Default::default()
            },
        );
        write_episodes(&mut store, run, 0..50, "cifar5", false);
        finish(&store, run, 60.0);
    }
    drop(store);
    let server100 = start_server(&db100, "127.0.0.1", None);
    let list = page_times(&browser, &format!("http://127.0.0.1:{}/", server100.addr.port()), 6).await;
    assert_eq!(browser.rows("#runs").await.len(), 100);
    let list_api = {
        let t = Instant::now();
        get(server100.addr, "/api/runs");
        t.elapsed().as_secs_f64() * 1000.0
    };

    println!("| measurement | first open (cold server cache) | median of the next 5 |");
    println!("|---|---|---|");
    println!(
        "| run page, 10,000 episodes: charts and table drawn | {:.0} ms | {:.0} ms |",
        times[0],
        median(times[1..].to_vec())
    );
    println!(
        "| runs page, 100 runs × 50 episodes: table drawn | {:.0} ms | {:.0} ms |",
        list[0],
        median(list[1..].to_vec())
    );
    println!(
        "| (learning curves of the 10,000 children, drawn after the page opened: {curves_after:.0} ms; `/api/runs/ID/episodes` {:.0} ms for {:.1} MB; `/api/runs` with 100 runs {list_api:.0} ms) | | |",
        api.0,
        api.1 as f64 / 1e6
    );
    println!("all run-page opens (ms): {times:?}");
    println!("all runs-page opens (ms): {list:?}");
}
