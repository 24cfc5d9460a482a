//! The library's error type. Every variant names the tenant, server, migration or file
//! involved, so a message read in a log says what to look at without a backtrace.

use std::path::PathBuf;

use crate::catalog::Status;
use crate::engine::Engine;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in Tenantry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A slug or server name that is not a valid identifier.
    #[error("invalid {kind} {value:?}: {reason}")]
    InvalidName {
        kind: &'static str,
        value: String,
        reason: &'static str,
    },

    /// A URL Tenantry cannot use (unknown scheme, missing parts).
    #[error("unsupported URL {url}: {reason}")]
    UnsupportedUrl { url: String, reason: String },

    /// A configuration file that cannot be read or parsed.
    #[error("configuration {path}: {reason}")]
    Config { path: PathBuf, reason: String },

    #[error(
        "tenant {slug:?} already exists (status {status}); pick another slug, or run `tenantry tenant repair {slug}` if it is failed"
    )]
    TenantExists { slug: String, status: Status },

    #[error("no tenant {slug:?}; `tenantry tenant list` shows the tenants")]
    TenantNotFound { slug: String },

    #[error("no rollout {id:?}; `tenantry migrate rollouts` lists them")]
    RolloutNotFound { id: String },

    #[error("rollout {id} cannot be resumed: {reason}")]
    RolloutMismatch { id: String, reason: String },

    #[error("invalid rollout option: {reason}")]
    RolloutOption { reason: String },

    #[error(
        "invalid label {label:?}: 1 to 63 characters of a-z, 0-9, _ . : = -, starting with a letter or digit"
    )]
    InvalidLabel { label: String },

    #[error("tenant {tenant:?} cannot be dry-run: {reason}")]
    DryRunImpossible { tenant: String, reason: String },

    #[error("invalid host {value:?}: {reason}")]
    InvalidHost { value: String, reason: String },

    #[error("the host {host} already routes to tenant {tenant:?}; remove it there first")]
    DomainTaken { host: String, tenant: String },

    #[error("no tenant has the domain {host}; `tenantry domain list` shows them")]
    DomainNotFound { host: String },

    #[error("invalid e-mail address {value:?}: {reason}")]
    InvalidEmail { value: String, reason: &'static str },

    #[error("a user with the e-mail {email:?} already exists")]
    UserExists { email: String },

    #[error("no user {user:?}; `tenantry user list` shows the users")]
    UserNotFound { user: String },

    #[error("unknown role {role:?}; the configured roles are {roles}")]
    UnknownRole { role: String, roles: String },

    #[error("user {user:?} is not a member of tenant {tenant:?}")]
    NotAMember { user: String, tenant: String },

    #[error("password of user {user:?}: {reason}")]
    Password { user: String, reason: String },

    #[error("tenant {slug:?} is {status}: cannot {action}{hint}")]
    InvalidTransition {
        slug: String,
        status: Status,
        action: &'static str,
        hint: &'static str,
    },

    #[error("server {name:?} already exists")]
    ServerExists { name: String },

    #[error("no server {name:?}; `tenantry server list` shows the servers")]
    ServerNotFound { name: String },

    #[error("server {name:?} ({url}) is unreachable: {}", said(source))]
    ServerUnreachable {
        name: String,
        url: String,
        #[source]
        source: sqlx::Error,
    },

    #[error(
        "server {name:?} ({url}) did not answer within {}: connect timed out; check that it is up and speaks its protocol on that port (connect_timeout_secs, --connect-timeout)",
        seconds(*after)
    )]
    ServerTimedOut {
        name: String,
        url: String,
        after: std::time::Duration,
    },

    #[error("server {name:?} has {tenants} tenant(s) that are not deleted; delete them first")]
    ServerInUse { name: String, tenants: i64 },

    #[error("migrations directory {path} does not exist; create it or pass --migrations <dir>")]
    MigrationsDirMissing { path: PathBuf },

    #[error("migration version {version} appears twice: {first} and {second}")]
    DuplicateVersion {
        version: i64,
        first: PathBuf,
        second: PathBuf,
    },

    #[error("migration file {path} is not valid UTF-8")]
    NotUtf8 { path: PathBuf },

    #[error("migration file name {path} is not <VERSION>_<DESCRIPTION>.sql: {reason}")]
    BadMigrationName { path: PathBuf, reason: &'static str },

    /// A `.down.sql` file without the forward file of its name (`forward`: the version's
    /// forward file under another name, if there is one).
    #[error("{}", down_alone(path, forward.as_deref()))]
    DownWithoutUp {
        path: PathBuf,
        forward: Option<PathBuf>,
    },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "tenant {tenant:?}: migration {version} was applied but its file {file} has changed since; restore the file and add a new migration instead"
    )]
    ChecksumMismatch {
        tenant: String,
        version: i64,
        file: PathBuf,
    },

    #[error(
        "tenant {tenant:?}: migration {version} ({description}) was applied but is missing from the migrations directory"
    )]
    MigrationMissing {
        tenant: String,
        version: i64,
        description: String,
    },

    #[error(
        "tenant {tenant:?}: migration {version} ({}) failed: {failure}",
        at(file, failure.line)
    )]
    MigrationFailed {
        tenant: String,
        version: i64,
        file: PathBuf,
        /// Where in the file, and what the database said.
        failure: Box<FailedAt>,
        #[source]
        source: sqlx::Error,
    },

    /// A migration stopped halfway on an engine without transactional DDL.
    #[error(transparent)]
    MigrationDirty(Box<DirtyFailure>),

    #[error("{tenant}: migration {version} ({file}) was rolled back: {reason}")]
    MigrationRefused {
        tenant: String,
        version: i64,
        file: PathBuf,
        #[source]
        reason: Box<Error>,
    },

    /// A version to revert has no down script; refused before anything was reverted.
    #[error(
        "tenant {tenant:?}: migration {version} cannot be reverted: its down file {} does not exist; nothing was reverted",
        file.display()
    )]
    DownMissing {
        tenant: String,
        version: i64,
        /// Where the down file is expected.
        file: PathBuf,
    },

    /// A down script stopped halfway where DDL is not transactional (MySQL).
    #[error("{}", revert_dirty(.0))]
    RevertDirty(Box<DirtyFailure>),

    #[error(
        "tenant {tenant:?} is at version {version}, below {target}: `migrate down --to` only reverts; nothing was reverted (run `tenantry migrate` to go up)"
    )]
    RevertTargetAbove {
        tenant: String,
        version: i64,
        target: i64,
    },

    #[error(
        "no migration {target} in {}: --to takes a version of the set, or 0 to revert every migration",
        dir.display()
    )]
    RevertTargetUnknown { target: i64, dir: PathBuf },

    /// Some, not all, of a shared pool's live tenants were named for a revert: they share one
    /// ledger, so the pool cannot go back for some of them only.
    #[error(
        "shared pool on server {server:?}: its tenants share one set of tables, so reverting one reverts them all; name every live shared tenant of the server ({} not named) or use --all; nothing was reverted",
        missing.join(", ")
    )]
    SharedPoolPartial {
        server: String,
        /// The pool's live tenants that were not named.
        missing: Vec<String>,
    },

    #[error("tenant {tenant:?}: verification failed: {detail}")]
    VerifyFailed { tenant: String, detail: String },

    /// An archive that cannot be read, or whose content is not what its manifest says (it
    /// was truncated or edited): nothing was loaded from it, or what was is removed.
    #[error("archive {}: line {line}: {detail}", path.display())]
    ArchiveInvalid {
        path: PathBuf,
        line: u64,
        detail: String,
    },

    /// An archive whose migrations the fleet's set does not have (or has with other
    /// content), or that cannot go where it was asked to.
    #[error("archive {}: {detail}", path.display())]
    ArchiveRefused { path: PathBuf, detail: String },

    /// A tenant's storage does not hold what its archive's manifest says: a table or column
    /// is missing, or rows read back differ in number or content.
    #[error("tenant {tenant:?}: table {table}: {detail}")]
    ContentMismatch {
        tenant: String,
        table: String,
        detail: String,
    },

    /// An import that did not finish (its process was killed): its storage and row were
    /// removed rather than served half-loaded.
    #[error(
        "tenant {slug:?}: its import did not finish; its storage and record were removed: import the archive again"
    )]
    ImportAbandoned { slug: String },

    /// No server takes a new tenant of this strategy (and region); `servers` says why each
    /// does not.
    #[error(
        "no server takes a new {strategy} tenant{}: {}",
        region.as_ref().map(|r| format!(" in region {r}")).unwrap_or_default(),
        if servers.is_empty() { "there is none".to_owned() } else { servers.join("; ") }
    )]
    NoServerFits {
        strategy: String,
        region: Option<String>,
        servers: Vec<String>,
    },

    #[error(
        "server {name:?} holds its capacity of {capacity} tenants; raise it with `tenantry server set {name} --capacity N` or place the tenant elsewhere"
    )]
    ServerFull { name: String, capacity: i64 },

    /// A purge after which something of the tenant was still found.
    #[error("tenant {tenant}: purged, yet something of it remains: {}", left.join("; "))]
    PurgeIncomplete { tenant: String, left: Vec<String> },

    /// An import, restore or move of the tenant is running in another process.
    #[error("tenant {slug:?}: its {kind} is under way in another process; wait for it to end")]
    OperationRunning { slug: String, kind: String },

    /// A unit of work was asked of the place a tenant left: it moved.
    #[error(
        "tenant {slug:?} moved to server {server} ({strategy}); get its pool again to reach it there"
    )]
    TenantMoved {
        slug: String,
        server: String,
        strategy: String,
    },

    /// A unit of work asked for while a move has the tenant's writes paused.
    #[error("tenant {slug:?} is paused for a moment while its move finishes; try again")]
    TenantPaused { slug: String },

    /// A move that cannot be made, or stopped before the switch (the tenant serves from
    /// where it was).
    #[error("tenant {slug:?}: cannot move it: {detail}")]
    MoveRefused { slug: String, detail: String },

    /// An existing database or schema that cannot be adopted as it is; nothing was written.
    #[error("cannot adopt {storage:?} on server {server:?}: {detail}")]
    AdoptRefused {
        storage: String,
        server: String,
        detail: String,
    },

    /// A split that stopped at one value: the tenants of the values before it are whole and
    /// stay; that value's tenant was not created.
    #[error("the split stopped at value {value:?} after {done} tenant(s): {source}")]
    SplitStopped {
        value: String,
        done: usize,
        #[source]
        source: Box<Error>,
    },

    #[error("tenant {slug:?} has no backup {id:?}; `tenantry tenant backups {slug}` lists them")]
    BackupNotFound { slug: String, id: String },

    /// A restore in place that did not finish: the tenant stays suspended until a restore
    /// completes.
    #[error(
        "tenant {slug:?}: its restore from backup {backup} did not finish; run `tenantry tenant restore {slug} --from {backup}` again"
    )]
    RestoreUnfinished { slug: String, backup: String },

    #[error("tenant {tenant:?}: cannot {action}: {}", said(source))]
    Storage {
        tenant: String,
        action: &'static str,
        #[source]
        source: sqlx::Error,
    },

    #[error("tenant {tenant:?}: cannot {action} {path}: {source}")]
    StorageFile {
        tenant: String,
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "tenant {tenant:?}: the administrative SQL failed: {}{hint}",
        said(source)
    )]
    AdminSql {
        tenant: String,
        hint: &'static str,
        #[source]
        source: sqlx::Error,
    },

    #[error("tenant {tenant:?} is being migrated by another runner; it was left to that runner")]
    Locked { tenant: String },

    /// A shared-pool migration left a key that does not lead with the tenant column.
    #[error(
        "shared pool on server {server:?}: table {table:?}, {constraint:?}: {problem}; {fix}, so that one tenant's rows can be neither found, tested nor pinned through another's"
    )]
    SharedKeyLint {
        server: String,
        table: String,
        constraint: String,
        problem: String,
        fix: String,
    },

    /// Another process held the catalog's lock for the whole wait.
    #[error(
        "catalog: cannot {action}: another process held the catalog lock for {waited_secs} s; try again"
    )]
    CatalogBusy {
        action: &'static str,
        waited_secs: u64,
    },

    /// A server that is being drained or removed takes no new tenant.
    #[error("server {name:?} is being drained or removed; it takes no new tenant")]
    ServerRemoving { name: String },

    #[error("catalog: cannot {action}: {}", said(source))]
    Catalog {
        action: &'static str,
        #[source]
        source: sqlx::Error,
    },

    #[error(
        "no catalog at {path}; run `tenantry init` to create one (or check --catalog, --data-dir and TENANTRY_CATALOG_URL)"
    )]
    CatalogMissing { path: PathBuf },

    /// The catalog was migrated by a newer Tenantry, whose records this one would misread.
    #[error(
        "the catalog is at version {found}, and this Tenantry knows versions up to {known}: a newer Tenantry migrated it; run that version"
    )]
    CatalogNewer { found: i64, known: i64 },

    #[error(
        "no master key: {path} does not exist and {env} is not set; set {env} (base64 of 32 bytes) or run `tenantry init` to generate one",
        path = path.display(),
        env = crate::crypto::MASTER_KEY_ENV
    )]
    MasterKeyMissing { path: PathBuf },

    /// The key is gone but credentials sealed with it are still in the catalog.
    #[error(
        "no master key: {path} does not exist and {env} is not set, but the catalog holds credentials sealed with {which}; restore that key: put its file back at {path} (from your backup) or set {env} to it. A new key could not open them, so none is generated",
        path = path.display(),
        env = crate::crypto::MASTER_KEY_ENV,
        which = fingerprint.as_deref().map_or_else(|| "an earlier master key".to_owned(), |f| format!("the master key of fingerprint {f}"))
    )]
    MasterKeyLost {
        path: PathBuf,
        fingerprint: Option<String>,
    },

    #[error(
        "wrong master key: fingerprint {found}, the catalog expects {expected} (the key came from {source_name}); restore the key of fingerprint {expected}: put its file back at {path} or set {env} to it",
        path = path.display(),
        env = crate::crypto::MASTER_KEY_ENV
    )]
    WrongMasterKey {
        source_name: String,
        found: String,
        expected: String,
        path: PathBuf,
    },

    #[error("master key ({source_name}): {reason}")]
    MasterKey { source_name: String, reason: String },

    #[error(
        "tenant {tenant:?}: its database role cannot log in ({}); run `tenantry tenant repair {tenant}` to reset its credentials",
        said(source)
    )]
    TenantCredentials {
        tenant: String,
        #[source]
        source: sqlx::Error,
    },

    #[error("strategy {strategy} is not available on {engine} server {server:?}; {supported}")]
    StrategyUnsupported {
        strategy: String,
        engine: String,
        server: String,
        supported: &'static str,
    },

    #[error(
        "the {strategy} strategy keeps no spares: a {strategy} tenant's create writes no storage of its own"
    )]
    NoSpares { strategy: String },

    #[error("unknown strategy {value:?}; choose database, schema or shared")]
    UnknownStrategy { value: String },

    #[error(
        "{owner}: migration {version} stopped halfway at statement {statement:?} and is dirty; see README \"Dirty migrations\", then run `tenantry migrate resolve {owner} {version} --applied|--retry`"
    )]
    Dirty {
        owner: String,
        version: i64,
        statement: String,
    },

    #[error(
        "shared pool on server {server:?}: table {table:?} has no tenant column {column:?}; add the column or declare the table in shared_global_tables"
    )]
    UnprotectedTable {
        server: String,
        table: String,
        column: String,
    },

    #[error("catalog: cannot {action} (tenant {tenant}): {}", said(source))]
    TenantCatalog {
        tenant: String,
        action: &'static str,
        #[source]
        source: sqlx::Error,
    },

    #[error("catalog holds an unexpected value {value:?} in {field}")]
    CorruptCatalog { field: &'static str, value: String },

    /// No application connection could be had within the acquire timeout
    /// (`pool_acquire_timeout_ms`): the tenant, or the server, was at its maximum the whole
    /// time. Nothing was run; the caller may retry.
    #[error(
        "tenant {tenant:?}: no connection to server {server:?} after waiting {}: {limit}; retry later, or raise the limit",
        seconds(*waited)
    )]
    Busy {
        server: String,
        tenant: String,
        waited: std::time::Duration,
        limit: BusyLimit,
    },

    /// A master key rotation cannot go on, or a process cannot seal while one is under way.
    #[error("master key rotation: {reason}")]
    KeyRotation { reason: String },

    /// A tenant secret's name or value that cannot be stored.
    #[error("secret {name:?}: {reason}")]
    InvalidSecret {
        name: String,
        /// `name` or `value`.
        field: &'static str,
        reason: &'static str,
    },

    #[error("tenant {tenant:?} has no secret named {name:?}")]
    SecretNotFound { tenant: String, name: String },

    /// A time that is not RFC 3339 (e.g. `2026-11-23T10:00:00Z`).
    #[error("invalid time {value:?}: {reason}")]
    InvalidTime { value: String, reason: String },

    /// An API key name that is taken (by a live or a revoked key: names stay unique, so the
    /// audit log's actors stay unambiguous).
    #[error("an API key named {name:?} already exists")]
    ApiKeyExists { name: String },

    #[error("no API key named {name:?}")]
    ApiKeyNotFound { name: String },

    /// A scope that is not one of the known ones.
    #[error("unknown scope {scope:?}; scopes: {scopes}")]
    UnknownScope { scope: String, scopes: String },

    /// A key with no scope at all can do nothing.
    #[error("API key {name:?}: give it at least one scope")]
    NoScopes { name: String },

    /// A unit of work asked for the connection type of an engine its tenant is not on.
    #[error("tenant {tenant:?} is on {engine}, not {wanted}")]
    WrongEngine {
        tenant: String,
        engine: Engine,
        wanted: Engine,
    },
}

