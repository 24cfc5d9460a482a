//! `/documents`: typed sqlx queries on the request's unit of work, one arm per engine (the
//! SQL is the same; placeholders are rewritten for PostgreSQL).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tenantry::Engine;
use tenantry_axum::{CurrentCaller, CurrentTenant, Unit};

use crate::error;

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Document {
    pub id: String,
    pub tenant_id: String,
    pub campaign_id: String,
    pub storage_path: String,
    pub status: String,
}

#[derive(Debug, Deserialize)]
pub struct NewDocument {
    pub path: String,
    #[serde(default)]
    pub campaign: Option<String>,
}

/// Runs `$body` with `$conn` bound to the unit's typed connection and `$sql` rewritten for
/// its engine.
macro_rules! on_engine {
    ($unit:expr, $conn:ident, $sql:ident = $text:expr => $body:expr) => {
        match $unit.engine() {
            Engine::Postgres => {
                let $sql = Engine::Postgres.sql($text);
                let $conn = $unit.as_postgres().map_err(internal)?;
                $body
            }
            Engine::Mysql => {
                let $sql = Engine::Mysql.sql($text);
                let $conn = $unit.as_mysql().map_err(internal)?;
                $body
            }
            Engine::Sqlite => {
                let $sql = Engine::Sqlite.sql($text);
                let $conn = $unit.as_sqlite().map_err(internal)?;
                $body
            }
        }
    };
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "query failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the query failed",
    )
}

pub async fn list(
    CurrentTenant(tenant): CurrentTenant,
    mut unit: Unit,
) -> Result<Response, Response> {
    let tenant_id = tenant.id.to_string();
    let docs: Vec<Document> = on_engine!(unit, conn, sql =
        "SELECT id, tenant_id, campaign_id, storage_path, status FROM documents \
         WHERE tenant_id = ? ORDER BY id" =>
        sqlx::query_as(sql).bind(&tenant_id).fetch_all(conn).await.map_err(internal)?);
    Ok(Json(docs).into_response())
}

pub async fn create(
    CurrentTenant(tenant): CurrentTenant,
    CurrentCaller(caller): CurrentCaller,
    mut unit: Unit,
    Json(new): Json<NewDocument>,
) -> Result<Response, Response> {
    let role = caller.role.clone().unwrap_or_default();
    if !unit_roles_allow(&role) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "insufficient_role",
            format!("adding documents needs the role employee or above; you are {role:?}"),
        ));
    }
    if new.path.is_empty() || new.path.len() > 512 {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_document",
            "path must be 1 to 512 characters",
        ));
    }
    let tenant_id = tenant.id.to_string();
    let campaign_name = new.campaign.unwrap_or_else(|| "default".to_owned());
    let campaign_id = campaign(&mut unit, &tenant_id, &campaign_name).await?;
    let id = ulid::Ulid::new().to_string();
    on_engine!(unit, conn, sql =
        "INSERT INTO documents (id, tenant_id, campaign_id, storage_path, sha256) \
         VALUES (?, ?, ?, ?, '')" =>
        { sqlx::query(sql).bind(&id).bind(&tenant_id).bind(&campaign_id).bind(&new.path)
            .execute(conn).await.map_err(internal)?; });
    let doc = Document {
        id,
        tenant_id,
        campaign_id,
        storage_path: new.path,
        status: "uploaded".into(),
    };
    Ok((StatusCode::CREATED, Json(doc)).into_response())
}

/// The id of the tenant's campaign `name`, created if it does not exist.
async fn campaign(unit: &mut Unit, tenant_id: &str, name: &str) -> Result<String, Response> {
    let found: Option<String> = on_engine!(unit, conn, sql =
        "SELECT id FROM campaigns WHERE tenant_id = ? AND name = ?" =>
        sqlx::query_scalar(sql).bind(tenant_id).bind(name).fetch_optional(conn).await.map_err(internal)?);
    if let Some(id) = found {
        return Ok(id);
    }
    let id = ulid::Ulid::new().to_string();
    on_engine!(unit, conn, sql =
        "INSERT INTO campaigns (id, tenant_id, name) VALUES (?, ?, ?)" =>
        { sqlx::query(sql).bind(&id).bind(tenant_id).bind(name).execute(conn).await.map_err(internal)?; });
    Ok(id)
}

/// Writers: `employee` and above in the default role set (`viewer` reads only).
fn unit_roles_allow(role: &str) -> bool {
    tenantry::identity::Roles::default().at_least(role, "employee")
}
