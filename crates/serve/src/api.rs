//! The routes: the pages, their assets, and the JSON API the pages read.
//!
//! | path | answer |
//! |---|---|
//! | `/`, `/run/ID`, `/arch`, `/compare` | the pages (HTML from the embedded assets) |
//! | `/assets/FILE` | an embedded asset (scripts, styles, the vendored uPlot) |
//! | `/api/runs` | every run: status, plugins, progress, best accuracy, wall time |
//! | `/api/runs/ID` | one run, with its configuration |
//! | `/api/runs/ID/episodes?since=N` | its episodes reported from position N on |
//! | `/api/runs/ID/curves` | learning curves of the children an assessor watched |
//! | `/api/live` | workers seen in the last minute, and the queue |
//! | `/api/arch?text=A&dataset=D` | an architecture's layer table |
//! | `/api/arch/evaluations?text=A` | every evaluation of it |
//! | `/api/compare?runs=1,2` | best-so-far curves and the comparison table |
//!
//! Tables take `?format=csv` or `?format=json` to download. Anything else is 404; any method but
//! GET and HEAD is 405.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rust_embed::Embed;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::data::{self, Data};
use crate::table::Table;

/// The pages, their scripts and styles, and the vendored chart library, compiled into the binary
/// (also in debug builds: `debug-embed`), so nothing is read from disk at run time.
#[derive(Embed)]
#[folder = "assets/"]
struct Assets;

#[derive(Clone)]
pub(crate) struct AppState {
    pub data: Arc<Data>,
    pub token: Option<String>,
    pub port: u16,
    /// Bound to a loopback address: then (without a token) only a loopback Host is answered.
    pub loopback: bool,
}

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| async { page("runs.html") }))
        .route("/run/{id}", get(run_page))
        .route("/arch", get(|| async { page("arch.html") }))
        .route("/compare", get(|| async { page("compare.html") }))
        .route("/assets/{*file}", get(asset))
        .route("/api/runs", get(api_runs))
        .route("/api/runs/{id}", get(api_run))
        .route("/api/runs/{id}/episodes", get(api_episodes))
        .route("/api/runs/{id}/curves", get(api_curves))
        .route("/api/live", get(api_live))
        .route("/api/arch", get(api_arch))
        .route("/api/arch/evaluations", get(api_arch_evaluations))
        .route("/api/compare", get(api_compare))
        .fallback(|| async { not_found() })
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 not found\n").into_response()
}

/// Checks every request (the token, or a loopback Host without one) and adds the security
/// headers to every answer.
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut set_cookie = None;
    let refused = match &state.token {
        Some(token) => {
            let given = request_token(request.headers(), request.uri().query());
            match given {
                Some((given, from_query)) if same(given.as_bytes(), token.as_bytes()) => {
                    if from_query {
                        // The page's own requests then carry it without putting it in every URL.
                        set_cookie = Some(format!("nas_token={token}; HttpOnly; SameSite=Strict; Path=/"));
                    }
                    None
                }
                _ => Some((
                    StatusCode::UNAUTHORIZED,
                    "401: this dashboard needs its token (open the URL `nas-host serve` printed, with ?token=…)\n",
                )),
            }
        }
        None if state.loopback && !loopback_host(request.headers(), state.port) => Some((
            StatusCode::FORBIDDEN,
            "403: the dashboard answers only http://127.0.0.1, localhost or [::1] (bind another address with --token)\n",
        )),
        None => None,
    };
    let mut response = match refused {
        Some(refusal) => refusal.into_response(),
        None => next.run(request).await,
    };
    let headers = response.headers_mut();
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if let Some(cookie) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}

/// The token a request carries: `Authorization: Bearer T`, the `nas_token` cookie, or `?token=T`
/// (then `true`).
fn request_token<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<(String, bool)> {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some((bearer.trim().to_string(), false));
    }
    for cookies in headers.get_all(header::COOKIE) {
        if let Ok(cookies) = cookies.to_str() {
            for cookie in cookies.split(';') {
                if let Some(value) = cookie.trim().strip_prefix("nas_token=") {
                    return Some((value.to_string(), false));
                }
            }
        }
    }
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .map(|t| (t.to_string(), true))
}

