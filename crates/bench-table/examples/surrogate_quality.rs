//! Measures the surrogate on a benchmark table of CIFAR-5 or CIFAR-10 (BENCHMARKS.md "Benchmark
//! table"): its five-fold cross-validated Kendall τ and MAE at the table's full size and at
//! smaller prefixes (how the figure grows with rows), and the seconds one fit takes.
//!
//! `cargo run --release -p nas-bench-table --example surrogate_quality -- TABLE.csv [CLASSES] [SEEDS]`
use std::time::Instant;

use nas_bench_table::{BenchTable, Encoder, Surrogate, QUALITY_FOLDS};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: surrogate_quality TABLE.csv [CLASSES] [SEEDS]")?;
    let classes: usize = args.next().map_or(Ok(5), |a| a.parse())?;
    let seeds: u64 = args.next().map_or(Ok(3), |a| a.parse())?;
    let table = BenchTable::load(&path)?;
    // The default search space's depth on 32×32 RGB, as `search --dataset cifar5` encodes.
    let encoder = Encoder::new(8, (3, 32, 32), classes);
    let samples = table.samples();
    let started = Instant::now();
    Surrogate::fit(&samples, encoder, 0)?;
    println!(
        "{} rows; one fit of the forest: {:.2} s",
        samples.len(),
        started.elapsed().as_secs_f64()
    );
    let mut sizes: Vec<usize> = [100, 250, 500, 1000]
        .into_iter()
        .filter(|&n| n < samples.len())
        .collect();
    sizes.push(samples.len());
    for n in sizes {
        for seed in 0..seeds {
            let quality = Surrogate::cross_validated_quality(&samples[..n], encoder, QUALITY_FOLDS, seed)?;
            println!("first {n} rows, seed {seed}: {quality}");
        }
    }
    Ok(())
}
