//! Isolation over real HTTP: hundreds of concurrent requests for many tenants, over every
//! strategy the engine offers, through small pools whose connections pass from tenant to
//! tenant, each answered with its caller's rows and no other; and requests naming another
//! tenant, refused without changing anything.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use serde_json::{Value, json};
use tenantry::{Settings, Strategy, Tenant, Tenantry};
use tenantry_testkit::{Backend, Fixture, on_each_backend};

use common::{As, Service, get, json_of, post_document, refusal_of, token_for, user, who};

on_each_backend!(
    concurrent_requests_for_many_tenants_see_only_their_own_rows,
    requests_naming_another_tenant_are_refused_and_change_nothing,
);

/// Documents each tenant is seeded with.
const DOCS: usize = 3;

/// A tenant, its one member's token, its domain, and the documents it was seeded with.
struct Member {
    tenant: Tenant,
    token: String,
    domain: String,
    /// `GET /documents` as seeded: the rows in id order.
    rows: Value,
    ids: BTreeSet<String>,
}

impl Member {
    fn slug(&self) -> &str {
        self.tenant.slug.as_str()
    }

    fn id(&self) -> String {
        self.tenant.id.to_string()
    }

    /// Addressed by its header, with its own token.
    fn by_header(&self) -> As<'_> {
        who(None, Some(self.slug()), Some(&self.token))
    }

    /// Addressed by its domain, with its own token.
    fn by_domain(&self) -> As<'_> {
        who(Some(&self.domain), None, Some(&self.token))
    }
}

/// The tenants' strategies on `backend`: three of each PostgreSQL offers; six databases
/// (SQLite files, MySQL databases) elsewhere.
fn strategies(backend: Backend) -> Vec<Strategy> {
    let (offered, each): (&[Strategy], usize) = match backend {
        Backend::Postgres => (&[Strategy::Database, Strategy::Schema, Strategy::Shared], 3),
        Backend::Sqlite | Backend::Mysql => (&[Strategy::Database], 6),
    };
    offered
        .iter()
        .flat_map(|s| std::iter::repeat_n(*s, each))
        .collect()
}

/// Routing by domain and header; two connections per tenant, six per server, so that
/// connections are closed and opened from one tenant's pool to another's, and the shared
/// pool's pass from one shared tenant to the next.
fn settings() -> Settings {
    Settings {
        pool_max_connections: Some(2),
        pool_max_per_server: Some(6),
        ..common::routing(&["domain", "header"])
    }
}

/// Fresh tenants of `strategies`, one member (`employee`) and one domain each, the service,
/// and each tenant seeded through the service with `DOCS` documents naming it.
async fn fleet(fx: &Fixture, strategies: &[Strategy]) -> (Tenantry, Service, Vec<Arc<Member>>) {
    let mut made = Vec::new();
    for (i, strategy) in strategies.iter().enumerate() {
        let slug = format!("{strategy}-{i}");
        let tenant = fx.create_with(&slug, *strategy).await.expect("create");
        let domain = format!("{slug}.tenants.test");
        fx.tenantry
            .add_domain(&slug, &domain, true)
            .await
            .expect("domain");
        let member = user(&fx.tenantry, &format!("{slug}@example.com")).await;
        fx.tenantry
            .add_member(&member, &slug, "employee")
            .await
            .expect("member");
        made.push((tenant, token_for(&member), domain));
    }
    let tenantry = fx.reopen(settings()).await;
    let service = common::serve(&tenantry).await;
    let seeded = futures::future::join_all(
        made.into_iter()
            .map(|(tenant, token, domain)| seed(&service, tenant, token, domain)),
    )
    .await;
    (
        tenantry,
        service,
        seeded.into_iter().map(Arc::new).collect(),
    )
}

/// Seeds one tenant through the service (by header and by domain in turn) and reads its rows.
async fn seed(service: &Service, tenant: Tenant, token: String, domain: String) -> Member {
    let mut member = Member {
        tenant,
        token,
        domain,
        rows: Value::Null,
        ids: BTreeSet::new(),
    };
    for n in 0..DOCS {
        let path = format!("s3://{}/doc-{n}", member.slug());
        let who = if n % 2 == 0 {
            member.by_header()
        } else {
            member.by_domain()
        };
        let (status, doc) =
            json_of(post_document(service, &who, json!({ "path": path })).await).await;
        assert_eq!(status, 201, "{}: {doc}", member.slug());
        assert_eq!(doc["tenant_id"], json!(member.id()));
        let id = doc["id"].as_str().expect("id").to_owned();
        member.ids.insert(id);
    }
    let (status, rows) = json_of(get(service, "/documents", &member.by_header()).await).await;
    assert_eq!(status, 200, "{rows}");
    member.rows = rows;
    assert_eq!(ids_of(&member.rows), member.ids, "{}", member.slug());
    member
}

