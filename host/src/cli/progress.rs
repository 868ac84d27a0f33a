//! How the CLI shows a search as it runs: a progress bar, or one JSON line per episode.

use nas_core::record::{EpisodeRecord, EvalSampleRow};
use nas_search::frozen_policy::SampleSink;
use nas_search::sink::EpisodeSink;

use indicatif::{ProgressBar, ProgressStyle};

/// Shows a search's (and an evaluation's) progress as a bar on stderr: episodes, best and last
/// reward, and with workers how many are busy, the queue and children trained per hour; hidden
/// when stderr is not a terminal (indicatif's own rule). A comparison's searches share one bar.
#[derive(Default)]
pub(super) struct ProgressSink {
    pub bar: Option<ProgressBar>,
    pub best: f64,
    pub last: String,
    pub pool: Option<nas_search::pool::PoolStatus>,
    /// Children trained (not served from the cache) since the bar started, of them stopped early
    /// by the assessor, and when it started.
    pub trained: usize,
    pub stopped: usize,
    pub since: Option<std::time::Instant>,
    /// Runs whose episodes the bar counts (several when a comparison runs them at once).
    pub runs: Vec<i64>,
}

impl ProgressSink {
    fn start_bar(&mut self, done: usize, total: usize) {
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} eta {eta} | {msg}")
                .expect("valid template"),
        );
        bar.set_position(done as u64);
        self.bar = Some(bar);
    }

    fn finish_bar(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.runs.clear();
    }

    fn refresh(&self) {
        let Some(bar) = &self.bar else { return };
        let mut message = format!("best {:.4} | last {}", self.best, self.last);
        if self.stopped > 0 {
            message = format!("{} of {} stopped early | {message}", self.stopped, self.trained);
        }
        if let Some(pool) = self.pool {
            let hours = self.since.map_or(0.0, |s| s.elapsed().as_secs_f64() / 3600.0);
            let rate = if hours > 0.0 { self.trained as f64 / hours } else { 0.0 };
            message = format!(
                "workers {} busy {} idle | {} queued | {rate:.0} children/h | {message}",
                pool.busy, pool.idle, pool.queued
            );
        }
        bar.set_message(message);
    }
}

impl EpisodeSink for ProgressSink {
    fn started(&mut self, run: i64, committed: &[EpisodeRecord], total: usize) {
        let best = committed.iter().map(|e| e.reward).fold(f64::NEG_INFINITY, f64::max);
        match &self.bar {
            // Another search of a comparison running at the same time: one bar for all.
            Some(bar) if !self.runs.is_empty() => {
                bar.inc_length(total as u64);
                bar.inc(committed.len() as u64);
                self.best = self.best.max(best);
            }
            _ => {
                self.best = best;
                self.start_bar(committed.len(), total);
                self.since = Some(std::time::Instant::now());
                self.trained = 0;
                self.stopped = 0;
            }
        }
        self.runs.push(run);
    }

    fn episode(&mut self, _run: i64, episode: &EpisodeRecord) {
        self.best = self.best.max(episode.reward);
        self.trained += usize::from(!episode.cache_hit);
        self.stopped += usize::from(!episode.cache_hit && episode.stopped);
        self.last = format!("{:.4} {}", episode.reward, episode.architecture);
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        self.refresh();
    }

    fn pool(&mut self, status: &nas_search::pool::PoolStatus) {
        self.pool = Some(*status);
        self.refresh();
    }

    fn finished(&mut self) {
        let position = self.bar.as_ref().map_or(0, |b| b.position());
        let length = self.bar.as_ref().and_then(|b| b.length()).unwrap_or(0);
        if position >= length {
            self.finish_bar();
        }
    }
}

impl SampleSink for ProgressSink {
    fn started(&mut self, total: usize) {
        if self.bar.is_none() {
            self.start_bar(0, total);
        }
    }

    fn sample(&mut self, _index: usize, sample: &EvalSampleRow) {
        // While a comparison's searches share the bar, it counts their episodes only.
        if let Some(bar) = self.bar.as_ref().filter(|_| self.runs.is_empty()) {
            bar.set_message(format!("{:.4} {}", sample.accuracy, sample.architecture));
            bar.inc(1);
        }
    }

    fn finished(&mut self) {
        if self.runs.is_empty() {
            self.finish_bar();
        }
    }
}

/// One JSON object per committed episode on stdout, for scripts.
pub(super) struct JsonLinesSink;

impl EpisodeSink for JsonLinesSink {
    fn episode(&mut self, run: i64, e: &EpisodeRecord) {
        let line = serde_json::json!({
            "run": run,
            "episode": e.index,
            "architecture": e.architecture,
            "reward": e.reward,
            "accuracy": e.accuracy,
            "params": e.params,
            "depth": e.depth,
            "cache_hit": e.cache_hit,
            "stopped": e.stopped,
            "failure": e.failure,
            "metrics": e.metrics,
        });
        println!("{line}");
    }
}
