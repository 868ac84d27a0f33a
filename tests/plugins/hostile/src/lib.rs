//! A test-only agent that misbehaves as its configuration's `mode` asks, so the host's sandbox can
//! be tested against each kind of hostile plugin. `mode = "none"` behaves (picks the first valid
//! action). The `mode` only triggers in `act`, after a successful `init`.
use nas_plugin_sdk::*;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Hyperparameters {
    mode: String,
    /// Target of the file / socket / environment attempts.
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

    fn act(&mut self, _env: u32, _obs: &Observation, mask: &[bool], _explore: bool) -> Result<usize, String> {
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
}

register_agent!(Hostile);