fn ids_of(rows: &Value) -> BTreeSet<String> {
    rows.as_array()
        .unwrap_or_else(|| panic!("not a list of rows: {rows}"))
        .iter()
        .map(|row| row["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Checks, on the administrative connection, that each tenant's storage holds its seeded rows
/// and, for shared tenants, no more rows than the shared tenants were seeded with together.
async fn storage_unchanged(fx: &Fixture, members: &[Arc<Member>]) {
    let shared = members
        .iter()
        .filter(|m| m.tenant.strategy == Strategy::Shared)
        .count();
    for m in members {
        let own = fx
            .scalar(
                &m.tenant,
                &format!(
                    "SELECT COUNT(*) FROM documents WHERE tenant_id = '{}' \
                     AND storage_path LIKE 's3://{}/doc-%'",
                    m.tenant.id,
                    m.slug()
                ),
            )
            .await;
        assert_eq!(own, DOCS as i64, "{}", m.slug());
        let all = fx.scalar(&m.tenant, "SELECT COUNT(*) FROM documents").await;
        let expected = if m.tenant.strategy == Strategy::Shared {
            shared * DOCS
        } else {
            DOCS
        };
        assert_eq!(all, expected as i64, "{}: rows in its storage", m.slug());
    }
}

/// A xorshift generator; its seed is printed so that a failing order can be replayed.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("TENANTRY_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            })
            .max(1);
        eprintln!("request order seed: TENANTRY_TEST_SEED={seed}");
        Rng(seed)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// How one request addressed its tenant.
#[derive(Debug, Clone, Copy)]
enum Naming {
    Slug,
    Id,
    Domain,
}

/// What came back for one request.
enum Outcome {
    Rows(Value),
    Busy,
}

async fn concurrent_requests_for_many_tenants_see_only_their_own_rows(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    concurrent_requests(fx, backend).await;
}

/// The same, with every application connection through PgBouncer in transaction mode, whose
/// two server connections per database and role pass from unit to unit: the shared tenants'
/// units take turns on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn through_a_transaction_mode_pgbouncer_every_request_sees_only_its_tenant() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    let Some(bouncer) = tenantry_testkit::PgBouncer::start_with_pool_size("127.0.0.1", 5432, 2)
    else {
        fx.cleanup().await;
        return;
    };
    fx.tenantry
        .set_server_pooler(&fx.server, Some(&bouncer.url("postgres", "", "postgres")))
        .await
        .expect("set the pooler");
    concurrent_requests(fx, Backend::Postgres).await;
    let log = bouncer.log();
    assert!(
        log.contains("user=p_"),
        "the shared pool's logins went elsewhere"
    );
    assert!(
        log.contains("user=t_"),
        "tenants' own logins went elsewhere"
    );
}

async fn concurrent_requests(fx: Fixture, backend: Backend) {
    let (tenantry, service, members) = fleet(&fx, &strategies(backend)).await;

    // Every tenant the same number of times, in a random order, each request naming its
    // tenant a random way.
    const REQUESTS: usize = 360;
    let mut rng = Rng::new();
    let mut order: Vec<(usize, Naming)> = (0..REQUESTS)
        .map(|i| {
            let naming = [Naming::Slug, Naming::Id, Naming::Domain][rng.below(3)];
            (i % members.len(), naming)
        })
        .collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }

    let served = &service;
    let outcomes: Vec<(usize, Naming, Outcome)> = futures::stream::iter(order)
        .map(|(index, naming)| {
            let m = Arc::clone(&members[index]);
            async move {
                let id = m.id();
                let who = match naming {
                    Naming::Slug => m.by_header(),
                    Naming::Id => who(None, Some(&id), Some(&m.token)),
                    Naming::Domain => m.by_domain(),
                };
                let response = get(served, "/documents", &who).await;
                let outcome = match response.status().as_u16() {
                    200 => Outcome::Rows(json_of(response).await.1),
                    503 => {
                        assert!(
                            response
                                .headers()
                                .contains_key(reqwest::header::RETRY_AFTER),
                            "a 503 without Retry-After"
                        );
                        assert_eq!(refusal_of(response).await, (503, "busy".to_owned()));
                        Outcome::Busy
                    }
                    other => {
                        let body = response.text().await.unwrap_or_default();
                        panic!("{} by {naming:?}: {other} {body}", m.slug())
                    }
                };
                (index, naming, outcome)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;

    let mut served = vec![0usize; members.len()];
    let mut busy = 0;
    let mut wrong_rows = 0;
    for (index, naming, outcome) in &outcomes {
        let m = &members[*index];
        let Outcome::Rows(rows) = outcome else {
            busy += 1;
            continue;
        };
        served[*index] += 1;
        let prefix = format!("s3://{}/", m.slug());
        for row in rows.as_array().expect("a list") {
            let mine = row["tenant_id"] == json!(m.id())
                && row["storage_path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with(&prefix));
            if !mine {
                wrong_rows += 1;
                eprintln!("{} by {naming:?} got {row}", m.slug());
            }
        }
        assert_eq!(rows, &m.rows, "{} by {naming:?}: its full set", m.slug());
    }
    eprintln!(
        "{} requests over {} tenants: {} served, {busy} busy",
        outcomes.len(),
        members.len(),
        outcomes.len() - busy
    );
    assert_eq!(outcomes.len(), REQUESTS);
    assert_eq!(wrong_rows, 0, "rows of another tenant were served");
    for (m, n) in members.iter().zip(&served) {
        assert!(*n > 0, "{} was never served", m.slug());
    }

    // Every connection came back; none beyond the server's cap stayed open.
    common::wait_for("every connection to come back", || async {
        let stats = tenantry.pool_stats();
        stats
            .iter()
            .all(|s| s.in_use == 0 && s.waiting == 0)
            .then_some(stats)
    })
    .await
    .iter()
    .for_each(|s| assert!(s.open <= 6, "{s:?}"));
    storage_unchanged(&fx, &members).await;
    drop(service);
    fx.cleanup().await;
}

async fn requests_naming_another_tenant_are_refused_and_change_nothing(backend: Backend) {
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    // On PostgreSQL two shared tenants (the same tables), a schema and a database tenant.
    let strategies = match backend {
        Backend::Postgres => vec![
            Strategy::Shared,
            Strategy::Shared,
            Strategy::Schema,
            Strategy::Database,
        ],
        Backend::Sqlite | Backend::Mysql => vec![Strategy::Database; 3],
    };
    let (_tenantry, service, members) = fleet(&fx, &strategies).await;

    for a in &members {
        for b in members.iter().filter(|b| b.tenant.id != a.tenant.id) {
            let b_id = b.id();
            let attempts = [
                // A's domain, B's id in the header: the two disagree.
                (
                    who(Some(&a.domain), Some(&b_id), Some(&a.token)),
                    "tenant_mismatch",
                ),
                // B alone, by slug, by id, by domain: A's member is not B's.
                (who(None, Some(b.slug()), Some(&a.token)), "not_a_member"),
                (who(None, Some(&b_id), Some(&a.token)), "not_a_member"),
                (who(Some(&b.domain), None, Some(&a.token)), "not_a_member"),
            ];
            for (attempt, code) in &attempts {
                let what = format!("{} at {}: {attempt:?}", a.slug(), b.slug());
                let read = get(&service, "/documents", attempt).await;
                assert_eq!(refusal_of(read).await, (403, (*code).to_owned()), "{what}");
                let path = format!("s3://{}/planted-by-{}", b.slug(), a.slug());
                let write = post_document(&service, attempt, json!({ "path": path })).await;
                assert_eq!(refusal_of(write).await, (403, (*code).to_owned()), "{what}");
            }
            // B's rows, as B's member reads them, are as seeded.
            let (status, rows) = json_of(get(&service, "/documents", &b.by_domain()).await).await;
            assert_eq!(
                (status, &rows),
                (200, &b.rows),
                "{} after {}",
                b.slug(),
                a.slug()
            );
        }
    }
    storage_unchanged(&fx, &members).await;
    drop(service);
    fx.cleanup().await;
}
