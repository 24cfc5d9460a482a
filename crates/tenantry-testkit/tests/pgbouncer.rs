//! The PgBouncer harness: a role created at runtime logs in through it with its password, and
//! in transaction mode, where clients take turns on one server connection, sqlx's named
//! prepared statements collide unless each transaction starts clean.

use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};
use tenantry_testkit::{PgBouncer, postgres_url, require_postgres};

/// A login role with a password on the upstream server, dropped by [`Role::drop_role`].
struct Role {
    admin_url: String,
    name: String,
    password: String,
}

impl Role {
    async fn create(admin_url: &str) -> Role {
        let id = ulid::Ulid::new().to_string().to_ascii_lowercase();
        let role = Role {
            admin_url: admin_url.to_owned(),
            name: format!("tenantry_test_pgb_{id}"),
            password: format!("pw-{id}"),
        };
        role.admin(&format!(
            "CREATE ROLE \"{}\" LOGIN PASSWORD '{}'",
            role.name, role.password
        ))
        .await;
        role
    }

    async fn admin(&self, sql: &str) {
        let mut conn = PgConnection::connect(&self.admin_url)
            .await
            .expect("admin connection");
        sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = conn.close().await;
    }

    async fn drop_role(self) {
        self.admin(&format!("DROP ROLE \"{}\"", self.name)).await;
    }
}

/// The bouncer in front of the test server, or `None` (skip) outside CI.
async fn bouncer(pool_size: u32) -> Option<(PgBouncer, String)> {
    let admin_url = require_postgres().await?;
    let parsed = url::Url::parse(&postgres_url()).expect("valid PostgreSQL URL");
    let host = parsed.host_str().expect("a host").to_owned();
    let port = parsed.port().unwrap_or(5432);
    let bouncer = PgBouncer::start_with_pool_size(&host, port, pool_size)?;
    Some((bouncer, admin_url))
}

#[tokio::test]
async fn a_runtime_role_logs_in_through_the_bouncer_with_its_password() {
    let Some((bouncer, admin_url)) = bouncer(2).await else {
        return;
    };
    let role = Role::create(&admin_url).await;
    let mut conn = PgConnection::connect(&bouncer.url(&role.name, &role.password, "postgres"))
        .await
        .unwrap_or_else(|e| panic!("login through PgBouncer: {e}\n{}", bouncer.log()));
    let mut tx = conn.begin().await.expect("begin");
    let row = sqlx::query("SELECT current_user::text, $1::int4 + 1")
        .bind(41)
        .fetch_one(&mut *tx)
        .await
        .expect("query in a transaction");
    assert_eq!(row.get::<String, _>(0), role.name);
    assert_eq!(row.get::<i32, _>(1), 42);
    tx.commit().await.expect("commit");
    conn.close().await.expect("close");

    let wrong = PgConnection::connect(&bouncer.url(&role.name, "not-the-password", "postgres"))
        .await
        .map(|_| ());
    let message = wrong.expect_err("a wrong password is refused").to_string();
    assert!(message.contains("authentication failed"), "{message}");

    drop(bouncer);
    role.drop_role().await;
}

/// One unit of work: a transaction running a named prepared statement, optionally starting
/// with the hygiene that makes a shared server connection safe in transaction mode.
async fn unit(conn: &mut PgConnection, n: i32, hygiene: bool) -> Result<i32, sqlx::Error> {
    if hygiene {
        conn.clear_cached_statements().await?;
    }
    let mut tx = conn.begin().await?;
    if hygiene {
        sqlx::raw_sql("DEALLOCATE ALL").execute(&mut *tx).await?;
    }
    let result = sqlx::query("SELECT $1::int4 * 2")
        .bind(n)
        .fetch_one(&mut *tx)
        .await
        .map(|row| row.get::<i32, _>(0));
    match result {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(e) => {
            tx.rollback().await?;
            Err(e)
        }
    }
}

#[tokio::test]
async fn prepared_statements_collide_on_a_shared_server_connection_without_hygiene() {
    let Some((bouncer, admin_url)) = bouncer(1).await else {
        return;
    };
    let role = Role::create(&admin_url).await;
    let url = bouncer.url(&role.name, &role.password, "postgres");
    let mut a = PgConnection::connect(&url).await.expect("client a");
    let mut b = PgConnection::connect(&url).await.expect("client b");

    // Both clients name their first statement sqlx_s_1, on the one server connection.
    let first = unit(&mut a, 1, false).await;
    assert_eq!(first.map_err(|e| e.to_string()), Ok(2));
    let collision = unit(&mut b, 2, false).await.expect_err("a collision");
    let code = collision
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    // 42P05: "prepared statement ... already exists"; 26000: "... does not exist".
    assert!(
        matches!(code.as_deref(), Some("42P05" | "26000")),
        "unexpected error: {collision}"
    );

    // Clearing the client's cache and the server's statements in each transaction: every
    // unit succeeds, turn after turn.
    for n in 0..6 {
        let (conn, name) = if n % 2 == 0 {
            (&mut a, "a")
        } else {
            (&mut b, "b")
        };
        let doubled = unit(conn, n, true)
            .await
            .unwrap_or_else(|e| panic!("client {name}, turn {n}: {e}"));
        assert_eq!(doubled, n * 2);
    }

    let _ = a.close().await;
    let _ = b.close().await;
    drop(bouncer);
    role.drop_role().await;
}