/// Equal bytes, compared in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The Host header names this machine's loopback interface on our port (a page of another site
/// that resolves its name to 127.0.0.1, "DNS rebinding", sends its own name and is refused).
fn loopback_host(headers: &HeaderMap, port: u16) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|name| host == format!("{name}:{port}") || (port == 80 && host == *name))
}

fn content_type(file: &str) -> &'static str {
    match file.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => "text/plain; charset=utf-8",
    }
}

fn page(file: &str) -> Response {
    asset_response(file)
}

fn asset_response(file: &str) -> Response {
    match Assets::get(file) {
        Some(content) => (
            [
                (header::CONTENT_TYPE, content_type(file)),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            Body::from(content.data.into_owned()),
        )
            .into_response(),
        None => not_found(),
    }
}

async fn asset(Path(file): Path<String>) -> Response {
    // The embedded files are a fixed map: `..` or an absolute path simply names none of them.
    asset_response(&file)
}

async fn run_page(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return not_found();
    };
    match blocking(&state, move |d| d.run(id)).await {
        Ok(Some(_)) => page("run.html"),
        Ok(None) => not_found(),
        Err(e) => e,
    }
}

/// Runs a store call on the blocking pool; an error becomes a 500 with its message.
async fn blocking<R: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&Data) -> anyhow::Result<R> + Send + 'static,
) -> Result<R, Response> {
    let data = state.data.clone();
    match tokio::task::spawn_blocking(move || f(&data)).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(server_error(format!("{e:#}"))),
        Err(e) => Err(server_error(e.to_string())),
    }
}

fn server_error(message: String) -> Response {
    tracing::warn!("dashboard request failed: {message}");
    (StatusCode::INTERNAL_SERVER_ERROR, format!("500: {message}\n")).into_response()
}

fn json_response(value: &Value) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        serde_json::to_string(value).expect("JSON values serialize"),
    )
        .into_response()
}

#[derive(Debug, Deserialize, Default)]
struct TableQuery {
    format: Option<String>,
    since: Option<usize>,
}

