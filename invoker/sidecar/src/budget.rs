//! The in-flight byte budget: how many bytes of request messages the
//! invoker holds at once, whatever the number of calls.
//!
//! tonic reads and buffers a whole request message before any handler
//! runs, so the budget is taken in front of tonic, by a tower layer
//! around the gRPC services: [`BudgetLayer`] wraps each request's body in
//! an [`AdmittedBody`], which reads the gRPC message prefix (1 compressed
//! flag, 4-byte big-endian length) from the first frames, takes that many
//! bytes from the budget, and only then lets tonic read on. While a call
//! waits its body is not polled, so HTTP/2 flow control holds the sender
//! back: what waits is bounded by the server's stream and connection
//! windows, not by the number of calls.
//!
//! A call keeps its bytes until its response is complete (the response
//! body ended or was dropped), since the decoded payload, the request to
//! Lambda and the reply live that long: the [`BudgetHold`] filled by the
//! request body is shared with the response body and with the handler
//! (through the request's extensions). Whoever drops it last gives the
//! bytes back, so a call abandoned at any point (the client resets the
//! stream: hyper and tonic drop the futures and bodies) returns them.
//!
//! Waiting has no timer of its own: the caller's deadline bounds it.
//! Envoy sends `grpc-timeout` and resets the stream when it passes; the
//! waiting body is then dropped with the rest of the call, and a wait
//! that is dropped gives back whatever tokio's semaphore had set aside
//! for it.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tonic::Status;

use crate::metrics::Metrics;

/// The budget's unit: permits count KiB (rounded up), so that the
/// largest budget and any message length fit tokio's `u32` permit counts.
pub const UNIT_BYTES: u64 = 1024;

/// `max_inflight_bytes` when the config does not set it: 256 MiB.
pub const DEFAULT_MAX_INFLIGHT_BYTES: u64 = 256 * 1024 * 1024;

/// Calls that never take budget: the gRPC health service (small messages;
/// it must answer while the budget is full of slow calls).
const EXEMPT_PATH_PREFIX: &str = "/grpc.health.v1.Health/";

/// gRPC's message prefix: compressed flag and big-endian length.
const PREFIX_BYTES: usize = 5;

/// Checks the config's `max_inflight_bytes` (`None`: the default).
/// The least is the largest gRPC message the invoker accepts, so that one
/// maximum-size call always fits; the most is what `u32` KiB permits count.
pub fn checked_max_inflight_bytes(value: Option<u64>, least: u64) -> Result<u64, String> {
    let most = u64::from(u32::MAX) * UNIT_BYTES;
    match value.unwrap_or(DEFAULT_MAX_INFLIGHT_BYTES) {
        bytes if bytes < least => Err(format!(
            "{bytes} is less than the largest request message the invoker accepts ({least} bytes: a 6 MB payload and its envelope); one maximum-size call must always fit (default {DEFAULT_MAX_INFLIGHT_BYTES}, 256 MiB)"
        )),
        bytes if bytes > most => Err(format!(
            "{bytes} is more than the budget can count ({most} bytes, 4 TiB)"
        )),
        bytes => Ok(bytes),
    }
}

/// The budget itself: a fair (first come, first served) semaphore of KiB.
pub struct Budget {
    semaphore: Arc<Semaphore>,
    units: u32,
    in_use_bytes: Gauge,
    waits: Counter,
}

impl Budget {
    /// A budget of `max_bytes` (rounded down to whole KiB), reported in
    /// `metrics` (`lambdagate_inflight_bytes`, `lambdagate_budget_waits_total`).
    pub fn new(max_bytes: u64, metrics: &Metrics) -> Arc<Budget> {
        let units = u32::try_from(max_bytes / UNIT_BYTES).unwrap_or(u32::MAX);
        let units = units.min(u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX));
        Arc::new(Budget {
            semaphore: Arc::new(Semaphore::new(units as usize)),
            units,
            in_use_bytes: metrics.inflight_bytes().clone(),
            waits: metrics.budget_waits().clone(),
        })
    }

    fn admission(&self, permit: OwnedSemaphorePermit) -> Admission {
        let bytes = i64::try_from(permit.num_permits() as u64 * UNIT_BYTES).unwrap_or(i64::MAX);
        self.in_use_bytes.inc_by(bytes);
        Admission {
            _permit: permit,
            bytes,
            in_use_bytes: self.in_use_bytes.clone(),
        }
    }
}

