//! What a plugin may use: its time per call (waiting included), its memory (all linear memories
//! and tables together) and how many instances, memories and tables it may create.
//!
//! Two mechanisms hold the time limit. Guest code is interrupted by the engine's epoch deadline;
//! waits inside WASI (the only ones a plugin can start are clock subscriptions, since nothing else
//! is granted) are cut at the same deadline by [`DeadlineClock`], which replaces WASI's
//! `monotonic-clock`. Without it a plugin that sleeps holds the host for as long as it asks.

use nas_config::SandboxLimits;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime::ResourceLimiter;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::{DynPollable, Pollable};

/// What the host counts for one table element (a function reference is a pointer).
const TABLE_ELEMENT_BYTES: usize = 8;

/// The store's limiter: counts every memory and table the plugin creates or grows against one cap.
/// Memory is never given back within a store, so the running sum is the plugin's total.
pub(crate) struct PluginLimiter {
    limits: SandboxLimits,
    used_bytes: usize,
    /// Set when a request was refused: the total it would have reached, in bytes.
    pub(crate) refused_total: Option<usize>,
}

impl PluginLimiter {
    pub(crate) fn new(limits: SandboxLimits) -> PluginLimiter {
        PluginLimiter {
            limits,
            used_bytes: 0,
            refused_total: None,
        }
    }

    fn grow(&mut self, extra_bytes: usize) -> wasmtime::Result<bool> {
        let total = self.used_bytes.saturating_add(extra_bytes);
        if total > self.limits.memory_bytes() {
            self.refused_total = Some(total);
            // A trap, not a failed grow: the plugin stops with a clear reason instead of failing
            // somewhere later on a null allocation.
            wasmtime::bail!("over the plugin's memory cap");
        }
        self.used_bytes = total;
        Ok(true)
    }
}

impl ResourceLimiter for PluginLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Growth past the memory's own declared maximum fails in wasmtime; it is not counted.
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        self.grow(desired.saturating_sub(current))
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        self.grow(desired.saturating_sub(current).saturating_mul(TABLE_ELEMENT_BYTES))
    }

    fn instances(&self) -> usize {
        self.limits.instances
    }

    fn tables(&self) -> usize {
        self.limits.tables
    }

    fn memories(&self) -> usize {
        self.limits.memories
    }
}

/// The deadline of the call in progress, shared with the clock that cuts waits at it.
pub(crate) struct CallDeadline {
    at: Instant,
    /// Set when a wait of the plugin's ended because the deadline came, not because what it waited
    /// for did.
    woken_by_deadline: Arc<AtomicBool>,
}

impl CallDeadline {
    pub(crate) fn starting_now(limits: &SandboxLimits) -> CallDeadline {
        let now = Instant::now();
        CallDeadline {
            at: now
                .checked_add(limits.call_timeout())
                .unwrap_or(now + Duration::from_secs(86_400 * 365)),
            woken_by_deadline: Arc::default(),
        }
    }

    /// Starts the deadline of the next call (cheaper than a new one: no allocation).
    pub(crate) fn restart(&mut self, limits: &SandboxLimits) {
        let now = Instant::now();
        self.at = now
            .checked_add(limits.call_timeout())
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        self.woken_by_deadline.store(false, Ordering::Relaxed);
    }

    /// Whether the plugin was stopped in a wait (or asked to wait after) its deadline.
    pub(crate) fn was_hit(&self) -> bool {
        self.woken_by_deadline.load(Ordering::Relaxed)
    }
}

/// Marker error of a wait asked for after the deadline had passed.
#[derive(Debug)]
pub(crate) struct WaitPastDeadline;

impl std::fmt::Display for WaitPastDeadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the plugin asked to wait after its call's time limit")
    }
}

impl std::error::Error for WaitPastDeadline {}

/// WASI's `monotonic-clock` with every subscription ending no later than the call's deadline.
pub(crate) struct DeadlineClock<'a> {
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) deadline: &'a mut CallDeadline,
}

impl HasData for DeadlineClock<'static> {
    type Data<'a> = DeadlineClock<'a>;
}

