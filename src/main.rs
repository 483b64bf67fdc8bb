//! `tautan`: the command line. Thin on purpose; the work is in the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use datafusion::arrow::util::pretty::pretty_format_batches;
use tautan::audit;
use tautan::auth::{ScramVerifier, DEFAULT_ITERATIONS};
use tautan::engine::{Engine, Outcome};
use tautan::export::{write_file, FileFormat, Progress};
use tautan::pulls::run::{run_pull, spawn_scheduler, LogProgress};
use tracing_subscriber::EnvFilter;

/// Read-only database-link federation over the PostgreSQL wire protocol.
#[derive(Parser)]
#[command(name = "tautan", version, about)]
struct Cli {
    /// The federation config.
    #[arg(
        short,
        long,
        global = true,
        default_value = "federation.toml",
        env = "TAUTAN_CONFIG"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the federation over the PostgreSQL wire protocol.
    Serve {
        /// Listen address (overrides `server.listen`).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Run SQL as a user and print the result as a table.
    Query {
        /// The user whose grants apply.
        #[arg(short, long)]
        user: String,
        /// The SQL (several statements separated by `;` are fine).
        sql: String,
    },
    /// Validate the config and test every link.
    Check,
    /// Run materialized pulls now (with a progress bar on a terminal).
    Pull {
        /// Pulls to run.
        #[arg(required_unless_present = "all")]
        names: Vec<String>,
        /// Run every pull.
        #[arg(long, conflicts_with = "names")]
        all: bool,
    },
    /// Show the state of every pull.
    Pulls,
    /// Write a query's result to a CSV or Parquet file, as a user.
    Export {
        /// The user whose grants apply.
        #[arg(short, long)]
        user: String,
        /// The file to write (written whole or not at all).
        #[arg(short, long)]
        output: PathBuf,
        /// File format (default: from the file extension).
        #[arg(long, value_enum)]
        format: Option<FileFormat>,
        /// The query.
        sql: String,
    },
    /// Print a SCRAM-SHA-256 verifier for a password read from standard input.
    Passwd,
    /// API tokens for the HTTP door.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Make an Ed25519 key pair: <out> (private, PKCS#8 PEM) and <out>.pub.
    Keygen {
        /// The private key file to write (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// The tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Signed producer–user agreements.
    Agreement {
        #[command(subcommand)]
        command: AgreementCommand,
    },
    /// The custodian's exchange report for a period, from the audit log
    /// (HTML, and a PDF beside it when Chromium is installed).
    Report {
        /// First day (YYYY-MM-DD, UTC).
        #[arg(long)]
        from: String,
        /// Last day, included (YYYY-MM-DD, UTC).
        #[arg(long)]
        to: String,
        /// The HTML file to write.
        #[arg(short, long)]
        output: PathBuf,
        /// Language: `id` (Bahasa Indonesia, the default) or `en`.
        #[arg(long, default_value = "id")]
        lang: String,
        /// The log folder (default: `[audit] dir`).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Write the HTML only (no PDF, Chromium not started).
        #[arg(long)]
        no_pdf: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Make a token for a user: prints the token (once) and the line that
    /// stores its hash in the user's section of federation.toml.
    New {
        /// The user (a `[users.<name>]` of the config).
        user: String,
    },
}

#[derive(Subcommand)]
enum AgreementCommand {
    /// Print a new, unsigned agreement (TOML) to standard output.
    New(tautan::policy::cli::NewAgreement),
    /// Sign an agreement file in place, as its producer link or as `custodian`.
    Sign {
        /// The agreement file.
        file: PathBuf,
        /// Who signs: the producer's link name, or `custodian`.
        #[arg(long = "as")]
        by: String,
        /// The signer's private key (`tautan keygen`).
        #[arg(long)]
        key: PathBuf,
    },
    /// Check agreement files against the config's public keys (exit 1 unless all are in force).
    Verify {
        /// The agreement files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List every agreement of `[policy] agreements_dir` with its standing.
    List,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the whole log: exit 0 intact, 1 tampered (first bad record printed).
    Verify {
        /// The log folder (default: `[audit] dir`).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The custodian's public key (default: `<[audit] key>.pub`).
        #[arg(long)]
        key: Option<PathBuf>,
        /// The external checkpoint copy (default: `[audit] external_checkpoint`).
        #[arg(long)]
        external: Option<PathBuf>,
        /// A trusted witness's public key (repeatable).
        #[arg(long = "witness-key")]
        witness_keys: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print an inclusion proof of record <seq> (JSON).
    Prove {
        /// The record.
        seq: u64,
        /// The log folder (default: `[audit] dir`).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Check an inclusion proof with only the custodian's public key.
    CheckProof {
        /// The proof file.
        proof: PathBuf,
        /// The custodian's public key.
        #[arg(long)]
        key: PathBuf,
    },
    /// Countersign the latest checkpoint with a producer's private key.
    Witness {
        /// The producer's private key.
        #[arg(long)]
        key: PathBuf,
        /// The log folder (default: `[audit] dir`).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The witness's name (default: the key file's name).
        #[arg(long)]
        name: Option<String>,
        /// The custodian's public key, to check the checkpoint's signature
        /// (default: `<[audit] key>.pub` when configured).
        #[arg(long)]
        custodian_key: Option<PathBuf>,
        /// Also write the countersigned checkpoint here (keep it: it is an
        /// `--external` for a later verify).
        #[arg(long)]
        save: Option<PathBuf>,
    },
    /// Synthetic appends through the real appender (benches, crash tests).
    #[command(hide = true)]
    Load {
        /// The log folder (default: `[audit] dir`).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The custodian's private key (default: `[audit] key`).
        #[arg(long)]
        key: Option<PathBuf>,
        /// Appends in all.
        #[arg(long, default_value_t = 100_000)]
        count: u64,
        /// Concurrent appenders.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Intents left without completion.
        #[arg(long, default_value_t = 0)]
        hold_open: usize,
        /// A checkpoint every this many records.
        #[arg(long)]
        checkpoint_every: Option<u64>,
        /// The external checkpoint path.
        #[arg(long)]
        external: Option<PathBuf>,
        /// Segment size limit in MiB.
        #[arg(long)]
        segment_max_mb: Option<u64>,
        /// Print `ack <seq> <kind>` per acknowledged append.
        #[arg(long)]
        print_acks: bool,
    },
}

fn init_tracing() {
    let filter = EnvFilter::try_from_env("TAUTAN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal: log files and journald
        // get plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tautan: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Passwd => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| format!("reading password: {e}"))?;
            let password = line.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                return Err("empty password".into());
            }
            println!("{}", ScramVerifier::new(password, DEFAULT_ITERATIONS));
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { listen } => {
            let engine = Engine::from_file(&cli.config).await?;
            let addr = listen.unwrap_or_else(|| engine.config.server.listen.clone());
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            let _health = engine.spawn_health_checks();
            // A changed config or agreement (or SIGHUP) reloads the policy.
            let _reload = engine.spawn_policy_reload(std::time::Duration::from_secs(2));
            engine.registry.pulls.recover_all();
            let _scheduler = spawn_scheduler(&engine);
            for (name, link) in engine.registry.links().iter() {
                let s = link.state();
                match &s.error {
                    None => tracing::info!(link = %name, status = ?s.status, "ready"),
                    Some(e) => {
                        tracing::warn!(link = %name, error = %e, "down at startup; will retry")
                    }
                }
            }
            tracing::info!(%addr, database = %engine.config.server.database, "serving PostgreSQL wire protocol");
            // The operations door (`[monitoring] listen`): /metrics, /healthz.
            let _ops = match engine.config.monitoring.as_ref() {
                Some(m) => Some(
                    spawn_door("monitoring", &m.listen, "/metrics and /healthz", |door| {
                        tautan::server::ops::serve(engine.clone(), door)
                    })
                    .await?,
                ),
                None => None,
            };
            // The web-service door (`[http] listen`): /v1/sql, /v1/datasets.
            let _http = match engine.config.http.as_ref() {
                Some(h) => Some(
                    spawn_door("http", &h.listen, "HTTP (/v1/sql, /v1/datasets)", |door| {
                        tautan::server::http::serve(engine.clone(), door)
                    })
                    .await?,
                ),
                None => None,
            };
            // The Arrow Flight SQL door (`[flight] listen`).
            let _flight = match engine.config.flight.as_ref() {
                Some(f) => Some(
                    spawn_door("flight", &f.listen, "Arrow Flight SQL", |door| {
                        tautan::server::flight_sql::serve(engine.clone(), door)
                    })
                    .await?,
                ),
                None => None,
            };
            let trail = engine.trail().clone();
            trail
                .startup(serde_json::json!({
                    "listen": addr,
                    "links": engine
                        .registry
                        .links()
                        .iter()
                        .map(|(name, l)| (name.clone(), l.state().status.as_str()))
                        .collect::<std::collections::BTreeMap<_, _>>(),
                    "policy_version": engine.grants().version().number,
                }))
                .await
                .map_err(|e| e.message)?;
            tokio::select! {
                r = tautan::server::postgres::serve(engine, listener) => r.map_err(|e| e.to_string())?,
                _ = shutdown_signal() => tracing::info!("shutting down"),
            }
            trail.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Query { user, sql } => {
            let engine = Engine::from_file(&cli.config).await?;
            if !engine.config.users.contains_key(&user) {
                return Err(format!("no user `{user}` in {}", cli.config.display()));
            }
            let session = engine.session(&user);
            session.set_origin(tautan::audit::Origin::new("query", None));
            match session.run(&sql).await {
                Ok(outcomes) => {
                    for o in outcomes {
                        match o {
                            Outcome::Rows(_, batches) => {
                                let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
                                let table =
                                    pretty_format_batches(&batches).map_err(|e| e.to_string())?;
                                println!("{table}");
                                println!("({rows} row{})", if rows == 1 { "" } else { "s" });
                            }
                            Outcome::Command(tag, Some((name, value))) => {
                                println!("{tag} {name} = {value}")
                            }
                            Outcome::Command(tag, None) => println!("{tag}"),
                        }
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("ERROR {}: {}", e.code, e.message);
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Check => check(&cli.config).await,
        Command::Pull { names, all } => pull(&cli.config, names, all).await,
        Command::Pulls => pulls_status(&cli.config).await,
        Command::Export {
            user,
            output,
            format,
            sql,
        } => export(&cli.config, &user, &output, format, &sql).await,
        Command::Token {
            command: TokenCommand::New { user },
        } => {
            let config =
                tautan::config::FederationConfig::load(&cli.config).map_err(|e| e.to_string())?;
            let Some(existing) = config.users.get(&user) else {
                return Err(format!("no user `{user}` in {}", cli.config.display()));
            };
            let (token, stored) = tautan::auth::new_token();
            let mut tokens: Vec<String> = existing.get_ref().tokens.clone();
            tokens.push(stored);
            let list = tokens
                .iter()
                .map(|t| format!("\"{t}\""))
                .collect::<Vec<_>>()
                .join(", ");
            eprintln!("token for {user} (shown once; give it to the user, keep it secret):");
            println!("{token}");
            eprintln!(
                "store its hash in [users.{user}] of {} (a running server takes it within seconds):\ntokens = [{list}]",
                cli.config.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Keygen { out } => {
            audit::cli::keygen(&out, &mut std::io::stdout()).map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Report {
            from,
            to,
            output,
            lang,
            dir,
            no_pdf,
        } => report(&cli.config, &from, &to, &output, &lang, dir, !no_pdf),
        Command::Audit { command } => audit_command(&cli.config, command)
            .await
            .map_err(|e| e.to_string()),
        Command::Agreement { command } => agreement_command(&cli.config, command),
    }
}

fn agreement_command(
    config: &std::path::Path,
    command: AgreementCommand,
) -> Result<ExitCode, String> {
    use tautan::policy::cli;
    let mut out = std::io::stdout();
    let load = || tautan::config::FederationConfig::load(config).map_err(|e| e.to_string());
    match command {
        AgreementCommand::New(args) => {
            cli::new(args, &mut out)?;
            Ok(ExitCode::SUCCESS)
        }
        AgreementCommand::Sign { file, by, key } => {
            cli::sign(&file, &by, &key, &mut out)?;
            Ok(ExitCode::SUCCESS)
        }
        AgreementCommand::Verify { files } => {
            let keys = load()?.signer_keys()?;
            Ok(if cli::verify(&keys, &files, &mut out)? {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        AgreementCommand::List => {
            cli::list(&load()?.agreements()?, &mut out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn audit_command(
    config: &std::path::Path,
    command: AuditCommand,
) -> Result<ExitCode, String> {
    use audit::cli;
    // `[audit]` of the config, read only when a flag is left out.
    let defaults = || cli::Defaults::load(config);
    let defaults_unless = |all_given: bool| {
        if all_given {
            Ok(cli::Defaults::default())
        } else {
            defaults()
        }
    };
    let code = |ok: bool| {
        if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    };
    let mut out = std::io::stdout();
    let e = |e: audit::AuditError| e.to_string();
    match command {
        AuditCommand::Verify {
            dir,
            key,
            external,
            witness_keys,
            json,
        } => {
            let d = defaults_unless(dir.is_some() && key.is_some())?;
            let dir = d.dir(dir).map_err(e)?;
            let key = d.public_key(key).map_err(e)?;
            let external = d.external(external);
            let ok = cli::run_verify(
                &dir,
                &key,
                external.as_deref(),
                &witness_keys,
                json,
                &mut out,
            )
            .map_err(e)?;
            Ok(code(ok))
        }
        AuditCommand::Prove { seq, dir } => {
            let d = defaults_unless(dir.is_some())?;
            cli::run_prove(&d.dir(dir).map_err(e)?, seq, &mut out).map_err(e)?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::CheckProof { proof, key } => Ok(code(
            cli::run_check_proof(&proof, &key, &mut out).map_err(e)?,
        )),
        AuditCommand::Witness {
            key,
            dir,
            name,
            custodian_key,
            save,
        } => {
            let d = defaults_unless(dir.is_some() && custodian_key.is_some())?;
            let dir = d.dir(dir).map_err(e)?;
            let custodian = custodian_key.or_else(|| d.public_key(None).ok());
            let name = name.unwrap_or_else(|| {
                key.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "witness".into())
            });
            cli::run_witness(
                &dir,
                &key,
                &name,
                custodian.as_deref(),
                save.as_deref(),
                &mut out,
            )
            .map_err(e)?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Load {
            dir,
            key,
            count,
            concurrency,
            hold_open,
            checkpoint_every,
            external,
            segment_max_mb,
            print_acks,
        } => {
            let d = defaults_unless(dir.is_some() && key.is_some())?;
            let dir = d.dir(dir).map_err(e)?;
            let mut opts = d.options(key).map_err(e)?;
            if let Some(n) = checkpoint_every {
                opts.checkpoint_every_records = n;
            }
            if external.is_some() {
                opts.external_checkpoint = external;
            }
            if let Some(mb) = segment_max_mb {
                opts.segment_max_bytes = mb.saturating_mul(1024 * 1024);
            }
            let log = std::sync::Arc::new(audit::AuditLog::open(&dir, opts).map_err(e)?);
            let spec = cli::LoadSpec {
                count,
                concurrency,
                hold_open,
                print_acks,
            };
            let stats = cli::run_load(log.clone(), spec).await.map_err(e)?;
            log.close().await.map_err(e)?;
            println!(
                "{}",
                serde_json::to_string(&stats).map_err(|err| err.to_string())?
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A progress bar on a terminal, log lines otherwise.
fn progress(name: &str) -> Box<dyn Progress> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return Box::new(LogProgress::new(name));
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {prefix}: {msg} [{elapsed_precise}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_prefix(name.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Box::new(Bar {
        bar,
        start: std::time::Instant::now(),
    })
}

struct Bar {
    bar: indicatif::ProgressBar,
    start: std::time::Instant,
}

impl Progress for Bar {
    fn advance(&self, rows: u64, bytes: u64) {
        let secs = self.start.elapsed().as_secs_f64().max(0.001);
        self.bar.set_message(format!(
            "{rows} rows, {}, {:.0} rows/s",
            indicatif::HumanBytes(bytes),
            rows as f64 / secs
        ));
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

async fn pull(config: &std::path::Path, names: Vec<String>, all: bool) -> Result<ExitCode, String> {
    let engine = Engine::from_file(config).await?;
    let names = if all {
        engine.registry.pulls.names()
    } else {
        names
    };
    let mut failed = 0;
    for name in names {
        let bar = progress(&name);
        let result = run_pull(&engine, &name, bar.as_ref()).await;
        drop(bar);
        match result {
            Ok(r) => println!(
                "pull {name}: ok — {} rows fetched, snapshot {} ({} rows, {} bytes), {} attempt(s), {:.1}s",
                r.fetched,
                r.current.as_ref().map(|c| c.id).unwrap_or(0),
                r.current.as_ref().map(|c| c.rows).unwrap_or(0),
                r.current.as_ref().map(|c| c.bytes).unwrap_or(0),
                r.attempts,
                r.elapsed.as_secs_f64()
            ),
            Err(e) => {
                failed += 1;
                println!("pull {name}: FAILED — {e}");
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn pulls_status(config: &std::path::Path) -> Result<ExitCode, String> {
    let engine = Engine::from_file(config).await?;
    let session = engine.session_with(engine.access_for_roles(
        "tautan",
        &engine.config.roles().into_iter().collect::<Vec<_>>(),
    ));
    let sql = "SELECT name, mode, schedule, status, last_end, rows, snapshot, snapshot_rows, \
               snapshot_age_s, next_run, last_error FROM system.pulls ORDER BY name";
    match session.run(sql).await {
        Ok(outcomes) => {
            for o in outcomes {
                if let Outcome::Rows(_, batches) = o {
                    println!(
                        "{}",
                        pretty_format_batches(&batches).map_err(|e| e.to_string())?
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e.to_string()),
    }
}

async fn export(
    config: &std::path::Path,
    user: &str,
    output: &std::path::Path,
    format: Option<FileFormat>,
    sql: &str,
) -> Result<ExitCode, String> {
    let format = format
        .or_else(|| FileFormat::from_path(output))
        .ok_or_else(|| {
            format!(
                "cannot tell the format of {}: use --format csv|parquet",
                output.display()
            )
        })?;
    let engine = Engine::from_file(config).await?;
    if !engine.config.users.contains_key(user) {
        return Err(format!("no user `{user}` in {}", config.display()));
    }
    let session = engine.session(user);
    session.set_origin(tautan::audit::Origin::new("export", None));
    let plan = session.prepare_query(sql).await;
    let plan = match plan {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ERROR {}: {}", e.code, e.message);
            return Ok(ExitCode::from(1));
        }
    };
    let stream = match session.execute(plan, None).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ERROR {}: {}", e.code, e.message);
            return Ok(ExitCode::from(1));
        }
    };
    let bar = progress(&output.display().to_string());
    let written = write_file(stream, output, format, bar.as_ref()).await;
    drop(bar);
    match written {
        Ok(w) => {
            println!(
                "wrote {} rows, {} bytes to {}",
                w.rows,
                w.bytes,
                output.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("ERROR: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// `tautan report`.
fn report(
    config: &std::path::Path,
    from: &str,
    to: &str,
    output: &std::path::Path,
    lang: &str,
    dir: Option<std::path::PathBuf>,
    pdf: bool,
) -> Result<ExitCode, String> {
    use audit::report::{AgreementRow, Lang};
    let lang = match lang {
        "id" => Lang::Id,
        "en" => Lang::En,
        other => return Err(format!("--lang {other}: use id or en")),
    };
    let dir = audit::cli::Defaults::load(config)?
        .dir(dir)
        .map_err(|e| e.to_string())?;
    // The config's agreements, with their standing today (none without a
    // config).
    let agreements: Vec<AgreementRow> = match tautan::config::FederationConfig::load(config) {
        Ok(cfg) => tautan::grants::Grants::from_config(std::sync::Arc::new(cfg), 1)?
            .agreements()
            .iter()
            .filter_map(|a| {
                let terms = &a.file.as_ref()?.terms;
                Some(AgreementRow {
                    id: a.id(),
                    producer: terms.producer.clone(),
                    user: terms
                        .user
                        .clone()
                        .or_else(|| terms.role.as_ref().map(|r| format!("role {r}")))
                        .unwrap_or_default(),
                    valid_until: terms.valid_until.clone(),
                    status: a.status.name().to_string(),
                })
            })
            .collect(),
        Err(_) if !config.exists() => Vec::new(),
        Err(e) => return Err(e.to_string()),
    };
    let pdf = audit::cli::run_report(&dir, from, to, lang, output, &agreements, pdf)
        .map_err(|e| e.to_string())?;
    println!("wrote {}", output.display());
    match pdf {
        Ok(pdf) => println!("wrote {}", pdf.display()),
        Err(why) => println!("{why}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Binds the listener of config section `[section] listen = addr` and
/// serves it with `serve` on a task of its own (logged when it stops).
async fn spawn_door<F, Fut>(
    section: &str,
    addr: &str,
    what: &str,
    serve: F,
) -> Result<tokio::task::JoinHandle<()>, String>
where
    F: FnOnce(tokio::net::TcpListener) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("[{section}] cannot listen on {addr}: {e}"))?;
    tracing::info!(%addr, "serving {what}");
    let served = serve(listener);
    let section = section.to_string();
    Ok(tokio::spawn(async move {
        if let Err(e) = served.await {
            tracing::error!(error = %e, "the [{section}] listener stopped");
        }
    }))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

async fn check(path: &std::path::Path) -> Result<ExitCode, String> {
    // It runs no user's statement, and must work while a server holds the
    // audit log.
    let config = tautan::config::FederationConfig::load(path).map_err(|e| e.to_string())?;
    let engine = Engine::start_unrecorded(config).await?;
    println!(
        "config {}: ok ({} links, {} users, {} grants)",
        path.display(),
        engine.config.links.len(),
        engine.config.users.len(),
        engine.config.grants.len()
    );
    let mut failures = 0;
    for (name, link) in engine.registry.links().iter() {
        let state = link.state();
        let tables: usize = state.schemas.values().map(|t| t.len()).sum();
        match (&state.error, link.remote()) {
            (Some(e), _) => {
                failures += 1;
                println!("link {name} ({}): DOWN — {e}", link.kind);
            }
            (None, Some(remote)) => match remote.probe().await {
                Ok(p) => {
                    let ro = if p.read_only {
                        "read-only"
                    } else {
                        "NOT READ-ONLY"
                    };
                    if !p.read_only {
                        failures += 1;
                    }
                    println!(
                        "link {name} ({}): up as {} — {ro}, {tables} tables — {}",
                        link.kind,
                        p.user,
                        p.server_version.lines().next().unwrap_or_default()
                    );
                    // Warnings, not failures: the producer's DBA decides
                    // (README: "A least-privilege account").
                    for excess in &p.excess_privileges {
                        println!("  warning: {excess}");
                    }
                }
                Err(e) => {
                    failures += 1;
                    println!("link {name} ({}): DOWN — {e}", link.kind);
                }
            },
            (None, None) => match link.http() {
                Some((http, endpoints)) => {
                    println!("link {name} ({}): {tables} tables", link.kind);
                    for endpoint in endpoints {
                        match tautan_http::table::probe(http, endpoint).await {
                            Ok(p) => {
                                println!(
                                    "  table {}: up — {} rows on the first page",
                                    endpoint.name, p.rows
                                );
                                if endpoint.columns.is_empty() {
                                    println!("    inferred; pin them: columns = {:?}", p.columns);
                                }
                            }
                            Err(e) => {
                                failures += 1;
                                println!("  table {}: DOWN — {e}", endpoint.name);
                            }
                        }
                    }
                }
                None => println!("link {name} ({}): up — {tables} tables", link.kind),
            },
        }
    }
    let reference = engine
        .registry
        .reference
        .read()
        .map(|r| r.len())
        .unwrap_or(0);
    println!("reference data: {reference} tables");
    for a in engine.agreements().iter() {
        let status = &a.status;
        if *status != tautan::policy::agreement::Status::Valid {
            // Grants nothing; tampering is a failure of the check.
            if matches!(status, tautan::policy::agreement::Status::Tampered(_)) {
                failures += 1;
            }
            println!("agreement {} ({}): {status}", a.id(), a.path.display());
        } else {
            println!("agreement {}: in force", a.id());
        }
    }
    let problems = engine.check_policies().await;
    for p in &problems {
        failures += 1;
        println!("policy: {p}");
    }
    if problems.is_empty() {
        println!("policies: every row filter and mask fits its tables");
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
