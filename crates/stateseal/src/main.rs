//! `stateseal`: OpenTofu-compatible state encryption: the state server, the backends, the fleet
//! commands and the file commands, behind one command line.
#![forbid(unsafe_code)]

// First: its printing macros (`outln!`, `out!`, `errln!`) are used by every module below.
#[macro_use]
mod stdio;

mod backend;
mod cli;
mod cmd;
mod context;
mod failure;
mod io;
mod page_buffer;
mod render;

use clap::Parser;

use cli::{Cli, Command};
use failure::{exit, Failure};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if let Err(f) = run(cli).and_then(|()| stdio::check()) {
        errln!("{}", f.render());
        std::process::exit(f.code);
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let ctx = context::Context::new(&cli.global)?;
    match cli.command {
        Command::Decrypt(a) => cmd::crypt::decrypt(&ctx, &a),
        Command::Encrypt(a) => cmd::crypt::encrypt(&ctx, &a),
        Command::Rekey(a) => cmd::rekey::run(&ctx, &a),
        Command::Audit(a) => cmd::audit::run(&ctx, &a),
        Command::Locks(a) => cmd::locks::run(&ctx, &a),
        Command::Verify(a) => cmd::verify::run(&ctx, &a),
        Command::Bootstrap(a) => cmd::bootstrap::run(&ctx, &a),
        Command::Inspect(a) => cmd::inspect::run(&ctx, &a),
        Command::Validate(a) => cmd::validate::run(&ctx, &a),
        Command::State(a) => cmd::state::run(&ctx, &a),
        Command::Workspace(a) => cmd::workspace::run(&ctx, &a),
        Command::Lock(a) => cmd::lock::lock(&ctx, &a),
        Command::Unlock(a) => cmd::lock::unlock(&ctx, &a),
        Command::ForceUnlock(a) => cmd::lock::force_unlock(&ctx, &a),
        Command::Outputs(a) => cmd::outputs::run(&ctx, &a),
        Command::Dr(a) => cmd::dr::run(&ctx, &a),
        Command::Keyprovider(a) => cmd::keyprovider::run(&a),
        Command::Serve(a) => {
            cmd::serve::run(cli.global.config.as_deref(), ctx.max_input_size(), &a)
        }
    }
}