/// Replaces the `monotonic-clock` interface that `wasmtime_wasi` linked (the linker must allow
/// shadowing).
pub(crate) fn link_deadline_clock<T: 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> DeadlineClock<'_>,
) -> wasmtime::Result<()> {
    monotonic_clock::add_to_linker::<T, DeadlineClock<'static>>(linker, view)
}

/// Nanoseconds since the first time any plugin read the clock (WASI only promises monotonicity).
fn clock_nanos() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
}

impl DeadlineClock<'_> {
    fn subscribe(&mut self, wanted: Duration) -> wasmtime::Result<Resource<DynPollable>> {
        let now = Instant::now();
        let left = self.deadline.at.saturating_duration_since(now);
        if left.is_zero() && !wanted.is_zero() {
            self.deadline.woken_by_deadline.store(true, Ordering::Relaxed);
            return Err(wasmtime::Error::new(WaitPastDeadline));
        }
        let cut = wanted > left;
        let wake = Wake {
            at: tokio::time::Instant::from_std(now + wanted.min(left)),
            flag_on_wake: cut.then(|| self.deadline.woken_by_deadline.clone()),
        };
        let resource = self.table.push(wake)?;
        wasmtime_wasi::p2::subscribe(self.table, resource)
    }
}

impl monotonic_clock::Host for DeadlineClock<'_> {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        Ok(clock_nanos())
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        Ok(1)
    }

    fn subscribe_instant(&mut self, when: monotonic_clock::Instant) -> wasmtime::Result<Resource<DynPollable>> {
        self.subscribe(Duration::from_nanos(when.saturating_sub(clock_nanos())))
    }

    fn subscribe_duration(&mut self, duration: monotonic_clock::Duration) -> wasmtime::Result<Resource<DynPollable>> {
        self.subscribe(Duration::from_nanos(duration))
    }
}

/// A clock subscription: ready at `at`. When `at` is the call's deadline rather than what the
/// plugin asked for, waking sets the deadline's flag.
struct Wake {
    at: tokio::time::Instant,
    flag_on_wake: Option<Arc<AtomicBool>>,
}

#[wasmtime_wasi::async_trait]
impl Pollable for Wake {
    async fn ready(&mut self) {
        tokio::time::sleep_until(self.at).await;
        if let Some(flag) = &self.flag_on_wake {
            flag.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(memory_mib: usize) -> PluginLimiter {
        PluginLimiter::new(SandboxLimits {
            memory_mib,
            ..SandboxLimits::default()
        })
    }

    #[test]
    fn memories_and_tables_share_one_cap() {
        let mut l = limiter(10);
        assert!(l.memory_growing(0, 6 << 20, None).unwrap());
        // A second memory of 6 MiB would pass a per-memory cap of 10 MiB, but not the total.
        assert!(l.memory_growing(0, 6 << 20, None).is_err());
        assert_eq!(l.refused_total, Some(12 << 20));
        // 3 MiB of table elements fit beside the 6 MiB memory; 2 MiB more do not.
        assert!(l.table_growing(0, (3 << 20) / TABLE_ELEMENT_BYTES, None).unwrap());
        assert!(l.table_growing(0, (2 << 20) / TABLE_ELEMENT_BYTES, None).is_err());
    }

    #[test]
    fn growth_past_a_declared_maximum_is_refused_without_counting() {
        let mut l = limiter(10);
        assert!(!l.memory_growing(0, 8 << 20, Some(4 << 20)).unwrap());
        assert!(l.memory_growing(0, 8 << 20, None).unwrap());
        assert_eq!(l.refused_total, None);
    }

    #[test]
    fn limits_are_checked() {
        assert!(SandboxLimits::default().check().is_ok());
        let zero_time = SandboxLimits {
            call_timeout_secs: 0.0,
            ..SandboxLimits::default()
        };
        assert!(zero_time.check().unwrap_err().to_string().contains("call_timeout_secs"));
        let no_tables = SandboxLimits {
            tables: 0,
            ..SandboxLimits::default()
        };
        assert!(no_tables.check().unwrap_err().to_string().contains("tables"));
    }
}
