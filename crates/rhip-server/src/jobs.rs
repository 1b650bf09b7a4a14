//! Scheduled jobs (tokio-cron-scheduler); their timing is configuration
//! (`[schedules]` in node.toml), not code.

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
    let job = Job::new_async(settings.schedules.metrics_refresh.as_str(), move |_, _| {
        let state = state.clone();
        Box::pin(async move { refresh_counts(state).await })
    })
    .with_context(|| format!("schedules.metrics_refresh {:?}", settings.schedules.metrics_refresh))?;
    scheduler.add(job).await.context("schedule metrics refresh")?;
    scheduler.start().await.context("start job scheduler")?;
    Ok(scheduler)
}

/// Stops the scheduler; jobs in progress are abandoned (they only read).
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
