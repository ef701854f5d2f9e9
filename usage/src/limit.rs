//! The arithmetic of a plan's limits, with no clock and no store: a rate
//! with a burst as GCRA (the token bucket written as one timestamp), and
//! quotas per calendar period in UTC. The embedded store runs these
//! functions; the Redis store's script runs the same steps (see
//! `store/redis.rs`), and the tests hold both to them.

use lambdagate_core::time::civil_from_days;

/// Microseconds since the Unix epoch.
pub type Micros = i64;

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// A rate in requests per second with a burst: from idle, `burst`
/// requests pass at once, then one every `1/rate` seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    /// Microseconds between two requests at the steady rate (at least 1).
    pub fn interval(&self) -> Micros {
        let interval = (MICROS_PER_SECOND as f64 / self.per_second).ceil();
        if interval.is_finite() && interval >= 1.0 {
            interval as Micros
        } else {
            1
        }
    }

    /// How far ahead of now the bucket's timestamp may run.
    pub fn tolerance(&self) -> Micros {
        self.interval()
            .saturating_mul(Micros::from(self.burst.max(1)))
    }
}

/// What one request does to a bucket whose theoretical arrival time is
/// `tat` (none: idle): `Ok(new_tat)` to store, or `Err(wait)`, the
/// microseconds until a request would pass.
pub fn take(rate: Rate, tat: Option<Micros>, now: Micros) -> Result<Micros, Micros> {
    let start = tat.map_or(now, |tat| tat.max(now));
    let next = start.saturating_add(rate.interval());
    let ahead = next - now;
    if ahead > rate.tolerance() {
        Err(ahead - rate.tolerance())
    } else {
        Ok(next)
    }
}

/// A quota's period: calendar days, ISO weeks (from Monday) and months,
/// in UTC, as API Gateway's usage plans count them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    /// The start and end (seconds since the epoch) of the period holding
    /// `now_seconds`.
    pub fn bounds(self, now_seconds: i64) -> (i64, i64) {
        let day = now_seconds.div_euclid(SECONDS_PER_DAY);
        let (start_day, end_day) = match self {
            Period::Day => (day, day + 1),
            Period::Week => {
                // 1970-01-01 was a Thursday: Monday is 3 days before it.
                let monday = (day + 3).div_euclid(7) * 7 - 3;
                (monday, monday + 7)
            }
            Period::Month => {
                let (year, month, dom) = civil_from_days(day);
                let start = day - (dom - 1);
                (start, start + days_in_month(year, month))
            }
        };
        (start_day * SECONDS_PER_DAY, end_day * SECONDS_PER_DAY)
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// A quota: at most `limit` requests per `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub limit: u64,
    pub period: Period,
}

/// What a request gets from its plan's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Over the rate: a request passes again in this many seconds (≥ 1).
    Throttled {
        retry_after_seconds: u64,
    },
    /// The period's quota is used: it renews in this many seconds.
    QuotaExceeded {
        retry_after_seconds: u64,
    },
}

/// Whole seconds, rounded up, at least 1: `Retry-After`'s unit.
pub fn retry_seconds(wait: Micros) -> u64 {
    let seconds = (wait.max(1) + MICROS_PER_SECOND - 1) / MICROS_PER_SECOND;
    u64::try_from(seconds.max(1)).unwrap_or(1)
}

