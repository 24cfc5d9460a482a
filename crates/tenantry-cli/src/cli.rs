//! The command line's shape: every command, option and environment variable.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};

/// Tenantry: the multi-tenant database layer. Creates tenants, places each on a server,
/// migrates the whole fleet, and keeps a catalog that says where every tenant stands.
#[derive(Debug, Parser)]
#[command(name = "tenantry", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes. Each can also come from a `TENANTRY_*` variable or from
/// `tenantry.toml`; the command line wins, then the environment, then the file.
#[derive(Debug, Args)]
pub struct Global {
    /// Catalog URL: sqlite://<file> or postgres://… [default: sqlite file in the data directory]
    #[arg(
        long,
        global = true,
        overrides_with = "catalog",
        env = "TENANTRY_CATALOG_URL",
        value_name = "URL"
    )]
    pub catalog: Option<String>,

    /// Data directory for the embedded catalog and the local server's tenant files
    /// [default: ./tenantry-data]
    #[arg(
        long,
        global = true,
        overrides_with = "data_dir",
        env = "TENANTRY_DATA_DIR",
        value_name = "DIR"
    )]
    pub data_dir: Option<PathBuf>,

    /// Tenant migrations directory, in sqlx-cli's format [default: ./migrations/tenant]
    #[arg(
        long,
        global = true,
        overrides_with = "migrations",
        env = "TENANTRY_MIGRATIONS",
        value_name = "DIR"
    )]
    pub migrations: Option<PathBuf>,

    /// Where tenant backups are written and found [default: <data dir>/backups]
    #[arg(long, global = true, env = "TENANTRY_BACKUP_DIR", value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,

    /// Configuration file; one named here must exist [default: ./tenantry.toml, if present]
    #[arg(long, global = true, env = "TENANTRY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// How many tenants to migrate at once [default: 4]
    #[arg(long, global = true, env = "TENANTRY_CONCURRENCY", value_name = "N")]
    pub concurrency: Option<usize>,

    /// Seconds to wait for a tenant another runner is migrating before leaving it to them
    /// [default: 60]
    #[arg(long, global = true, env = "TENANTRY_LOCK_WAIT", value_name = "SECS")]
    pub lock_wait: Option<u64>,

    /// Seconds to wait for a server to accept a connection and answer [default: 10]
    #[arg(
        long,
        global = true,
        env = "TENANTRY_CONNECT_TIMEOUT",
        value_name = "SECS"
    )]
    pub connect_timeout: Option<u64>,

    /// Seconds each of Tenantry's own statements may run on the catalog and servers; 0: no
    /// limit. Migrations have their own limit (migration_statement_timeout_secs, none by
    /// default) [default: 60]
    #[arg(
        long,
        global = true,
        env = "TENANTRY_STATEMENT_TIMEOUT",
        value_name = "SECS"
    )]
    pub statement_timeout: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the catalog (and data directory) and apply its migrations.
    Init,
    /// Create, inspect and change tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Register and list the database servers tenants are placed on.
    #[command(subcommand)]
    Server(ServerCommand),
    /// Tenant storage built ahead of time: a create claims a current spare and only
    /// verifies it. Rollouts keep spares current.
    #[command(subcommand)]
    Spares(SparesCommand),
    /// Host names that route to tenants.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Users, who reach tenants through memberships.
    #[command(subcommand)]
    User(UserCommand),
    /// Who is a member of which tenant, with which role.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Bearer tokens for testing and operations (HS256, with the configured secret).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Show what a request with these parts resolves to (tenant, identifier, user, role), or
    /// why it is refused (code and HTTP status, exit status 1).
    Resolve(ResolveArgs),
    /// Apply pending tenant migrations, or show where each tenant stands.
    Migrate(MigrateArgs),
    /// Run SQL on every selected tenant (or --tenant), each in one transaction as its own
    /// application connection, with the controls of `migrate --all`: canary, waves,
    /// --max-failures, --dry-run, Ctrl-C, --resume, several runners; a report per tenant
    /// (with --json, one line each with the rows of its last statement).
    Run(RunArgs),
    /// The catalog's event log, newest first.
    Events(EventsArgs),
    /// Serve the admin API (`/v1`, `/openapi.json`, `/healthz`, `/readyz`) until Ctrl-C or
    /// SIGTERM; rollouts it started stop after the tenants in flight and stay resumable.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "TENANTRY_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
    },
    /// Keys for the admin API (`tenantry serve`): shown once, stored as a hash.
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// The audit log: every change, its actor and outcome, in a hash chain.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// A tenant's secrets, sealed with the master key: set from stdin, listed by name only.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// The master key.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Run SQL exactly as the tenant's application connection would (one transaction) and
    /// print the rows of the last statement; with --admin, as the migration runner does.
    Sql {
        slug: String,
        /// One or more statements.
        sql: String,
        /// Print an array of objects.
        #[arg(long)]
        json: bool,
        /// Use the administrative connection scoped to the tenant's storage (a shared
        /// tenant's: its whole pool), under the tenant's migration lock, for repairs its own
        /// role cannot make; any status but deleted. Recorded in the event log as sql.admin.
        #[arg(long)]
        admin: bool,
    },
    /// Tell the whole story in a fresh ./tenantry-demo directory: on embedded SQLite, or with
    /// --server, a mixed fleet on a PostgreSQL server.
    Demo {
        /// A PostgreSQL server URL for a fleet mixing all three strategies.
        #[arg(long, value_name = "URL")]
        server: Option<String>,
    },
    /// Measure create, rollout and delete on a throwaway catalog; `bench route`: requests
    /// served through the tenant layer (see BENCHMARKS.md).
    Bench(BenchArgs),
    /// Print a completion script for a shell to standard output, e.g.
    /// `tenantry completions bash > ~/.local/share/bash-completion/completions/tenantry`.
    /// Needs no catalog and no configuration.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: Option<BenchCommand>,

    /// How many tenants to create.
    #[arg(long, default_value_t = 50)]
    pub tenants: usize,
    /// A PostgreSQL or MySQL server URL to place the tenants on [default: the local SQLite server]
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// database | schema | shared
    #[arg(long, default_value = "database")]
    pub strategy: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Serve one indexed SELECT over loopback HTTP through the tenant layer, with concurrent
    /// keep-alive clients. One tenant: compared with a plain sqlx pool on the tenant's own
    /// database. More: each request for a random tenant, behind the per-server cap, with the
    /// most connections the server saw and the process's peak memory.
    Route(RouteArgs),
    /// Roll the last migration of a set out over N tenants with Tenantry, beside the same
    /// change applied as plain SQL to identical tenants of the same server (one session, then
    /// as many as --concurrency), then roll out with nothing pending; at each size given.
    Rollout(RolloutArgs),
    /// Create N tenants one after another from spares built beforehand, then N more with no
    /// spare left, on the bench's own 8-table schema (or --migrations): creation latency
    /// p50/p95/max of each, and the time to build a spare.
    Create(CreateArgs),
    /// Export one tenant of N rows to an archive and import it into a new tenant on the same
    /// server and strategy (every row read back and checked): times, file size, peak memory.
    Archive(ArchiveBenchArgs),
    /// Move one tenant of N rows to another server or strategy while a writer commits units
    /// through the pool manager: copy time, the write pause, the writer's longest wait.
    Move(MoveBenchArgs),
}