/// A table as the page reads it (JSON, no `format`), or as a download (`format=csv|json`).
fn table_response(table: &Table, format: Option<&str>, name: &str) -> Response {
    let (body, kind, extension) = match format {
        None => return json_response(&table.to_json()),
        Some("json") => (
            serde_json::to_string_pretty(&table.to_json()).expect("JSON values serialize"),
            "application/json",
            "json",
        ),
        Some("csv") => (table.to_csv(), "text/csv; charset=utf-8", "csv"),
        Some(_) => return (StatusCode::BAD_REQUEST, "400: format is csv or json\n").into_response(),
    };
    let disposition = format!("attachment; filename=\"{name}.{extension}\"");
    (
        [
            (header::CONTENT_TYPE, kind.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response()
}

fn run_id(id: &str) -> Option<i64> {
    id.parse().ok()
}

async fn api_runs(State(state): State<AppState>, Query(q): Query<TableQuery>) -> Response {
    match blocking(&state, |d| d.runs()).await {
        Ok(table) => table_response(&table, q.format.as_deref(), "runs"),
        Err(e) => e,
    }
}

async fn api_run(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(id) = run_id(&id) else { return not_found() };
    match blocking(&state, move |d| d.run(id)).await {
        Ok(Some(run)) => json_response(&run),
        Ok(None) => not_found(),
        Err(e) => e,
    }
}

async fn api_episodes(State(state): State<AppState>, Path(id): Path<String>, Query(q): Query<TableQuery>) -> Response {
    let Some(id) = run_id(&id) else { return not_found() };
    let since = q.since.unwrap_or(0);
    match blocking(&state, move |d| d.episodes(id, since)).await {
        Ok(Some(table)) => table_response(&table, q.format.as_deref(), &format!("run-{id}-episodes")),
        Ok(None) => not_found(),
        Err(e) => e,
    }
}

async fn api_curves(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(id) = run_id(&id) else { return not_found() };
    match blocking(&state, move |d| d.curves(id)).await {
        Ok(Some(curves)) => json_response(&curves),
        Ok(None) => not_found(),
        Err(e) => e,
    }
}

async fn api_live(State(state): State<AppState>) -> Response {
    match blocking(&state, |d| d.live()).await {
        Ok(live) => json_response(&live),
        Err(e) => e,
    }
}

#[derive(Debug, Deserialize)]
struct ArchQuery {
    text: String,
    #[serde(default)]
    dataset: String,
    format: Option<String>,
}

async fn api_arch(Query(q): Query<ArchQuery>) -> Response {
    match data::layer_table(&q.text, &q.dataset) {
        Ok(layers) => {
            if q.format.is_some() {
                let mut table = Table::new(&["layer", "type", "output_shape", "params", "mult_adds"]);
                table.push(vec![
                    json!("input"),
                    Value::Null,
                    json!(layers.input),
                    Value::Null,
                    Value::Null,
                ]);
                for r in &layers.rows {
                    table.push(vec![
                        json!(r.layer),
                        json!(r.kind),
                        json!(r.output),
                        json!(r.params),
                        json!(r.mult_adds),
                    ]);
                }
                table_response(&table, q.format.as_deref(), "layers")
            } else {
                json_response(&serde_json::to_value(&layers).expect("a layer table serializes"))
            }
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("400: not an architecture: {e}\n")).into_response(),
    }
}

async fn api_arch_evaluations(State(state): State<AppState>, Query(q): Query<ArchQuery>) -> Response {
    let text = q.text.clone();
    match blocking(&state, move |d| d.arch_evaluations(&text)).await {
        Ok(table) => table_response(&table, q.format.as_deref(), "evaluations"),
        Err(e) => e,
    }
}

#[derive(Debug, Deserialize)]
struct CompareQuery {
    #[serde(default)]
    runs: String,
    format: Option<String>,
}

async fn api_compare(State(state): State<AppState>, Query(q): Query<CompareQuery>) -> Response {
    let ids: Result<Vec<i64>, _> = q
        .runs
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse::<i64>())
        .collect();
    let Ok(ids) = ids else {
        return (
            StatusCode::BAD_REQUEST,
            "400: runs is a comma-separated list of run ids\n",
        )
            .into_response();
    };
    match blocking(&state, move |d| d.compare(&ids)).await {
        Ok((table, curves)) => match q.format {
            Some(format) => table_response(&table, Some(&format), "compare"),
            None => json_response(&json!({"table": table.to_json(), "curves": curves})),
        },
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_read_from_bearer_cookie_or_query() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            request_token(&headers, Some("a=1&token=abc")),
            Some(("abc".into(), true))
        );
        headers.insert(header::COOKIE, HeaderValue::from_static("x=1; nas_token=fromcookie"));
        assert_eq!(request_token(&headers, None), Some(("fromcookie".into(), false)));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer secret"));
        assert_eq!(request_token(&headers, None), Some(("secret".into(), false)));
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secret2"));
    }

    #[test]
    fn only_a_loopback_host_on_our_port_is_answered_without_a_token() {
        let host = |h: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_static(h));
            headers
        };
        assert!(loopback_host(&host("127.0.0.1:8080"), 8080));
        assert!(loopback_host(&host("localhost:8080"), 8080));
        assert!(loopback_host(&host("[::1]:8080"), 8080));
        assert!(!loopback_host(&host("evil.example:8080"), 8080));
        assert!(!loopback_host(&host("127.0.0.1:9090"), 8080));
        assert!(!loopback_host(&HeaderMap::new(), 8080));
    }

    #[test]
    fn every_page_and_the_chart_library_are_embedded() {
        for file in [
            "runs.html",
            "run.html",
            "arch.html",
            "compare.html",
            "app.css",
            "common.js",
            "vendor/uPlot.iife.min.js",
            "vendor/uPlot.min.css",
        ] {
            assert!(Assets::get(file).is_some(), "{file} is not embedded");
        }
    }
}
