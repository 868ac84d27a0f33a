//! The sandbox: one wasmtime engine, a compile cache on disk, and stores with WASI granted nothing.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::{Component, Linker, ResourceTable, ResourceTableError};
use wasmtime::{Config, Engine, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::wit;
use super::limits::{link_deadline_clock, CallDeadline, DeadlineClock, PluginLimiter, WaitPastDeadline};
use super::{PluginError, PluginKind, CONTRACT_VERSION, OLDER_CONTRACTS};
use crate::cache::CompileCache;
use nas_config::SandboxLimits;

/// How often the engine's epoch advances; call time limits are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Longest message from a plugin that reaches the user.
const MESSAGE_CAP_BYTES: usize = 4 << 10;

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub description: String,
}

/// A compiled plugin file, ready to instantiate.
#[derive(Clone)]
pub struct LoadedPlugin {
    pub component: Component,
    pub kind: PluginKind,
    pub path: PathBuf,
    /// sha256 of the `.wasm` file; runs record it to notice a changed plugin on resume.
    pub sha256: String,
    /// Whether the compiled code came from the on-disk cache.
    pub cache_hit: bool,
    /// The contract the plugin speaks: this host's, or one of the older ones it still loads
    /// (the host's version string, e.g. "0.1.0" for a plugin built for 0.1.3).
    pub contract_version: String,
}

/// The host side of a store: WASI (nothing granted), limits, and the plugin's captured output.
#[doc(hidden)]
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: PluginLimiter,
    deadline: CallDeadline,
    output: LogPipe,
    random: EpisodeRng,
}

/// The plugin's WASI random source. The host reseeds it at every episode from (run seed, episode),
/// so whatever a plugin draws from WASI is the same in a resumed run as in an uninterrupted one.
#[derive(Clone)]
struct EpisodeRng(Arc<Mutex<rand_chacha_wasi::ChaCha8Rng>>);

impl EpisodeRng {
    fn new(seed: u64) -> EpisodeRng {
        use rand_chacha_wasi::rand_core::SeedableRng;
        EpisodeRng(Arc::new(Mutex::new(rand_chacha_wasi::ChaCha8Rng::seed_from_u64(seed))))
    }

    fn reseed(&self, seed: u64) {
        use rand_chacha_wasi::rand_core::SeedableRng;
        *self.0.lock().expect("rng poisoned") = rand_chacha_wasi::ChaCha8Rng::seed_from_u64(seed);
    }
}

impl rand_chacha_wasi::rand_core::TryRng for EpisodeRng {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        use rand_chacha_wasi::rand_core::Rng;
        Ok(self.0.lock().expect("rng poisoned").next_u32())
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        use rand_chacha_wasi::rand_core::Rng;
        Ok(self.0.lock().expect("rng poisoned").next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        use rand_chacha_wasi::rand_core::Rng;
        self.0.lock().expect("rng poisoned").fill_bytes(dst);
        Ok(())
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Collects a plugin's stdout and stderr (up to a cap) so the host can forward it to tracing.
#[derive(Clone)]
struct LogPipe {
    buffer: Arc<Mutex<(Vec<u8>, usize)>>,
    /// Output kept per call; the rest is dropped and counted.
    cap_bytes: usize,
}

impl LogPipe {
    /// Takes the collected output and the number of bytes dropped over the cap.
    fn take(&self) -> (Vec<u8>, usize) {
        std::mem::take(&mut *self.buffer.lock().expect("log pipe poisoned"))
    }
}

impl tokio::io::AsyncWrite for LogPipe {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let mut guard = self.buffer.lock().expect("log pipe poisoned");
        let (kept, dropped) = &mut *guard;
        let room = self.cap_bytes.saturating_sub(kept.len()).min(buf.len());
        kept.extend_from_slice(&buf[..room]);
        *dropped += buf.len() - room;
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl wasmtime_wasi::cli::IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for LogPipe {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

/// The wasmtime engine with its compile cache; cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    cache_dir: Option<PathBuf>,
}

impl Runtime {
    /// Creates the engine. `cache_dir` holds compiled plugins (`None` disables the cache).
    pub fn new(cache_dir: Option<PathBuf>) -> anyhow::Result<Runtime> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        // Synchronous calls only; without concurrency support component calls are ~3x cheaper.
        config.concurrency_support(false);
        let engine = Engine::new(&config).map_err(|e| anyhow::anyhow!("creating the wasmtime engine: {e:#}"))?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("nas-plugin-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .context("starting the plugin timer thread")?;
        Ok(Runtime { engine, cache_dir })
    }

    /// The default cache: `$NAS_CACHE_DIR/compiled`, else `~/.cache/nas-host/compiled`.
    pub fn default_cache_dir() -> Option<PathBuf> {
        std::env::var_os("NAS_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/nas-host")))
            .map(|d| d.join("compiled"))
    }

    fn cache_key(&self, wasm_sha256: &str) -> String {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut hasher);
        format!("{wasm_sha256}-{:016x}", hasher.finish())
    }

