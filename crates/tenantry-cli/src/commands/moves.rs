//! `tenantry tenant move` and `server drain`.

use std::process::ExitCode;

use tenantry::{Drain, MoveStep, MoveTenant, Strategy, Tenantry};

use crate::output;

pub async fn move_tenant(
    tenantry: &Tenantry,
    slug: &str,
    to_server: String,
    strategy: Option<Strategy>,
    json: bool,
) -> anyhow::Result<()> {
    let req = MoveTenant {
        to_server,
        strategy,
    };
    let moved = tenantry
        .move_tenant_with(slug, req, |step| {
            if json {
                // A closed pipe ends the output, not the move.
                let _ = outln!("{}", serde_json::json!({ "step": step }));
            } else {
                errln!("{}", describe(step));
            }
        })
        .await?;
    if json {
        output::json(&moved)?;
    } else {
        outln!("{}", output::tenant(&moved.tenant))?;
        outln!(
            "tenant {slug} moved from {} ({}) to {} ({}): {} rows verified, {} changed while \
             copying; copy {} ms, writes paused {} ms, {} ms in all{}",
            moved.from_server,
            moved.from_strategy,
            moved.tenant.server,
            moved.tenant.strategy,
            moved.rows,
            moved.changed,
            moved.copy_ms,
            moved.pause_ms,
            moved.total_ms,
            if moved.old_dropped {
                ""
            } else {
                "; its old storage could not be dropped yet: `tenantry tenant repair` drops it"
            }
        )?;
    }
    Ok(())
}

fn describe(step: MoveStep) -> &'static str {
    match step {
        MoveStep::Copying => "copying its rows while it serves…",
        MoveStep::Copied => "copied; pausing its writes for the final sync…",
        MoveStep::Paused => "writes paused; syncing and verifying…",
        MoveStep::Switched => "switched; dropping its old storage…",
    }
}

pub async fn drain(tenantry: &Tenantry, drain: Drain, json: bool) -> anyhow::Result<ExitCode> {
    let drained = tenantry
        .drain_server(drain, |step| {
            if json {
                return;
            }
            match &step.error {
                None => errln!(
                    "moved {} to {} ({} rows, writes paused {} ms)",
                    step.slug,
                    step.to.as_deref().unwrap_or("?"),
                    step.rows,
                    step.pause_ms
                ),
                Some(e) => errln!("could not move {}: {e}", step.slug),
            }
        })
        .await?;
    if json {
        output::json(&drained)?;
    } else {
        outln!(
            "server {}: {} moved, {} failed, {} tenants left{}",
            drained.server,
            drained.moved,
            drained.failed,
            drained.left,
            if drained.stopped {
                "; stopped at the failure budget: run the drain again to resume"
            } else {
                ""
            }
        )?;
    }
    Ok(if drained.failed > 0 || drained.left > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
