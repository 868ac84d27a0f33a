//! The two schedules of the search loop: `sync` (design a batch, train it, report in environment
//! order) and `async` (design whenever an environment is free, report as children finish).

use anyhow::Context;

use crate::session::{Lookup, Session};
use crate::sink::EpisodeSink;
use nas_core::arch::Architecture;
use nas_core::record::EpisodeRecord;
use nas_core::record::Outcome;
use nas_store::{InFlightDesign, Store};

/// One design of an episode on its way to a reward.
pub(crate) struct Slot {
    pub(crate) episode: usize,
    pub(crate) env: u32,
    pub(crate) arch: Architecture,
    /// The agent's values while it designed this episode (its ε, say), before the episode's
    /// reward updates them.
    pub(crate) metrics: serde_json::Map<String, serde_json::Value>,
    /// (evaluation id, outcome, cache hit, kept weights) once evaluated.
    pub(crate) result: Option<(i64, Outcome, bool, Option<Vec<u8>>)>,
}

impl Session {
    /// Lets the agent design episode `episode` in environment `env`, learning as it goes.
    fn design_slot(&mut self, episode: usize, env: u32) -> anyhow::Result<Slot> {
        self.reseed(episode);
        let arch = self.design(env, true, true)?;
        let metrics = self.agent_metrics()?;
        Ok(Slot {
            episode,
            env,
            arch,
            metrics,
            result: None,
        })
    }

    fn agent_metrics(&mut self) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
        Ok(self
            .agent()?
            .metrics()?
            .into_iter()
            .map(|(k, v)| (k, serde_json::json!(v)))
            .collect())
    }

    /// Fills in the slot's result when it is known, else submits its child.
    pub(crate) fn evaluate_slot(
        &mut self,
        store: &Store,
        run: i64,
        slot: &mut Slot,
        no_cache: bool,
    ) -> anyhow::Result<()> {
        let keep = self.config.search.keep_weights > 0;
        let seed = self.config.train.seed;
        match self.lookup(store, &slot.arch, !no_cache, Some((run, slot.episode)), seed, keep)? {
            Lookup::Known {
                evaluation_id,
                outcome,
                cache_hit,
            } => slot.result = Some((evaluation_id, outcome, cache_hit, None)),
            Lookup::Train(child) => self.trainer.submit(store, slot.episode, child)?,
        }
        Ok(())
    }

    /// Waits for one submitted child and files its result in its slot; returns the slot's index.
    pub(crate) fn wait_into(
        &mut self,
        store: &Store,
        slots: &mut [Slot],
        sink: &mut dyn EpisodeSink,
    ) -> anyhow::Result<usize> {
        let (ticket, finished) = self
            .trainer
            .wait(store, &mut |status| sink.pool(status), self.watch.as_mut())?;
        let index = slots
            .iter()
            .position(|s| s.episode == ticket && s.result.is_none())
            .context("a child finished that no episode waits for")?;
        if let Some(reason) = &finished.outcome.failure {
            tracing::warn!("child `{}` failed: {reason}", slots[index].arch);
        }
        slots[index].result = Some((
            finished.evaluation_id,
            finished.outcome,
            finished.joined,
            finished.weights,
        ));
        Ok(index)
    }

    /// Shapes the slot's reward and tells the agent; returns the episode record.
    pub(crate) fn report(&mut self, slot: &Slot, reported: usize) -> anyhow::Result<(EpisodeRecord, i64)> {
        let (evaluation_id, outcome, cache_hit, _) = slot.result.as_ref().expect("evaluated");
        self.reseed_reward(slot.episode);
        let reward = self.shape(&slot.arch, outcome)?;
        // An external run's agent learns outside the host, from the reward its step returns.
        if let Some(agent) = self.agent.as_mut() {
            agent.observe(slot.env, reward, true)?;
        }
        if let Some(watch) = self.watch.as_mut() {
            watch.completed(*evaluation_id, &slot.arch, outcome)?;
        }
        tracing::debug!(
            episode = slot.episode,
            env = slot.env,
            reward,
            accuracy = outcome.accuracy,
            cache_hit,
            "{}",
            slot.arch
        );
        Ok((
            EpisodeRecord {
                index: slot.episode,
                env: slot.env,
                architecture: slot.arch.to_string(),
                reward,
                accuracy: outcome.accuracy,
                params: outcome.params,
                depth: slot.arch.depth(),
                cache_hit: *cache_hit,
                failure: outcome.failure.clone(),
                metrics: slot.metrics.clone(),
                reported,
                stopped: outcome.curve.stopped,
            },
            *evaluation_id,
        ))
    }
}

