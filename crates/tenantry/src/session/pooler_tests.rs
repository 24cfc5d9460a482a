//! The transaction-mode pooler path, tried on a direct PostgreSQL connection (no PgBouncer
//! needed): with `behind_pooler`, a unit starts with no prepared statement left, on the
//! server or in sqlx's cache, and sqlx's prepared queries still work in it.

use std::time::Duration;

use sqlx::{Connection, PgConnection, Row};

use super::open::Conn;

/// The test server (`TENANTRY_TEST_POSTGRES_URL`, or the local default); `None` (skip) if
/// it does not answer, a panic under `CI`.
async fn postgres() -> Option<Conn> {
    let url = std::env::var("TENANTRY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let conn = tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(&url)).await;
    match conn {
        Ok(Ok(conn)) => Some(Conn::Postgres(conn)),
        other if std::env::var_os("CI").is_some() => {
            panic!("CI is set and PostgreSQL at {url} is unreachable: {other:?}")
        }
        _ => {
            eprintln!("skipping: PostgreSQL at {url} is unreachable");
            None
        }
    }
}

fn pg(conn: &mut Conn) -> &mut PgConnection {
    conn.as_postgres().expect("a PostgreSQL connection")
}

/// Statements prepared on the server for this session, by name or by sqlx.
async fn prepared(conn: &mut Conn, name: Option<&str>) -> i64 {
    let sql = match name {
        Some(name) => format!("SELECT COUNT(*) FROM pg_prepared_statements WHERE name = '{name}'"),
        None => "SELECT COUNT(*) FROM pg_prepared_statements".to_owned(),
    };
    // Simple protocol: counting prepares nothing.
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .fetch_one(pg(conn))
        .await
        .and_then(|row| row.try_get(0))
        .expect("count prepared statements")
}

/// A typed query, prepared and cached by sqlx.
async fn answer(conn: &mut Conn) -> i64 {
    sqlx::query_scalar("SELECT $1::int8 + 1")
        .bind(41_i64)
        .fetch_one(pg(conn))
        .await
        .expect("a prepared query")
}

#[tokio::test]
async fn behind_a_pooler_a_unit_starts_with_no_prepared_statement() {
    let Some(mut conn) = postgres().await else {
        return;
    };
    conn.start(true).await.expect("unit 1 begins");
    sqlx::raw_sql("PREPARE planted AS SELECT 1")
        .execute(pg(&mut conn))
        .await
        .expect("prepare by name");
    assert_eq!(answer(&mut conn).await, 42);
    assert_eq!(pg(&mut conn).cached_statements_size(), 1);
    assert_eq!(prepared(&mut conn, None).await, 2);
    conn.finish(true).await.expect("unit 1 commits");

    conn.start(true).await.expect("unit 2 begins");
    assert_eq!(pg(&mut conn).cached_statements_size(), 0, "sqlx's cache");
    assert_eq!(prepared(&mut conn, None).await, 0, "the server's");
    assert_eq!(answer(&mut conn).await, 42, "sqlx prepares again");
    conn.finish(false).await.expect("unit 2 rolls back");

    // Without the flag, a statement prepared in one unit is there in the next.
    conn.start(false).await.expect("unit 3 begins");
    sqlx::raw_sql("PREPARE kept AS SELECT 1")
        .execute(pg(&mut conn))
        .await
        .expect("prepare by name");
    conn.finish(true).await.expect("unit 3 commits");
    conn.start(false).await.expect("unit 4 begins");
    assert_eq!(prepared(&mut conn, Some("kept")).await, 1);
    conn.finish(true).await.expect("unit 4 commits");
    conn.close().await;
}
