use std::collections::VecDeque;
use std::time::Duration;

use http_body_util::BodyExt as _;

use super::*;

/// A request body made of the given frames, as h2 would hand them on.
struct Frames {
    frames: VecDeque<Frame<Bytes>>,
    polled: Arc<std::sync::atomic::AtomicUsize>,
}

impl Body for Frames {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        self.polled
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Poll::Ready(self.frames.pop_front().map(Ok))
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
    }
}

fn frames(chunks: &[&[u8]]) -> Frames {
    Frames {
        frames: chunks
            .iter()
            .map(|c| Frame::data(Bytes::copy_from_slice(c)))
            .collect(),
        polled: Arc::default(),
    }
}

fn message(len: usize) -> Vec<u8> {
    let mut framed = vec![0u8];
    framed.extend_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
    framed.extend(std::iter::repeat_n(7u8, len));
    framed
}

fn admitted(body: Frames, budget: &Arc<Budget>) -> (AdmittedBody<Frames>, BudgetHold) {
    let hold = BudgetHold::default();
    (
        AdmittedBody::new(body, Some(budget.clone()), hold.clone()),
        hold,
    )
}

async fn collect(body: AdmittedBody<Frames>) -> Result<Vec<u8>, Status> {
    Ok(body.collect().await?.to_bytes().to_vec())
}

#[tokio::test]
async fn a_prefix_split_over_frames_is_read_and_the_frames_pass_unchanged() {
    let metrics = Metrics::new();
    let budget = Budget::new(10 * UNIT_BYTES, &metrics);
    let wire = message(3000);
    let cuts: Vec<&[u8]> = vec![&wire[..2], &wire[2..4], &wire[4..5], &wire[5..]];
    let (body, hold) = admitted(frames(&cuts), &budget);
    assert_eq!(collect(body).await.unwrap(), wire);
    // 3000 bytes: 3 KiB, held until the last holder goes.
    assert_eq!(metrics.inflight_bytes().get(), 3 * 1024);
    assert_eq!(budget.semaphore.available_permits(), 7);
    drop(hold);
    assert_eq!(metrics.inflight_bytes().get(), 0);
    assert_eq!(budget.semaphore.available_permits(), 10);
}

#[tokio::test]
async fn bodies_without_a_whole_prefix_and_exempt_calls_take_nothing() {
    let metrics = Metrics::new();
    let budget = Budget::new(10 * UNIT_BYTES, &metrics);
    for chunks in [vec![], vec![&[0u8, 0][..]]] {
        let (body, hold) = admitted(frames(&chunks), &budget);
        assert_eq!(collect(body).await.unwrap(), chunks.concat());
        assert!(hold.0.get().is_none());
    }
    let exempt = AdmittedBody::new(frames(&[&message(20_000)]), None, BudgetHold::default());
    assert_eq!(collect(exempt).await.unwrap().len(), 20_005);
    assert_eq!(budget.semaphore.available_permits(), 10);
    assert_eq!(metrics.budget_waits().get(), 0);
}

#[tokio::test]
async fn a_message_larger_than_the_whole_budget_is_refused_at_once() {
    let metrics = Metrics::new();
    let budget = Budget::new(10 * UNIT_BYTES, &metrics);
    let (body, _hold) = admitted(frames(&[&message(10 * 1024 + 1)]), &budget);
    let status = collect(body).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("max_inflight_bytes"),
        "{status:?}"
    );
    // Exactly the budget fits.
    let (body, _hold) = admitted(frames(&[&message(10 * 1024)]), &budget);
    assert_eq!(collect(body).await.unwrap().len(), 10 * 1024 + 5);
}

#[tokio::test]
async fn a_waiting_body_is_not_read_and_a_dropped_wait_takes_nothing() {
    let metrics = Metrics::new();
    let budget = Budget::new(10 * UNIT_BYTES, &metrics);
    let (first, first_hold) = admitted(frames(&[&message(6 * 1024)]), &budget);
    collect(first).await.unwrap();

    let waiting_frames = frames(&[&message(6 * 1024)[..100], &message(6 * 1024)[100..]]);
    let polled = waiting_frames.polled.clone();
    let (waiting, _hold) = admitted(waiting_frames, &budget);
    let wait = tokio::spawn(collect(waiting));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!wait.is_finished());
    // Only the frame with the prefix was read.
    assert_eq!(polled.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(metrics.budget_waits().get(), 1);
    // A smaller call behind it waits too: first come, first served.
    let (behind, behind_hold) = admitted(frames(&[&message(1024)]), &budget);
    let behind = tokio::spawn(collect(behind));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!behind.is_finished());

    // The waiting call goes away (its stream was reset): the one behind
    // it is admitted, and the budget is whole again once all are done.
    wait.abort();
    assert!(wait.await.unwrap_err().is_cancelled());
    assert_eq!(behind.await.unwrap().unwrap().len(), 1029);
    drop(behind_hold);
    assert_eq!(budget.semaphore.available_permits(), 4);
    drop(first_hold);
    assert_eq!(budget.semaphore.available_permits(), 10);
    assert_eq!(metrics.inflight_bytes().get(), 0);
}

#[tokio::test]
async fn a_second_message_in_a_budgeted_call_is_refused() {
    let metrics = Metrics::new();
    let budget = Budget::new(10 * UNIT_BYTES, &metrics);
    let (body, _hold) = admitted(frames(&[&message(100), &message(100)]), &budget);
    let status = collect(body).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
}

#[test]
fn max_inflight_bytes_has_a_default_a_least_and_a_most() {
    let least = 6 * 1024 * 1024 + 64 * 1024;
    assert_eq!(
        checked_max_inflight_bytes(None, least),
        Ok(DEFAULT_MAX_INFLIGHT_BYTES)
    );
    assert_eq!(checked_max_inflight_bytes(Some(least), least), Ok(least));
    let small = checked_max_inflight_bytes(Some(least - 1), least).unwrap_err();
    assert!(
        small.contains("one maximum-size call must always fit"),
        "{small}"
    );
    assert!(checked_max_inflight_bytes(Some(u64::MAX), least).is_err());
}
