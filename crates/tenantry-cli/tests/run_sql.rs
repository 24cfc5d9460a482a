//! `tenantry run "<SQL>"`: the same SQL on every selected tenant, each in one transaction as
//! its own application connection, with the controls of `migrate --all` (selection, canary,
//! failure budget, dry run, resume) and a report per tenant (JSON lines with the rows of the
//! last statement). Every engine; on PostgreSQL, every strategy in one fleet.

mod common;

use common::{fails, ok, run, stderr, stdout};
use tenantry_testkit::{Backend, Fixture};

/// The JSON lines of a `--json` run: the per-tenant lines, then the summary.
fn lines(out: &str) -> (Vec<serde_json::Value>, serde_json::Value) {
    let mut all: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let summary = all.pop().expect("a summary line");
    (all, summary)
}

fn campaigns(fx: &Fixture, slug: &str) -> i64 {
    let out = ok(
        fx,
        &["sql", slug, "SELECT COUNT(*) AS n FROM campaigns", "--json"],
    );
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).expect("JSON");
    rows[0]["n"]
        .as_str()
        .map(|s| s.parse().expect("a count"))
        .or_else(|| rows[0]["n"].as_i64())
        .expect("n")
}

fn insert(tenant_id: &str, id: &str) -> String {
    format!("INSERT INTO campaigns (id, tenant_id, name) VALUES ('{id}', '{tenant_id}', 'run')")
}

async fn runs_on_every_tenant_with_the_controls_of_a_rollout(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    for slug in ["acme", "bravo", "carol"] {
        ok(&fx, &["tenant", "create", slug]);
    }
    ok(&fx, &["tenant", "suspend", "carol"]);

    // A dry run commits nothing, and says so per tenant.
    let out = ok(
        &fx,
        &[
            "run",
            "--all",
            "--dry-run",
            "--json",
            "INSERT INTO campaigns (id, tenant_id, name) SELECT 'dry', 'x', 'y' WHERE 1 = 0; SELECT 1 AS one",
        ],
    );
    let (tenants, summary) = lines(&out);
    assert_eq!(tenants.len(), 3, "{out}");
    for t in &tenants {
        match t["tenant"].as_str() {
            Some("carol") => {
                assert_eq!(t["outcome"], "skipped", "{t}");
                assert!(
                    t["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains("suspended"))
                );
            }
            _ => {
                assert_eq!(t["outcome"], "ran", "{t}");
                assert_eq!(t["committed"], false, "{t}");
                assert_eq!(t["rows"].as_array().map(Vec::len), Some(1), "{t}");
            }
        }
    }
    assert_eq!(summary["counts"]["ran"], 2, "{summary}");
    assert_eq!(summary["counts"]["skipped"], 1, "{summary}");

    // Each tenant's own rows only: the statement runs as the tenant's application.
    let acme = common::tenants(&fx)
        .into_iter()
        .find(|t| t["slug"] == "acme")
        .expect("acme");
    let acme_id = acme["id"].as_str().expect("id").to_owned();
    ok(&fx, &["sql", "acme", &insert(&acme_id, "c1")]);
    let out = ok(
        &fx,
        &[
            "run",
            "--tenant",
            "acme",
            "--tenant",
            "bravo",
            "--json",
            "SELECT COUNT(*) AS n FROM campaigns",
        ],
    );
    let (tenants, _) = lines(&out);
    let count = |slug: &str| {
        let line = tenants
            .iter()
            .find(|t| t["tenant"] == slug)
            .expect("a line per tenant");
        line["rows"][0]["n"]
            .to_string()
            .trim_matches('"')
            .to_owned()
    };
    assert_eq!(count("acme"), "1");
    assert_eq!(count("bravo"), "0");

    // A failing statement: that tenant reports the error and keeps its rows; exit code 1.
    let out = run(
        &fx,
        &[
            "run",
            "--all",
            "DELETE FROM campaigns; SELECT * FROM no_such_table",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("3 tenant(s): 0 ran, 1 skipped, 2 failed"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("no_such_table"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("the SQL failed on 2 tenant(s)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(campaigns(&fx, "acme"), 1, "rolled back: acme keeps its row");

    // A canary that fails stops the run before the rest.
    let out = run(
        &fx,
        &[
            "run",
            "--all",
            "--canary",
            "1",
            "--json",
            "SELECT * FROM no_such_table",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let (tenants, summary) = lines(&stdout(&out));
    assert_eq!(tenants.len(), 1, "only the canary ran");
    assert_eq!(summary["stopped"], "canary", "{summary}");
    assert_eq!(summary["counts"]["not_attempted"], 2, "{summary}");

    // Committed for real, then recorded as a rollout of kind sql.
    let out = ok(
        &fx,
        &[
            "run",
            "--all",
            "--json",
            "UPDATE campaigns SET name = 'renamed'",
        ],
    );
    let (_, summary) = lines(&out);
    let id = summary["rollout"].as_str().expect("id").to_owned();
    let shown = ok(&fx, &["migrate", "rollout", &id, "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).expect("JSON");
    assert_eq!(shown["rollout"]["kind"], "sql", "{shown}");
    assert_eq!(
        shown["rollout"]["options"]["sql"],
        "UPDATE campaigns SET name = 'renamed'"
    );
    fails(
        &fx,
        &["migrate", "undo", &id],
        "only a rollout that applied migrations can be undone",
    );
    fx.cleanup().await;
}

tenantry_testkit::on_each_backend!(runs_on_every_tenant_with_the_controls_of_a_rollout);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_what_it_needs() {
    let Some(fx) = Fixture::new(Backend::Sqlite).await else {
        return;
    };
    ok(&fx, &["tenant", "create", "acme"]);
    fails(&fx, &["run", "SELECT 1"], "--all, --tenant <slug>");
    fails(&fx, &["run", "--all", "   "], "no SQL to run");
    fails(
        &fx,
        &["run", "--tenant", "nosuch", "SELECT 1"],
        "no tenant \"nosuch\"",
    );
    let out = run(&fx, &["run", "--all"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    fx.cleanup().await;
}

/// On one PostgreSQL server, a database, a schema and a shared tenant: each run sees the
/// tenant's own rows only (the shared one through row-level security in its own context).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_strategy_runs_as_its_own_tenant() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    let strategies = [("db", "database"), ("sch", "schema"), ("shr", "shared")];
    for (slug, strategy) in strategies {
        ok(
            &fx,
            &[
                "tenant",
                "create",
                slug,
                "--server",
                &fx.server,
                "--strategy",
                strategy,
            ],
        );
    }
    for (i, t) in common::tenants(&fx).iter().enumerate() {
        let slug = t["slug"].as_str().expect("slug");
        let id = t["id"].as_str().expect("id");
        for n in 0..=i {
            ok(&fx, &["sql", slug, &insert(id, &format!("{slug}{n}"))]);
        }
    }
    let out = ok(
        &fx,
        &[
            "run",
            "--all",
            "--json",
            "SELECT COUNT(*) AS n FROM campaigns",
        ],
    );
    let (tenants, summary) = lines(&out);
    assert_eq!(summary["counts"]["ran"], 3, "{summary}");
    for (i, t) in common::tenants(&fx).iter().enumerate() {
        let line = tenants
            .iter()
            .find(|l| l["tenant"] == t["slug"])
            .expect("a line per tenant");
        assert_eq!(
            line["rows"][0]["n"].to_string().trim_matches('"'),
            (i + 1).to_string(),
            "{line}"
        );
    }
    fx.cleanup().await;
}
