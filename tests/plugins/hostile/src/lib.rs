//! A test-only agent that misbehaves as its configuration's `mode` asks, so the host's sandbox can
//! be tested against each kind of hostile plugin. `mode = "none"` behaves (picks the first valid
//! action). The `mode` triggers in `act`, after a successful `init`, except where a mode says
//! otherwise (`metrics`, `save`, `load`, `observe`).
use std::time::Duration;

use nas_plugin_sdk::*;
use serde::Deserialize;

/// Text that would clear the screen, retitle the window and forge a line of the host's output if a
/// host printed it raw.
const ESCAPES: &str = "\u{1b}[2J\u{1b}]0;pwned\u{7}\r\nerror: run 1 finished 9999 episodes";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Hyperparameters {
    mode: String,
    /// Target of the file / socket / environment attempts; seconds to sleep (`sleep`, or
    /// "forever"; `pause`); MiB to return from `save` (`huge-save`).
    target: String,
    /// Behave for this many `act` calls before misbehaving.
    after: usize,
}

struct Hostile {
    hp: Hyperparameters,
    hoard: Vec<Vec<u8>>,
    acts: usize,
}

impl Agent for Hostile {
    const NAME: &'static str = "hostile";
    const DESCRIPTION: &'static str = "Test plugin that misbehaves on purpose";

    type Config = Hyperparameters;

    fn init(_space: Space, hp: Hyperparameters, _seed: u64) -> Result<Self, String> {
        Ok(Hostile {
            hp,
            hoard: Vec::new(),
            acts: 0,
        })
    }

    fn act(&mut self, _env: u32, obs: &Observation, mask: &[bool], _explore: bool) -> Result<usize, String> {
        let target = self.hp.target.clone();
        self.acts += 1;
        let mode = if self.acts > self.hp.after {
            self.hp.mode.as_str()
        } else {
            "none"
        };
        match mode {
            "infinite-loop" => {
                let mut x = 0u64;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "memory-bomb" => loop {
                self.hoard.push(vec![1u8; 16 << 20]);
            },
            // Subscribes to the clock without ever dropping the subscriptions: each is a handle
            // the host keeps in its own memory.
            "handle-hoard" => loop {
                std::mem::forget(wasip2::clocks::monotonic_clock::subscribe_duration(1_000_000_000));
            },
            "panic" => panic!("hostile plugin panics on purpose"),
            "outside-mask" => Ok(mask.iter().position(|v| !v).unwrap_or(mask.len())),
            "out-of-range" => Ok(mask.len() + 7),
            "read-file" => match std::fs::read(&target) {
                Ok(bytes) => Err(format!("LEAK: read {} bytes of {target}", bytes.len())),
                Err(e) => Err(format!("denied: cannot read {target}: {e}")),
            },
            "env" => match std::env::var(&target) {
                Ok(value) => Err(format!("LEAK: {target}={value}")),
                Err(e) => Err(format!("denied: no environment variable {target}: {e}")),
            },
            "socket" => match std::net::TcpStream::connect(&target) {
                Ok(_) => Err(format!("LEAK: connected to {target}")),
                Err(e) => Err(format!("denied: cannot connect to {target}: {e}")),
            },
            "sleep" => {
                let wait = match target.as_str() {
                    "forever" => Duration::MAX,
                    secs => {
                        Duration::from_secs_f64(secs.parse().map_err(|_| format!("target {secs:?} is not seconds"))?)
                    }
                };
                // WASI's clock: the epoch interrupt alone never fires while the guest waits here.
                std::thread::sleep(wait);
                Err(format!("slept {wait:?} and came back"))
            }
            "escape" => Err(ESCAPES.into()),
            // Not hostile: a slow agent. Thinks `target` seconds before each network's first
            // layer (so workers sit idle between children), then picks a valid action that varies
            // from act to act (so the children differ).
            "pause" => {
                if obs.depth == 0 {
                    let secs: f64 = target
                        .parse()
                        .map_err(|_| format!("target {target:?} is not seconds"))?;
                    std::thread::sleep(Duration::from_secs_f64(secs));
                }
                let valid: Vec<usize> = (0..mask.len()).filter(|&a| mask[a]).collect();
                valid
                    .get(self.acts * 7 % valid.len().max(1))
                    .copied()
                    .ok_or_else(|| "no valid action".into())
            }
            "huge-output" => {
                let huge = "A".repeat(64 << 20);
                println!("{huge}");
                Err(huge)
            }
            _ => mask.iter().position(|&v| v).ok_or_else(|| "no valid action".into()),
        }
    }

    /// `mode = "refuse-observe"` fails every `observe`: a frozen policy (`nas-host eval`) must
    /// never be told a reward.
    fn observe(&mut self, _env: u32, _reward: f64, _done: bool) -> Result<(), String> {
        if self.hp.mode == "refuse-observe" {
            return Err("observe was called on a policy that must stay frozen".into());
        }
        Ok(())
    }

    /// `mode = "huge-save"` returns a checkpoint of `target` MiB.
    fn save(&self) -> Result<Vec<u8>, String> {
        match self.hp.mode.as_str() {
            "huge-save" => {
                let mib: usize = self.hp.target.parse().map_err(|_| "target is not MiB".to_string())?;
                Ok(vec![7u8; mib << 20])
            }
            _ => Ok(Vec::new()),
        }
    }

    /// `mode = "load-panic"` traps when a run resumes.
    fn load(&mut self, _bytes: &[u8]) -> Result<(), String> {
        if self.hp.mode == "load-panic" {
            panic!("hostile plugin panics in load on purpose");
        }
        Ok(())
    }

    /// `mode = "escape"` names its metric with terminal escapes.
    fn metrics(&self) -> Vec<(String, f64)> {
        match self.hp.mode.as_str() {
            "escape" => vec![(ESCAPES.into(), 1.0)],
            _ => Vec::new(),
        }
    }
}

register_agent!(Hostile);
