//! A test-only assessor that misbehaves as its configuration's `mode` asks, so the host's sandbox can
//! be tested against each kind of hostile assessor. `mode = "none"` behaves (never stops). The mode
//! triggers in `assess` after `after` calls that behaved.
use nas_plugin_sdk::*;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Hyperparameters {
    /// `panic`, `infinite-loop`, `memory-bomb`, `error`, `stop-always` or `none`.
    mode: String,
    /// Behave for this many `assess` calls before misbehaving.
    after: usize,
}

struct HostileAssessor {
    hp: Hyperparameters,
    calls: usize,
    hoard: Vec<Vec<u8>>,
}

impl Assessor for HostileAssessor {
    const NAME: &'static str = "hostile_assessor";
    const DESCRIPTION: &'static str = "Test assessor that misbehaves on purpose";

    type Config = Hyperparameters;

    fn init(hp: Hyperparameters) -> Result<Self, String> {
        Ok(HostileAssessor {
            hp,
            calls: 0,
            hoard: Vec::new(),
        })
    }

    fn assess(&mut self, _curve: &LearningCurve) -> Result<Verdict, String> {
        self.calls += 1;
        if self.calls <= self.hp.after {
            return Ok(Verdict::Continue);
        }
        match self.hp.mode.as_str() {
            "panic" => panic!("hostile assessor panics on purpose"),
            "infinite-loop" => {
                let mut x = 0u64;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "memory-bomb" => loop {
                self.hoard.push(vec![1u8; 16 << 20]);
            },
            "error" => Err("hostile assessor refuses to judge".into()),
            "stop-always" => Ok(Verdict::Stop),
            _ => Ok(Verdict::Continue),
        }
    }
}

register_assessor!(HostileAssessor);
