//! One shared tenant's rows: deleting them all (children before parents) and proving none
//! is left.

use sqlx::{AnyConnection, AssertSqlSafe, Connection, Row};

use super::{SHARED_SCHEMA, admin, context_key, context_token, rls, shared_schema};
use crate::Tenantry;
use crate::catalog::Tenant;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::ident::SqlName;
use crate::storage::Place;

/// What a row-level operation on one shared tenant needs: an admin connection in the pool's
/// database, the tenant's context, and its tables (qualified, children before parents) with
/// the quoted tenant column.
struct RowScope {
    admin: AnyConnection,
    token: String,
    tables: Vec<(SqlName, String)>,
    column: String,
}

async fn row_scope(t: &Tenantry, place: &Place, tenant: &Tenant) -> Result<Option<RowScope>> {
    let slug = tenant.slug.as_str();
    let Some(pool) = t.catalog.shared_pool(tenant.server.as_str()).await? else {
        return Ok(None);
    };
    let token = context_token(&context_key(t, &pool)?, tenant);
    let mut admin = admin(place, &pool).await?;
    let column = &t.config.tenant_column;
    let mut names: Vec<SqlName> = rls::tables(&mut admin, column)
        .await
        .map_err(Error::storage(slug, "list the shared tables"))?
        .into_iter()
        .filter(|(_, has)| *has)
        .map(|(name, _)| SqlName::new("shared table", &name))
        .collect::<Result<_>>()?;
    let edges = references(&mut admin)
        .await
        .map_err(Error::storage(slug, "list the shared foreign keys"))?;
    children_first(&mut names, &edges);
    let pg = Engine::Postgres;
    let tables = names
        .into_iter()
        .map(|table| {
            let qualified = format!("{}.{}", pg.quote(&shared_schema()), pg.quote(&table));
            (table, qualified)
        })
        .collect();
    let column = pg.quote(&SqlName::new("tenant column", column)?);
    Ok(Some(RowScope {
        admin,
        token,
        tables,
        column,
    }))
}

/// `(child, parent)` for every foreign key between two tables of the shared schema.
async fn references(conn: &mut AnyConnection) -> sqlx::Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT c.relname::text AS child, p.relname::text AS parent FROM pg_constraint con \
         JOIN pg_class c ON c.oid = con.conrelid JOIN pg_class p ON p.oid = con.confrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE con.contype = 'f' AND n.nspname = $1 AND con.conrelid <> con.confrelid",
    )
    .bind(SHARED_SCHEMA)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("child")?, r.try_get("parent")?)))
        .collect()
}

/// Orders `tables` so that a table referencing another comes before it (cycles keep their
/// catalog order).
fn children_first(tables: &mut Vec<SqlName>, edges: &[(String, String)]) {
    let mut ordered = Vec::with_capacity(tables.len());
    let mut left = std::mem::take(tables);
    while !left.is_empty() {
        // A table no remaining table references can go now.
        let free = left.iter().position(|t| {
            !edges.iter().any(|(child, parent)| {
                parent == t.as_str()
                    && child != t.as_str()
                    && left.iter().any(|o| o.as_str() == child)
            })
        });
        ordered.push(left.remove(free.unwrap_or(0)));
    }
    *tables = ordered;
}

async fn count_rows(
    conn: &mut AnyConnection,
    qualified: &str,
    column: &str,
    tenant: &Tenant,
) -> Result<i64> {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {qualified} WHERE ({column})::text = $1"
    )))
    .bind(tenant.id.to_string())
    .fetch_one(conn)
    .await
    .map_err(Error::storage(tenant.slug.as_str(), "count its rows"))
}

/// Admits the tenant inside `conn`'s transaction (no other session sees it before commit)
/// and sets its context, so the work holds whether or not the administrator is subject to
/// row-level security, even after the tenant was revoked. Returns whether it was admitted
/// here, so that [`leave`] takes back only this admission.
async fn enter(conn: &mut AnyConnection, tenant: &Tenant, token: &str) -> Result<bool> {
    let slug = tenant.slug.as_str();
    let entered = sqlx::query(
        "INSERT INTO tenantry_private.admitted (tenant) VALUES ($1) ON CONFLICT DO NOTHING",
    )
    .bind(tenant.id.to_string())
    .execute(&mut *conn)
    .await
    .map_err(Error::storage(slug, "enter its rows"))?
    .rows_affected()
        == 1;
    sqlx::raw_sql(AssertSqlSafe(super::enter_sql(token, tenant)?))
        .execute(conn)
        .await
        .map_err(Error::storage(slug, "set its context"))?;
    Ok(entered)
}

