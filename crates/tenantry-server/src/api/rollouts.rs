//! `/v1/rollouts`: start a rollout (`migrate`, `down`, `undo`) as a job — `202` with its id,
//! run by a task of this server — and read its progress from the catalog.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use tenantry::migrate::rollout::{Budget, RolloutOptions, Selection};
use tenantry::{ItemState, RevertTarget, Rollout, RolloutItem, Scope, Strategy};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::body::{Json, Path};
use crate::problem::Problem;

/// What a rollout does.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Apply pending migrations (`tenantry migrate --all`).
    #[default]
    Migrate,
    /// Revert to a version or by steps (`tenantry migrate down`).
    Down,
    /// Take back what another rollout applied (`tenantry migrate undo`).
    Undo,
}

/// A rollout to start; the fields are the CLI's controls.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRollout {
    #[serde(default)]
    pub kind: Kind,
    /// These tenants (slugs) only; every tenant when left out.
    pub tenants: Option<Vec<String>>,
    #[serde(default)]
    pub servers: Vec<String>,
    #[serde(default)]
    pub strategies: Vec<Strategy>,
    /// Only tenants with all these labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// The first N tenants form a wave of their own; a failure there stops the rollout.
    pub canary: Option<usize>,
    pub wave_size: Option<usize>,
    /// A count (`5`) or a percentage (`10%`) of failures before it stops.
    pub max_failures: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    /// `down`: revert every version above this one.
    pub to: Option<i64>,
    /// `down`: revert this many versions per tenant.
    pub steps: Option<usize>,
    /// `undo`: the rollout to take back.
    pub rollout: Option<String>,
}

/// A rollout accepted: poll `Location` for its progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct Started {
    pub rollout: String,
    /// The same rollout was running already, and this request joined it.
    pub joined: bool,
}

#[utoipa::path(post, path = "/v1/rollouts", tag = "rollouts", request_body = StartRollout,
    responses((status = 202, body = Started)))]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<StartRollout>,
) -> Result<impl IntoResponse, Problem> {
    caller.fleet(Scope::MigrationsRun, "resource")?;
    let t = &state.tenantry;
    let set = t.migrations()?;
    let options = options(&body)?;
    let selection = match &body.tenants {
        Some(slugs) => Selection::Slugs(slugs.clone()),
        None => Selection::All,
    };
    let actor = caller.0.actor();
    let (id, joined) = match body.kind {
        Kind::Migrate => t.start_rollout(&set, &selection, &options, &actor).await?,
        Kind::Down => {
            let target = match (body.to, body.steps) {
                (Some(to), None) => RevertTarget::To(to),
                (None, Some(steps)) if steps > 0 => RevertTarget::Steps(steps),
                _ => {
                    return Err(Problem::invalid(
                        "to",
                        "a down rollout takes exactly one of `to` (a version) or `steps` (1 or more)",
                    ));
                }
            };
            t.start_revert(&set, &selection, &options, target, &actor)
                .await?
        }
        Kind::Undo => {
            let Some(of) = &body.rollout else {
                return Err(Problem::invalid(
                    "rollout",
                    "an undo names the rollout to take back",
                ));
            };
            t.start_undo(of, &set, &options, &actor).await?
        }
    };
    state
        .jobs
        .run_rollout(t.clone(), id.clone(), set, actor)
        .await;
    let location = format!("/v1/rollouts/{id}");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        axum::Json(Started {
            rollout: id,
            joined,
        }),
    ))
}

fn options(body: &StartRollout) -> Result<RolloutOptions, Problem> {
    let max_failures = body
        .max_failures
        .as_deref()
        .map(str::parse::<Budget>)
        .transpose()
        .map_err(|e| Problem::invalid("max_failures", e.to_string()))?;
    if body.wave_size == Some(0) {
        return Err(Problem::invalid(
            "wave_size",
            "a wave holds at least one tenant",
        ));
    }
    Ok(RolloutOptions {
        servers: body.servers.clone(),
        strategies: body.strategies.clone(),
        labels: body.labels.clone(),
        canary: body.canary.unwrap_or(0),
        wave_size: body.wave_size,
        max_failures,
        dry_run: body.dry_run,
        lease: Duration::from_secs(30),
        ..RolloutOptions::default()
    })
}

/// A rollout and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct RolloutStatus {
    #[serde(flatten)]
    pub rollout: Rollout,
    /// Items per state (`pending`, `leased`, `migrated`, `failed`, …).
    pub counts: BTreeMap<String, i64>,
    /// Items settled (in a final state) of `total`.
    pub settled: i64,
    /// The failed tenants, with their errors.
    pub failed: Vec<RolloutItem>,
}

#[utoipa::path(get, path = "/v1/rollouts", tag = "rollouts",
    responses((status = 200, body = Vec<Rollout>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Vec<Rollout>>, Problem> {
    caller.fleet(Scope::TenantsRead, "resource")?;
    Ok(axum::Json(state.tenantry.catalog().rollouts(100).await?))
}

#[utoipa::path(get, path = "/v1/rollouts/{id}", tag = "rollouts",
    params(("id" = String, Path)), responses((status = 200, body = RolloutStatus)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<RolloutStatus>, Problem> {
    caller.fleet(Scope::TenantsRead, "rollout")?;
    let catalog = state.tenantry.catalog();
    let rollout = catalog.rollout(&id).await?;
    let mut counts = BTreeMap::new();
    let mut settled = 0;
    for c in catalog.rollout_counts(&id).await? {
        *counts.entry(c.state.to_string()).or_insert(0) += c.count;
        if c.state.is_final() {
            settled += c.count;
        }
    }
    let failed = match counts.get(ItemState::Failed.as_str()) {
        Some(_) => catalog
            .rollout_items(&id)
            .await?
            .into_iter()
            .filter(|i| i.state == ItemState::Failed)
            .take(100)
            .collect(),
        None => Vec::new(),
    };
    Ok(axum::Json(RolloutStatus {
        rollout,
        counts,
        settled,
        failed,
    }))
}