/// Which maximum kept a unit of work from getting a connection ([`Error::Busy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BusyLimit {
    /// Every connection this process may open to the server (`pool_max_per_server`) was in
    /// use.
    Server { cap: u32 },
    /// The tenant held all the connections it may hold at once (`pool_max_connections`).
    Tenant { max: u32 },
}

impl std::fmt::Display for BusyLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BusyLimit::Server { cap } => write!(
                f,
                "all {cap} connections this process may open to the server (pool_max_per_server) were in use"
            ),
            BusyLimit::Tenant { max } => write!(
                f,
                "the tenant held all {max} of its connections (pool_max_connections)"
            ),
        }
    }
}

impl Error {
    /// Wraps a catalog query error with what was being done.
    pub(crate) fn catalog(action: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
        move |source| Error::Catalog { action, source }
    }

    /// Wraps a catalog query error about one tenant with its id and what was being done.
    pub(crate) fn tenant_catalog(
        tenant: impl std::fmt::Display,
        action: &'static str,
    ) -> impl FnOnce(sqlx::Error) -> Error {
        let tenant = tenant.to_string();
        move |source| Error::TenantCatalog {
            tenant,
            action,
            source,
        }
    }

    /// Wraps a tenant storage error with the tenant and what was being done.
    pub(crate) fn storage(tenant: &str, action: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
        let tenant = tenant.to_owned();
        move |source| Error::Storage {
            tenant,
            action,
            source,
        }
    }

