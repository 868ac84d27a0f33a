//! `nas-host serve`: the read-only live dashboard over the run store (nas-serve).

use std::net::IpAddr;

use clap::Args;
use nas_serve::ServeOptions;

use super::StoreArgs;

#[derive(Args, Debug)]
pub(super) struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on. Anything but a loopback address (127.0.0.1, ::1) needs a token:
    /// --token, or one is generated and printed.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// A token every request must carry (the printed URL's ?token=…, then a cookie; or
    /// `Authorization: Bearer TOKEN`). At least 8 letters, digits or - . _ ~.
    #[arg(long, env = "NAS_SERVE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

pub(super) fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let options = ServeOptions {
        db: args.store.db.clone(),
        host: args.host,
        port: args.port,
        token: args.token,
    };
    let store = nas_store::Store::describe(&args.store.db);
    nas_serve::serve(options, |listening| {
        println!("nas-host dashboard of {store} (read-only): {}", listening.url);
        if listening.token_generated {
            println!(
                "listening on {} beyond this machine: every request needs the token above (generated; pass --token to choose one)",
                listening.addr
            );
        }
        println!("Ctrl-C stops it.");
    })
}
