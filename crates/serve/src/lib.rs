//! nas-serve: `nas-host serve`, a read-only live dashboard over the run store (SQLite or
//! PostgreSQL) that works while searches and workers write to it.
//!
//! - Pages (embedded in the binary at build time, with the vendored chart library; nothing is
//!   read from disk or the internet at run time): `/` the runs, `/run/ID` a run (charts, the
//!   episodes, workers and queue, configuration; it polls every second while the run is live),
//!   `/arch?text=…&dataset=…` an architecture, `/compare?runs=1,2` a comparison.
//! - A JSON API the pages read ([`api`]); every table downloads as CSV (`?format=csv`) or JSON
//!   (`?format=json`).
//! - Safe by default: it binds to 127.0.0.1; another address needs a token (given, or generated
//!   and returned in [`Listening`]), checked on every request. Only GET (and HEAD) is answered,
//!   and only the store's readers are called. The pages put data into the document as text
//!   (`textContent`), never as markup, and a Content-Security-Policy forbids inline scripts, so
//!   an architecture, a plugin's name or a metric holding HTML or script is shown as text.
//!   Unknown paths are 404.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

mod api;
pub mod data;
pub mod table;

pub use data::Data;

/// What `nas-host serve` was asked for.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The run store (`--db`): a SQLite path or URL, or a PostgreSQL URL.
    pub db: PathBuf,
    pub host: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// Required of every request when set; generated when `host` is not a loopback address.
    pub token: Option<String>,
}

/// Where the server listens, for the CLI to print.
#[derive(Debug, Clone)]
pub struct Listening {
    pub addr: SocketAddr,
    /// The address to open in a browser (with `?token=…` when a token is required).
    pub url: String,
    pub token: Option<String>,
    /// The token was generated (none was given and the address is not a loopback one).
    pub token_generated: bool,
}

/// A bound server, ready to [`Server::run`].
pub struct Server {
    listener: tokio::net::TcpListener,
    router: axum::Router,
    listening: Listening,
}

impl Server {
    /// Opens the store and binds the address.
    pub async fn bind(options: ServeOptions) -> anyhow::Result<Server> {
        let (token, token_generated) = match options.token.clone() {
            Some(t) => {
                // Characters a URL carries as they are (the printed URL's `?token=`).
                anyhow::ensure!(
                    t.len() >= 8 && t.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)),
                    "--token must be at least 8 characters, letters, digits and - . _ ~ only"
                );
                (Some(t), false)
            }
            None if options.host.is_loopback() => (None, false),
            None => (Some(generate_token()), true),
        };
        let db = options.db.clone();
        let data = tokio::task::spawn_blocking(move || Data::open(&db)).await??;
        let listener = tokio::net::TcpListener::bind((options.host, options.port))
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}:{}: {e}", options.host, options.port))?;
        let addr = listener.local_addr()?;
        let host = match addr.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        let url = match &token {
            Some(t) => format!("http://{host}:{}/?token={t}", addr.port()),
            None => format!("http://{host}:{}/", addr.port()),
        };
        let state = api::AppState {
            data: Arc::new(data),
            token: token.clone(),
            port: addr.port(),
            loopback: options.host.is_loopback(),
        };
        Ok(Server {
            listener,
            router: api::router(state),
            listening: Listening {
                addr,
                url,
                token,
                token_generated,
            },
        })
    }

    pub fn listening(&self) -> &Listening {
        &self.listening
    }

    /// Serves until the process ends.
    pub async fn run(self) -> anyhow::Result<()> {
        axum::serve(self.listener, self.router).await?;
        Ok(())
    }
}

/// Serves the dashboard (blocking): binds, tells `ready` where, then serves until the process
/// ends.
pub fn serve(options: ServeOptions, ready: impl FnOnce(&Listening)) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let server = Server::bind(options).await?;
        ready(server.listening());
        server.run().await
    })
}

/// 128 random bits as hex.
fn generate_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
