//! The `carehub` command: glue between the command line, the store, the seed data and the HTTP
//! server. Everything it runs lives in the library crates; this file only wires them.

mod seed;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use std::sync::Arc;

use carehub_gateway::apps::Apps;
use carehub_gateway::config::PlatformConfig;
use carehub_gateway::identity::{self, Identity, NewSmartcard, RoleProfile};
use carehub_gateway::limits::{LocalLimiter, RateLimiter, RedisLimiter, SharedLimiter};
use carehub_gateway::tls::{LocalCa, TlsSettings};
use carehub_server::ServerConfig;
use carehub_store::{COMPOSITE_INDEX_SCHEMA, Store, StoreConfig};
use clap::{Args, Parser, Subcommand};

/// carehub: the NHS integration world in one program.
///
/// Every option can also be set by its environment variable, or in a TOML file named by
/// `--config FILE` (or CAREHUB_CONFIG) whose keys are the option names (`port = 8080`,
/// `data-dir = "/var/lib/carehub"`). The command line wins over the environment, which wins over
/// the file.
#[derive(Debug, Parser)]
#[command(name = "carehub", version, about, long_about = None)]
struct Cli {
    /// A TOML file of option values (keys are the long option names).
    #[arg(long, global = true, env = "CAREHUB_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything on the embedded SQLite database, seeding test data on first start.
    Up(UpArgs),
    /// Serve on a database given by URL (SQLite or PostgreSQL), without seeding.
    Serve(ServeArgs),
    /// Load a deterministic synthetic test data pack into a database.
    Seed(SeedArgs),
    /// Register applications and manage their API keys.
    #[command(subcommand)]
    Apps(AppsCommand),
    /// Virtual smartcards: the users who sign in to user-restricted APIs.
    #[command(subcommand)]
    Users(UsersCommand),
    /// The local certificate authority for mutual TLS.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// For benchmarks: a bare axum handler serving one file's bytes from memory, the yardstick
    /// that carehub's reads are measured against.
    BenchBaseline(BaselineArgs),
}

#[derive(Debug, Subcommand)]
enum AppsCommand {
    /// Register an application in one environment and print its API key (shown only once).
    Create(AppCreateArgs),
    /// Revoke an API key (a running server refuses it within a second); the application stays
    /// registered.
    Revoke(AppRevokeArgs),
    /// Make an RSA key pair for an application's signed-JWT authentication: the public key is
    /// registered with carehub, the private key written to a file for the application.
    Keygen(AppKeygenArgs),
    /// Print a signed client assertion for POST /{env}/oauth2/token.
    Jwt(AppJwtArgs),
    /// Issue a new client secret (for the authorization-code and refresh grants) and set the
    /// callback URLs users are sent back to after signing in.
    Secret(AppSecretArgs),
    /// Register the application's ASID (e-RS answers only applications that have one), and
    /// list it in its environment's SDS as a consumer allowed every GP Connect interaction.
    Asid(AppAsidArgs),
}

#[derive(Debug, Args)]
struct AppAsidArgs {
    #[command(flatten)]
    database: Database,
    /// The application's id.
    #[arg(long)]
    app: String,
    /// The Accredited System ID (up to 12 digits).
    #[arg(long)]
    asid: String,
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// List an environment's virtual smartcards and their roles.
    List(UsersListArgs),
    /// Issue a virtual smartcard.
    Create(UserCreateArgs),
    /// Withdraw a smartcard; its tokens stop working within a second on a running server.
    Revoke(UserRevokeArgs),
    /// Sign a user in at the identity provider from the command line (card, role, passcode)
    /// and print the ID token, for the separate flow's token exchange.
    SignIn(UserSignInArgs),
}

#[derive(Debug, Args)]
struct UserSignInArgs {
    #[command(flatten)]
    database: Database,
    /// The card's id (the user's UUID).
    #[arg(long)]
    card: String,
    /// The role profile id to act in.
    #[arg(long)]
    role: String,
    /// The card's passcode.
    #[arg(long)]
    passcode: String,
    /// The application's API key (the ID token's audience).
    #[arg(long)]
    client_id: String,
    /// The URL carehub is reached at (the issuer is `{public_url}/{env}/cis2`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    public_url: String,
}

#[derive(Debug, Args)]
struct UsersListArgs {
    #[command(flatten)]
    database: Database,
    /// The environment.
    #[arg(long, default_value = "int")]
    env: String,
}

#[derive(Debug, Args)]
struct UserCreateArgs {
    #[command(flatten)]
    database: Database,
    /// The environment the card works in.
    #[arg(long, default_value = "int")]
    env: String,
    /// Given name.
    #[arg(long)]
    given: String,
    /// Family name.
    #[arg(long)]
    family: String,
    /// The passcode that opens the card (at least 4 characters).
    #[arg(long)]
    passcode: String,
    /// Authentication assurance level: 3 (smartcard) or 2.
    #[arg(long, default_value_t = 3)]
    aal: u8,
    /// A role profile as ROLE_CODE:ODS[:BUSINESS_FUNCTION,...], e.g.
    /// R8000:B82617:REFERRING_CLINICIAN; repeat for more roles.
    #[arg(long = "role", required = true)]
    roles: Vec<String>,
}

