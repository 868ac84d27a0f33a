//! The server over HTTP, without a browser: 404s, the token, read-only, the API and downloads.

mod common;

use common::*;
use serde_json::Value;

/// A store with a finished run (with an assessor) and a running one.
fn fixture() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    Vec<nas_core::record::EpisodeRecord>,
) {
    let (dir, path, mut store) = temp_store();
    let run = create_run(
        &store,
        &RunSpec {
            assessor: Some("median_stop"),
            episodes_target: 120,
            ..Default::default()
        },
    );
    let episodes = write_episodes(&mut store, run, 0..120, "cifar5", true);
    finish(&store, run, 321.5);
    let live = create_run(
        &store,
        &RunSpec {
            agent: "qlearning",
            ..Default::default()
        },
    );
    write_episodes(&mut store, live, 0..10, "cifar5", false);
    (dir, path, episodes)
}

#[test]
fn unknown_paths_are_404_and_no_file_outside_the_embedded_assets_is_served() {
    let (_dir, db, _) = fixture();
    let server = start_server(&db, "127.0.0.1", None);
    for path in [
        "/nope",
        "/index.html",
        "/assets/nope.js",
        "/assets/../Cargo.toml",
        "/assets/%2e%2e/Cargo.toml",
        "/assets/%2e%2e%2fsrc%2flib.rs",
        "/assets/vendor/../../src/lib.rs",
        "/assets//etc/passwd",
        "/assets/%2fetc%2fpasswd",
        "/run/999",
        "/run/abc",
        "/run/1/extra",
        "/api/runs/999",
        "/api/runs/999/episodes",
        "/api/runs/x/curves",
        "/api/nope",
    ] {
        let answer = get(server.addr, path);
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
    }
    for path in [
        "/",
        "/run/1",
        "/arch",
        "/compare",
        "/assets/app.css",
        "/assets/vendor/uPlot.iife.min.js",
    ] {
        assert_eq!(get(server.addr, path).status, 200, "{path}");
    }
    assert!(get(server.addr, "/assets/run.js")
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
}

#[test]
fn no_endpoint_changes_the_store() {
    let (_dir, db, _) = fixture();
    let before = {
        let store = nas_store::Store::open(&db).unwrap();
        (
            store.runs().unwrap(),
            store.episodes(1).unwrap(),
            store.episodes(2).unwrap(),
        )
    };
    let server = start_server(&db, "127.0.0.1", None);
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        for path in [
            "/",
            "/api/runs",
            "/api/runs/1",
            "/api/runs/1/episodes",
            "/api/compare?runs=1",
        ] {
            let answer = request(server.addr, method, path, &[("Content-Length", "0")]);
            assert_eq!(answer.status, 405, "{method} {path}");
        }
    }
    for path in [
        "/api/runs",
        "/api/runs/1",
        "/api/runs/1/episodes",
        "/api/runs/1/curves",
        "/api/live",
        "/api/compare?runs=1,2",
        "/api/arch/evaluations?text=conv(10,1)",
    ] {
        assert_eq!(get(server.addr, path).status, 200, "{path}");
    }
    let store = nas_store::Store::open(&db).unwrap();
    assert_eq!(
        (
            store.runs().unwrap(),
            store.episodes(1).unwrap(),
            store.episodes(2).unwrap()
        ),
        before
    );
}

