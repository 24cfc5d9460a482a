//! A move's rows: the first copy, made while the tenant serves from one snapshot of its old
//! place, remembering each keyed row's hash by its key; and the final sync, made while the
//! tenant is shut out, which copies again only the rows whose hash changed (deleting the old
//! version by key), deletes the rows gone since, copies keyless tables whole, and then reads
//! the new place back against the old one's counts and checksums.

use std::collections::HashMap;

use futures::TryStreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Connection};

use crate::Tenantry;
use crate::archive::export::{begin_snapshot, read_table, table_rows};
use crate::archive::import::flush;
use crate::archive::scope::{DataScope, TableSpec};
use crate::archive::{TableSum, row_hash};
use crate::catalog::Tenant;
use crate::engine::Engine;
use crate::engine::rows::KeyedRows;
use crate::engine::value::Neutral;
use crate::error::{Error, Result};
use crate::ident::SqlName;
use crate::migrate::ledger;
use crate::storage::shared;

/// One table in both places: the new place's columns in the old place's order.
struct Pair {
    from: TableSpec,
    to: TableSpec,
    /// A keyed table's rows as first copied: key digest → row digest.
    seen: HashMap<u128, u128>,
}

/// Both places' storage, and what the first copy saw.
pub(super) struct Copy {
    from: DataScope,
    to: DataScope,
    pairs: Vec<Pair>,
    /// The migration version both places are at.
    pub version: i64,
}

/// What the final sync did.
pub(super) struct Synced {
    /// Rows written again or deleted: those that changed while the first copy ran.
    pub changed: u64,
    /// Rows the tenant has, verified in the new place.
    pub rows: u64,
}

impl Copy {
    /// Copies every row of `from`'s storage into `to`'s (provisioned, hidden, at the same
    /// version), from one snapshot, in one transaction.
    pub(super) async fn first(
        t: &Tenantry,
        from: &Tenant,
        to: &Tenant,
        version: i64,
    ) -> Result<Copy> {
        let slug = from.slug.as_str();
        let id = from.id.to_string();
        let mut src = DataScope::open(t, from).await?;
        let mut dst = DataScope::open(t, to).await?;
        let mut pairs = pair(from, &src.tables, &dst.tables)?;
        let (src_engine, src_filter) = (src.engine, src.filter.clone());
        let mut read = begin_read(t, &mut src, from, version).await?;
        let mut write = dst
            .conn
            .begin()
            .await
            .map_err(Error::storage(slug, "begin writing its new place"))?;
        let entered = enter(t, to, &mut write, dst.filter.is_some()).await?;
        for pair in &mut pairs {
            let mut batch = Vec::new();
            let batch_rows = dst.engine.dialect().batch_rows(pair.to.columns.len());
            let mut stream = std::pin::pin!(table_rows(
                &mut read,
                src_engine,
                from,
                &pair.from,
                src_filter.as_ref()
            ));
            while let Some(mut row) = stream.try_next().await? {
                let hash = row_hash(&mut row, pair.from.tenant_at.map(|at| (at, id.as_str())));
                if !pair.from.key.is_empty() {
                    pair.seen
                        .insert(key_digest(&row, &pair.from.key), short(&hash));
                }
                batch.push(neutral(slug, pair, &row)?);
                if batch.len() >= batch_rows {
                    insert(&mut write, dst.engine, slug, pair, &mut batch).await?;
                }
            }
            insert(&mut write, dst.engine, slug, pair, &mut batch).await?;
        }
        leave(&mut write, to, entered, dst.filter.is_some()).await?;
        write
            .commit()
            .await
            .map_err(Error::storage(slug, "commit its first copy"))?;
        // Rolled back: a shared tenant's admission entered to read is never committed.
        drop(read);
        Ok(Copy {
            from: src,
            to: dst,
            pairs,
            version,
        })
    }