async fn leave(conn: &mut AnyConnection, tenant: &Tenant, entered: bool) -> Result<()> {
    if entered {
        sqlx::query("DELETE FROM tenantry_private.admitted WHERE tenant = $1")
            .bind(tenant.id.to_string())
            .execute(conn)
            .await
            .map_err(Error::storage(tenant.slug.as_str(), "leave its rows"))?;
    }
    Ok(())
}

/// Admits the tenant inside `conn`'s transaction and sets its context, to read or write its
/// rows (see [`enter`]); `leave_rows` with the result takes the admission back.
pub(crate) async fn enter_rows(
    t: &Tenantry,
    tenant: &Tenant,
    conn: &mut AnyConnection,
) -> Result<bool> {
    let Some(pool) = t.catalog.shared_pool(tenant.server.as_str()).await? else {
        return Err(Error::VerifyFailed {
            tenant: tenant.slug.to_string(),
            detail: format!("server {} has no shared pool", tenant.server),
        });
    };
    let token = context_token(&context_key(t, &pool)?, tenant);
    enter(conn, tenant, &token).await
}

pub(crate) async fn leave_rows(
    conn: &mut AnyConnection,
    tenant: &Tenant,
    entered: bool,
) -> Result<()> {
    leave(conn, tenant, entered).await
}

/// Deletes the tenant's rows from every shared table in one transaction, and proves none
/// are left before committing. The tenant's admission is not changed.
pub(super) async fn delete_rows(t: &Tenantry, place: &Place, tenant: &Tenant) -> Result<()> {
    let slug = tenant.slug.as_str();
    let Some(mut scope) = row_scope(t, place, tenant).await? else {
        return Ok(());
    };
    let mut tx = scope
        .admin
        .begin()
        .await
        .map_err(Error::storage(slug, "begin deletion"))?;
    let entered = enter(&mut tx, tenant, &scope.token).await?;
    for (table, qualified) in &scope.tables {
        let column = &scope.column;
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {qualified} WHERE ({column})::text = $1"
        )))
        .bind(tenant.id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(Error::storage(slug, "delete its rows"))?;
        let left = count_rows(&mut tx, qualified, column, tenant).await?;
        if left != 0 {
            return Err(Error::VerifyFailed {
                tenant: slug.to_owned(),
                detail: format!("{left} row(s) left in {table} after deleting them"),
            });
        }
    }
    leave(&mut tx, tenant, entered).await?;
    tx.commit()
        .await
        .map_err(Error::storage(slug, "commit deletion"))
}

/// Whether any shared table still holds a row of the tenant.
pub(super) async fn has_rows(t: &Tenantry, place: &Place, tenant: &Tenant) -> Result<bool> {
    let slug = tenant.slug.as_str();
    let Some(mut scope) = row_scope(t, place, tenant).await? else {
        return Ok(false);
    };
    let mut tx = scope
        .admin
        .begin()
        .await
        .map_err(Error::storage(slug, "begin a count"))?;
    // Rolled back when dropped: the admission entered here is never committed.
    enter(&mut tx, tenant, &scope.token).await?;
    for (_, qualified) in &scope.tables {
        if count_rows(&mut tx, qualified, &scope.column, tenant).await? > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<SqlName> {
        list.iter()
            .map(|n| SqlName::new("t", n).expect("name"))
            .collect()
    }

    #[test]
    fn children_are_deleted_before_their_parents() {
        let mut tables = names(&["campaigns", "document_jobs", "documents"]);
        let edges = vec![
            ("documents".to_owned(), "campaigns".to_owned()),
            ("document_jobs".to_owned(), "documents".to_owned()),
        ];
        children_first(&mut tables, &edges);
        let order: Vec<&str> = tables.iter().map(SqlName::as_str).collect();
        assert_eq!(order, ["document_jobs", "documents", "campaigns"]);
    }
}
