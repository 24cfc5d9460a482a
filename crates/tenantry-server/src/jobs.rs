//! Long operations: the rollouts this server runs. A rollout's record and progress live in
//! the catalog, so any process can report on it; here are only the tasks running it and their
//! stop flags, so a shutdown leaves each rollout resumable.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tenantry::Tenantry;
use tenantry::migrate::MigrationSet;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// A runner's stop flag and its task.
type Job = (Arc<AtomicBool>, JoinHandle<()>);

#[derive(Default)]
pub struct Jobs {
    running: Mutex<HashMap<String, Job>>,
}

impl Jobs {
    /// Runs rollout `id` on a task of its own as `actor`, unless this server runs it already.
    pub async fn run_rollout(
        &self,
        tenantry: Tenantry,
        id: String,
        set: MigrationSet,
        actor: String,
    ) {
        let mut running = self.running.lock().await;
        running.retain(|_, (_, task)| !task.is_finished());
        if running.contains_key(&id) {
            return;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let rollout = id.clone();
        // A blocking thread of its own drives the runner, which holds borrows across its
        // awaits that a spawned task could not carry between threads.
        let runtime = tokio::runtime::Handle::current();
        let task = tokio::task::spawn_blocking(move || {
            runtime.block_on(tenantry::audit::act_as(&actor, async {
                match tenantry.run_rollout(&rollout, &set, &flag, &|_| {}).await {
                    Ok(run) => {
                        tracing::info!(rollout, stopped = ?run.stopped, "rollout runner finished")
                    }
                    Err(e) => tracing::warn!(rollout, error = %e, "rollout runner failed"),
                }
            }))
        });
        running.insert(id, (stop, task));
    }

    /// Asks every runner to stop after the tenants in flight, and waits for them.
    pub async fn stop_all(&self) {
        let tasks: Vec<_> = {
            let mut running = self.running.lock().await;
            running.drain().map(|(_, job)| job).collect()
        };
        for (stop, _) in &tasks {
            stop.store(true, Ordering::SeqCst);
        }
        for (_, task) in tasks {
            let _ = task.await;
        }
    }
}