#[derive(Debug, Args)]
struct UserRevokeArgs {
    #[command(flatten)]
    database: Database,
    /// The card's id (the user's UUID).
    #[arg(long)]
    id: String,
}

#[derive(Debug, Args)]
struct AppSecretArgs {
    #[command(flatten)]
    database: Database,
    /// The application's id.
    #[arg(long)]
    app: String,
    /// A callback URL (OAuth redirect_uri); repeat for more. Replaces the registered ones.
    #[arg(long = "callback")]
    callbacks: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// Sign an endpoint certificate from a CSR with the local CA and bind it to an
    /// application (and its ASID), as NHS endpoint registration does.
    Issue(CertIssueArgs),
}

#[derive(Debug, Args)]
struct CertIssueArgs {
    #[command(flatten)]
    database: Database,
    /// Where the local CA lives (created on first use); default the data directory.
    #[arg(long)]
    tls_dir: Option<PathBuf>,
    /// The certificate signing request (PEM).
    #[arg(long)]
    csr: PathBuf,
    /// The application the certificate is for.
    #[arg(long)]
    app: String,
    /// The application's ASID, bound to the certificate.
    #[arg(long)]
    asid: Option<String>,
    /// Validity in days.
    #[arg(long, default_value_t = 365)]
    days: i64,
    /// Where to write the certificate (PEM).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct AppKeygenArgs {
    #[command(flatten)]
    database: Database,
    /// The application's id (printed by `carehub apps create`).
    #[arg(long)]
    app: String,
    /// The key id, sent as the JWT `kid` header.
    #[arg(long, default_value = "key-1")]
    kid: String,
    /// Where to write the private key (PEM); refused if the file exists.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct AppJwtArgs {
    /// The application's API key (`iss` and `sub`).
    #[arg(long)]
    api_key: String,
    /// The private key file from `carehub apps keygen`.
    #[arg(long)]
    private_key: PathBuf,
    /// The key id registered with the public key.
    #[arg(long, default_value = "key-1")]
    kid: String,
    /// The token URL (`aud`), e.g. http://127.0.0.1:8080/int/oauth2/token.
    #[arg(long)]
    aud: String,
    /// Seconds until the assertion expires (at most 300).
    #[arg(long, default_value_t = 300)]
    lifetime: u64,
    /// How many assertions to print, one per line, each with its own `jti` (for load tests).
    #[arg(long, default_value_t = 1)]
    count: u32,
}

#[derive(Debug, Args)]
struct Database {
    /// Database URL; defaults to the `carehub up` database in --data-dir.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// The data directory of `carehub up`, used when no --database-url is given.
    #[arg(long, env = "CAREHUB_DATA_DIR", default_value = ".carehub")]
    data_dir: PathBuf,
}

#[derive(Debug, Args)]
struct AppCreateArgs {
    #[command(flatten)]
    database: Database,
    /// The application's name, e.g. Acme-Referrals-INT.
    #[arg(long)]
    name: String,
    /// The environment its credentials work in (`int`, `sandbox`, ...).
    #[arg(long, default_value = "int")]
    env: String,
    /// The owning organisation's ODS code.
    #[arg(long)]
    ods: String,
    /// A callback URL for user sign-in (OAuth redirect_uri); repeat for more. With one, a
    /// client secret is issued too.
    #[arg(long = "callback")]
    callbacks: Vec<String>,
}

#[derive(Debug, Args)]
struct AppRevokeArgs {
    #[command(flatten)]
    database: Database,
    /// The API key to revoke.
    #[arg(long)]
    key: String,
}

#[derive(Debug, Args)]
struct BaselineArgs {
    /// Port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 8099)]
    port: u16,
    /// The bytes to serve, e.g. a resource as carehub returns it.
    #[arg(long)]
    body_file: PathBuf,
}

