//! The baseline every comparison includes: a uniformly random valid action at every step. The
//! SDK's showcase — stateless, it draws from the host's per-episode randomness, so resumed runs
//! replay exactly without `save`/`load`.
use nas_plugin_sdk::*;

struct Random;

impl Agent for Random {
    const NAME: &'static str = "random";
    const DESCRIPTION: &'static str = "Baseline: uniform over the valid actions";
    type Config = NoConfig;

    fn init(_space: Space, _config: NoConfig, _seed: u64) -> Result<Self, String> {
        Ok(Random)
    }

    fn act(&mut self, _env: u32, _obs: &Observation, mask: &[bool], _explore: bool) -> Result<usize, String> {
        PluginRng::from_host()
            .uniform_valid(mask)
            .ok_or_else(|| "no valid action".into())
    }
}

register_agent!(Random);