    /// Compiles a plugin file, or loads its compiled code from the cache (keyed by the file's hash
    /// and the engine's compatibility hash), and checks what kind of plugin it is.
    pub fn load(&self, path: &Path) -> anyhow::Result<LoadedPlugin> {
        let bytes = std::fs::read(path).with_context(|| format!("reading plugin {}", path.display()))?;
        let sha256 = nas_core::checksum::sha256_hex(&bytes);
        let cache = self.cache_dir.clone().map(CompileCache::new);
        let entry = format!("{}.cwasm", self.cache_key(&sha256));
        let mut cache_hit = false;
        let mut component = None;
        if let Some(compiled) = cache.as_ref().and_then(|c| c.get(&entry)) {
            // SAFETY: the cache hands out only bytes this user compiled with an engine of the
            // same compatibility hash (it is in the entry's name) and recorded the digest of, in
            // a directory nobody else may write (see `cache.rs`).
            match unsafe { Component::deserialize(&self.engine, &compiled) } {
                Ok(c) => {
                    component = Some(c);
                    cache_hit = true;
                }
                Err(e) => tracing::warn!("ignoring unreadable compiled plugin {entry}: {e:#}"),
            }
        }
        let component = match component {
            Some(c) => c,
            None => {
                let c = Component::new(&self.engine, &bytes).map_err(|e| {
                    anyhow::anyhow!("{} is not a valid WebAssembly component ({}); build plugins with `cargo build --release --target wasm32-wasip2` and the nas-plugin-sdk", path.display(), one_line(&e))
                })?;
                if let Some(cache) = &cache {
                    let stored = c
                        .serialize()
                        .map_err(|e| anyhow::anyhow!("{e:#}"))
                        .and_then(|compiled| cache.put(&entry, &compiled));
                    if let Err(e) = stored {
                        tracing::warn!("could not write the compiled plugin {entry} to the cache: {e:#}");
                    }
                }
                c
            }
        };
        let (kind, contract_version) = self.inspect_exports(&component, path)?;
        Ok(LoadedPlugin {
            component,
            kind,
            path: path.to_path_buf(),
            sha256,
            cache_hit,
            contract_version,
        })
    }

    /// Finds which contract interface the component exports, refusing other contract versions.
    fn inspect_exports(&self, component: &Component, path: &Path) -> anyhow::Result<(PluginKind, String)> {
        let ty = component.component_type();
        let names: Vec<String> = ty.exports(&self.engine).map(|(name, _)| name.to_string()).collect();
        for name in &names {
            let Some(rest) = name.strip_prefix("nas:plugin/") else {
                continue;
            };
            let (interface, version) = rest.split_once('@').unwrap_or((rest, "unversioned"));
            let kind = match interface {
                "agent" => PluginKind::Agent,
                "reward" => PluginKind::Reward,
                "assessor" => PluginKind::Assessor,
                _ => continue,
            };
            let contract = if compatible(version, CONTRACT_VERSION) {
                CONTRACT_VERSION
            } else if let Some((older, _)) = OLDER_CONTRACTS
                .iter()
                .find(|(older, kinds)| compatible(version, older) && kinds.contains(&kind))
            {
                older
            } else {
                let older: Vec<String> = OLDER_CONTRACTS
                    .iter()
                    .filter(|(_, kinds)| kinds.contains(&kind))
                    .map(|(v, _)| format!("nas:plugin@{v}"))
                    .collect();
                let also = if older.is_empty() {
                    String::new()
                } else {
                    format!(" (and still loads {} plugins of {})", kind.as_str(), older.join(", "))
                };
                anyhow::bail!(
                    "{} is {} built for plugin contract nas:plugin@{version}, but this nas-host speaks nas:plugin@{CONTRACT_VERSION}{also}; rebuild the plugin with a matching nas-plugin-sdk",
                    path.display(),
                    kind.article()
                );
            };
            return Ok((kind, contract.to_string()));
        }
        anyhow::bail!(
            "{} is not a nas-host plugin: it exports none of nas:plugin/agent, nas:plugin/reward, nas:plugin/assessor (exports: {})",
            path.display(),
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        )
    }

