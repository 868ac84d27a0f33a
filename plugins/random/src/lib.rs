//! The baseline every comparison includes: a uniformly random valid action at every step.
use nas_plugin_sdk::*;

struct Random {
    rng: PluginRng,
}

impl Agent for Random {
    const NAME: &'static str = "random";
    const DESCRIPTION: &'static str = "Baseline: uniform over the valid actions";

    fn init(_space: Space, config: &str, seed: u64) -> Result<Self, String> {
        parse_config::<NoConfig>(config)?;
        Ok(Random {
            rng: PluginRng::new(seed),
        })
    }

    fn act(&mut self, _env: u32, _obs: &Observation, mask: &[bool], _explore: bool) -> Result<usize, String> {
        self.rng
            .uniform_valid(mask)
            .ok_or_else(|| "no valid action in the mask".into())
    }

    fn observe(&mut self, _env: u32, _reward: f64, _done: bool) -> Result<(), String> {
        Ok(())
    }

    fn save(&self) -> Result<Vec<u8>, String> {
        to_bytes(&self.rng)
    }

    fn load(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.rng = from_bytes(bytes)?;
        Ok(())
    }
}

register_agent!(Random);