#[derive(Debug, Args)]
struct Listen {
    /// Address to listen on.
    #[arg(long, env = "CAREHUB_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on; 0 picks a free port.
    #[arg(long, env = "CAREHUB_PORT", default_value_t = 8080)]
    port: u16,
    /// The URL clients use to reach carehub, when it differs from http://HOST:PORT (behind a
    /// proxy, say); used in Location headers, fullUrl and paging links.
    #[arg(long, env = "CAREHUB_PUBLIC_URL")]
    public_url: Option<String>,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    #[arg(long, env = "CAREHUB_BODY_LIMIT", default_value_t = 16 * 1024 * 1024)]
    body_limit: usize,
    /// Database connections for reads (the writers use theirs on top).
    #[arg(long, env = "CAREHUB_DB_CONNECTIONS", default_value_t = 8)]
    db_connections: u32,
    /// Writers on PostgreSQL, each a connection committing its own batches of writes, so that
    /// one batch runs while another waits on its commit. SQLite allows one writer at a time and
    /// always has one.
    #[arg(long, env = "CAREHUB_DB_WRITERS", default_value_t = 4)]
    db_writers: u32,
    /// Resources whose current version is kept in memory: for every read on SQLite (where
    /// carehub is the only writer), and for credentials (copies at most a second old) on both
    /// databases; 0 turns the cache off.
    #[arg(long, env = "CAREHUB_READ_CACHE", default_value_t = 20_000)]
    cache_capacity: usize,
    /// Send OpenTelemetry traces to this OTLP/HTTP collector (`<URL>/v1/traces`, e.g.
    /// http://127.0.0.1:4318): a span per request through the gateway, a child of the
    /// caller's W3C `traceparent`, and the parent of requests forwarded to fronted servers.
    /// Bodies are protobuf, or JSON with OTEL_EXPORTER_OTLP_PROTOCOL (or _TRACES_PROTOCOL)
    /// `http/json`. The standard OTEL_EXPORTER_OTLP_TRACES_HEADERS, _TIMEOUT, OTEL_BSP_* and
    /// OTEL_TRACES_SAMPLER (with _ARG, e.g. `traceidratio` and `0.1`) variables tune the
    /// exporter and sampling. Off when unset.
    #[arg(long, env = "CAREHUB_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// Count quotas and spike arrests in this Redis server (redis://HOST:PORT/DB), so that
    /// they hold across every node that uses it. Without it they are counted in the database
    /// on PostgreSQL (shared by its nodes), and in memory on SQLite (one node).
    #[arg(long, env = "CAREHUB_REDIS_URL")]
    redis_url: Option<String>,
    /// A TOML file of environments, APIs and products (see docs/platform.md); without it,
    /// `sandbox`, `int` and `admin`, with the FHIR APIs in `int`.
    #[arg(long, env = "CAREHUB_PLATFORM")]
    platform: Option<PathBuf>,
    /// Also serve HTTPS with mutual TLS on this port (0 picks a free one), with certificates
    /// from carehub's local CA; client certificates are optional at the handshake, and products
    /// with the `mutual-tls` access mode require one.
    #[arg(long, env = "CAREHUB_TLS_PORT")]
    tls_port: Option<u16>,
    /// Where the local CA and the listener's certificate are kept (default: the data directory
    /// for `up`, required with --tls-port for `serve`).
    #[arg(long, env = "CAREHUB_TLS_DIR")]
    tls_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct UpArgs {
    #[command(flatten)]
    listen: Listen,
    /// Where the SQLite database lives; created if missing.
    #[arg(long, env = "CAREHUB_DATA_DIR", default_value = ".carehub")]
    data_dir: PathBuf,
    /// Patients in the test data pack seeded on first start.
    #[arg(long, env = "CAREHUB_SEED_PATIENTS", default_value_t = 200)]
    seed_patients: u64,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    listen: Listen,
    /// Database URL: `postgres://user@host/db` or `sqlite://path/file.db?mode=rwc`.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
}

#[derive(Debug, Args)]
struct SeedArgs {
    /// Database URL; defaults to the `carehub up` database in --data-dir.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// The data directory of `carehub up`, used when no --database-url is given.
    #[arg(long, env = "CAREHUB_DATA_DIR", default_value = ".carehub")]
    data_dir: PathBuf,
    /// How many patients to generate.
    #[arg(long, default_value_t = 1000)]
    patients: u64,
    /// The pack's seed: the same seed always gives the same data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// The command line, with defaults taken from the `--config` file when there is one.
fn parse_cli() -> Result<Cli> {
    use clap::{CommandFactory, FromArgMatches};
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let config_path = args
        .iter()
        .position(|a| a == "--config")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("CAREHUB_CONFIG").map(PathBuf::from));
    let mut command = Cli::command();
    if let Some(path) = config_path {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let table: toml::Table = text
            .parse()
            .with_context(|| format!("parsing {}", path.display()))?;
        for (key, value) in table {
            let value = match value {
                toml::Value::String(text) => text,
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => anyhow::bail!(
                    "{}: '{key}' must be a string, number or boolean, not {}",
                    path.display(),
                    other.type_str()
                ),
            };
            let mut known = false;
            let names: Vec<String> = command
                .get_subcommands()
                .map(|s| s.get_name().to_owned())
                .collect();
            for name in names {
                command = command.mut_subcommand(&name, |sub| {
                    if sub
                        .get_arguments()
                        .any(|a| a.get_long() == Some(key.as_str()))
                    {
                        known = true;
                        let id = sub
                            .get_arguments()
                            .find(|a| a.get_long() == Some(key.as_str()))
                            .map(|a| a.get_id().clone());
                        match id {
                            Some(id) => sub.mut_arg(id, |arg| {
                                arg.default_value(value.clone()).required(false)
                            }),
                            None => sub,
                        }
                    } else {
                        sub
                    }
                });
            }
            if !known {
                anyhow::bail!(
                    "{}: '{key}' is not a carehub option (see carehub --help)",
                    path.display()
                );
            }
        }
    }
    let matches = command.get_matches();
    Ok(Cli::from_arg_matches(&matches)?)
}

/// glibc's allocator spent about 40% of a large response's time consolidating and unlinking
/// chunks (measured on a 10,000-referral e-RS worklist, `docs/benchmarks.md`); mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let cli = parse_cli()?;
    let otlp_endpoint = match &cli.command {
        Command::Up(args) => args.listen.otlp_endpoint.as_deref(),
        Command::Serve(args) => args.listen.otlp_endpoint.as_deref(),
        _ => None,
    };
    let tracer_provider = init_tracing(otlp_endpoint)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Up(args) => up(args).await,
            Command::Serve(args) => serve(args).await,
            Command::Seed(args) => seed_command(args).await,
            Command::Apps(command) => apps_command(command).await,
            Command::Users(command) => users_command(command).await,
            Command::Certs(CertsCommand::Issue(args)) => certs_issue(args).await,
            Command::BenchBaseline(args) => bench_baseline(args).await,
        }
    });
    if let Some(provider) = tracer_provider {
        // Sends the spans still queued before the process ends.
        if let Err(err) = provider.shutdown() {
            eprintln!("carehub: exporting the last traces failed: {err}");
        }
    }
    outcome
}

