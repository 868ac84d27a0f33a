//! Stops a child whose accuracy after epoch `epoch` is below `min_accuracy`: a floor that needs no
//! population, e.g. "a CIFAR-5 child still at chance (0.2) after its first epoch will not recover".
use nas_plugin_sdk::*;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Hyperparameters {
    /// The epoch (1-based) after which the floor applies.
    epoch: usize,
    /// Children below this accuracy at `epoch` are stopped.
    min_accuracy: f64,
}

impl Default for Hyperparameters {
    fn default() -> Self {
        Hyperparameters {
            epoch: 1,
            min_accuracy: 0.5,
        }
    }
}

struct ThresholdStop {
    hp: Hyperparameters,
}

impl Assessor for ThresholdStop {
    const NAME: &'static str = "threshold_stop";
    const DESCRIPTION: &'static str = "Stops a child whose accuracy after `epoch` is below `min_accuracy`";
    type Config = Hyperparameters;

    fn init(hp: Hyperparameters) -> Result<Self, String> {
        if !(0.0..=1.0).contains(&hp.min_accuracy) {
            return Err(format!("min_accuracy must lie in [0, 1], not {}", hp.min_accuracy));
        }
        Ok(ThresholdStop { hp })
    }

    fn assess(&mut self, curve: &LearningCurve) -> Result<Verdict, String> {
        Ok(match curve.at_epoch(self.hp.epoch) {
            Some(accuracy) if curve.epochs_trained() == self.hp.epoch && accuracy < self.hp.min_accuracy => {
                Verdict::Stop
            }
            _ => Verdict::Continue,
        })
    }
}

register_assessor!(ThresholdStop);

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(accuracy: &[f64]) -> LearningCurve {
        LearningCurve {
            accuracy: accuracy.to_vec(),
            epochs: 5,
            architecture: "conv(32,3)".into(),
            layers: vec![Layer::Conv { filters: 32, kernel: 3 }],
            params: 896,
        }
    }

    #[test]
    fn stops_below_the_floor_at_its_epoch_only() {
        let mut a = ThresholdStop::init(Hyperparameters {
            epoch: 2,
            min_accuracy: 0.5,
        })
        .unwrap();
        assert_eq!(a.assess(&curve(&[0.1])).unwrap(), Verdict::Continue, "before epoch 2");
        assert_eq!(a.assess(&curve(&[0.1, 0.4])).unwrap(), Verdict::Stop);
        assert_eq!(a.assess(&curve(&[0.1, 0.6])).unwrap(), Verdict::Continue);
        assert_eq!(
            a.assess(&curve(&[0.1, 0.4, 0.45])).unwrap(),
            Verdict::Continue,
            "judged once, at epoch 2"
        );
        assert!(ThresholdStop::init(Hyperparameters {
            epoch: 1,
            min_accuracy: 2.0
        })
        .is_err());
    }
}
