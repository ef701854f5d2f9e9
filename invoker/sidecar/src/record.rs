//! One invocation's record: its metrics labels and log fields, written
//! once when it ends (for a stream, when the stream ends).

use std::time::Instant;

use lambdagate_core::Outcome;

use crate::error::Failure;
use crate::metrics::Metrics;

/// One invocation's metrics labels and log fields, recorded when it ends.
pub(crate) struct CallRecord {
    pub(crate) metrics: Metrics,
    pub(crate) endpoint: String,
    pub(crate) function: String,
    pub(crate) request_id: String,
    pub(crate) started: Instant,
}

impl CallRecord {
    pub(crate) fn finished(
        &self,
        outcome: Outcome,
        failure: Option<&Failure>,
        status: Option<u32>,
    ) {
        let took = self.started.elapsed();
        self.metrics
            .record_invocation(&self.endpoint, &self.function, outcome, took);
        match failure {
            None => tracing::debug!(
                request_id = %self.request_id,
                endpoint = %self.endpoint,
                function = %self.function,
                outcome = outcome.label(),
                status = status.unwrap_or(0),
                duration_ms = took.as_millis() as u64,
                "invoked"
            ),
            Some(f) => tracing::warn!(
                request_id = %self.request_id,
                endpoint = %self.endpoint,
                function = %self.function,
                outcome = outcome.label(),
                duration_ms = took.as_millis() as u64,
                error = %f.message,
                "invocation failed"
            ),
        }
    }
}