/// JSON logs on stderr, and, with a collector, the gateway's request spans exported over OTLP.
fn init_tracing(
    otlp_endpoint: Option<&str>,
) -> Result<Option<opentelemetry_sdk::trace::SdkTracerProvider>> {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let logs = tracing_subscriber::fmt::layer()
        .json()
        // Logs go to stderr; stdout is for what the command tells its user (URLs, keys).
        .with_writer(std::io::stderr)
        .with_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAREHUB_LOG")
                // One JSON line per request through the gateway, warnings from the rest.
                .unwrap_or_else(|_| "warn,carehub::access=info".into()),
        );
    let Some(endpoint) = otlp_endpoint else {
        tracing_subscriber::registry().with(logs).init();
        return Ok(None);
    };
    let endpoint = endpoint.trim_end_matches('/');
    let traces_url = if endpoint.ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{endpoint}/v1/traces")
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(otlp_protocol()?)
        .with_endpoint(&traces_url)
        .build()
        .with_context(|| format!("setting up the OTLP exporter for {traces_url}"))?;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("carehub")
                .build(),
        )
        .build();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let spans = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("carehub"))
        .with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target(carehub_gateway::trace::TARGET, tracing::Level::INFO),
        );
    tracing_subscriber::registry().with(logs).with(spans).init();
    Ok(Some(provider))
}

/// The OTLP body encoding the standard variables ask for: protobuf, the OTLP default, unless
/// `http/json`; gRPC is not spoken.
fn otlp_protocol() -> Result<opentelemetry_otlp::Protocol> {
    let asked = [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]
    .iter()
    .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()));
    match asked.as_deref().map(str::trim) {
        None | Some("http/protobuf") => Ok(opentelemetry_otlp::Protocol::HttpBinary),
        Some("http/json") => Ok(opentelemetry_otlp::Protocol::HttpJson),
        Some(other) => anyhow::bail!(
            "OTLP protocol '{other}' is not supported: use http/protobuf (the default) or http/json"
        ),
    }
}

fn sqlite_url(data_dir: &std::path::Path) -> Result<String> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    Ok(format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("carehub.db").display()
    ))
}

async fn up(args: UpArgs) -> Result<()> {
    let started = Instant::now();
    let first_start = !args.data_dir.join("carehub.db").exists();
    let url = sqlite_url(&args.data_dir)?;
    let store = Store::open(&StoreConfig {
        url,
        max_connections: args.listen.db_connections,
        writers: args.listen.db_writers,
        cache_capacity: args.listen.cache_capacity,
    })
    .await
    .context("opening the database")?;
    let (listener, config) = bind(&args.listen).await?;
    reindex_if_needed(&store, &config).await?;
    if first_start {
        let pack = seed::PackOptions {
            patients: args.seed_patients,
            seed: 1,
        };
        seed::seed(&store, &config, &pack, false)
            .await
            .context("seeding test data")?;
    }
    println!("carehub is up (SQLite in {})", args.data_dir.display());
    let platform = platform_config(&args.listen)?;
    // Every integration environment gets the documented virtual smartcards once.
    let identity = Identity::new(store.clone(), &config.public_url);
    for environment in &platform.environments {
        // Sandboxes get cards too: the SPCs an SPCA may act for (A040) are card holders.
        if environment.kind != carehub_gateway::config::EnvironmentKind::Production {
            identity::seed(&identity, &environment.name)
                .await
                .context("seeding virtual smartcards")?;
            println!(
                "  smartcards in {}: `carehub users list --env {}` (seeded ones open with 1234)",
                environment.name, environment.name
            );
        }
    }
    seed_ers(&store, &platform).await?;
    seed_gp_connect(&store, &platform, &config.public_url).await?;
    let tls_dir = args.listen.tls_dir.clone().unwrap_or(args.data_dir.clone());
    run(
        listener,
        config,
        platform,
        store,
        started,
        &args.listen,
        Some(tls_dir),
    )
    .await
}

