//! Scheduled jobs (tokio-cron-scheduler); their timing is configuration
//! (`[schedules]` in node.toml), not code: the federation push and
//! reconciliation, the metrics refresh, and the audit chain's chainer and
//! sealer.

use crate::audit_chain::{Chainer, Sealer};
use crate::federation::push::Pusher;
use crate::settings::Settings;
use crate::state::AppState;
use anyhow::Context;
use std::sync::Arc;
use tokio_cron_scheduler::{Job, JobScheduler};

/// Starts every scheduled job of the node.
pub async fn start(settings: &Settings, state: AppState, pusher: Option<Arc<Pusher>>) -> anyhow::Result<JobScheduler> {
    let scheduler = JobScheduler::new().await.context("job scheduler")?;
    if let (Some(pusher), Some(federation)) = (pusher, &settings.federation) {
        let schedule = federation.reconcile_schedule.as_str();
        let reconciler = pusher.clone();
        let job = Job::new_async(schedule, move |_, _| {
            let pusher = reconciler.clone();
            Box::pin(async move {
                if let Err(error) = tokio::task::spawn_blocking(move || pusher.reconcile()).await {
                    tracing::warn!(%error, "federation reconciliation panicked");
                }
            })
        })
        .with_context(|| format!("federation.reconcile_schedule {schedule:?}"))?;
        scheduler.add(job).await.context("schedule federation reconciliation")?;
        // Between scheduled rounds, a round as soon as a batch has been
        // applied here, to pass its changes on; `round` skips when one runs.
        if let Some(context) = state.federation.clone() {
            let relayer = pusher.clone();
            tokio::spawn(async move {
                loop {
                    context.relay.notified().await;
                    let pusher = relayer.clone();
                    if let Err(error) = tokio::task::spawn_blocking(move || pusher.round()).await {
                        tracing::warn!(%error, "federation relay round panicked");
                    }
                }
            });
        }
        let schedule = federation.push_schedule.as_str();
        let job = Job::new_async(schedule, move |_, _| {
            let pusher = pusher.clone();
            Box::pin(async move {
                if let Err(error) = tokio::task::spawn_blocking(move || pusher.round()).await {
                    tracing::warn!(%error, "federation push round panicked");
                }
            })
        })
        .with_context(|| format!("federation.push_schedule {schedule:?}"))?;
        scheduler.add(job).await.context("schedule federation push")?;
    }
    refresh_counts(state.clone()).await;
    let refreshed = state.clone();
    let job = Job::new_async(settings.schedules.metrics_refresh.as_str(), move |_, _| {
        let state = refreshed.clone();
        Box::pin(async move { refresh_counts(state).await })
    })
    .with_context(|| format!("schedules.metrics_refresh {:?}", settings.schedules.metrics_refresh))?;
    scheduler.add(job).await.context("schedule metrics refresh")?;

    let chainer = Arc::new(Chainer::new(state.store.clone()));
    let schedule = settings.schedules.audit_chain.as_str();
    let job = Job::new_async(schedule, move |_, _| {
        let chainer = chainer.clone();
        Box::pin(async move {
            if let Err(error) = tokio::task::spawn_blocking(move || chainer.run()).await {
                tracing::warn!(%error, "audit chain job panicked");
            }
        })
    })
    .with_context(|| format!("schedules.audit_chain {schedule:?}"))?;
    scheduler.add(job).await.context("schedule audit chaining")?;
    let key = crate::app::load_key(settings).map_err(|e| anyhow::anyhow!("audit sealer: {e}"))?;
    let sealer = Arc::new(Sealer::new(state.store.clone(), key));
    let schedule = settings.schedules.audit_seal.as_str();
    let job = Job::new_async(schedule, move |_, _| {
        let sealer = sealer.clone();
        Box::pin(async move {
            if let Err(error) = tokio::task::spawn_blocking(move || sealer.run()).await {
                tracing::warn!(%error, "audit seal job panicked");
            }
        })
    })
    .with_context(|| format!("schedules.audit_seal {schedule:?}"))?;
    scheduler.add(job).await.context("schedule audit sealing")?;

    scheduler.start().await.context("start job scheduler")?;
    Ok(scheduler)
}

/// Stops the scheduler; jobs in progress are abandoned (each works in
/// transactions that commit whole or not at all).
pub async fn stop(mut scheduler: JobScheduler) {
    if let Err(error) = scheduler.shutdown().await {
        tracing::warn!(%error, "job scheduler did not stop cleanly");
    }
}

async fn refresh_counts(state: AppState) {
    if let Some(context) = state.federation.clone() {
        let store = state.store.clone();
        match tokio::task::spawn_blocking(move || store.read(|tx| crate::federation::status(tx, &context))).await {
            Ok(Ok(status)) => state.metrics.set_federation(&status),
            Ok(Err(error)) => tracing::warn!(%error, "federation gauges not refreshed"),
            Err(error) => tracing::warn!(%error, "federation gauge job panicked"),
        }
    }
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || store.read(|tx| tx.estimated_counts())).await {
        Ok(Ok(counts)) => state.metrics.set_counts(&counts),
        Ok(Err(error)) => tracing::warn!(%error, "record counts not refreshed"),
        Err(error) => tracing::warn!(%error, "record count job panicked"),
    }
}
