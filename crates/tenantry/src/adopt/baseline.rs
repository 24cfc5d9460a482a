//! What an existing storage's schema already holds of the migration set: the version its
//! Tenantry ledger starts at. Read from sqlx's `_sqlx_migrations` (each version of the set
//! up to the highest, none failed, each with the set's checksum), or given by the operator
//! and checked against the storage's tables. Reads only.

use sqlx::{AnyConnection, Row};

use crate::engine::Engine;
use crate::migrate::MigrationSet;
use crate::migrate::ledger;
use crate::migrate::verify::expected_tables;

/// Where the baseline came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum BaselineSource {
    /// sqlx's `_sqlx_migrations`, checksums compared.
    Sqlx,
    /// `--baseline`, the set's tables up to it found.
    Given,
}

/// The storage's baseline, and the tables it holds that the set does not create.
#[derive(Debug, Clone)]
pub(crate) struct Baseline {
    pub version: i64,
    pub source: BaselineSource,
    pub extra_tables: Vec<String>,
}

/// Reads the baseline of the storage `conn` is scoped to; `Err(detail)` says why it cannot
/// be adopted as it is (a database error is `Ok(Err)` too: nothing is written either way).
pub(crate) async fn read(
    conn: &mut AnyConnection,
    engine: Engine,
    set: &MigrationSet,
    given: Option<i64>,
) -> sqlx::Result<std::result::Result<Baseline, String>> {
    let dialect = engine.dialect();
    let ledgers = [ledger::TABLE.to_owned(), ledger::SQLX_TABLE.to_owned()];
    let present = dialect.present_tables(conn, &ledgers).await?;
    if present.contains(ledger::TABLE) {
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _tenantry_migrations")
            .fetch_one(&mut *conn)
            .await?;
        if rows > 0 {
            return Ok(Err(format!(
                "it has a Tenantry ledger ({}) already: it is, or was, a tenant's storage",
                ledger::TABLE
            )));
        }
    }
    let (version, source) = if present.contains(ledger::SQLX_TABLE) {
        match from_sqlx(conn, set).await? {
            Ok(version) => {
                if let Some(given) = given.filter(|g| *g != version) {
                    return Ok(Err(format!(
                        "{} records version {version}, not {given}",
                        ledger::SQLX_TABLE
                    )));
                }
                (version, BaselineSource::Sqlx)
            }
            Err(detail) => return Ok(Err(detail)),
        }
    } else {
        let Some(given) = given else {
            return Ok(Err(format!(
                "it has no {} table; pass --baseline <version> (0: none applied) to say which of the set's migrations its schema holds",
                ledger::SQLX_TABLE
            )));
        };
        if given != 0 && set.get(given).is_none() {
            return Ok(Err(format!("the migration set has no version {given}")));
        }
        (given, BaselineSource::Given)
    };
    // The set's tables up to the baseline must be there; what else is there is reported.
    let expected = expected_tables(&set.up_to(version));
    let all: Vec<String> = all_tables(conn, engine).await?;
    let missing: Vec<&String> = expected.iter().filter(|t| !all.contains(t)).collect();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        return Ok(Err(format!(
            "the set's migrations up to version {version} create table(s) it lacks: {}",
            names.join(", ")
        )));
    }
    let extra_tables = all
        .into_iter()
        .filter(|t| !expected.contains(t) && !ledger::is_ledger(t))
        .collect();
    Ok(Ok(Baseline {
        version,
        source,
        extra_tables,
    }))
}

/// The highest version sqlx recorded, after checking its ledger against the set.
async fn from_sqlx(
    conn: &mut AnyConnection,
    set: &MigrationSet,
) -> sqlx::Result<std::result::Result<i64, String>> {
    let failed: Vec<i64> = sqlx::query_scalar(
        "SELECT version FROM _sqlx_migrations WHERE NOT success ORDER BY version",
    )
    .fetch_all(&mut *conn)
    .await?;
    if let Some(version) = failed.first() {
        return Ok(Err(format!(
            "{} records migration {version} as failed: finish or undo it first",
            ledger::SQLX_TABLE
        )));
    }
    let rows = sqlx::query("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&mut *conn)
        .await?;
    let mut recorded = Vec::with_capacity(rows.len());
    for row in &rows {
        let version: i64 = row.try_get("version")?;
        let checksum: Vec<u8> = row.try_get("checksum")?;
        let Some(migration) = set.get(version) else {
            return Ok(Err(format!(
                "{} records migration {version}, which the migration set does not have",
                ledger::SQLX_TABLE
            )));
        };
        if migration.checksum != checksum {
            return Ok(Err(format!(
                "migration {version} was applied from other SQL than {} (checksums differ)",
                migration.path.display()
            )));
        }
        recorded.push(version);
    }
    let highest = recorded.last().copied().unwrap_or(0);
    let unapplied: Vec<String> = set
        .up_to(highest)
        .iter()
        .filter(|m| !recorded.contains(&m.version))
        .map(|m| m.version.to_string())
        .collect();
    if !unapplied.is_empty() {
        return Ok(Err(format!(
            "{} lacks migration(s) {} below its highest, {highest}",
            ledger::SQLX_TABLE,
            unapplied.join(", ")
        )));
    }
    Ok(Ok(highest))
}

/// Every base table of the connected storage, lowercased.
async fn all_tables(conn: &mut AnyConnection, engine: Engine) -> sqlx::Result<Vec<String>> {
    let rows = sqlx::query(engine.dialect().list_tables_sql())
        .fetch_all(&mut *conn)
        .await?;
    let mut names = Vec::with_capacity(rows.len());
    for row in &rows {
        names.push(row.try_get::<String, _>("name")?.to_ascii_lowercase());
    }
    names.sort();
    Ok(names)
}
