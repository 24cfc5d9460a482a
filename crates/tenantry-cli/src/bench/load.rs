//! The load generator: `clients` tasks, each with an HTTP/1.1 client of its own (so one
//! keep-alive connection each), sending one request after another, each for a random
//! document of a random tenant, for the warm-up and then the measured duration. A request is
//! measured if it started inside the measured window.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use reqwest::Url;
use reqwest::header::HeaderValue;
use serde::Serialize;
use tokio::task::JoinSet;

use super::fleet::Stop;
use super::stats::{ms3, percentile, round};

/// How long one request may take before it counts as a transport error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One load run.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    /// One URL per seeded document.
    pub urls: Arc<[Url]>,
    /// One `X-Tenant` value per tenant.
    pub tenants: Arc<[HeaderValue]>,
    pub clients: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

impl Plan {
    /// The URLs of `path` (e.g. `/layer/documents/`) followed by each document number.
    pub(super) fn urls(base: &str, path: &str, docs: u32) -> anyhow::Result<Arc<[Url]>> {
        (0..docs)
            .map(|n| Url::parse(&format!("{base}{path}{n}")).context("a bench URL"))
            .collect()
    }
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Run {
    /// Requests answered (any status) that started in the measured window.
    pub requests: u64,
    /// Of those, with a 2xx status.
    pub ok: u64,
    /// `ok` per second of the window.
    pub requests_per_s: f64,
    /// Latency percentiles of every measured request, in milliseconds.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Requests not answered with 2xx, by the `error.code` of their JSON body
    /// (`http_<status>` without one), or `transport` when no answer came.
    pub errors: BTreeMap<String, u64>,
}

impl Run {
    /// Errors other than `busy`.
    pub(super) fn unexpected_errors(&self) -> u64 {
        self.errors
            .iter()
            .filter(|(code, _)| code.as_str() != "busy")
            .map(|(_, n)| n)
            .sum()
    }
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    ok: u64,
    errors: BTreeMap<String, u64>,
}

/// Runs the plan and returns its figures.
pub(super) async fn run(plan: &Plan, stop: &Stop) -> anyhow::Result<Run> {
    anyhow::ensure!(
        !plan.urls.is_empty() && !plan.tenants.is_empty(),
        "nothing to request"
    );
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let end = measure_from + plan.duration;
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x5eed);
    let mut clients = JoinSet::new();
    for k in 0..plan.clients {
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("build an HTTP client")?;
        let plan = plan.clone();
        let stop = stop.clone();
        let rng = Rng::new(seed ^ (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        clients.spawn(client_loop(client, plan, rng, measure_from, end, stop));
    }
    let mut total = Tally::default();
    while let Some(joined) = clients.join_next().await {
        let tally = joined.context("a load client failed")?;
        total.latencies.extend(tally.latencies);
        total.ok += tally.ok;
        for (code, n) in tally.errors {
            *total.errors.entry(code).or_default() += n;
        }
    }
    stop.check()?;
    let mut latencies = total.latencies;
    latencies.sort_unstable();
    Ok(Run {
        requests: latencies.len() as u64,
        ok: total.ok,
        requests_per_s: round(total.ok as f64 / plan.duration.as_secs_f64().max(1e-9)),
        p50_ms: ms3(percentile(&latencies, 50)),
        p99_ms: ms3(percentile(&latencies, 99)),
        max_ms: ms3(latencies.last().copied().unwrap_or_default()),
        errors: total.errors,
    })
}

async fn client_loop(
    client: reqwest::Client,
    plan: Plan,
    mut rng: Rng,
    measure_from: Instant,
    end: Instant,
    stop: Stop,
) -> Tally {
    let mut tally = Tally::default();
    loop {
        let started = Instant::now();
        if started >= end || stop.is_set() {
            break;
        }
        let url = plan.urls[rng.below(plan.urls.len())].clone();
        let tenant = plan.tenants[rng.below(plan.tenants.len())].clone();
        let outcome = request(&client, url, tenant).await;
        if started < measure_from {
            continue;
        }
        tally.latencies.push(started.elapsed());
        match outcome {
            None => tally.ok += 1,
            Some(code) => *tally.errors.entry(code).or_default() += 1,
        }
    }
    tally
}

/// Sends one request and reads its whole answer: `None` for a 2xx, else the error's code.
async fn request(client: &reqwest::Client, url: Url, tenant: HeaderValue) -> Option<String> {
    let response = match client.get(url).header("x-tenant", tenant).send().await {
        Ok(response) => response,
        Err(_) => return Some("transport".to_owned()),
    };
    let status = response.status();
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(_) => return Some("transport".to_owned()),
    };
    if status.is_success() {
        return None;
    }
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
    Some(code.unwrap_or_else(|| format!("http_{}", status.as_u16())))
}

/// SplitMix64: a small, fast generator, plenty for picking tenants and documents.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0), by multiply-shift; the bias is below `n / 2^64`.
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_stay_in_range_and_cover_it() {
        let mut rng = Rng::new(42);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[rng.below(10)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800 && n < 1200), "{seen:?}");
        assert_eq!(rng.below(1), 0);
    }
}