    /// What a client tool (`pg_dump`, `mysqldump`, …) said when it failed on `tenant`.
    pub(crate) fn tool(tenant: &str) -> impl FnOnce(String) -> Error {
        let tenant = tenant.to_owned();
        move |detail| Error::VerifyFailed { tenant, detail }
    }
}

/// A migration that failed at one statement where DDL is not transactional (MySQL): the
/// statements before it stay applied and the ledger records the migration as dirty.
#[derive(Debug, thiserror::Error)]
#[error(
    "{tenant}: migration {version} ({}) failed at statement {statement:?}: {message}; this engine's DDL is not transactional, so the statements before it stay applied and the migration is recorded as dirty (see README \"Dirty migrations\")",
    at(file, *line)
)]
pub struct DirtyFailure {
    pub tenant: String,
    pub version: i64,
    pub file: PathBuf,
    /// The line of the file where it failed.
    pub line: Option<usize>,
    pub statement: String,
    /// What the database said.
    pub message: String,
    #[source]
    pub source: sqlx::Error,
}

/// What a database error says, for a message: the database's own text without the line of
/// the server's source file that sqlx appends for PostgreSQL (`… at line 1188`), which is
/// no line of anything the reader wrote.
pub fn said(e: &sqlx::Error) -> String {
    match e.as_database_error() {
        Some(db) => db.message().to_owned(),
        None => e.to_string(),
    }
}

