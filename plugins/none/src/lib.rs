//! The assessor that never stops a child. `--assessor none` (the default) loads no plugin at all and
//! trains as before; loading this file by path (`--assessor plugins/none.wasm`) measures and stores
//! every child's learning curve without stopping any, for plots or for designing an assessor.
use nas_plugin_sdk::*;

struct NeverStop;

impl Assessor for NeverStop {
    const NAME: &'static str = "none";
    const DESCRIPTION: &'static str = "Never stops a child (with it loaded, learning curves are recorded)";

    type Config = NoConfig;

    fn init(_config: NoConfig) -> Result<Self, String> {
        Ok(NeverStop)
    }

    fn assess(&mut self, _curve: &LearningCurve) -> Result<Verdict, String> {
        Ok(Verdict::Continue)
    }
}

register_assessor!(NeverStop);