#[derive(Debug, Args)]
pub struct MoveBenchArgs {
    /// A PostgreSQL or MySQL server URL the tenant starts on [default: the local SQLite server]
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// database | schema | shared: where it starts.
    #[arg(long, default_value = "database")]
    pub strategy: String,
    /// A server URL to move it to [default: the same server]
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// database | schema | shared: where it goes [default: its own]
    #[arg(long, value_name = "STRATEGY")]
    pub to_strategy: Option<String>,
    /// Rows in the tenant.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub rows: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ArchiveBenchArgs {
    /// A PostgreSQL or MySQL server URL to place the tenants on [default: the local SQLite server]
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// database | schema | shared
    #[arg(long, default_value = "database")]
    pub strategy: String,
    /// Rows in the tenant.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub rows: u64,
    /// Write the archive gzip-compressed.
    #[arg(long)]
    pub gzip: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// A PostgreSQL or MySQL server URL to place the tenants on [default: the local SQLite server]
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// database | schema
    #[arg(long, default_value = "database")]
    pub strategy: String,
    /// Tenants created each way.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub tenants: usize,
    /// A migration directory of one's own [default: the bench's own 8-table schema].
    #[arg(long, value_name = "DIR")]
    pub migrations: Option<std::path::PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RolloutArgs {
    /// A PostgreSQL or MySQL server URL to place the tenants on [default: the local SQLite server]
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// database | schema
    #[arg(long, default_value = "database")]
    pub strategy: String,
    /// Fleet sizes, each measured on a fresh catalog.
    #[arg(long, value_name = "N,...", value_delimiter = ',', default_values_t = [200])]
    pub tenants: Vec<usize>,
    /// A migration directory of one's own: tenants are created without its last migration,
    /// which is then rolled out [default: the bench's own 8-table schema and change].
    #[arg(long, value_name = "DIR")]
    pub migrations: Option<std::path::PathBuf>,
    /// Skip the plain-SQL floor (for large no-op measurements).
    #[arg(long)]
    pub no_floor: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RouteArgs {
    /// A PostgreSQL or MySQL server URL to place the tenants on [default: the local SQLite server]
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// database | schema | shared (one tenant: database only)
    #[arg(long, default_value = "database")]
    pub strategy: String,
    /// Concurrent clients, each on its own keep-alive connection.
    #[arg(long, default_value_t = 32, value_name = "K")]
    pub clients: usize,
    /// Seconds measured, after the warm-up.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub duration: u64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2, value_name = "SECS")]
    pub warmup: u64,
    /// Tenants; with more than one, every request goes to a random one.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub tenants: usize,
    /// Connections this process keeps open to the server at most (pool_max_per_server);
    /// keep it below the server's own limit.
    #[arg(long, default_value_t = 100, value_name = "C")]
    pub cap: u32,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant: storage, every migration, verified; or resume a failed creation.
    Create {
        slug: String,
        /// Display name [default: the slug]
        #[arg(long)]
        name: Option<String>,
        /// Server to place it on [default: local]
        #[arg(long)]
        server: Option<String>,
        /// database | schema | shared [default: database, or default_strategy in tenantry.toml]
        #[arg(long)]
        strategy: Option<String>,
        /// Place it on the server with the fewest tenants in this region (without --server).
        #[arg(long, conflicts_with = "server")]
        region: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List tenants.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one tenant and its recent events.
    Show {
        slug: String,
        #[arg(long)]
        json: bool,
    },
    /// Give a tenant a new slug and/or display name; its storage and id stay, and routing
    /// caches drop the old slug within one poll.
    Rename {
        slug: String,
        /// The new slug.
        #[arg(long = "to", value_name = "NEW_SLUG")]
        new_slug: Option<String>,
        /// The new display name.
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Stop serving a tenant; its storage is kept.
    Suspend { slug: String },
    /// Serve a suspended tenant again.
    Resume { slug: String },
    /// Drop a tenant's storage; its record stays as `deleted` unless --purge.
    Delete {
        slug: String,
        /// Also remove the record, freeing the slug.
        #[arg(long)]
        purge: bool,
        /// With --purge: remove its backups too.
        #[arg(long, requires = "purge")]
        with_backups: bool,
    },
    /// Finish what was left half-done: provisioning, deletion, or missing migrations.
    Repair { slug: String },
    /// Move a tenant to another server or strategy while it serves: copied, then a short
    /// write pause for the rows changed meanwhile, verified, switched; the old storage is
    /// dropped.
    Move {
        slug: String,
        /// The server to move it to.
        #[arg(long = "to-server", value_name = "SERVER")]
        to_server: String,
        /// database | schema | shared [default: its own]
        #[arg(long)]
        strategy: Option<String>,
        /// Each step as a JSON line, then the result.
        #[arg(long)]
        json: bool,
    },
    /// Write a tenant's rows to a portable archive (gzip when FILE ends in .gz): its
    /// migrations, tables, every row, per-table counts and checksums.
    Export {
        slug: String,
        #[arg(long = "to", value_name = "FILE")]
        to: std::path::PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Create a tenant from an archive, on any server and strategy, verified against its
    /// manifest, then migrated to the fleet's version.
    Import {
        #[arg(value_name = "FILE")]
        file: std::path::PathBuf,
        /// The new tenant's slug.
        #[arg(long)]
        slug: String,
        /// Display name [default: the archived tenant's]
        #[arg(long)]
        name: Option<String>,
        /// Server to place it on [default: local]
        #[arg(long)]
        server: Option<String>,
        /// database | schema | shared [default: database, or default_strategy in tenantry.toml]
        #[arg(long)]
        strategy: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Register an existing database (or schema) as a tenant: its ledger baselined from
    /// sqlx's _sqlx_migrations (same checksums) or --baseline, its schema checked against
    /// the migration set; nothing of it is dropped or rewritten. Later migrations of the
    /// set are applied as at any create.
    Adopt {
        slug: String,
        /// The server it is on.
        #[arg(long)]
        server: String,
        /// The existing database (SQLite: the file <name>.db in the server's directory; for
        /// local, <data dir>/tenants).
        #[arg(long, conflicts_with = "schema", required_unless_present = "schema")]
        database: Option<String>,
        /// The existing schema (PostgreSQL; the schema strategy).
        #[arg(long)]
        schema: Option<String>,
        /// The version its schema holds, when it has no _sqlx_migrations (0: none).
        #[arg(long)]
        baseline: Option<i64>,
        /// Display name [default: the slug]
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Turn one shared database into tenants, one per distinct value of a column (such as
    /// business_id), each verified by counts and checksums; the source is only read.
    Split {
        /// The shared database: <server>/<database> (SQLite: the file <database>.db in the
        /// server's directory).
        #[arg(long, value_name = "SERVER/DATABASE")]
        from: String,
        /// The column whose distinct values are the tenants.
        #[arg(long)]
        column: String,
        /// Each tenant's slug is this prefix and its value.
        #[arg(long = "slug-prefix", default_value = "")]
        slug_prefix: String,
        /// Server to place the tenants on [default: by placement]
        #[arg(long = "to-server")]
        to_server: Option<String>,
        /// database | schema | shared [default: database, or default_strategy in tenantry.toml]
        #[arg(long)]
        strategy: Option<String>,
        /// The version its schema holds, when it has no _sqlx_migrations (0: none).
        #[arg(long)]
        baseline: Option<i64>,
        /// Each tenant as a JSON line as it is made, then the result.
        #[arg(long)]
        json: bool,
    },
    /// Back a tenant up while it serves: the portable archive, or with --native the
    /// engine's own copy of a tenant's own database or schema (SQLite `VACUUM INTO`,
    /// `pg_dump`, `mysqldump`), into the backup directory.
    Backup {
        slug: String,
        /// The engine's own copy of the storage (restorable in place only).
        #[arg(long)]
        native: bool,
        #[arg(long)]
        json: bool,
    },
    /// List a tenant's backups, newest first (a purged tenant's too, by its old slug).
    Backups {
        slug: String,
        #[arg(long)]
        json: bool,
    },
    /// Restore a backup in place (the tenant suspended meanwhile, then resumed if it was
    /// active) or, with --as, into a new tenant.
    Restore {
        slug: String,
        /// The backup's id, from `tenantry tenant backups`.
        #[arg(long = "from", value_name = "BACKUP")]
        from: String,
        /// Restore into a new tenant with this slug (a clone) instead.
        #[arg(long = "as", value_name = "NEW_SLUG")]
        as_slug: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Add labels (beta, tier=gold) that rollouts select and order tenants by.
    Label {
        slug: String,
        #[arg(required = true)]
        labels: Vec<String>,
    },
    /// Remove labels.
    Unlabel {
        slug: String,
        #[arg(required = true)]
        labels: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SparesCommand {
    /// Build spares: each provisioned, migrated and verified like a tenant, then closed to
    /// every login.
    Add {
        /// How many to build.
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// The server [default: the default server].
        #[arg(long)]
        server: Option<String>,
        /// database | schema [default: database, or default_strategy in tenantry.toml]
        #[arg(long)]
        strategy: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Spares per server and strategy: current (claimable), behind (a rollout has yet to
    /// migrate them), failed.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete spares (every server and strategy unless narrowed), failed builds included.
    Remove {
        /// At most this many.
        #[arg(long)]
        count: Option<usize>,
        #[arg(long)]
        server: Option<String>,
        #[arg(long)]
        strategy: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Register a server after checking it answers: postgres://user@host/db or sqlite:<dir>.
    Add {
        name: String,
        url: String,
        /// A transaction-mode pooler (PgBouncer) application connections go through.
        #[arg(long, value_name = "URL")]
        pooler: Option<String>,
        #[command(flatten)]
        placement: PlacementArgs,
    },
    /// Set the pooler a server's application connections go through; without a URL, clear it.
    Pooler { name: String, url: Option<String> },
    /// Set a server's capacity, region and labels, which placement reads.
    Set {
        name: String,
        #[command(flatten)]
        placement: PlacementArgs,
        /// Lift the capacity limit.
        #[arg(long, conflicts_with = "capacity")]
        no_capacity: bool,
        /// Clear the region.
        #[arg(long, conflicts_with = "region")]
        no_region: bool,
        /// Remove a label (repeatable).
        #[arg(long = "unlabel", value_name = "LABEL")]
        unlabel: Vec<String>,
    },
    /// List servers (passwords hidden).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Move every active and suspended tenant off a server (it takes no new tenants from
    /// now on); run it again to resume.
    Drain {
        name: String,
        /// Where every tenant goes [default: the least loaded server of its region that
        /// offers its strategy]
        #[arg(long, value_name = "SERVER")]
        to: Option<String>,
        /// database | schema | shared [default: each tenant's own]
        #[arg(long)]
        strategy: Option<String>,
        /// Moves at a time.
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// Failed moves tolerated before no further move starts.
        #[arg(long, default_value_t = 0)]
        max_failures: usize,
        #[arg(long)]
        json: bool,
    },
    /// Let a drained server take new tenants again.
    Undrain { name: String },
    /// Remove a server no tenant lives on.
    Remove { name: String },
}

/// A server's placement facts.
#[derive(Debug, Args)]
pub struct PlacementArgs {
    /// The most tenants it holds (spares and unfinished creations count).
    #[arg(long, value_name = "N")]
    pub capacity: Option<i64>,
    /// Its region (eu-west-1), which `tenant create --region` pins to.
    #[arg(long)]
    pub region: Option<String>,
    /// A label (ssd, tier=gold; repeatable).
    #[arg(long = "label", value_name = "LABEL")]
    pub labels: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    /// Route a host to a tenant (normalised: lowercase, no port, no trailing dot, IDN as
    /// punycode); a tenant's first domain is its primary one.
    Add {
        slug: String,
        host: String,
        /// Make it the tenant's primary domain.
        #[arg(long)]
        primary: bool,
        #[arg(long)]
        json: bool,
    },
    /// Stop routing a host.
    Remove { host: String },
    /// List domains.
    List {
        /// Only this tenant's.
        #[arg(long, value_name = "SLUG")]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; e-mails are unique whatever their case.
    Add {
        email: String,
        /// Display name [default: the e-mail]
        #[arg(long)]
        name: Option<String>,
        /// Read a password (argon2id-hashed) from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a user (by id or e-mail) and their memberships.
    Show {
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: their requests are refused everywhere within a second.
    Disable { user: String },
    /// Enable a disabled user again.
    Enable { user: String },
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Make a user a member of a tenant.
    Add {
        user: String,
        slug: String,
        /// One of the configured roles ([routing] roles; default owner, admin, manager,
        /// employee, viewer).
        #[arg(long)]
        role: String,
        #[arg(long)]
        json: bool,
    },
    /// End a membership.
    Remove { user: String, slug: String },
    /// Change a member's role.
    Role {
        user: String,
        slug: String,
        role: String,
    },
    /// List memberships.
    List {
        /// Only this tenant's.
        #[arg(long, value_name = "SLUG")]
        tenant: Option<String>,
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub command: Option<MigrateCommand>,

    /// Migrate every tenant; goes on past failures and exits non-zero if any failed.
    #[arg(long, conflicts_with = "tenant")]
    pub all: bool,

    /// Migrate this tenant (repeatable).
    #[arg(long, value_name = "SLUG")]
    pub tenant: Vec<String>,

    /// Continue rollout ID (one that was interrupted or killed, or that other runners are
    /// working on) with the migrations directory it was started with.
    #[arg(long, value_name = "ID", conflicts_with_all = ["all", "tenant"])]
    pub resume: Option<String>,

    #[command(flatten)]
    pub controls: Controls,

    /// Run every pending migration on every selected tenant inside a transaction that is
    /// rolled back (PostgreSQL, SQLite; MySQL tenants are skipped: its DDL commits itself).
    #[arg(long, conflicts_with = "resume")]
    pub dry_run: bool,
}

/// What `migrate --all`, `migrate down`, `migrate undo` and `run` share: which tenants, in what order, in what waves, how
/// many failures are tolerated, how long a claim lasts, and how it reports.
#[derive(Debug, Args)]
pub struct Controls {
    /// Only tenants on this server (repeatable).
    #[arg(long = "server", value_name = "NAME")]
    pub servers: Vec<String>,

    /// Only tenants of this strategy: database | schema | shared (repeatable).
    #[arg(long = "strategy", value_name = "STRATEGY")]
    pub strategies: Vec<String>,

    /// Only tenants with this label (repeatable: all of them).
    #[arg(long = "label", value_name = "LABEL")]
    pub labels: Vec<String>,

    /// Order tenants by server, strategy or label:<key> (the value of labels <key>=<value>)
    /// before catalog order (repeatable).
    #[arg(long = "order-by", value_name = "KEY")]
    pub order_by: Vec<String>,

    /// Run the first N tenants alone first; if any fails, stop there.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub canary: usize,

    /// Then run tenants in waves of N, each wave after the previous one has finished.
    #[arg(long, value_name = "N")]
    pub wave_size: Option<usize>,

    /// Stop starting tenants once more than N (or P% of the rollout's tenants) failed; the
    /// rest are reported not attempted.
    #[arg(long, value_name = "N|P%")]
    pub max_failures: Option<String>,

    /// Seconds a runner's claim on a tenant lasts without renewal; a killed runner's
    /// tenants are taken over by another runner after it.
    #[arg(long, value_name = "SECS", default_value_t = 15)]
    pub lease_secs: u64,

    /// One JSON line per tenant as it finishes, then a summary line.
    #[arg(long)]
    pub json: bool,
}

/// `tenantry run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The SQL: one or more statements, run in one transaction per tenant.
    #[arg(required_unless_present = "resume")]
    pub sql: Option<String>,

    /// Run it on every active tenant.
    #[arg(long, conflicts_with = "tenant")]
    pub all: bool,

    /// Run it on this tenant (repeatable).
    #[arg(long, value_name = "SLUG")]
    pub tenant: Vec<String>,

    /// Continue run ID (interrupted, killed, or being run by others).
    #[arg(long, value_name = "ID", conflicts_with_all = ["all", "tenant", "sql"])]
    pub resume: Option<String>,

    #[command(flatten)]
    pub controls: Controls,

    /// Roll each tenant's transaction back instead of committing it (on MySQL a DDL
    /// statement commits itself: a dry run of DDL there is not one).
    #[arg(long, conflicts_with = "resume")]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Recent rollouts, newest first: who, when, target version, state, counts.
    Rollouts {
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// One rollout and the outcome of each of its tenants.
    Rollout {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Revert exactly the tenants a finished rollout migrated, each to its version before
    /// it, with the .down.sql scripts; a tenant that moved since is left alone (skipped). A
    /// rollout of its own, with the controls of `migrate --all`.
    Undo(Box<MigrateUndoArgs>),
    /// Create an empty migration in the migrations directory (created if missing), in
    /// sqlx-cli's format: <VERSION>_<description>.sql, or an .up.sql/.down.sql pair. VERSION
    /// is the UTC time as YYYYMMDDHHMMSS, or the newest version there plus one if that is not
    /// newer. Needs the configuration only, no catalog.
    Add(MigrateAddArgs),
    /// Where the fleet stands, from the catalog alone (no tenant is opened): tenants per
    /// version, how many are current, pending, failed and dirty. --tenants: each tenant's
    /// row; --tenant: one tenant's migrations from its ledger.
    Status(MigrateStatusArgs),
    /// Open every selected tenant: check its ledger against the migration files and compare
    /// its schema (tables, columns, indexes, constraints) with a reference tenant's. Exits 1
    /// if any tenant drifted or could not be read.
    Verify(MigrateVerifyArgs),
    /// Revert migrations with their .down.sql scripts, newest first: every applied version
    /// above --to (0: all), or the --steps newest. Refused before anything runs if a version
    /// to revert has no down file on any tenant. Goes on past failures and exits non-zero if
    /// any tenant failed.
    Down(Box<MigrateDownArgs>),
    /// Settle a dirty migration (MySQL) after fixing the database by hand.
    Resolve {
        slug: String,
        /// The dirty migration's version.
        #[arg(value_name = "VERSION")]
        migration: i64,
        /// You finished the migration by hand: record it as applied.
        #[arg(long, conflicts_with = "retry", required_unless_present = "retry")]
        applied: bool,
        /// You undid its partial effects: forget it so the next run applies it again.
        #[arg(long)]
        retry: bool,
    },
}

#[derive(Debug, Args)]
pub struct MigrateStatusArgs {
    /// Each tenant's version, pending count and last error, from the catalog.
    #[arg(long, conflicts_with = "tenant")]
    pub tenants: bool,
    /// One tenant's migrations as its ledger records them (a shared tenant: its pool's
    /// ledger): version, description, state, applied at, duration, checksum match.
    #[arg(long, value_name = "SLUG")]
    pub tenant: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["all", "tenant"])))]
pub struct MigrateVerifyArgs {
    /// Verify every tenant that is not deleted (those not active or suspended are skipped).
    #[arg(long, conflicts_with = "tenant")]
    pub all: bool,
    /// Verify this tenant (repeatable).
    #[arg(long, value_name = "SLUG")]
    pub tenant: Vec<String>,
    /// Compare every tenant of this tenant's engine with it [default: per engine and
    /// strategy, the first active tenant at the latest version]
    #[arg(long, value_name = "SLUG")]
    pub reference: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("tenants").required(true).args(["all", "tenant", "resume"])))]
#[command(group(ArgGroup::new("target").required(true).args(["to", "steps", "resume"])))]
pub struct MigrateDownArgs {
    /// Revert every tenant.
    #[arg(long)]
    pub all: bool,
    /// Revert this tenant (repeatable). A shared tenant only together with every other live
    /// shared tenant of its server: they share one set of tables.
    #[arg(long, value_name = "SLUG")]
    pub tenant: Vec<String>,
    /// Revert every applied version greater than VERSION, a version of the migrations
    /// directory (0: every version).
    #[arg(long, value_name = "VERSION", value_parser = clap::value_parser!(i64).range(0..))]
    pub to: Option<i64>,
    /// Revert the N newest applied versions.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub steps: Option<u32>,
    /// Continue revert ID (interrupted, killed, or being run by others) with the migrations
    /// directory it was started with.
    #[arg(long, value_name = "ID")]
    pub resume: Option<String>,
    #[command(flatten)]
    pub controls: Controls,
    /// Revert on every selected tenant inside a transaction that is rolled back
    /// (PostgreSQL, SQLite; MySQL tenants are skipped: its DDL commits itself).
    #[arg(long, conflicts_with = "resume")]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct MigrateUndoArgs {
    /// The rollout to undo (`tenantry migrate rollouts`).
    #[arg(required_unless_present = "resume", conflicts_with = "resume")]
    pub rollout: Option<String>,
    /// Continue undo ID (interrupted, killed, or being run by others).
    #[arg(long, value_name = "ID")]
    pub resume: Option<String>,
    #[command(flatten)]
    pub controls: Controls,
    /// Revert on every tenant inside a transaction that is rolled back (PostgreSQL,
    /// SQLite; MySQL tenants are skipped).
    #[arg(long, conflicts_with = "resume")]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct MigrateAddArgs {
    /// What the migration does, as words ("add users table", "AddUsersTable"); the file name
    /// carries it in snake_case: lowercase ASCII letters, digits and underscores.
    pub description: String,
    /// Create a reversible pair (.up.sql and .down.sql). Without --reversible or --simple, the
    /// newest migration decides, as in sqlx-cli: a pair if it is one, else a single file.
    #[arg(long, conflicts_with = "simple")]
    pub reversible: bool,
    /// Create a single forward file even where the newest migration is a reversible pair.
    #[arg(long)]
    pub simple: bool,
    /// Print {"version": …, "files": […]}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a signed HS256 token for a user ([routing.jwt] secret, or TENANTRY_JWT_SECRET),
    /// with the configured issuer and audience.
    Mint {
        /// The user (id or e-mail); the token's subject is their id.
        #[arg(long)]
        user: String,
        /// Put this tenant (slug) in the tenant claim.
        #[arg(long, value_name = "SLUG")]
        tenant: Option<String>,
        /// Seconds until it expires.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// The Host header (repeat it to see how two Host headers are refused).
    #[arg(long)]
    pub host: Vec<String>,
    /// A header, as 'Name: value' (repeatable).
    #[arg(long, value_name = "'NAME: VALUE'")]
    pub header: Vec<String>,
    /// The request path.
    #[arg(long, default_value = "/")]
    pub path: String,
    /// A bearer token, as sent in `Authorization: Bearer <token>`.
    #[arg(long, value_name = "TOKEN")]
    pub bearer: Option<String>,
    /// Resolve as a public route: membership is not required.
    #[arg(long)]
    pub public: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ApikeyCommand {
    /// Create a key and print it once (`tnt_…`); only its hash is stored.
    Create {
        /// A name for the key: the audit log records its changes as `key:<name>`.
        name: String,
        /// What it may do (repeatable or comma-separated): tenants:read, tenants:write,
        /// members:write, migrations:run, audit:read, secrets:write, admin.
        #[arg(long = "scope", value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Bind the key to this tenant: it sees and manages that tenant only.
        #[arg(long, value_name = "SLUG")]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Every key, live and revoked (never a secret).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: refused from the next request on, in every process.
    Revoke {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Set a secret to the value read from stdin (never echoed; one trailing newline is
    /// dropped).
    Set { slug: String, name: String },
    /// A tenant's secrets' names and times, never their values.
    List {
        slug: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a secret.
    Remove { slug: String, name: String },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Reseal every sealed value under a new master key (written to <key file>.new, or given
    /// in TENANTRY_NEW_MASTER_KEY), then make it the key; run it again to finish an
    /// interrupted rotation.
    Rotate {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain; name the first entry edited, deleted or moved (exit 1).
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Write the audit log as JSON lines, oldest first.
    Export {
        /// Only entries at or after this time (RFC 3339, e.g. 2026-11-23T00:00:00Z).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only this tenant's entries.
        #[arg(long, value_name = "SLUG")]
        tenant: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only this tenant's events.
    #[arg(long, value_name = "SLUG")]
    pub tenant: Option<String>,
    /// How many events to show.
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
