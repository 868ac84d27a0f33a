//! Where a search hands its progress: the loop only hands results over; printing them (a progress
//! bar, JSON lines) is the CLI's business, and tests record them.

use nas_core::record::EpisodeRecord;

use crate::pool::PoolStatus;

/// Receives a search's progress as it happens: the episodes already committed when it starts,
/// then each episode as it is committed, and the workers' state while children train. The loop
/// only hands results over; printing them (a progress bar, JSON lines) is the CLI's sinks'
/// business, and tests record them.
pub trait EpisodeSink {
    fn started(&mut self, _run: i64, _committed: &[EpisodeRecord], _total: usize) {}
    fn episode(&mut self, run: i64, episode: &EpisodeRecord);
    /// About once a second while the search waits for workers.
    fn pool(&mut self, _status: &PoolStatus) {}
    fn finished(&mut self) {}
}

/// A sink that shows nothing.
pub struct Silent;

impl EpisodeSink for Silent {
    fn episode(&mut self, _run: i64, _episode: &EpisodeRecord) {}
}