/// The `sync` schedule: the agent designs one episode in each environment, the children are
/// trained (in parallel, with workers), and the rewards are reported in environment order; the
/// batch is then committed with one checkpoint. With one environment this is the plain loop:
/// design, train, reward, commit.
pub(crate) fn run_sync(
    store: &mut Store,
    session: &mut Session,
    run: i64,
    first: usize,
    no_cache: bool,
    sink: &mut dyn EpisodeSink,
) -> anyhow::Result<()> {
    let total = session.config.episodes;
    let envs = session.config.parallel.envs.max(1);
    let mut next = first;
    while next < total {
        let end = (next + envs).min(total);
        let mut slots = Vec::with_capacity(end - next);
        for (env, episode) in (next..end).enumerate() {
            let mut slot = session.design_slot(episode, env as u32)?;
            session.evaluate_slot(store, run, &mut slot, no_cache)?;
            slots.push(slot);
        }
        while slots.iter().any(|s| s.result.is_none()) {
            session.wait_into(store, &mut slots, sink)?;
        }
        let mut records = Vec::with_capacity(slots.len());
        for slot in &slots {
            records.push(session.report(slot, slot.episode)?);
        }
        let state = session.agent()?.save()?;
        store.commit_episodes(run, &records, &state, end)?;
        for (slot, (episode, evaluation_id)) in slots.iter_mut().zip(&records) {
            if let Some(weights) = slot.result.as_mut().and_then(|r| r.3.take()) {
                keep_best_weights(
                    store,
                    run,
                    session.config.search.keep_weights,
                    episode,
                    *evaluation_id,
                    &weights,
                )?;
            }
            sink.episode(run, episode);
        }
        next = end;
    }
    Ok(())
}

/// The `async` schedule: whenever an environment is free the agent designs its next episode
/// there (the design and the agent's state are committed at once), and a finished child's reward
/// is reported as soon as it arrives. A resumed run waits for the designs it left in flight.
pub(crate) fn run_async(
    store: &mut Store,
    session: &mut Session,
    run: i64,
    first: usize,
    no_cache: bool,
    sink: &mut dyn EpisodeSink,
) -> anyhow::Result<()> {
    let total = session.config.episodes;
    let envs = session.config.parallel.envs.max(1) as u32;
    let mut designed = first;
    let mut reported = store.episodes(run)?.len();
    let mut slots: Vec<Slot> = Vec::new();
    for design in store.in_flight(run)? {
        let mut slot = Slot {
            episode: design.episode,
            env: design.env,
            arch: design.architecture.parse().map_err(anyhow::Error::msg)?,
            metrics: design.metrics,
            result: None,
        };
        session.evaluate_slot(store, run, &mut slot, no_cache)?;
        slots.push(slot);
    }
    loop {
        while designed < total && slots.len() < envs as usize {
            let env = (0..envs)
                .find(|e| slots.iter().all(|s| s.env != *e))
                .expect("a free environment");
            let mut slot = session.design_slot(designed, env)?;
            let state = session.agent()?.save()?;
            store.commit_design(
                run,
                &InFlightDesign {
                    episode: designed,
                    env,
                    architecture: slot.arch.to_string(),
                    metrics: slot.metrics.clone(),
                },
                &state,
                designed + 1,
            )?;
            session.evaluate_slot(store, run, &mut slot, no_cache)?;
            slots.push(slot);
            designed += 1;
        }
        if slots.is_empty() {
            return Ok(());
        }
        let index = match slots.iter().position(|s| s.result.is_some()) {
            Some(index) => index,
            None => session.wait_into(store, &mut slots, sink)?,
        };
        let mut slot = slots.remove(index);
        let (episode, evaluation_id) = session.report(&slot, reported)?;
        let state = session.agent()?.save()?;
        store.commit_episodes(run, &[(episode.clone(), evaluation_id)], &state, designed)?;
        reported += 1;
        if let Some(weights) = slot.result.as_mut().and_then(|r| r.3.take()) {
            keep_best_weights(
                store,
                run,
                session.config.search.keep_weights,
                &episode,
                evaluation_id,
                &weights,
            )?;
        }
        sink.episode(run, &episode);
    }
}

/// Keeps `weights` (of `episode`'s evaluation `evaluation_id`, just committed) if its
/// architecture is among the run's `k` best distinct ones, and forgets the
/// weights of any that left them. A child kept here is exported without training again
/// (`nas-host export`); one the assessor stopped early is not the protocol's model, so its
/// weights are never kept and its export trains it fully.
pub(crate) fn keep_best_weights(
    store: &Store,
    run: i64,
    k: usize,
    episode: &EpisodeRecord,
    evaluation_id: i64,
    weights: &[u8],
) -> anyhow::Result<()> {
    if episode.stopped {
        return Ok(());
    }
    let episodes = store.episodes(run)?;
    let evaluations = store.episode_evaluations(run)?;
    let best: Vec<i64> = nas_core::record::top_distinct(&episodes, k)
        .into_iter()
        .map(|e| evaluations[&e.index])
        .collect();
    if best.contains(&evaluation_id) {
        store.keep_weights(run, evaluation_id, weights)?;
    }
    store.prune_weights(run, &best)
}