/// Seeds the e-RS services directory of every integration environment that serves e-RS, once.
async fn seed_ers(store: &Store, platform: &PlatformConfig) -> Result<()> {
    for product in &platform.products {
        let serves_ers = platform
            .apis
            .iter()
            .any(|a| a.name == product.api && a.service.as_deref() == Some(carehub_ers::SERVICE));
        let kind = platform
            .environments
            .iter()
            .find(|e| e.name == product.environment)
            .map(|e| e.kind);
        let Some(key) = platform.store_key(product) else {
            continue;
        };
        if serves_ers && kind == Some(carehub_gateway::config::EnvironmentKind::Sandbox) {
            let repo = carehub_ers::repo::Repo::new(store.clone(), &key);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as i64)
                .unwrap_or(0);
            if carehub_ers::seed::seed_sandbox(&repo, now)
                .await
                .context("seeding the e-RS sandbox")?
            {
                println!(
                    "  e-RS sandbox in {}: open, stateless, the official scenario keys (UBRN 000000070000...)",
                    product.environment
                );
            }
        }
        let integration = kind == Some(carehub_gateway::config::EnvironmentKind::Integration);
        if serves_ers && integration {
            // e-RS traces patients on the environment's PDS.
            let pds = carehub_spine::pds::repo::PdsRepo::new(
                store.clone(),
                &format!("pds-{}", product.environment),
            );
            carehub_spine::pds::seed::seed(&pds)
                .await
                .context("seeding PDS")?;
            let repo = carehub_ers::repo::Repo::new(store.clone(), &key);
            let seeded = carehub_ers::seed::seed(&repo)
                .await
                .context("seeding the e-RS services directory")?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as i64)
                .unwrap_or(0);
            let referrals = carehub_ers::seed::seed_referrals(&repo, now)
                .await
                .context("seeding e-RS referrals")?;
            if seeded > 0 {
                println!(
                    "  e-RS in {}: {seeded} services in the directory; referrals and advice requests:",
                    product.environment
                );
                for referral in &referrals {
                    println!("    {}  {}", referral.ubrn, referral.what);
                }
            }
        }
    }
    Ok(())
}

/// Seeds PDS and the GP Connect provider of every integration environment that serves GP
/// Connect, once, and lists the test patients.
async fn seed_gp_connect(store: &Store, platform: &PlatformConfig, public_url: &str) -> Result<()> {
    for product in &platform.products {
        let Some(api) = platform.apis.iter().find(|a| a.name == product.api) else {
            continue;
        };
        if api.service.as_deref() != Some(carehub_gpconnect::SERVICE) {
            continue;
        }
        let integration = platform.environments.iter().any(|e| {
            e.name == product.environment
                && e.kind == carehub_gateway::config::EnvironmentKind::Integration
        });
        let Some(key) = platform.store_key(product).filter(|_| integration) else {
            continue;
        };
        let repo = carehub_gpconnect::repo::Repo::new(store.clone(), &key);
        let gp_connect_url = format!(
            "{}/{}/{}",
            public_url.trim_end_matches('/'),
            product.environment,
            api.path
        );
        if carehub_gpconnect::seed::seed(&repo, &gp_connect_url)
            .await
            .context("seeding GP Connect, PDS and SDS")?
        {
            let (ods, asid) = carehub_gpconnect::seed::HOME_PRACTICE;
            println!(
                "  GP Connect in {env}: {url}/{env}/{path}/{ods}/STU3/1/gpconnect, Access Record HTML at {url}/{env}/{path}/{ods}/DSTU2/0/gpconnect (provider ASID {asid}); PDS with {} patients; test patients:",
                carehub_spine::pds::seed::named().len() as u64
                    + carehub_spine::pds::seed::BACKGROUND_PATIENTS,
                env = product.environment,
                url = public_url.trim_end_matches('/'),
                path = api.path,
            );
            for (id, nhs_number, what) in carehub_gpconnect::seed::PATIENTS {
                println!("    Patient/{id:<3} {nhs_number}  {what}");
            }
        }
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<()> {
    let started = Instant::now();
    let store = Store::open(&StoreConfig {
        url: args.database_url.clone(),
        max_connections: args.listen.db_connections,
        writers: args.listen.db_writers,
        cache_capacity: args.listen.cache_capacity,
    })
    .await
    .context("opening the database")?;
    let (listener, config) = bind(&args.listen).await?;
    reindex_if_needed(&store, &config).await?;
    let platform = platform_config(&args.listen)?;
    let tls_dir = args.listen.tls_dir.clone();
    run(
        listener,
        config,
        platform,
        store,
        started,
        &args.listen,
        tls_dir,
    )
    .await
}

/// A database made before composite search parameters were indexed has none of their rows:
/// index its FHIR bases again once, so that composite searches find what was stored before.
async fn reindex_if_needed(store: &Store, config: &ServerConfig) -> Result<()> {
    if !store.predates(COMPOSITE_INDEX_SCHEMA) {
        return Ok(());
    }
    for base in &config.bases {
        let indexer = Arc::new(carehub_fhir::search::Indexer::new(base.version));
        let count = store
            .reindex(
                &base.store_key,
                Arc::new(move |resource| indexer.index(resource)),
            )
            .await
            .with_context(|| format!("indexing {} again", base.path))?;
        println!(
            "indexed the {count} resources of {} again (composite search parameters)",
            base.path
        );
    }
    Ok(())
}

/// The local CA in `dir`, created on first use (its key readable by the owner only).
fn local_ca(dir: &std::path::Path) -> Result<LocalCa> {
    let cert = dir.join("ca.pem");
    let key = dir.join("ca-key.pem");
    if cert.exists() && key.exists() {
        return Ok(LocalCa {
            cert_pem: std::fs::read_to_string(&cert)?,
            key_pem: std::fs::read_to_string(&key)?,
        });
    }
    std::fs::create_dir_all(dir)?;
    let ca = LocalCa::create("carehub local CA")?;
    write_private(&key, &ca.key_pem)?;
    std::fs::write(&cert, &ca.cert_pem)?;
    Ok(ca)
}

async fn certs_issue(args: CertIssueArgs) -> Result<()> {
    let dir = args
        .tls_dir
        .clone()
        .unwrap_or(args.database.data_dir.clone());
    let ca = local_ca(&dir)?;
    let csr = std::fs::read_to_string(&args.csr)
        .with_context(|| format!("reading {}", args.csr.display()))?;
    let issued = ca.issue_from_csr(&csr, args.days)?;
    let store = open_database(&args.database).await?;
    let app = Apps::new(store.clone())
        .get(&args.app)
        .await?
        .with_context(|| format!("no application {}", args.app))?;
    carehub_gateway::tls::bind(&store, &issued, &app.id, args.asid.as_deref()).await?;
    store.close().await;
    std::fs::write(&args.out, &issued.pem)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "certificate for '{}' (serial {}) issued to {} and written to {}; trust {} to verify carehub",
        issued.subject,
        issued.serial,
        app.name,
        args.out.display(),
        dir.join("ca.pem").display()
    );
    Ok(())
}

fn platform_config(listen: &Listen) -> Result<PlatformConfig> {
    match &listen.platform {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            PlatformConfig::from_toml(&text).with_context(|| format!("in {}", path.display()))
        }
        None => Ok(PlatformConfig::default()),
    }
}