/// A duration for people: `10 s`, `1.5 s`.
fn seconds(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// The message of [`Error::DownWithoutUp`].
fn down_alone(path: &std::path::Path, forward: Option<&std::path::Path>) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".down.sql").unwrap_or(&name);
    match forward {
        Some(forward) => format!(
            "down migration {} does not go with {}, its version's forward file: name them alike, {stem}.up.sql and {stem}.down.sql",
            path.display(),
            forward.display()
        ),
        None => format!(
            "down migration {} has no forward file: expected {} beside it (or remove the down file)",
            path.display(),
            path.with_file_name(format!("{stem}.up.sql")).display()
        ),
    }
}

/// The message of [`Error::RevertDirty`].
fn revert_dirty(f: &DirtyFailure) -> String {
    format!(
        "{tenant}: reverting migration {version} ({file}) failed at statement {statement:?}: {message}; this engine's DDL is not transactional, so the statements before it stay done and the migration is recorded as dirty; see README \"Dirty migrations\", then run `tenantry migrate resolve {tenant} {version} --applied` if you restored what they undid, or `--retry` if you finished the revert by hand",
        tenant = f.tenant,
        version = f.version,
        file = at(&f.file, f.line),
        statement = f.statement,
        message = f.message,
    )
}

/// `file:line`, or the file alone.
fn at(file: &std::path::Path, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{}:{line}", file.display()),
        None => file.display().to_string(),
    }
}

/// Where in its file a migration failed, as far as the database says, and what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedAt {
    /// The line of the migration file (1-based).
    pub line: Option<usize>,
    /// The statement that failed, shortened.
    pub statement: Option<String>,
    /// What the database said, without a line of the server's own source.
    pub message: String,
}

impl std::fmt::Display for FailedAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        match &self.statement {
            Some(statement) => write!(f, " in `{statement}`"),
            None => Ok(()),
        }
    }
}
