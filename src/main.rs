//! `tautan`: the command line. Thin on purpose; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use datafusion::arrow::util::pretty::pretty_format_batches;
use tautan::auth::{ScramVerifier, DEFAULT_ITERATIONS};
use tautan::engine::{Engine, Outcome};
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
    /// Print a SCRAM-SHA-256 verifier for a password read from standard input.
    Passwd,
}

fn init_tracing() {
    let filter = EnvFilter::try_from_env("TAUTAN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
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
            for (name, link) in &engine.registry.links {
                let s = link.state();
                match &s.error {
                    None => tracing::info!(link = %name, status = ?s.status, "ready"),
                    Some(e) => {
                        tracing::warn!(link = %name, error = %e, "down at startup; will retry")
                    }
                }
            }
            tracing::info!(%addr, database = %engine.config.server.database, "serving PostgreSQL wire protocol");
            tokio::select! {
                r = tautan::server::postgres::serve(engine, listener) => r.map_err(|e| e.to_string())?,
                _ = tokio::signal::ctrl_c() => tracing::info!("shutting down"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Query { user, sql } => {
            let engine = Engine::from_file(&cli.config).await?;
            if !engine.config.users.contains_key(&user) {
                return Err(format!("no user `{user}` in {}", cli.config.display()));
            }
            let session = engine.session(&user);
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
    }
}

async fn check(path: &std::path::Path) -> Result<ExitCode, String> {
    let engine = Engine::from_file(path).await?;
    println!(
        "config {}: ok ({} links, {} users, {} grants)",
        path.display(),
        engine.config.links.len(),
        engine.config.users.len(),
        engine.config.grants.len()
    );
    let mut failures = 0;
    for (name, link) in &engine.registry.links {
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
                }
                Err(e) => {
                    failures += 1;
                    println!("link {name} ({}): DOWN — {e}", link.kind);
                }
            },
            (None, None) => println!("link {name} ({}): up — {tables} tables", link.kind),
        }
    }
    let reference = engine
        .registry
        .reference
        .read()
        .map(|r| r.len())
        .unwrap_or(0);
    println!("reference data: {reference} tables");
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