async fn open_database(database: &Database) -> Result<Store> {
    let url = match &database.database_url {
        Some(url) => url.clone(),
        None => sqlite_url(&database.data_dir)?,
    };
    Store::open(&StoreConfig {
        url,
        max_connections: 2,
        writers: 1,
        cache_capacity: 0,
    })
    .await
    .context("opening the database")
}

/// Writes a private key readable by its owner only.
fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

async fn apps_command(command: AppsCommand) -> Result<()> {
    match command {
        AppsCommand::Create(args) => {
            let store = open_database(&args.database).await?;
            let apps = Apps::new(store.clone());
            let (app, key) = apps.create(&args.name, &args.env, &args.ods).await?;
            println!(
                "application {} ({}) registered in '{}' for {}",
                app.name, app.id, app.environment, app.organisation
            );
            if !args.callbacks.is_empty() {
                apps.set_callback_urls(&app.id, args.callbacks.clone())
                    .await?;
                let secret = apps.issue_secret(&app.id).await?;
                println!("client secret (shown only this once): {secret}");
                println!("callback URLs: {}", args.callbacks.join(", "));
            }
            println!("API key (shown only this once; send it in the 'apikey' header):");
            println!("{key}");
            store.close().await;
        }
        AppsCommand::Secret(args) => {
            let store = open_database(&args.database).await?;
            let apps = Apps::new(store.clone());
            if !args.callbacks.is_empty() {
                apps.set_callback_urls(&args.app, args.callbacks.clone())
                    .await?;
            }
            let secret = apps.issue_secret(&args.app).await?;
            store.close().await;
            println!("client secret (shown only this once; the previous one no longer works):");
            println!("{secret}");
        }
        AppsCommand::Asid(args) => {
            let store = open_database(&args.database).await?;
            let app = Apps::new(store.clone())
                .set_asid(&args.app, &args.asid)
                .await;
            store.close().await;
            let app = app?;
            println!("ASID {} registered for {}", args.asid, app.name);
            // The Spine Secure Proxy checks a consumer's ASID against SDS.
            let store = open_database(&args.database).await?;
            let sds = carehub_spine::sds::repo::SdsRepo::new(
                store.clone(),
                &format!("sds-{}", app.environment),
            );
            let consumer = carehub_spine::sds::AccreditedSystem {
                asid: args.asid.clone(),
                party_key: format!("{}-{}", app.organisation, args.asid),
                ods: app.organisation.clone(),
                manufacturer: app.organisation.clone(),
                interactions: carehub_gpconnect::domain::Interaction::ALL
                    .iter()
                    .map(|i| i.id())
                    .collect(),
            };
            let listed = sds.register(vec![consumer], Vec::new()).await;
            store.close().await;
            listed?;
            println!(
                "ASID {} listed in SDS ({}) as a GP Connect consumer for {}",
                args.asid, app.environment, app.organisation
            );
        }
        AppsCommand::Keygen(args) => {
            if args.out.exists() {
                anyhow::bail!("{} exists; choose another --out", args.out.display());
            }
            let key = carehub_gateway::keys::generate(&args.kid)?;
            let store = open_database(&args.database).await?;
            let app = Apps::new(store.clone())
                .add_public_key(&args.app, key.public_jwk.clone())
                .await?;
            store.close().await;
            write_private(&args.out, &key.private_pem)?;
            println!(
                "public key '{}' registered for {}; private key written to {}",
                key.kid,
                app.name,
                args.out.display()
            );
        }
        AppsCommand::Jwt(args) => {
            let pem = std::fs::read_to_string(&args.private_key)
                .with_context(|| format!("reading {}", args.private_key.display()))?;
            for _ in 0..args.count {
                let assertion = carehub_gateway::keys::client_assertion(
                    &pem,
                    &args.kid,
                    &args.api_key,
                    &args.aud,
                    args.lifetime,
                )?;
                println!("{assertion}");
            }
        }
        AppsCommand::Revoke(args) => {
            let store = open_database(&args.database).await?;
            let revoked = Apps::new(store.clone()).revoke_key(&args.key).await?;
            store.close().await;
            if !revoked {
                anyhow::bail!("no live API key matches");
            }
            println!("API key revoked");
        }
    }
    Ok(())
}