/// Budget bytes held by one call; given back (and taken off the gauge)
/// when dropped.
struct Admission {
    _permit: OwnedSemaphorePermit,
    bytes: i64,
    in_use_bytes: Gauge,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.in_use_bytes.dec_by(self.bytes);
    }
}

/// The budget a call holds, shared by its request body, its response body
/// and its handler: empty until the call is admitted (and for calls that
/// take none); the bytes go back when the last clone is dropped.
#[derive(Clone, Default)]
pub struct BudgetHold(Arc<OnceLock<Admission>>);

/// The tower layer that puts every gRPC call's request message under
/// the budget (see the module's documentation).
#[derive(Clone)]
pub struct BudgetLayer {
    budget: Arc<Budget>,
}

impl BudgetLayer {
    pub fn new(budget: Arc<Budget>) -> Self {
        BudgetLayer { budget }
    }
}

impl<S> tower::Layer<S> for BudgetLayer {
    type Service = BudgetService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BudgetService {
            inner,
            budget: self.budget.clone(),
        }
    }
}

#[derive(Clone)]
pub struct BudgetService<S> {
    inner: S,
    budget: Arc<Budget>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for BudgetService<S>
where
    S: tower::Service<Request<AdmittedBody<ReqBody>>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ReqBody: Body,
{
    type Response = Response<HeldBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let budget = if request.uri().path().starts_with(EXEMPT_PATH_PREFIX) {
            None
        } else {
            Some(self.budget.clone())
        };
        let hold = BudgetHold::default();
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(hold.clone());
        let body = AdmittedBody::new(body, budget, hold.clone());
        let response = self.inner.call(Request::from_parts(parts, body));
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| HeldBody {
                inner: body,
                hold: Some(hold),
            }))
        })
    }
}

enum Admitting {
    /// Reading frames until the message prefix is complete.
    ReadingPrefix {
        prefix: [u8; PREFIX_BYTES],
        have: usize,
    },
    /// Waiting for budget for a message of `length` bytes; the inner
    /// body is not polled meanwhile.
    Waiting {
        acquire: BoxFuture<Result<OwnedSemaphorePermit, AcquireError>>,
        length: u32,
    },
    /// Admitted (or exempt): frames pass; `left` is what the one message
    /// may still carry when budget was taken for it.
    Passing { left: Option<u64> },
    /// Refused: the error was returned, nothing more comes.
    Refused,
}

/// A request body that passes nothing on before its call is admitted.
pub struct AdmittedBody<B> {
    inner: B,
    budget: Option<Arc<Budget>>,
    hold: BudgetHold,
    state: Admitting,
    /// Frames read for the prefix, handed on once admitted.
    read_ahead: VecDeque<Frame<Bytes>>,
}

impl<B: Body> AdmittedBody<B> {
    fn new(inner: B, budget: Option<Arc<Budget>>, hold: BudgetHold) -> Self {
        let state = if budget.is_none() || inner.is_end_stream() {
            Admitting::Passing { left: None }
        } else {
            Admitting::ReadingPrefix {
                prefix: [0; PREFIX_BYTES],
                have: 0,
            }
        };
        AdmittedBody {
            inner,
            budget,
            hold,
            state,
            read_ahead: VecDeque::new(),
        }
    }

    /// The prefix is complete: take `length` bytes (in whole units) at
    /// once, or wait for them all; never part of them, so two calls that
    /// each got half of what they need cannot block each other. (tokio's
    /// semaphore is fair: it sets released permits aside for the first
    /// waiter only, and gives them back if that wait is dropped.)
    fn admit(&mut self, length: u32) -> Result<(), Status> {
        let Some(budget) = self.budget.clone() else {
            self.state = Admitting::Passing { left: None };
            return Ok(());
        };
        let units = u32::try_from(u64::from(length).div_ceil(UNIT_BYTES)).unwrap_or(u32::MAX);
        if units > budget.units {
            self.state = Admitting::Refused;
            return Err(Status::resource_exhausted(format!(
                "a request message of {length} bytes is larger than the invoker's whole in-flight budget (max_inflight_bytes: {} bytes)",
                u64::from(budget.units) * UNIT_BYTES
            )));
        }
        match budget.semaphore.clone().try_acquire_many_owned(units) {
            Ok(permit) => self.admitted(permit, length),
            Err(TryAcquireError::NoPermits) => {
                budget.waits.inc();
                self.state = Admitting::Waiting {
                    acquire: Box::pin(budget.semaphore.clone().acquire_many_owned(units)),
                    length,
                };
            }
            Err(TryAcquireError::Closed) => return Err(closed()),
        }
        Ok(())
    }