#[test]
fn beyond_loopback_every_request_needs_the_token() {
    let (_dir, db, _) = fixture();
    let server = start_server(&db, "0.0.0.0", Some("s3cret-token"));
    assert!(!server.token_generated);
    assert!(server.url.ends_with("/?token=s3cret-token"), "{}", server.url);
    for path in ["/", "/run/1", "/api/runs", "/assets/app.css", "/nope"] {
        assert_eq!(get(server.addr, path).status, 401, "{path} without a token");
        let wrong = request(server.addr, "GET", path, &[("Authorization", "Bearer s3cret-tokem")]);
        assert_eq!(wrong.status, 401, "{path} with a wrong token");
        let wrong = request(server.addr, "GET", path, &[("Cookie", "nas_token=s3cret")]);
        assert_eq!(wrong.status, 401, "{path} with a wrong cookie");
    }
    let first = get(server.addr, "/?token=s3cret-token");
    assert_eq!(first.status, 200);
    let cookie = first.header("set-cookie").expect("the token is kept in a cookie");
    assert!(
        cookie.starts_with("nas_token=s3cret-token;") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let with_cookie = request(server.addr, "GET", "/api/runs", &[("Cookie", "nas_token=s3cret-token")]);
    assert_eq!(with_cookie.status, 200);
    assert_eq!(with_cookie.json().as_array().unwrap().len(), 2);
    let bearer = request(
        server.addr,
        "GET",
        "/api/runs/1",
        &[("Authorization", "Bearer s3cret-token")],
    );
    assert_eq!(bearer.status, 200);
    // Still 404 behind the token.
    assert_eq!(
        request(server.addr, "GET", "/nope", &[("Authorization", "Bearer s3cret-token")]).status,
        404
    );

    // Without --token a token is generated.
    let generated = start_server(&db, "0.0.0.0", None);
    let token = generated.token.clone().expect("a generated token");
    assert!(generated.token_generated && token.len() == 32 && token.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(get(generated.addr, "/api/runs").status, 401);
    assert_eq!(get(generated.addr, &format!("/api/runs?token={token}")).status, 200);
}

#[test]
fn on_loopback_only_a_loopback_host_is_answered() {
    let (_dir, db, _) = fixture();
    let server = start_server(&db, "127.0.0.1", None);
    assert!(server.token.is_none());
    let port = server.addr.port();
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        assert_eq!(
            request(server.addr, "GET", "/api/runs", &[("Host", &host)]).status,
            200,
            "{host}"
        );
    }
    // A page of another site whose name resolves to 127.0.0.1 (DNS rebinding) sends its own name.
    let rebound = request(
        server.addr,
        "GET",
        "/api/runs",
        &[("Host", &format!("evil.example:{port}"))],
    );
    assert_eq!(rebound.status, 403);
    let page = get(server.addr, "/");
    let csp = page.header("content-security-policy").unwrap();
    // Scripts only from the server's own files: no inline script runs, whatever a page holds.
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
}

#[test]
fn the_runs_table_downloads_as_csv_and_json() {
    let (_dir, db, episodes) = fixture();
    let server = start_server(&db, "127.0.0.1", None);
    let runs = get(server.addr, "/api/runs").json();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    let best = episodes
        .iter()
        .filter(|e| e.failure.is_none())
        .map(|e| e.accuracy)
        .fold(f64::MIN, f64::max);
    assert_eq!(runs[0]["id"], 1);
    assert_eq!(runs[0]["status"], "finished");
    assert_eq!(runs[0]["assessor"], "median_stop");
    assert_eq!(runs[0]["episodes_done"], 120);
    assert_eq!(runs[0]["best_accuracy"].as_f64().unwrap(), best);
    assert_eq!(runs[0]["wall_seconds"].as_f64().unwrap(), 321.5);
    assert_eq!(runs[1]["status"], "running");
    assert_eq!(runs[1]["assessor"], Value::Null);

    let csv = get(server.addr, "/api/runs?format=csv");
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert_eq!(
        csv.header("content-disposition"),
        Some("attachment; filename=\"runs.csv\"")
    );
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("id,status,agent,reward,assessor,dataset,evaluator,episodes_done"));
    assert!(lines[1].starts_with("1,finished,ppo,size_penalty,median_stop,cifar5,training,120,120,"));
    assert!(lines[2].starts_with("2,running,qlearning,size_penalty,,cifar5,training,10,100,"));

    let json = get(server.addr, "/api/runs?format=json");
    assert_eq!(
        json.header("content-disposition"),
        Some("attachment; filename=\"runs.json\"")
    );
    assert_eq!(json.json(), Value::Array(runs.clone()));
    assert_eq!(get(server.addr, "/api/runs?format=xml").status, 400);

    let episodes_csv = get(server.addr, "/api/runs/1/episodes?format=csv");
    assert_eq!(episodes_csv.body.lines().count(), 121);
    assert_eq!(
        episodes_csv.header("content-disposition"),
        Some("attachment; filename=\"run-1-episodes.csv\"")
    );
    let compare_csv = get(server.addr, "/api/compare?runs=1,2&format=csv");
    assert_eq!(compare_csv.body.lines().count(), 3);
}