/// `ROLE_CODE:ODS[:FUNCTION,...]` as a role profile.
fn parse_role(text: &str) -> Result<RoleProfile> {
    let mut parts = text.splitn(3, ':');
    let (Some(role_code), Some(organisation)) = (parts.next(), parts.next()) else {
        anyhow::bail!("role '{text}' must look like R8000:B82617[:REFERRING_CLINICIAN,...]");
    };
    Ok(RoleProfile {
        id: String::new(),
        role_code: role_code.to_owned(),
        role_name: role_code.to_owned(),
        organisation: organisation.to_owned(),
        business_functions: parts
            .next()
            .map(|f| f.split(',').map(str::to_owned).collect())
            .unwrap_or_default(),
    })
}

fn print_card(card: &carehub_gateway::identity::Smartcard) {
    println!(
        "  {}  {:<22} SDS {}  AAL{}",
        card.id,
        card.name(),
        card.sds_user_id,
        card.aal
    );
    for role in &card.roles {
        println!(
            "      role {}  {} at {}  {}",
            role.id,
            role.role_code,
            role.organisation,
            role.business_functions.join(",")
        );
    }
}

async fn users_command(command: UsersCommand) -> Result<()> {
    match command {
        UsersCommand::List(args) => {
            let store = open_database(&args.database).await?;
            let cards = Identity::new(store.clone(), "").cards(&args.env).await?;
            store.close().await;
            println!("{} smartcards in '{}':", cards.len(), args.env);
            cards.iter().for_each(print_card);
        }
        UsersCommand::Create(args) => {
            let roles = args
                .roles
                .iter()
                .map(|r| parse_role(r))
                .collect::<Result<Vec<_>>>()?;
            let store = open_database(&args.database).await?;
            let card = Identity::new(store.clone(), "")
                .issue_card(NewSmartcard {
                    given_name: args.given,
                    family_name: args.family,
                    environment: args.env,
                    aal: args.aal,
                    passcode: args.passcode,
                    roles,
                    ..NewSmartcard::default()
                })
                .await?;
            store.close().await;
            println!("smartcard issued in '{}':", card.environment);
            print_card(&card);
        }
        UsersCommand::SignIn(args) => {
            let store = open_database(&args.database).await?;
            let identity = Identity::new(store.clone(), &args.public_url);
            let signed_in = async {
                let card = identity
                    .card(&args.card)
                    .await?
                    .with_context(|| format!("no smartcard {}", args.card))?;
                if !card.opens_with(&args.passcode) {
                    anyhow::bail!("the passcode does not open this card");
                }
                if card.role(&args.role).is_none() {
                    anyhow::bail!("the card holds no role profile {}", args.role);
                }
                Ok(identity
                    .id_token(&card, &args.role, &args.client_id, None)
                    .await?)
            }
            .await;
            store.close().await;
            println!("{}", signed_in?);
        }
        UsersCommand::Revoke(args) => {
            let store = open_database(&args.database).await?;
            let revoked = Identity::new(store.clone(), "")
                .revoke_card(&args.id)
                .await?;
            store.close().await;
            if !revoked {
                anyhow::bail!("no smartcard {}", args.id);
            }
            println!("smartcard {} withdrawn", args.id);
        }
    }
    Ok(())
}

async fn seed_command(args: SeedArgs) -> Result<()> {
    let url = match args.database_url {
        Some(url) => url,
        None => sqlite_url(&args.data_dir)?,
    };
    let store = Store::open(&StoreConfig {
        url,
        max_connections: 4,
        writers: 4,
        // Seeding only writes; a cache would hold nothing anyone reads.
        cache_capacity: 0,
    })
    .await
    .context("opening the database")?;
    let config = ServerConfig::default();
    let pack = seed::PackOptions {
        patients: args.patients,
        seed: args.seed,
    };
    seed::seed(&store, &config, &pack, true).await?;
    store.close().await;
    Ok(())
}