    /// Brings the new place level with the old one, which is shut out (no unit of the
    /// tenant can commit there any more), and proves them equal; one transaction.
    pub(super) async fn finish(
        &mut self,
        t: &Tenantry,
        from: &Tenant,
        to: &Tenant,
    ) -> Result<Synced> {
        let slug = from.slug.as_str();
        // A fresh connection: shutting a shared tenant out ended every session that had
        // entered its rows, the first copy's included.
        self.from = DataScope::open(t, from).await?;
        let src_engine = self.from.engine;
        let dst_engine = self.to.engine;
        src_engine
            .dialect()
            .quiesce(&mut self.from.conn)
            .await
            .map_err(Error::storage(slug, "wait for its last commits"))?;
        let src_filter = self.from.filter.clone();
        let dst_filter = self.to.filter.clone();
        let mut read = begin_read(t, &mut self.from, from, self.version).await?;
        let mut write = self
            .to
            .conn
            .begin()
            .await
            .map_err(Error::storage(slug, "begin writing its new place"))?;
        let entered = enter(t, to, &mut write, dst_filter.is_some()).await?;
        let id = from.id.to_string();
        let own = dst_filter.as_ref().map(|c| (c, id.as_str()));
        let mut changed = 0;
        let mut sums = Vec::with_capacity(self.pairs.len());
        for pair in &mut self.pairs {
            let tenant_at = pair.from.tenant_at.map(|at| (at, id.as_str()));
            let keyed = !pair.from.key.is_empty();
            if !keyed {
                // No key to compare by: the table is copied again whole.
                dst_engine
                    .dialect()
                    .delete_all(&mut write, &pair.to.name, own)
                    .await
                    .map_err(Error::storage(slug, "empty a table without a key"))?;
            }
            let mut left = std::mem::take(&mut pair.seen);
            let mut sum = TableSum::default();
            // Rows whose key the first copy saw, changed since: their old version is
            // deleted by key first. Rows with a key it did not see are only inserted.
            let mut changes = Vec::new();
            let mut added = Vec::new();
            let batch_rows = dst_engine.dialect().batch_rows(pair.to.columns.len());
            let mut stream = std::pin::pin!(table_rows(
                &mut read,
                src_engine,
                from,
                &pair.from,
                src_filter.as_ref()
            ));
            while let Some(mut row) = stream.try_next().await? {
                let hash = sum.add(&mut row, tenant_at);
                let seen = match keyed {
                    true => left.remove(&key_digest(&row, &pair.from.key)),
                    false => None,
                };
                if seen == Some(short(&hash)) {
                    continue;
                }
                changed += u64::from(keyed);
                let batch = if seen.is_some() {
                    &mut changes
                } else {
                    &mut added
                };
                batch.push(neutral(slug, pair, &row)?);
                if changes.len() >= batch_rows {
                    replace(&mut write, dst_engine, slug, pair, &mut changes, own).await?;
                }
                if added.len() >= batch_rows {
                    insert(&mut write, dst_engine, slug, pair, &mut added).await?;
                }
            }
            replace(&mut write, dst_engine, slug, pair, &mut changes, own).await?;
            insert(&mut write, dst_engine, slug, pair, &mut added).await?;
            if !left.is_empty() {
                // Rows deleted from the old place since the first copy: found by key digest
                // in the new place, then deleted there by key.
                let mut gone = Vec::new();
                {
                    let mut rows = std::pin::pin!(table_rows(
                        &mut write,
                        dst_engine,
                        to,
                        &pair.to,
                        dst_filter.as_ref()
                    ));
                    while let Some(row) = rows.try_next().await? {
                        if left.contains_key(&key_digest(&row, &pair.from.key)) {
                            gone.push(neutral(slug, pair, &row)?);
                        }
                    }
                }
                changed += gone.len() as u64;
                for chunk in gone.chunks(dst_engine.dialect().batch_rows(pair.from.key.len())) {
                    delete(&mut write, dst_engine, slug, pair, chunk, own).await?;
                }
            }
            sums.push(sum);
        }
        drop(read);
        let mut rows = 0;
        for (pair, expected) in self.pairs.iter().zip(&sums) {
            dst_engine
                .dialect()
                .continue_identities(&mut write, &pair.to.name)
                .await
                .map_err(Error::storage(slug, "continue its identity sequences"))?;
            let got = read_table(
                &mut write,
                dst_engine,
                to,
                &pair.to,
                dst_filter.as_ref(),
                |_| Ok(()),
            )
            .await?;
            if got != *expected {
                return Err(Error::ContentMismatch {
                    tenant: slug.to_owned(),
                    table: pair.to.name.to_string(),
                    detail: format!(
                        "{} rows with checksum {} in the new place on {}, {} with {} in the old one on {}",
                        got.rows,
                        got.checksum(),
                        to.server,
                        expected.rows,
                        expected.checksum(),
                        from.server
                    ),
                });
            }
            rows += got.rows;
        }
        leave(&mut write, to, entered, dst_filter.is_some()).await?;
        write
            .commit()
            .await
            .map_err(Error::storage(slug, "commit its final sync"))?;
        Ok(Synced { changed, rows })
    }
}

/// A transaction on the old place reading from one snapshot, after checking its ledger is
/// clean and at `version` (a migration committed meanwhile ends the move: the new place is
/// at the old version).
async fn begin_read<'c>(
    t: &Tenantry,
    scope: &'c mut DataScope,
    from: &Tenant,
    version: i64,
) -> Result<sqlx::Transaction<'c, sqlx::Any>> {
    let slug = from.slug.as_str();
    let engine = scope.engine;
    let pooled = scope.filter.is_some();
    let mut tx = begin_snapshot(&mut scope.conn, engine, slug).await?;
    if pooled {
        // Rolled back with the transaction: never committed.
        shared::enter_rows(t, from, &mut tx).await?;
    }
    let ledger = ledger::read(&mut tx)
        .await
        .map_err(Error::storage(slug, "read its ledger"))?;
    let now = ledger::version(&ledger);
    if now != version || ledger.iter().any(|r| !r.is_applied()) {
        return Err(Error::MoveRefused {
            slug: slug.to_owned(),
            detail: format!(
                "its storage was migrated while it moved (version {version}, now {now}); run the move again"
            ),
        });
    }
    Ok(tx)
}

