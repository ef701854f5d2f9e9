//! CPU-bound work on large payloads, off the async runtime's thread.
//!
//! The invoker runs one runtime thread by default (one beat two beside
//! Envoy on a 2-core host). Writing a 1 MB body into its event and hashing
//! the event for SigV4 take about a millisecond of that thread per call,
//! during which no other call's bytes move. From [`OFFLOAD_BYTES`] up the
//! work runs on tokio's blocking threads instead, at most one job per CPU
//! at once: so the memory those jobs hold is bounded (each is under
//! Lambda's 6 MB limit), whatever the number of calls, and a call waiting
//! for a turn is still an ordinary future that a cancelled call drops.

use std::sync::{Arc, OnceLock};

use lambdagate_proto::ErrorKind;
use tokio::sync::Semaphore;

use crate::error::Failure;

/// Payloads from this size up are worked on off the runtime thread. The
/// hand-over wakes a thread each way: at 64 KiB it bought 1.2× the
/// saturated throughput but cost latency at moderate load (p99 1.28× at
/// 500 req/s); at 256 KiB and at 1 MB every figure improved
/// (bench/RESULTS.md, round 13).
pub const OFFLOAD_BYTES: usize = 256 * 1024;

/// One turn per CPU, for the whole process.
fn turns() -> &'static Arc<Semaphore> {
    static TURNS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    TURNS.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Arc::new(Semaphore::new(cpus))
    })
}

/// Runs `work` on a blocking thread when `bytes` (the size of what it
/// works on) is at least [`OFFLOAD_BYTES`], here otherwise.
pub async fn cpu_work<T, F>(bytes: usize, work: F) -> Result<T, Failure>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    cpu_work_in_turn(turns(), bytes, work).await
}

async fn cpu_work_in_turn<T, F>(turns: &Arc<Semaphore>, bytes: usize, work: F) -> Result<T, Failure>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if bytes < OFFLOAD_BYTES {
        return Ok(work());
    }
    let turn = turns
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| internal(&format!("no turn for the payload's work: {e}")))?;
    // The turn goes with the work, not with this future: a call dropped
    // while its work runs does not free a turn early.
    let result = tokio::task::spawn_blocking(move || {
        let _turn = turn;
        work()
    })
    .await;
    result.map_err(|e| internal(&format!("the payload's work failed: {e}")))
}

fn internal(message: &str) -> Failure {
    Failure::new(ErrorKind::Internal, message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn large_work_leaves_the_runtime_thread_and_small_work_stays() {
        let here = std::thread::current().id();
        let small = cpu_work(OFFLOAD_BYTES - 1, || std::thread::current().id()).await;
        let large = cpu_work(OFFLOAD_BYTES, || std::thread::current().id()).await;
        assert_eq!(small.ok(), Some(here));
        assert!(matches!(large, Ok(id) if id != here));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn turns_bound_the_jobs_and_come_back_when_a_job_ends() {
        let turns = Arc::new(Semaphore::new(1));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let first = tokio::spawn({
            let turns = turns.clone();
            async move {
                cpu_work_in_turn(&turns, OFFLOAD_BYTES, move || {
                    let _ = started_tx.send(());
                    let _ = release_rx.recv();
                })
                .await
            }
        });
        let started = tokio::task::spawn_blocking(move || started_rx.recv()).await;
        assert!(matches!(started, Ok(Ok(()))));
        // The one turn stays taken once the first call is dropped.
        first.abort();
        assert!(first.await.is_err_and(|e| e.is_cancelled()));
        assert_eq!(turns.available_permits(), 0);
        let _ = release_tx.send(());
        let second = cpu_work_in_turn(&turns, OFFLOAD_BYTES, || 7).await;
        assert_eq!(second.ok(), Some(7));
        assert_eq!(turns.available_permits(), 1);
    }
}
