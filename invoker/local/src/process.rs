//! One running function process: the invocation it holds (queued, then
//! in flight), how it ended, and how it is stopped. Shared by the
//! function's pool and the process's Runtime API server.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use lambdagate_sidecar::stream::BodyItem;
use tokio::sync::{Notify, mpsc, oneshot};

/// What a process made of one invocation.
pub(crate) enum Outcome {
    Response(Vec<u8>),
    /// The runtime streams its response (`Lambda-Runtime-Function-Response-Mode:
    /// streaming`): its content type and the body as it arrives.
    Stream {
        content_type: String,
        body: mpsc::Receiver<BodyItem>,
    },
    /// The handler failed: the runtime's error JSON.
    Error(Vec<u8>),
    /// The runtime could not start the handler.
    InitError(Vec<u8>),
    /// The process ended before answering.
    Exited(String),
}

pub(crate) struct Invocation {
    pub(crate) request_id: String,
    /// The gateway's X-Ray trace header; empty: the runtime makes one.
    pub(crate) trace_id: String,
    pub(crate) payload: axum::body::Bytes,
    pub(crate) deadline_ms: u64,
    pub(crate) reply: oneshot::Sender<Outcome>,
}

#[derive(Default)]
pub(crate) struct Slot {
    /// Assigned, not yet fetched with /next.
    pub(crate) queued: Option<Invocation>,
    /// Fetched; waiting for /response or /error.
    pub(crate) in_flight: Option<(String, oneshot::Sender<Outcome>)>,
    pub(crate) init_error: Option<Vec<u8>>,
    pub(crate) dead: bool,
    /// The request last handed out by /next: output the program writes is
    /// read a little after it was written, possibly after the response, so
    /// it is attributed to this one rather than to `in_flight`.
    pub(crate) last_request: String,
}

/// One running function process and its Runtime API listener.
pub(crate) struct Process {
    pub(crate) id: u64,
    pub(crate) slot: Mutex<Slot>,
    /// Wakes the process's pending /next. Shared so that a waiting /next
    /// does not keep the process alive.
    pub(crate) work: Arc<Notify>,
    /// Dropping it (with the process) kills the program.
    pub(crate) kill: Mutex<Option<oneshot::Sender<()>>>,
    pub(crate) server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

pub(crate) static NEXT_PROCESS: AtomicU64 = AtomicU64::new(1);

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(mut server) = self.server.lock()
            && let Some(task) = server.take()
        {
            task.abort();
        }
    }
}

impl Process {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        match self.slot.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.lock().dead
    }

    pub(crate) fn assign(&self, invocation: Invocation) -> Result<(), Invocation> {
        let mut slot = self.lock();
        if slot.dead {
            return Err(invocation);
        }
        slot.queued = Some(invocation);
        drop(slot);
        self.work.notify_one();
        Ok(())
    }

    pub(crate) fn stop(&self) {
        if let Ok(mut kill) = self.kill.lock()
            && let Some(tx) = kill.take()
        {
            let _ = tx.send(());
        }
    }

    pub(crate) fn current_request(&self) -> String {
        self.lock().last_request.clone()
    }

    /// The program ended: fail whatever it held.
    pub(crate) fn exited(&self, status: String) {
        let mut slot = self.lock();
        slot.dead = true;
        let outcome = |slot: &Slot| match &slot.init_error {
            Some(e) => Outcome::InitError(e.clone()),
            None => Outcome::Exited(status.clone()),
        };
        if let Some(inv) = slot.queued.take() {
            let _ = inv.reply.send(outcome(&slot));
        }
        if let Some((_, reply)) = slot.in_flight.take() {
            let _ = reply.send(outcome(&slot));
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