/// The new place's tables matched to the old place's by name, columns in the old order.
fn pair(from: &Tenant, src: &[TableSpec], dst: &[TableSpec]) -> Result<Vec<Pair>> {
    let mismatch = |table: &str, detail: String| Error::ContentMismatch {
        tenant: from.slug.to_string(),
        table: table.to_owned(),
        detail,
    };
    src.iter()
        .map(|ours| {
            let Some(theirs) = dst.iter().find(|t| t.name == ours.name) else {
                return Err(mismatch(
                    ours.name.as_str(),
                    "not in the new place at the same version".into(),
                ));
            };
            let columns = ours
                .columns
                .iter()
                .map(|c| {
                    theirs
                        .columns
                        .iter()
                        .find(|o| o.name == c.name)
                        .cloned()
                        .ok_or_else(|| {
                            mismatch(
                                ours.name.as_str(),
                                format!("column {} is not in the new place", c.name),
                            )
                        })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Pair {
                to: TableSpec {
                    name: theirs.name.clone(),
                    columns,
                    tenant_at: ours.tenant_at,
                    key: ours.key.clone(),
                },
                from: ours.clone(),
                seen: HashMap::new(),
            })
        })
        .collect()
}

/// The first 16 bytes of a SHA-256, as a number (what the maps keep: 32 bytes a row).
fn short(hash: &[u8; 32]) -> u128 {
    let mut first = [0u8; 16];
    first.copy_from_slice(&hash[..16]);
    u128::from_be_bytes(first)
}

/// The digest of a row's key values.
fn key_digest(row: &[Value], key: &[usize]) -> u128 {
    let values: Vec<&Value> = key.iter().filter_map(|&at| row.get(at)).collect();
    let text = serde_json::to_string(&values).unwrap_or_default();
    short(&Sha256::digest(text.as_bytes()).into())
}

/// A row's neutral values as the new place writes them.
fn neutral(slug: &str, pair: &Pair, row: &[Value]) -> Result<Vec<Neutral>> {
    row.iter()
        .zip(&pair.from.columns)
        .map(|(value, column)| {
            Neutral::of(column.class, value).map_err(|e| Error::ContentMismatch {
                tenant: slug.to_owned(),
                table: pair.from.name.to_string(),
                detail: format!("column {}: {e}", column.name),
            })
        })
        .collect()
}

async fn insert(
    conn: &mut AnyConnection,
    engine: Engine,
    slug: &str,
    pair: &Pair,
    batch: &mut Vec<Vec<Neutral>>,
) -> Result<()> {
    flush(conn, engine, slug, &pair.to, batch).await
}

/// Writes changed rows again: their old version (if any) deleted by key, then inserted.
async fn replace(
    conn: &mut AnyConnection,
    engine: Engine,
    slug: &str,
    pair: &Pair,
    batch: &mut Vec<Vec<Neutral>>,
    own: Option<(&SqlName, &str)>,
) -> Result<()> {
    if !pair.from.key.is_empty() {
        delete(conn, engine, slug, pair, batch, own).await?;
    }
    insert(conn, engine, slug, pair, batch).await
}

async fn delete(
    conn: &mut AnyConnection,
    engine: Engine,
    slug: &str,
    pair: &Pair,
    rows: &[Vec<Neutral>],
    own: Option<(&SqlName, &str)>,
) -> Result<()> {
    let keyed = KeyedRows {
        table: &pair.to.name,
        columns: &pair.to.columns,
        key: &pair.to.key,
        rows,
    };
    engine
        .dialect()
        .delete_rows(conn, keyed, own)
        .await
        .map_err(|e| written(slug, pair, "delete", &e))?;
    Ok(())
}

fn written(slug: &str, pair: &Pair, what: &str, e: &sqlx::Error) -> Error {
    Error::ContentMismatch {
        tenant: slug.to_owned(),
        table: pair.to.name.to_string(),
        detail: format!(
            "cannot {what} its rows in the new place: {}",
            crate::error::said(e)
        ),
    }
}

/// Admits a shared tenant inside the transaction to write its rows (its hidden place is not
/// admitted otherwise).
async fn enter(t: &Tenantry, to: &Tenant, conn: &mut AnyConnection, pooled: bool) -> Result<bool> {
    match pooled {
        true => shared::enter_rows(t, to, conn).await,
        false => Ok(false),
    }
}

async fn leave(conn: &mut AnyConnection, to: &Tenant, entered: bool, pooled: bool) -> Result<()> {
    match pooled {
        true => shared::leave_rows(conn, to, entered).await,
        false => Ok(()),
    }
}