    /// A store for one plugin instance: WASI with nothing granted (no files, environment, network
    /// or arguments), randomness seeded from the run seed, output captured for the log, and the
    /// limits: one memory cap over all memories and tables, counts of instances, memories and
    /// tables, the cap on data handed to the host in one call, and the call deadline.
    pub(crate) fn new_store(&self, limits: &SandboxLimits, seed: u64) -> Store<HostState> {
        let output = LogPipe {
            buffer: Arc::default(),
            cap_bytes: limits.output_kib.saturating_mul(1 << 10),
        };
        let random = EpisodeRng::new(seed);
        let wasi = WasiCtx::builder()
            .stdout(output.clone())
            .stderr(output.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .secure_random(random.clone())
            .insecure_random(random.clone())
            .insecure_random_seed(u128::from(seed))
            .build();
        let state = HostState {
            wasi,
            // WASI keeps each handle a plugin holds (a clock subscription, a stream) in this
            // host-side table, outside the plugin's memory cap: capped so that a plugin that
            // never drops them cannot grow the host's memory across calls.
            table: {
                let mut table = ResourceTable::new();
                table.set_max_capacity(limits.handles);
                table
            },
            limiter: PluginLimiter::new(*limits),
            // Instantiation runs the component's start-up code: it gets the same limit as a call.
            deadline: CallDeadline::starting_now(limits),
            output,
            random,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // What one call may hand to the host (a checkpoint, a string) follows the memory cap:
        // the plugin could not hold more anyway. wasmtime's default is 128 MiB.
        store.set_hostcall_fuel(limits.memory_bytes());
        store.epoch_deadline_trap();
        store.set_epoch_deadline(deadline_ticks(limits));
        store
    }

    fn linker(&self) -> anyhow::Result<Linker<HostState>> {
        let mut linker = Linker::new(&self.engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| anyhow::anyhow!("linking WASI: {e:#}"))?;
        // WASI's clock is replaced by one whose waits end at the call's deadline.
        linker.allow_shadowing(true);
        link_deadline_clock(&mut linker, |s: &mut HostState| DeadlineClock {
            table: &mut s.table,
            deadline: &mut s.deadline,
        })
        .map_err(|e| anyhow::anyhow!("linking the plugin clock: {e:#}"))?;
        linker.allow_shadowing(false);
        Ok(linker)
    }

    /// Instantiates a loaded plugin of the `expected` kind in a fresh sandbox and asks it to
    /// describe itself. `instantiate` and `describe` are the world's generated calls.
    pub(crate) fn sandboxed<P>(
        &self,
        loaded: &LoadedPlugin,
        expected: PluginKind,
        limits: SandboxLimits,
        seed: u64,
        instantiate: impl FnOnce(&mut Store<HostState>, &LoadedPlugin, &Linker<HostState>) -> wasmtime::Result<P>,
        describe: impl FnOnce(&P, &mut Store<HostState>) -> wasmtime::Result<wit::PluginInfo>,
    ) -> anyhow::Result<(Sandbox, P)> {
        if loaded.kind != expected {
            anyhow::bail!(
                "{} is {} plugin, not {}; pass it with {}, or give {} to {}",
                loaded.path.display(),
                loaded.kind.article(),
                expected.article(),
                loaded.kind.flag(),
                expected.article(),
                expected.flag()
            );
        }
        limits.check()?;
        let stem = loaded
            .path
            .file_stem()
            .map_or_else(|| "plugin".into(), |s| s.to_string_lossy().into_owned());
        let linker = self.linker()?;
        let mut sandbox = Sandbox::new(self.new_store(&limits, seed), limits, &stem);
        let instance = instantiate(&mut sandbox.store, loaded, &linker);
        let plugin = match sandbox.within_deadline(instance) {
            Ok(plugin) => plugin,
            Err(e) => {
                let output = sandbox.forward_output();
                anyhow::bail!(
                    "instantiating {} {}: {}",
                    expected.as_str(),
                    loaded.path.display(),
                    sandbox.describe_failure(&e, &output)
                );
            }
        };
        let info = sandbox.call("describe", |s| describe(&plugin, s).map(Ok))?;
        sandbox.info = PluginInfo {
            name: plugin_text(&info.name),
            version: plugin_text(&info.version),
            description: plugin_text(&info.description),
        };
        Ok((sandbox, plugin))
    }
}

/// The call time limit in epoch ticks.
fn deadline_ticks(limits: &SandboxLimits) -> u64 {
    (limits.call_timeout_secs / EPOCH_TICK.as_secs_f64())
        .ceil()
        .clamp(1.0, u64::MAX as f64) as u64
}

/// An error and its causes on one line: wasmtime's messages can span lines (a backtrace, a
/// parser's context) and the first line of each says what failed.
fn one_line(error: &wasmtime::Error) -> String {
    let messages: Vec<String> = error
        .chain()
        .map(|cause| cause.to_string().lines().next().unwrap_or("").trim().to_string())
        .filter(|m| !m.is_empty())
        .collect();
    messages.join(": ")
}

/// Semver compatibility of contract versions: same major, and for 0.x the same minor.
fn compatible(plugin: &str, host: &str) -> bool {
    let parse = |v: &str| -> Option<(u64, u64)> {
        let mut parts = v.split('.');
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    };
    match (parse(plugin), parse(host)) {
        (Some((0, pm)), Some((0, hm))) => pm == hm,
        (Some((pmaj, _)), Some((hmaj, _))) => pmaj == hmaj,
        _ => false,
    }
}

/// One running plugin instance with its store. After a trap the store is poisoned and never
/// entered again: every later call fails with the original reason.
pub(crate) struct Sandbox {
    pub(crate) store: Store<HostState>,
    pub(crate) info: PluginInfo,
    limits: SandboxLimits,
    poisoned: Option<String>,
}

impl Sandbox {
    pub(crate) fn new(store: Store<HostState>, limits: SandboxLimits, fallback_name: &str) -> Sandbox {
        let info = PluginInfo {
            name: fallback_name.into(),
            version: "?".into(),
            description: String::new(),
        };
        Sandbox {
            store,
            info,
            limits,
            poisoned: None,
        }
    }

    pub(crate) fn error(&self, call: &str, message: impl Into<String>, fatal: bool) -> PluginError {
        PluginError {
            name: self.info.name.clone(),
            version: self.info.version.clone(),
            call: call.into(),
            message: message.into(),
            fatal,
        }
    }

    /// Restarts the plugin's WASI random stream from `seed`.
    pub(crate) fn reseed(&mut self, seed: u64) {
        self.store.data().random.reseed(seed);
    }

    /// Calls into the plugin under the time limit, forwards its output to the log, and turns traps
    /// and returned errors into `PluginError`s.
    pub(crate) fn call<R>(
        &mut self,
        call: &str,
        f: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<R, PluginError> {
        if let Some(reason) = &self.poisoned {
            return Err(self.error(
                call,
                format!("the plugin was stopped after an earlier failure ({reason})"),
                true,
            ));
        }
        self.store.data_mut().deadline.restart(&self.limits);
        self.store.set_epoch_deadline(deadline_ticks(&self.limits));
        let result = f(&mut self.store);
        let output = self.forward_output();
        match self.within_deadline(result) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) => Err(self.error(call, plugin_text(&message), false)),
            Err(trap) => {
                let reason = self.describe_failure(&trap, &output);
                self.poisoned = Some(reason.clone());
                Err(self.error(call, reason, true))
            }
        }
    }

    /// The outcome of a call (or of start-up code), made a timeout when the plugin was woken from
    /// a wait by its deadline: it has used up its time even if it then returned.
    fn within_deadline<T>(&self, result: wasmtime::Result<T>) -> wasmtime::Result<T> {
        match result {
            Ok(_) if self.store.data().deadline.was_hit() => Err(wasmtime::Error::new(WaitPastDeadline)),
            other => other,
        }
    }

    /// Says in plain words why a call (or the instantiation) failed, with the plugin's last words.
    fn describe_failure(&self, error: &wasmtime::Error, output: &str) -> String {
        let last_output = panic_message(output)
            .or_else(|| {
                output
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty() && !l.starts_with("note: "))
                    .map(str::to_string)
            })
            .map(|l| plugin_text(&l));
        let state = self.store.data();
        let text = one_line(error);
        let reason = if matches!(error.downcast_ref::<Trap>(), Some(Trap::Interrupt)) || state.deadline.was_hit() {
            format!(
                "exceeded its time limit of {} s per call (waiting included; [sandbox] call_timeout_secs)",
                self.limits.call_timeout_secs
            )
        } else if let Some(total) = state.limiter.refused_total {
            format!(
                "exceeded its memory cap of {} MiB (memories and tables together; it asked for {:.1} MiB; [sandbox] memory_mib)",
                self.limits.memory_mib,
                total as f64 / f64::from(1 << 20)
            )
        } else if error.chain().any(|cause| {
            matches!(
                cause.downcast_ref::<ResourceTableError>(),
                Some(ResourceTableError::Full)
            )
        }) {
            format!(
                "holds more than {} host handles (clock subscriptions, streams) without dropping them ([sandbox] handles)",
                self.limits.handles
            )
        } else if text.contains("fuel allocated for hostcalls") {
            format!(
                "handed the host more data in one call than its memory cap of {} MiB allows (a checkpoint from save(), a string or a list; [sandbox] memory_mib)",
                self.limits.memory_mib
            )
        } else if let Some(what) = ["instance", "table", "memory"]
            .into_iter()
            .find(|what| text.contains(&format!("{what} count too high")))
        {
            let (limit, setting) = match what {
                "instance" => (self.limits.instances, "instances"),
                "table" => (self.limits.tables, "tables"),
                _ => (self.limits.memories, "memories"),
            };
            format!("creates more than {limit} {setting}, the sandbox's limit ([sandbox] {setting})")
        } else if let Some(trap) = error.downcast_ref::<Trap>() {
            format!("crashed ({trap})")
        } else {
            format!("failed: {}", plugin_text(&text))
        };
        match last_output {
            Some(line) => format!("{reason}; the plugin said: {line}"),
            None => reason,
        }
    }

