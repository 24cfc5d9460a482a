//! Tenants served through PgBouncer in transaction mode: with every strategy behind one
//! bouncer whose server connections are few and lent per transaction, concurrent units of
//! many tenants see their own rows only, and sqlx's prepared statements keep working.

use futures::StreamExt;
use tenantry::{Settings, Strategy, Tenant, Tenantry};
use tenantry_testkit::{Backend, Fixture, PgBouncer};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_strategy_through_a_transaction_mode_bouncer_sees_only_its_own_rows() {
    let Some(fx) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    // Two server connections per database and role: units of different tenants of the
    // shared pool take turns on the same server connections.
    let Some(bouncer) = PgBouncer::start_with_pool_size("127.0.0.1", 5432, 2) else {
        fx.cleanup().await;
        return;
    };
    let pooler = bouncer.url("postgres", "", "postgres");
    let server = fx
        .tenantry
        .set_server_pooler(&fx.server, Some(&pooler))
        .await
        .expect("set the pooler");
    assert!(server.pooler_url.is_some());

    let mut tenants = Vec::new();
    for strategy in [Strategy::Database, Strategy::Schema, Strategy::Shared] {
        for n in 0..2 {
            let slug = format!("{}-{n}", strategy.as_str());
            tenants.push(fx.create_with(&slug, strategy).await.expect("create"));
        }
    }
    let tenantry = fx
        .reopen(Settings {
            pool_max_connections: Some(2),
            ..Settings::default()
        })
        .await;
    for tenant in &tenants {
        seed(&tenantry, tenant, 5).await;
    }

    // Many units, every tenant at once, each reading with sqlx's named prepared statements.
    let reads = (0..240).map(|i| tenants[i % tenants.len()].clone());
    let results: Vec<(Tenant, Vec<(String, String)>)> = futures::stream::iter(reads)
        .map(|tenant| {
            let tenantry = tenantry.clone();
            async move {
                let rows = read(&tenantry, &tenant).await;
                (tenant, rows)
            }
        })
        .buffer_unordered(24)
        .collect()
        .await;
    let mut wrong = 0;
    for (tenant, rows) in &results {
        assert_eq!(
            rows.len(),
            5,
            "tenant {} saw {} rows",
            tenant.slug,
            rows.len()
        );
        for (tenant_id, path) in rows {
            if tenant_id != &tenant.id.to_string()
                || !path.starts_with(&format!("{}/", tenant.slug))
            {
                wrong += 1;
            }
        }
    }
    assert_eq!(wrong, 0, "rows of another tenant were served");
    // Every login went through the bouncer: each tenant's own role, and the shared pool's.
    let log = bouncer.log();
    for tenant in &tenants {
        let role = match &tenant.role {
            Some(role) => role.to_string(),
            None => "p_".to_owned(),
        };
        assert!(
            log.contains(&format!("user={role}")),
            "{} not through the bouncer",
            tenant.slug
        );
    }
    drop(tenantry);
    fx.cleanup().await;
}

/// Writes `n` documents (and their campaign) as the tenant's own application would.
async fn seed(tenantry: &Tenantry, tenant: &Tenant, n: usize) {
    let pool = tenantry.tenant_pool_for(tenant).await.expect("pool");
    let mut tx = pool.begin().await.expect("begin");
    let id = tenant.id.to_string();
    let conn = tx.as_postgres().expect("postgres");
    sqlx::query("INSERT INTO campaigns (id, tenant_id, name) VALUES ($1, $2, $3)")
        .bind("c1")
        .bind(&id)
        .bind("seed")
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("campaign of {}: {e}", tenant.slug));
    for i in 0..n {
        sqlx::query(
            "INSERT INTO documents (id, tenant_id, campaign_id, storage_path, sha256) \
             VALUES ($1, $2, 'c1', $3, '')",
        )
        .bind(format!("d{i}"))
        .bind(&id)
        .bind(format!("{}/doc-{i}", tenant.slug))
        .execute(&mut *conn)
        .await
        .expect("document");
    }
    tx.commit().await.expect("commit");
}

/// Every document the tenant's unit of work can see, without filtering on the tenant.
async fn read(tenantry: &Tenantry, tenant: &Tenant) -> Vec<(String, String)> {
    let pool = tenantry.tenant_pool_for(tenant).await.expect("pool");
    let mut tx = pool.begin().await.expect("begin");
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT tenant_id, storage_path FROM documents ORDER BY id")
            .fetch_all(tx.as_postgres().expect("postgres"))
            .await
            .expect("read");
    tx.commit().await.expect("commit");
    rows
}
