//! `tenantry bench route` on SQLite: the JSON it prints has its fields, and requests through
//! the layer fail only with `busy`. No assertion on time.

mod common;

use serde_json::Value;

fn bench_route(extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut args = vec![
        "bench",
        "route",
        "--duration",
        "1",
        "--warmup",
        "0",
        "--clients",
        "4",
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = common::bare(dir.path())
        .args(&args)
        .output()
        .expect("run tenantry");
    assert!(
        out.status.success(),
        "tenantry {args:?} failed:\n{}\n{}",
        common::stdout(&out),
        common::stderr(&out)
    );
    serde_json::from_slice(&out.stdout).expect("bench route --json prints JSON")
}

/// A run's figures are there, it served requests, and any error is `busy`.
fn check_run(run: &Value, name: &str) {
    for field in [
        "requests",
        "ok",
        "requests_per_s",
        "p50_ms",
        "p99_ms",
        "max_ms",
    ] {
        assert!(run[field].is_number(), "{name}.{field} missing: {run}");
    }
    assert!(run["ok"].as_u64() > Some(0), "{name} served nothing: {run}");
    let errors = run["errors"].as_object().expect("errors by code");
    for code in errors.keys() {
        assert_eq!(code, "busy", "{name} had an error other than busy: {run}");
    }
}

#[test]
fn one_tenant_compares_the_layer_with_a_plain_pool() {
    let figures = bench_route(&[]);
    assert_eq!(figures["mode"], "one_tenant");
    assert_eq!(figures["engine"], "sqlite");
    assert_eq!(figures["tenants"], 1);
    assert_eq!(figures["clients"], 4);
    check_run(&figures["layer"], "layer");
    check_run(&figures["layer_plain"], "layer_plain");
    check_run(&figures["plain"], "plain");
    check_run(&figures["plain_tx"], "plain_tx");
    for compare in [
        "layer_vs_plain",
        "layer_vs_plain_tx",
        "layer_plain_vs_plain",
    ] {
        for field in ["throughput_ratio", "p50_diff_ms", "p99_diff_ms"] {
            assert!(
                figures[compare][field].is_number(),
                "{compare}.{field} missing: {figures}"
            );
        }
    }
    assert_eq!(figures["unexpected_errors"], 0);
    assert!(figures["peak_rss_mib"].is_number());
    assert!(figures["create_s"].is_number() && figures["seed_s"].is_number());
}

#[test]
fn many_tenants_stay_under_the_cap() {
    let figures = bench_route(&["--tenants", "20", "--cap", "8"]);
    assert_eq!(figures["mode"], "many_tenants");
    assert_eq!(figures["tenants"], 20);
    assert_eq!(figures["cap"], 8);
    check_run(&figures["layer"], "layer");
    assert!(
        figures["plain"].is_null(),
        "no plain pool with many tenants"
    );
    assert_eq!(figures["unexpected_errors"], 0);
    assert_eq!(figures["connections_source"], "pool_stats");
    let most = figures["server_sessions_max"]
        .as_u64()
        .expect("server_sessions_max");
    assert!(
        (1..=8).contains(&most),
        "connections above the cap: {figures}"
    );
    assert!(figures["pool_open_max"].as_u64() <= Some(8));
    assert!(figures["peak_rss_mib"].is_number());
}

#[test]
fn the_lifecycle_bench_options_do_not_mix_with_route() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = common::bare(dir.path())
        .args(["bench", "--tenants", "3", "route"])
        .output()
        .expect("run tenantry");
    assert!(!out.status.success(), "bench --tenants 3 route should fail");
}
