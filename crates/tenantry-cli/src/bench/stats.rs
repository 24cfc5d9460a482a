//! Figures from measurements: percentiles, rounding, the process's peak memory.

use std::time::Duration;

/// The nearest-rank percentile `p` (0–100) of sorted durations; zero when there are none.
pub(super) fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() * p).div_ceil(100)).saturating_sub(1);
    sorted[idx.min(sorted.len() - 1)]
}

/// Two decimals.
pub(super) fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Three decimals.
pub(super) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Seconds, two decimals.
pub(super) fn secs(d: Duration) -> f64 {
    round(d.as_secs_f64())
}

/// Milliseconds, two decimals.
pub(super) fn ms(d: Duration) -> f64 {
    round(d.as_secs_f64() * 1000.0)
}

/// Milliseconds, three decimals.
pub(super) fn ms3(d: Duration) -> f64 {
    round3(d.as_secs_f64() * 1000.0)
}

/// The process's peak resident set (Linux `VmHWM`).
pub(super) fn peak_rss_mib() -> Option<f64> {
    status_mib("VmHWM:")
}

/// The process's resident set now (Linux `VmRSS`).
pub(super) fn rss_mib() -> Option<f64> {
    status_mib("VmRSS:")
}

fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(round(kib / 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 50), Duration::from_millis(50));
        assert_eq!(percentile(&sorted, 99), Duration::from_millis(99));
        assert_eq!(percentile(&sorted, 100), Duration::from_millis(100));
        assert_eq!(percentile(&[], 99), Duration::ZERO);
    }
}
