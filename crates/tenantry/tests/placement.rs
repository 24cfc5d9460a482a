//! Placement: servers with capacity, region and labels; a tenant created without a server
//! goes to the one with the fewest tenants that fits (its strategy, its region, room left),
//! and a full server refuses a tenant named onto it.

use tenantry::placement::PlacementChange;
use tenantry::{Error, NewTenant, Settings, Strategy, Tenantry};
use tenantry_testkit::{
    Backend, Fixture, drop_postgres_database, fresh_postgres_database, require_postgres,
};

struct Fleet {
    fx: Fixture,
    placed: Tenantry,
    admin: String,
    databases: Vec<String>,
}

/// `local` (SQLite) and two PostgreSQL servers, `pg-a` and `pg-b`, with a handle that places
/// by fewest tenants.
async fn fleet() -> Option<Fleet> {
    let admin = require_postgres().await?;
    let fx = Fixture::new(Backend::Sqlite).await?;
    let mut databases = Vec::new();
    for name in ["pg-a", "pg-b"] {
        let (url, db) = fresh_postgres_database(&admin, "tenantry_test_server").await;
        fx.tenantry
            .add_server(name, &url)
            .await
            .expect("add server");
        databases.push(db);
    }
    let placed = fx
        .reopen(Settings {
            placement: Some("fewest_tenants".into()),
            ..Settings::default()
        })
        .await;
    Some(Fleet {
        fx,
        placed,
        admin,
        databases,
    })
}

impl Fleet {
    async fn create(&self, slug: &str, strategy: Strategy) -> tenantry::Result<String> {
        let t = self
            .placed
            .create_tenant(NewTenant {
                slug: slug.into(),
                strategy: Some(strategy),
                ..NewTenant::default()
            })
            .await?;
        Ok(t.server.to_string())
    }

    async fn cleanup(self) {
        self.fx.cleanup().await;
        for db in &self.databases {
            drop_postgres_database(&self.admin, db).await;
        }
    }
}

fn region(name: &str) -> PlacementChange {
    PlacementChange {
        region: Some(Some(name.into())),
        ..PlacementChange::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_tenants_go_to_the_server_with_the_fewest_that_fits() {
    let Some(fleet) = fleet().await else {
        return;
    };
    // Ties go by name: local, pg-a, pg-b, then local again.
    let mut placed = Vec::new();
    for i in 0..4 {
        placed.push(
            fleet
                .create(&format!("t{i}"), Strategy::Database)
                .await
                .expect("create"),
        );
    }
    assert_eq!(placed, ["local", "pg-a", "pg-b", "local"]);
    // A schema tenant never goes to SQLite, which offers no schemas.
    assert_eq!(
        fleet.create("s0", Strategy::Schema).await.expect("schema"),
        "pg-a"
    );

    // The default placement still takes the default server.
    let t = fleet
        .fx
        .tenantry
        .create_tenant(NewTenant {
            slug: "default".into(),
            ..NewTenant::default()
        })
        .await
        .expect("create");
    assert_eq!(t.server.as_str(), "local");
    fleet.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_pins_the_tenant_and_a_full_server_takes_no_more() {
    let Some(fleet) = fleet().await else {
        return;
    };
    let t = &fleet.placed;
    t.set_server_placement("pg-a", region("eu-west-1"))
        .await
        .expect("region");
    let b = t
        .set_server_placement(
            "pg-b",
            PlacementChange {
                capacity: Some(Some(1)),
                add_labels: vec!["ssd".into()],
                ..region("us-east-1")
            },
        )
        .await
        .expect("placement");
    assert_eq!(
        (b.capacity, b.region.as_deref(), b.labels.as_slice()),
        (Some(1), Some("us-east-1"), &["ssd".to_owned()][..])
    );

    assert_eq!(
        t.choose_server(Strategy::Database, Some("us-east-1"))
            .await
            .expect("us"),
        "pg-b"
    );
    t.create_tenant(NewTenant {
        slug: "first-us".into(),
        server: Some("pg-b".into()),
        ..NewTenant::default()
    })
    .await
    .expect("create on pg-b");

    // pg-b is full: refused by name, and left out of placement.
    let err = t
        .create_tenant(NewTenant {
            slug: "second-us".into(),
            server: Some("pg-b".into()),
            ..NewTenant::default()
        })
        .await
        .expect_err("full");
    assert!(
        matches!(&err, Error::ServerFull { name, capacity: 1 } if name == "pg-b"),
        "{err}"
    );
    assert!(
        fleet
            .fx
            .tenantry
            .catalog()
            .find_tenant("second-us")
            .await
            .expect("lookup")
            .is_none()
    );
    let err = t
        .choose_server(Strategy::Database, Some("us-east-1"))
        .await
        .expect_err("no room in the region");
    assert!(
        matches!(&err, Error::NoServerFits { servers, .. }
            if servers.contains(&"pg-b: full".to_owned()) && servers.contains(&"pg-a: another region".to_owned())),
        "{err}"
    );
    // Raising the capacity makes room again.
    t.set_server_placement(
        "pg-b",
        PlacementChange {
            capacity: Some(None),
            ..PlacementChange::default()
        },
    )
    .await
    .expect("no limit");
    assert_eq!(
        t.choose_server(Strategy::Database, Some("us-east-1"))
            .await
            .expect("us"),
        "pg-b"
    );

    let err = t
        .set_server_placement("pg-a", region("Not A Region"))
        .await
        .expect_err("bad region");
    assert!(
        matches!(err, Error::InvalidName { kind: "region", .. }),
        "{err}"
    );
    fleet.cleanup().await;
}
