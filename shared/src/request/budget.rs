//! The upload budget: how many bytes of request bodies one filter VM (one
//! Envoy worker) may hold buffered at once. The filter buffers a routed
//! request's whole body (up to 6 MB) before building its event, so without
//! a bound, clients that send big bodies slowly, or never finish them, make
//! Envoy hold them all. Envoy's own per-stream memory accounting does not
//! cover HTTP/1 uploads; this does, for every protocol. A request that
//! would go over the budget is refused (503) before its body is read; its
//! share is given back when its stream ends.
//!
//! The count lives in the VM that owns the streams it counts, so a VM that
//! is replaced starts again at zero with no stream of the old one left.

/// Bytes of request bodies taken, against a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadBudget {
    limit: u64,
    in_use: u64,
}

impl UploadBudget {
    pub fn new(limit: u64) -> Self {
        UploadBudget { limit, in_use: 0 }
    }

    /// Takes `bytes` if they fit; `false` leaves the budget as it was.
    pub fn try_take(&mut self, bytes: u64) -> bool {
        match self.in_use.checked_add(bytes) {
            Some(total) if total <= self.limit => {
                self.in_use = total;
                true
            }
            _ => false,
        }
    }

    /// Gives back what a stream took (never more than is in use).
    pub fn give_back(&mut self, bytes: u64) {
        self.in_use = self.in_use.saturating_sub(bytes);
    }

    pub fn in_use(&self) -> u64 {
        self.in_use
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_what_fits_and_gives_back_what_was_taken() {
        let mut budget = UploadBudget::new(10);
        assert!(budget.try_take(6));
        assert!(!budget.try_take(5), "11 of 10");
        assert_eq!(budget.in_use(), 6);
        assert!(budget.try_take(4));
        assert!(!budget.try_take(1));
        assert!(budget.try_take(0), "an empty body always fits");
        budget.give_back(6);
        assert!(budget.try_take(5));
        budget.give_back(100);
        assert_eq!(budget.in_use(), 0);
        assert!(!budget.try_take(u64::MAX), "no overflow");
    }
}