#[test]
fn episodes_since_a_position_curves_and_evaluations() {
    let (_dir, db, episodes) = fixture();
    let server = start_server(&db, "127.0.0.1", None);
    let all = get(server.addr, "/api/runs/1/episodes").json();
    assert_eq!(all.as_array().unwrap().len(), 120);
    assert_eq!(all[5]["architecture"], episodes[5].architecture.as_str());
    assert_eq!(all[5]["accuracy"].as_f64().unwrap(), episodes[5].accuracy);
    assert_eq!(all[5]["metrics"]["entropy"], episodes[5].metrics["entropy"]);
    assert_eq!(all[1]["stopped"], true);
    let since = get(server.addr, "/api/runs/1/episodes?since=115").json();
    let indices: Vec<u64> = since
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["episode"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, vec![115, 116, 117, 118, 119]);

    let curves = get(server.addr, "/api/runs/1/curves").json();
    let curves = curves.as_array().unwrap();
    let measured = episodes.iter().filter(|e| e.failure.is_none()).count();
    assert_eq!(curves.len(), measured);
    let stopped = curves.iter().filter(|c| c["stopped"] == true).count();
    assert_eq!(
        stopped,
        episodes.iter().filter(|e| e.stopped && e.failure.is_none()).count()
    );
    assert!(curves
        .iter()
        .all(|c| c["accuracy"].as_array().unwrap().len() == if c["stopped"] == true { 2 } else { 5 }));
    // The live run has no assessor: no curves.
    assert_eq!(get(server.addr, "/api/runs/2/curves").json(), serde_json::json!([]));

    let text = "conv(10,1)";
    let evaluations = get(server.addr, &format!("/api/arch/evaluations?text={}", "conv(10%2C1)")).json();
    let expected = episodes.iter().filter(|e| e.architecture == text).count()
        + (0..10).filter(|i| ARCHS[i % ARCHS.len()] == text).count();
    assert_eq!(evaluations.as_array().unwrap().len(), expected);
    assert!(evaluations
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["seconds"].as_f64().unwrap() >= 10.0));

    let layers = get(
        server.addr,
        "/api/arch?text=conv(32%2C3)%20pool(5%2C3)%20fc(64)&dataset=cifar5",
    )
    .json();
    assert_eq!(layers["total_params"], 167_173);
    assert_eq!(layers["rows"].as_array().unwrap().len(), 4);
    assert_eq!(get(server.addr, "/api/arch?text=conv(32&dataset=cifar5").status, 400);
    let layers_csv = get(server.addr, "/api/arch?text=conv(10%2C1)&dataset=cifar5&format=csv");
    let lines: Vec<&str> = layers_csv.body.lines().collect();
    assert_eq!(lines.len(), 4, "{}", layers_csv.body);
    assert_eq!(lines[2], "\"conv(10,1)\",Conv2d,\"[10,32,32]\",40,30720");

    let compare = get(server.addr, "/api/compare?runs=1,2").json();
    assert_eq!(compare["curves"][0]["best_so_far"].as_array().unwrap().len(), 120);
    assert_eq!(compare["curves"][1]["best_so_far"].as_array().unwrap().len(), 10);
    assert_eq!(compare["table"][0]["episodes"], 120);
    assert_eq!(get(server.addr, "/api/compare?runs=1,x").status, 400);
    assert_eq!(get(server.addr, "/api/compare?runs=1,77").status, 500);
}

#[test]
fn a_missing_sqlite_store_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("absent.sqlite");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let result = runtime.block_on(nas_serve::Server::bind(nas_serve::ServeOptions {
        db: db.clone(),
        host: "127.0.0.1".parse().unwrap(),
        port: 0,
        token: None,
    }));
    let message = result.err().expect("no store, no server").to_string();
    assert!(message.contains("no run store"), "{message}");
    assert!(!db.exists());
}

#[test]
fn a_token_must_be_long_and_url_safe() {
    let (_dir, db, _) = fixture();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for token in ["short", "has space in it", "amp&ersand=x", "<script>x</script>"] {
        let result = runtime.block_on(nas_serve::Server::bind(nas_serve::ServeOptions {
            db: db.clone(),
            host: "0.0.0.0".parse().unwrap(),
            port: 0,
            token: Some(token.to_string()),
        }));
        assert!(result.is_err(), "{token} was accepted");
    }
}
