//! Throttles that hold per gateway instance by design, as API Gateway's
//! account-level and stage-level limits: `gateway.throttle` (every API
//! request) and an API's `throttle`. Envoy's own local rate-limit filter
//! keeps the token buckets (`envoy/throttle.rs`); a usage plan's rate,
//! shared by a fleet, is the usage service's.

use serde::Deserialize;

/// A rate with a burst, per Envoy instance.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Throttle {
    /// Requests per second.
    pub rate: f64,
    /// Requests at once after a pause.
    pub burst: u32,
}

/// The highest rate a throttle takes (Envoy refills its bucket at most
/// every 50 ms).
pub const MAX_THROTTLE_RATE: f64 = 1_000_000.0;

impl Throttle {
    /// A bad field under `at`: its name and what is allowed.
    pub fn validate(&self, at: &str) -> Result<(), (String, String)> {
        if !(self.rate > 0.0 && self.rate <= MAX_THROTTLE_RATE) {
            return Err((
                format!("{at}.rate"),
                format!(
                    "must be more than 0 and at most {MAX_THROTTLE_RATE} requests per second, not {}",
                    self.rate
                ),
            ));
        }
        if self.burst == 0 {
            return Err((format!("{at}.burst"), "must be at least 1".into()));
        }
        Ok(())
    }

    /// Envoy's bucket: (tokens per fill, fill interval in ms), a fill at
    /// least every 50 ms apart (Envoy's floor), rounded to the rate.
    pub fn refill(&self) -> (u32, u32) {
        if self.rate <= 20.0 {
            (
                1,
                (1000.0 / self.rate).round().clamp(50.0, 3_600_000.0) as u32,
            )
        } else {
            ((self.rate / 20.0).round().max(1.0) as u32, 50)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_keep_the_rate_and_envoys_50_ms_floor() {
        let t = |rate| Throttle { rate, burst: 1 };
        assert_eq!(t(10.0).refill(), (1, 100));
        assert_eq!(t(0.5).refill(), (1, 2000));
        assert_eq!(t(1000.0).refill(), (50, 50));
        assert!(t(0.0).validate("throttle").is_err());
        assert_eq!(
            Throttle {
                rate: 5.0,
                burst: 0
            }
            .validate("throttle")
            .unwrap_err()
            .0,
            "throttle.burst"
        );
    }
}
