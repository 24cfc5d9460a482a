//! The route bench's tenants: created a few at a time, seeded with documents through their
//! own pools, and deleted again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use tenantry::{NewTenant, Strategy, Tenant, Tenantry};
use tokio::task::JoinSet;

use super::stats::secs;

/// Tenants created, seeded or deleted at once.
pub(super) const AT_ONCE: usize = 8;

/// A tenant's slug: `bench00000`, `bench00001`, …
pub(super) fn slug(i: usize) -> String {
    format!("bench{i:05}")
}

/// A seeded document's id: `d00000`, `d00001`, …
pub(super) fn doc_id(n: u32) -> String {
    format!("d{n:05}")
}

/// Set when the run is interrupted (Ctrl-C): no new work starts, what was made is removed.
#[derive(Debug, Clone, Default)]
pub(super) struct Stop(Arc<AtomicBool>);

impl Stop {
    pub(super) fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub(super) fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub(super) fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.is_set(), "interrupted");
        Ok(())
    }
}

/// Runs `work` for each of `0..count`, [`AT_ONCE`] at a time, stopping at the first error
/// (after those in flight) or when `stop` is set; reports progress on stderr for long runs.
async fn each<T, F, Fut>(
    what: &str,
    count: usize,
    stop: &Stop,
    work: F,
) -> anyhow::Result<Vec<(usize, T)>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let started = Instant::now();
    let every = (count / 10).max(100);
    let mut running = JoinSet::new();
    let mut done = Vec::with_capacity(count);
    let mut next = 0;
    let mut failed: Option<anyhow::Error> = None;
    loop {
        while failed.is_none() && !stop.is_set() && next < count && running.len() < AT_ONCE {
            let i = next;
            let fut = work(i);
            running.spawn(async move { (i, fut.await) });
            next += 1;
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        match joined {
            Ok((i, Ok(value))) => {
                done.push((i, value));
                if count >= 200 && done.len() % every == 0 {
                    errln!(
                        "{what} {}/{count} tenants ({} s)",
                        done.len(),
                        secs(started.elapsed())
                    );
                }
            }
            Ok((_, Err(e))) => {
                failed.get_or_insert(e);
            }
            Err(e) => {
                failed.get_or_insert(anyhow::Error::new(e).context(format!("{what} a tenant")));
            }
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    stop.check()?;
    Ok(done)
}

/// Creates `count` tenants on `server`, [`AT_ONCE`] at a time; returns them in slug order.
pub(super) async fn create(
    t: &Tenantry,
    count: usize,
    server: &str,
    strategy: Strategy,
    stop: &Stop,
) -> anyhow::Result<Vec<Tenant>> {
    let mut made = each("created", count, stop, |i| {
        let t = t.clone();
        let server = server.to_owned();
        async move {
            t.create_tenant(NewTenant {
                slug: slug(i),
                server: Some(server),
                strategy: Some(strategy),
                ..NewTenant::default()
            })
            .await
            .with_context(|| format!("create tenant {}", slug(i)))
        }
    })
    .await?;
    made.sort_by_key(|(i, _)| *i);
    Ok(made.into_iter().map(|(_, tenant)| tenant).collect())
}

/// One campaign and `rows` documents (`d00000`…) in each tenant, written through the
/// tenant's own pool.
pub(super) async fn seed(
    t: &Tenantry,
    tenants: &[Tenant],
    rows: u32,
    stop: &Stop,
) -> anyhow::Result<()> {
    let tenants: Arc<[Tenant]> = tenants.into();
    each("seeded", tenants.len(), stop, |i| {
        let t = t.clone();
        let tenants = Arc::clone(&tenants);
        async move { seed_one(&t, &tenants[i], rows).await }
    })
    .await?;
    Ok(())
}

async fn seed_one(t: &Tenantry, tenant: &Tenant, rows: u32) -> anyhow::Result<()> {
    let id = tenant.id.to_string();
    let mut sql = format!(
        "INSERT INTO campaigns (id, tenant_id, name) VALUES ('c00000', '{id}', 'bench');\n\
         INSERT INTO documents (id, tenant_id, campaign_id, storage_path, sha256) VALUES "
    );
    for n in 0..rows {
        if n > 0 {
            sql.push_str(", ");
        }
        let doc = doc_id(n);
        sql.push_str(&format!(
            "('{doc}', '{id}', 'c00000', 'uploads/{doc}.pdf', '')"
        ));
    }
    let slug = tenant.slug.as_str();
    let mut tx = t
        .tenant_pool_for(tenant)
        .await?
        .begin()
        .await
        .with_context(|| format!("seed tenant {slug}"))?;
    tx.run_script(&sql)
        .await
        .with_context(|| format!("seed tenant {slug}"))?;
    tx.commit()
        .await
        .with_context(|| format!("seed tenant {slug}"))?;
    Ok(())
}

/// Deletes and purges every tenant the catalog holds, [`AT_ONCE`] at a time, going on past
/// failures (each is reported on stderr); returns how many failed.
pub(super) async fn delete_all(t: &Tenantry) -> anyhow::Result<usize> {
    let slugs: Arc<[String]> = t
        .catalog()
        .tenants()
        .await?
        .into_iter()
        .map(|tenant| tenant.slug.to_string())
        .collect();
    let count = slugs.len();
    if count >= 200 {
        errln!("deleting {count} tenants");
    }
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // Never stopped: cleaning up is what an interruption asks for.
    let never = Stop::default();
    each("deleted", count, &never, |i| {
        let t = t.clone();
        let slugs = Arc::clone(&slugs);
        let failures = Arc::clone(&failures);
        async move {
            if let Err(e) = t.delete_tenant(&slugs[i], true).await {
                failures.fetch_add(1, Ordering::Relaxed);
                let text = crate::output::error_text(&e.into());
                errln!("could not delete tenant {}: {text}", slugs[i]);
            }
            Ok(())
        }
    })
    .await?;
    Ok(failures.load(Ordering::Relaxed))
}

/// How long `work` took, with its result.
pub(super) async fn timed<T>(
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(T, Duration)> {
    let started = Instant::now();
    let value = work.await?;
    Ok((value, started.elapsed()))
}