    /// Sends what the plugin printed during the call to the log; returns it.
    fn forward_output(&mut self) -> String {
        let (bytes, dropped) = self.store.data().output.take();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            tracing::info!(target: "plugin", plugin = %self.info.name, "{}", plugin_text(line));
        }
        if dropped > 0 {
            tracing::warn!(target: "plugin", plugin = %self.info.name, "dropped {dropped} bytes of plugin output over the {} KiB per call ([sandbox] output_kib)", self.limits.output_kib);
        }
        text
    }
}

/// The message of a Rust panic in the plugin's output ("panicked at FILE:LINE:COL:\nMESSAGE").
fn panic_message(output: &str) -> Option<String> {
    let mut lines = output.lines();
    let header = lines.by_ref().find(|l| l.contains("panicked at"))?;
    let location = header
        .split("panicked at")
        .nth(1)
        .unwrap_or("")
        .trim()
        .trim_end_matches(':');
    let message = lines.next().unwrap_or("").trim();
    Some(format!("panicked at {location}: {message}"))
}

/// Makes text that came from a plugin safe to show: control characters (escape sequences, `\r`,
/// `\n`) and bidirectional overrides are shown escaped, so a plugin can neither drive the terminal
/// nor forge lines of the host's output; long text is cut to a readable size.
pub(crate) fn plugin_text(message: &str) -> String {
    let mut end = message.len().min(MESSAGE_CAP_BYTES);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let mut shown = String::with_capacity(end);
    for c in message[..end].chars() {
        let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    if end < message.len() {
        shown.push_str(&format!("… ({} bytes in all, cut)", message.len()));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_versions() {
        assert!(compatible("0.1.0", "0.1.0"));
        assert!(compatible("0.1.3", "0.1.0"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(!compatible("1.1.0", "0.1.0"));
        assert!(compatible("1.4.0", "1.0.0"));
        assert!(!compatible("garbage", "0.1.0"));
    }

    #[test]
    fn plugin_output_is_kept_up_to_its_cap() {
        use tokio::io::AsyncWrite;
        let mut pipe = LogPipe {
            buffer: Arc::default(),
            cap_bytes: 1 << 10,
        };
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        for _ in 0..10 {
            let written = Pin::new(&mut pipe).poll_write(&mut cx, &[b'x'; 1000]);
            assert!(matches!(written, Poll::Ready(Ok(1000))), "the plugin is never blocked");
        }
        let (kept, dropped) = pipe.take();
        assert_eq!((kept.len(), dropped), (1024, 10_000 - 1024));
    }

    #[test]
    fn panic_messages_are_found_in_the_output() {
        let out = "x\nthread '<unnamed>' panicked at src/lib.rs:5:9:\nboom\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(panic_message(out).unwrap(), "panicked at src/lib.rs:5:9: boom");
        assert_eq!(panic_message("nothing"), None);
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "x".repeat(100_000);
        let cut = plugin_text(&long);
        assert!(cut.len() < 5000 && cut.contains("100000 bytes"));
    }

    #[test]
    fn plugin_text_cannot_drive_the_terminal() {
        let hostile = "\u{1b}[2J\u{1b}]0;owned\u{7}ok\r\nerror: run 1 finished 9999 episodes\u{202e}txt";
        let shown = plugin_text(hostile);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
        assert!(!shown.contains('\u{202e}'));
        assert_eq!(
            shown,
            "\\u{1b}[2J\\u{1b}]0;owned\\u{7}ok\\r\\nerror: run 1 finished 9999 episodes\\u{202e}txt"
        );
        assert_eq!(plugin_text("ε = 0.5, ü"), "ε = 0.5, ü");
    }
}
