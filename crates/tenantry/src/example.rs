//! The example tenant migration set (the eight tables of a document-processing SaaS), bundled
//! so the demo and the tests need no files of their own.

use std::path::Path;

use crate::error::{Error, Result};

/// `(file name, SQL)` of each example migration, in version order.
pub const TENANT_MIGRATIONS: &[(&str, &str)] = &[
    (
        "20250101000001_create_campaigns.sql",
        include_str!("../example/migrations/tenant/20250101000001_create_campaigns.sql"),
    ),
    (
        "20250101000002_create_documents.sql",
        include_str!("../example/migrations/tenant/20250101000002_create_documents.sql"),
    ),
    (
        "20250101000003_create_document_jobs.sql",
        include_str!("../example/migrations/tenant/20250101000003_create_document_jobs.sql"),
    ),
    (
        "20250101000004_create_processors.sql",
        include_str!("../example/migrations/tenant/20250101000004_create_processors.sql"),
    ),
    (
        "20250101000005_create_processor_executions.sql",
        include_str!("../example/migrations/tenant/20250101000005_create_processor_executions.sql"),
    ),
    (
        "20250101000006_create_credentials.sql",
        include_str!("../example/migrations/tenant/20250101000006_create_credentials.sql"),
    ),
    (
        "20250101000007_create_usage_events.sql",
        include_str!("../example/migrations/tenant/20250101000007_create_usage_events.sql"),
    ),
    (
        "20250101000008_create_audit_logs.sql",
        include_str!("../example/migrations/tenant/20250101000008_create_audit_logs.sql"),
    ),
];

/// Writes the example set into `dir`, creating it.
pub fn write_tenant_migrations(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_owned(),
        source,
    })?;
    for (name, sql) in TENANT_MIGRATIONS {
        let path = dir.join(name);
        std::fs::write(&path, sql).map_err(|source| Error::Io { path, source })?;
    }
    Ok(())
}

/// The tables the example set creates.
pub const TENANT_TABLES: [&str; 8] = [
    "audit_logs",
    "campaigns",
    "credentials",
    "document_jobs",
    "documents",
    "processor_executions",
    "processors",
    "usage_events",
];
