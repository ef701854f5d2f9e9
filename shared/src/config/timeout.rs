//! Route timeouts: default 50 s, at least 1 s, at most 15 minutes (the
//! longest a Lambda function can run).

use std::fmt;
use std::time::Duration;

/// A validated route timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timeout(Duration);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("timeout {got} is out of range: allowed is 1s to 15m (900s); default 50s")]
pub struct TimeoutError {
    got: String,
}

impl Timeout {
    pub const DEFAULT: Timeout = Timeout(Duration::from_secs(50));
    pub const MIN: Timeout = Timeout(Duration::from_secs(1));
    pub const MAX: Timeout = Timeout(Duration::from_secs(15 * 60));

    /// Validates a duration against the allowed range.
    pub fn new(duration: Duration) -> Result<Self, TimeoutError> {
        if duration < Self::MIN.0 || duration > Self::MAX.0 {
            return Err(TimeoutError {
                got: format_duration(duration),
            });
        }
        Ok(Timeout(duration))
    }

    /// Reads the wire form used between filter and invoker: milliseconds,
    /// where 0 means "not set" and selects the default.
    pub fn from_millis(ms: u32) -> Result<Self, TimeoutError> {
        if ms == 0 {
            return Ok(Self::DEFAULT);
        }
        Self::new(Duration::from_millis(u64::from(ms)))
    }

    pub fn as_duration(self) -> Duration {
        self.0
    }

    /// Milliseconds; fits in u32 because the maximum is 900 000.
    /// The deadline of the invoker call (the filter's gRPC timeout, the
    /// router's upstream timeout): the route timeout plus one second, so
    /// that the invoker's own timeout (a typed TIMEOUT) fires first.
    pub fn invoker_deadline(self) -> Duration {
        self.0 + Duration::from_secs(1)
    }

    pub fn as_millis(self) -> u32 {
        u32::try_from(self.0.as_millis()).unwrap_or(u32::MAX)
    }
}

impl Default for Timeout {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

fn format_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_millis_selects_the_default_of_50_seconds() {
        assert_eq!(Timeout::from_millis(0), Ok(Timeout::DEFAULT));
        assert_eq!(Timeout::DEFAULT.as_duration(), Duration::from_secs(50));
    }

    #[test]
    fn bounds_are_inclusive() {
        assert_eq!(Timeout::from_millis(1000).map(Timeout::as_millis), Ok(1000));
        assert_eq!(
            Timeout::from_millis(900_000).map(Timeout::as_millis),
            Ok(900_000)
        );
    }

    #[test]
    fn out_of_range_is_refused_with_the_allowed_range() {
        let below = Timeout::from_millis(999).unwrap_err().to_string();
        assert_eq!(
            below,
            "timeout 999ms is out of range: allowed is 1s to 15m (900s); default 50s"
        );
        let above = Timeout::new(Duration::from_secs(901))
            .unwrap_err()
            .to_string();
        assert!(above.starts_with("timeout 901s is out of range"), "{above}");
    }
}
