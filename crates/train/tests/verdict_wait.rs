//! Time spent waiting for an assessor's verdict is not training time (issue #22, item 5): a
//! worker's judge waits on the store, and that wait must not reach the cached seconds.

use std::time::{Duration, Instant};

use nas_config::TrainConfig;
use nas_core::arch::Architecture;
use nas_train::train::{train_network, TensorData};

#[test]
fn a_slow_verdict_is_not_counted_as_training() {
    let dataset = nas_datasets::generate_synthetic(&nas_datasets::SyntheticOptions {
        train: 300,
        test: 60,
        ..Default::default()
    });
    let config = TrainConfig {
        epochs: 3,
        ..TrainConfig::default()
    };
    let data = TensorData::new(&dataset, &config, tch::Device::Cpu).unwrap();
    let arch: Architecture = "conv(10,3) fc(32)".parse().unwrap();
    let mut asked = 0;
    let mut slow_judge = |_: &[f64]| {
        asked += 1;
        std::thread::sleep(Duration::from_millis(1500));
        false
    };
    let started = Instant::now();
    let trained = train_network(&arch, &data, &config, Some(&mut slow_judge), None)
        .ok()
        .unwrap();
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(asked, 2, "the judge is asked after every epoch but the last");
    assert!(wall >= 3.0, "the judge slept 2 × 1.5 s");
    assert!(
        trained.outcome.seconds <= wall - 2.9,
        "{} s recorded of {wall} s wall, 3 s of which waited for verdicts",
        trained.outcome.seconds
    );
}