    fn admitted(&mut self, permit: OwnedSemaphorePermit, length: u32) {
        if let Some(budget) = &self.budget {
            // Set once per call: a body is admitted at most once.
            let _ = self.hold.0.set(budget.admission(permit));
        }
        self.state = Admitting::Passing {
            left: Some(PREFIX_BYTES as u64 + u64::from(length)),
        };
    }
}

fn closed() -> Status {
    Status::unavailable("the invoker's in-flight budget is closed")
}

impl<B> Body for AdmittedBody<B>
where
    B: Body<Data = Bytes, Error = Status> + Unpin,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                Admitting::ReadingPrefix { prefix, have } => {
                    let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                        Some(Ok(frame)) => frame,
                        // No whole prefix: nothing to budget; tonic judges
                        // what arrived.
                        None => {
                            this.state = Admitting::Passing { left: None };
                            continue;
                        }
                        Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                    };
                    let Some(data) = frame.data_ref() else {
                        // Trailers before a whole prefix: the same.
                        this.read_ahead.push_back(frame);
                        this.state = Admitting::Passing { left: None };
                        continue;
                    };
                    let mut chunk = data.clone();
                    while *have < PREFIX_BYTES && chunk.has_remaining() {
                        if let Some(slot) = prefix.get_mut(*have) {
                            *slot = chunk.get_u8();
                        }
                        *have += 1;
                    }
                    this.read_ahead.push_back(frame);
                    if *have == PREFIX_BYTES {
                        let [_compressed, length @ ..] = *prefix;
                        if let Err(status) = this.admit(u32::from_be_bytes(length)) {
                            this.read_ahead.clear();
                            return Poll::Ready(Some(Err(status)));
                        }
                    }
                }
                Admitting::Waiting { acquire, length } => {
                    let length = *length;
                    let permit = match ready!(acquire.as_mut().poll(cx)) {
                        Ok(permit) => permit,
                        Err(_) => {
                            this.state = Admitting::Refused;
                            return Poll::Ready(Some(Err(closed())));
                        }
                    };
                    this.admitted(permit, length);
                }
                Admitting::Passing { left } => {
                    let frame = match this.read_ahead.pop_front() {
                        Some(frame) => frame,
                        None => match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                            Some(Ok(frame)) => frame,
                            other => return Poll::Ready(other),
                        },
                    };
                    if let (Some(left), Some(data)) = (left.as_mut(), frame.data_ref()) {
                        // Budget was taken for one message: a call is one
                        // message on both methods, and more would be
                        // decoded beyond what the budget counts.
                        match left.checked_sub(data.len() as u64) {
                            Some(rest) => *left = rest,
                            None => {
                                this.state = Admitting::Refused;
                                this.read_ahead.clear();
                                return Poll::Ready(Some(Err(Status::invalid_argument(
                                    "more than one request message in a call",
                                ))));
                            }
                        }
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                Admitting::Refused => return Poll::Ready(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self.state {
            Admitting::Passing { .. } => self.read_ahead.is_empty() && self.inner.is_end_stream(),
            Admitting::Refused => true,
            _ => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            Admitting::Passing { .. } if self.read_ahead.is_empty() => self.inner.size_hint(),
            _ => SizeHint::default(),
        }
    }
}

/// A response body that keeps its call's budget until it ends or is
/// dropped.
pub struct HeldBody<B> {
    inner: B,
    hold: Option<BudgetHold>,
}

impl<B> Body for HeldBody<B>
where
    B: Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if frame.is_none() || this.inner.is_end_stream() {
            this.hold = None;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
#[path = "budget_tests.rs"]
mod tests;