/// One request against a bucket and a quota counter, both or neither
/// taken: the quota is checked first (a used quota is the lasting
/// answer), and a throttled request does not count against it.
/// `used` is the period's count so far; returns the new bucket timestamp
/// and whether the quota counter goes up.
pub fn admit(
    rate: Rate,
    tat: Option<Micros>,
    quota: Option<(Quota, u64)>,
    now: Micros,
) -> (Admission, Option<Micros>) {
    if let Some((quota, used)) = quota
        && used >= quota.limit
    {
        let (_, end) = quota.period.bounds(now.div_euclid(MICROS_PER_SECOND));
        let wait = end.saturating_mul(MICROS_PER_SECOND) - now;
        return (
            Admission::QuotaExceeded {
                retry_after_seconds: retry_seconds(wait),
            },
            None,
        );
    }
    match take(rate, tat, now) {
        Ok(next) => (Admission::Allowed, Some(next)),
        Err(wait) => (
            Admission::Throttled {
                retry_after_seconds: retry_seconds(wait),
            },
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Micros = MICROS_PER_SECOND;

    fn rate(per_second: f64, burst: u32) -> Rate {
        Rate { per_second, burst }
    }

    /// Requests at `times` through one bucket; how many pass.
    fn passed(rate: Rate, times: impl Iterator<Item = Micros>) -> usize {
        let mut tat = None;
        times
            .filter(|&now| match take(rate, tat, now) {
                Ok(next) => {
                    tat = Some(next);
                    true
                }
                Err(_) => false,
            })
            .count()
    }

    #[test]
    fn an_idle_bucket_passes_the_burst_at_once_and_then_refuses() {
        let r = rate(50.0, 100);
        assert_eq!(passed(r, std::iter::repeat_n(1_000 * S, 150)), 100);
    }

    #[test]
    fn a_steady_overload_passes_the_burst_plus_the_rate() {
        // 200 req/s for 10 s against 50 req/s, burst 100: 100 + 50 × 10.
        let r = rate(50.0, 100);
        let n = passed(r, (0..2000).map(|i| 5 * S + i * S / 200));
        assert!((595..=605).contains(&n), "{n}");
    }

    #[test]
    fn under_the_rate_nothing_is_refused() {
        let r = rate(10.0, 1);
        assert_eq!(passed(r, (0..100).map(|i| i * S / 10)), 100);
    }

    #[test]
    fn a_refusal_says_when_the_next_request_passes() {
        let r = rate(2.0, 1);
        let tat = take(r, None, 0).ok();
        let wait = take(r, tat, 0).err();
        assert_eq!(wait, Some(S / 2));
        assert!(take(r, tat, S / 2).is_ok());
        assert_eq!(retry_seconds(S / 2), 1);
        assert_eq!(retry_seconds(3 * S + 1), 4);
    }

    #[test]
    fn periods_start_at_midnight_monday_and_the_first_of_the_month_utc() {
        // 2026-12-05 (a Saturday) 20:30:00 UTC.
        let now = 1_796_502_600;
        let day0 = 1_796_428_800; // 2026-12-05 00:00
        assert_eq!(Period::Day.bounds(now), (day0, day0 + 86_400));
        let monday = day0 - 5 * 86_400; // 2026-11-30
        assert_eq!(Period::Week.bounds(now), (monday, monday + 7 * 86_400));
        let first = day0 - 4 * 86_400; // 2026-12-01
        assert_eq!(Period::Month.bounds(now), (first, first + 31 * 86_400));
        // February of a leap year, and of a century that is not one.
        let feb_2028 = 1_832_976_000; // 2028-02-01
        assert_eq!(
            Period::Month.bounds(feb_2028 + 3600),
            (feb_2028, feb_2028 + 29 * 86_400)
        );
    }

    #[test]
    fn a_used_quota_is_refused_until_its_period_ends_and_a_throttle_does_not_count() {
        let quota = Quota {
            limit: 2,
            period: Period::Day,
        };
        let r = rate(1000.0, 1000);
        let now = 1_796_502_600 * S;
        assert_eq!(admit(r, None, Some((quota, 1)), now).0, Admission::Allowed);
        let (over, tat) = admit(r, None, Some((quota, 2)), now);
        assert_eq!(
            over,
            Admission::QuotaExceeded {
                retry_after_seconds: 12_600
            }
        );
        assert_eq!(tat, None);
        let slow = rate(1.0, 1);
        let tat = take(slow, None, now).ok();
        assert!(matches!(
            admit(slow, tat, Some((quota, 0)), now),
            (Admission::Throttled { .. }, None)
        ));
    }
}