async fn bind(listen: &Listen) -> Result<(tokio::net::TcpListener, ServerConfig)> {
    let listener = tokio::net::TcpListener::bind((listen.host.as_str(), listen.port))
        .await
        .with_context(|| format!("listening on {}:{}", listen.host, listen.port))?;
    let address: SocketAddr = listener.local_addr()?;
    let public_url = listen
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{address}"));
    let config = ServerConfig {
        public_url,
        body_limit: listen.body_limit,
        ..ServerConfig::default()
    };
    Ok((listener, config))
}

async fn run(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    platform: PlatformConfig,
    store: Store,
    started: Instant,
    listen: &Listen,
    tls_dir: Option<PathBuf>,
) -> Result<()> {
    // The bases at /fhir/R4 and /fhir/STU3 are the local, unwrapped view of the `int` data;
    // the environments' URLs go through the gateway.
    let mut direct = axum::Router::new();
    for base in &config.bases {
        direct = direct.nest(
            &base.path,
            carehub_server::base(&config, base, store.clone()),
        );
    }
    let products = carehub_gateway::Products::new()
        .with(carehub_ers::SERVICE, carehub_ers::product())
        .with(carehub_spine::PDS_SERVICE, carehub_spine::pds_product())
        .with(carehub_gpconnect::SERVICE, carehub_gpconnect::product())
        .with_settings(
            carehub_gpconnect::SERVICE,
            carehub_gpconnect::settings_check(),
        )
        .with(carehub_spine::SDS_SERVICE, carehub_spine::sds_product())
        .with(carehub_spine::SSP_SERVICE, carehub_spine::ssp_product());
    products
        .check_settings(&platform)
        .map_err(|e| anyhow::anyhow!("invalid platform configuration: {e}"))?;
    // Limits are counted in Redis when given one; otherwise, on PostgreSQL, where other nodes
    // may serve the same database, in the database; one SQLite node counts in memory.
    let limiter: Arc<dyn RateLimiter> = match (&listen.redis_url, store.dialect()) {
        (Some(url), _) => Arc::new(
            RedisLimiter::connect(url, "carehub")
                .await
                .with_context(|| format!("connecting to Redis at {url} for the rate limits"))?,
        ),
        (None, carehub_store::Dialect::Postgres) => Arc::new(SharedLimiter::new(store.clone())),
        (None, carehub_store::Dialect::Sqlite) => Arc::new(LocalLimiter::default()),
    };
    let app = carehub_gateway::router(
        &platform,
        &config,
        store.clone(),
        limiter,
        direct,
        &products,
    );
    for base in &config.bases {
        println!(
            "  FHIR {:<4} {}{}  (direct, no credentials)",
            base.version.label(),
            config.public_url,
            base.path
        );
    }
    for product in &platform.products {
        if let Some(api) = platform.apis.iter().find(|a| a.name == product.api) {
            println!(
                "  {:<9} {}/{}/{}  ({:?}, {:?})",
                product.environment,
                config.public_url,
                product.environment,
                api.path,
                product.access,
                product.status
            );
        }
    }
    println!(
        "Try:  curl -s '{}/fhir/R4/Patient?_count=2' -H 'Accept: application/fhir+json'",
        config.public_url
    );
    if let Some(port) = listen.tls_port {
        let dir = tls_dir.context("--tls-port needs --tls-dir with `serve`")?;
        let ca = local_ca(&dir)?;
        let names = vec!["localhost".to_owned(), listen.host.clone()];
        let (cert_pem, key_pem) = ca.issue_server(&names)?;
        let settings = TlsSettings {
            cert_pem,
            key_pem,
            client_ca_pem: Some(ca.cert_pem.clone()),
            require_client_certificate: false,
        };
        let tls_listener = tokio::net::TcpListener::bind((listen.host.as_str(), port))
            .await
            .with_context(|| format!("listening on {}:{port}", listen.host))?;
        println!(
            "  mutual TLS https://{} (CA: {})",
            tls_listener.local_addr()?,
            dir.join("ca.pem").display()
        );
        tokio::spawn(carehub_gateway::tls::serve(
            tls_listener,
            app.clone(),
            carehub_gateway::tls::server_config(&settings)?,
        ));
    }
    println!("API key for int:  carehub apps create --name My-App --env int --ods A12345");
    println!("ready in {} ms", started.elapsed().as_millis());
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving HTTP")?;
    store.close().await;
    Ok(())
}

async fn bench_baseline(args: BaselineArgs) -> Result<()> {
    let body = axum::body::Bytes::from(
        std::fs::read(&args.body_file)
            .with_context(|| format!("reading {}", args.body_file.display()))?,
    );
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "application/fhir+json; charset=utf-8",
                )],
                body,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    println!(
        "baseline serving {} on http://{}",
        args.body_file.display(),
        listener.local_addr()?
    );
    axum::serve(listener, app).await.context("serving HTTP")
}
