//! `stateseal serve`: parses the flags, loads the server configuration, prints the startup
//! banner and runs `stateseal-server` until SIGINT or SIGTERM. Everything else lives in the
//! server crate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};
use stateseal_server::{App, ServerConfig};

use crate::failure::{exit, Failure};

#[derive(Args)]
#[command(
    long_about = "Serve states over HTTP for Terraform's and OpenTofu's backend \"http\", with locking, \
every version kept, and encryption at rest.\n\n\
The global --config FILE names the server configuration (HCL: max_body_bytes, require_client_encryption, \
an OpenTofu encryption { … } block whose state target encrypts plaintext uploads, auth { user, token, grant }, \
tls { cert_file, key_file, client_ca_file } and storage \"s3\" { … } with the attributes of a backend \"s3\" block \
but key, to keep states in S3 instead of --data-dir). TF_ENCRYPTION is \
merged over that block.\n\n\
Point Terraform or OpenTofu at it with:\n\n\
  terraform {\n    backend \"http\" {\n      address        = \"http://127.0.0.1:8080/state/NAME\"\n      \
lock_address   = \"http://127.0.0.1:8080/state/NAME\"\n      unlock_address = \"http://127.0.0.1:8080/state/NAME\"\n    }\n  }"
)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where states, versions and locks are kept.
    #[arg(long, value_name = "DIR", default_value = "./stateseal-data")]
    data_dir: PathBuf,
    /// Allow listening on a non-loopback address without an auth block in --config.
    #[arg(long)]
    insecure_no_auth: bool,
    /// Log lines as text or as JSON objects (one per line), on stderr.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    action: Option<ServeAction>,
}

#[derive(Subcommand)]
enum ServeAction {
    /// Read a password from standard input (one line) and print its argon2id hash, for a
    /// `user "NAME" { password_hash = "…" }` block.
    HashPassword,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

pub fn run(config_file: Option<&Path>, max_input: u64, args: &ServeArgs) -> Result<(), Failure> {
    if let Some(ServeAction::HashPassword) = args.action {
        return hash_password(max_input);
    }
    let config = ServerConfig::load(config_file, std::env::var("TF_ENCRYPTION").ok().as_deref())
        .map_err(|d| {
            Failure::from(d).with_fix(
                "correct the server configuration (--config) at the location shown; its settings are in docs/SERVER.md",
            )
        })?;
    if !args.listen.ip().is_loopback() && config.auth.is_none() && !args.insecure_no_auth {
        return Err(Failure::new(
            exit::USAGE,
            format!(
                "refusing to listen on {}: the configuration has no auth block, so anyone who can reach the server could read and overwrite states",
                args.listen
            ),
            "add an auth block to --config, listen on 127.0.0.1 (the default), or pass --insecure-no-auth if a proxy in front of it authenticates",
        ));
    }
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::plain(exit::FAILURE, format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        let example_passphrase = config.example_passphrase;
        let app = App::connect(&args.data_dir, config).await?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| {
                Failure::new(
                    exit::FAILURE,
                    format!("cannot listen on {}: {e}", args.listen),
                    "choose another --listen address or stop what uses it",
                )
            })?;
        let addr = listener.local_addr().unwrap_or(args.listen);
        let shutdown = shutdown_signal()?;
        errln!("{}", banner(addr, &app, example_passphrase));
        stateseal_server::serve(listener, Arc::new(app), shutdown)
            .await
            .map_err(|e| Failure::plain(exit::FAILURE, format!("the server failed: {e}")))?;
        tracing::info!("stopped; every acknowledged write is stored");
        Ok(())
    })
}

/// What the server says when it is up: where states go, the console, encryption, auth. A
/// server that encrypts with the example's public passphrase says so loudly.
fn banner(addr: SocketAddr, app: &App, example_passphrase: bool) -> String {
    let storage = app.storage.summary();
    let encryption = if app.at_rest.encrypts() {
        let mut line = format!(
            "on: plaintext uploads are encrypted with {} (state target); client envelopes are stored as sent",
            app.at_rest.methods().join(" then ")
        );
        if example_passphrase {
            line.push_str(
                "\n  WARNING     the passphrase is the example's, which is public: anyone can decrypt these states.\n              Pass your own before storing real states: TF_ENCRYPTION='key_provider \"pbkdf2\" \"server\" { passphrase = \"…\" }'",
            );
        }
        line
    } else {
        "OFF. WARNING: plaintext states are stored unencrypted; add an encryption block to --config"
            .to_string()
    };
    let client = if app.at_rest.requires_client_encryption() {
        "\n  clients     must encrypt (require_client_encryption = true)"
    } else {
        ""
    };
    format!(
        "stateseal serve {version}\n  states      {scheme}://{addr}/state/<path>\n  console     {scheme}://{addr}/ui\n  data        {location} ({details})\n  encryption  {encryption}{client}\n  auth        {auth}\n  body limit  {limit} bytes",
        version = env!("CARGO_PKG_VERSION"),
        location = storage.location,
        details = storage.details,
        limit = app.max_body_bytes,
        scheme = if app.tls.is_some() { "https" } else { "http" },
        auth = if app.auth.is_some() {
            "on (auth block: users, tokens, grants)"
        } else {
            "OFF (no auth block: anyone who can connect can read and write)"
        },
    )
}

/// Reads the password from stdin (its first line, at most `max` bytes) and prints its hash.
fn hash_password(max: u64) -> Result<(), Failure> {
    use std::io::{BufRead, Read};
    let mut line = String::new();
    let mut stdin = std::io::stdin().lock().take(max.saturating_add(1));
    stdin.read_line(&mut line)?;
    if line.len() as u64 > max {
        return Err(crate::io::too_large(
            "the password on stdin",
            stateseal_core::size::TooLarge {
                limit: max,
                size: None,
            },
        ));
    }
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(Failure::new(
            exit::USAGE,
            "no password on standard input",
            "pipe it in: printf %s \"$PASSWORD\" | stateseal serve hash-password",
        ));
    }
    let hash = stateseal_server::auth::hash_password(password)
        .map_err(|e| Failure::plain(exit::FAILURE, format!("hashing failed: {e}")))?;
    outln!("{hash}");
    Ok(())
}

/// A future that completes on SIGINT or SIGTERM. The handlers are installed now, before the
/// banner says the server is up, so a signal sent at once still stops it gracefully.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, Failure> {
    use tokio::signal::unix::{signal, SignalKind};
    let install = |kind| {
        signal(kind).map_err(|e| {
            Failure::plain(
                exit::FAILURE,
                format!("cannot install a signal handler: {e}"),
            )
        })
    };
    let (mut int, mut term) = (
        install(SignalKind::interrupt())?,
        install(SignalKind::terminate())?,
    );
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
        tracing::info!("shutting down: finishing requests in flight");
    })
}
