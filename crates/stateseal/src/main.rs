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

// The fleet-side commands, still flat until the branch that reworks them lands (then they move
// to `cmd/` and `fleet_cmd`'s rendering to `render/`). The two aliases keep the paths they use.
mod audit_cmd;
mod bootstrap_cmd;
mod fleet_cmd;
mod fleet_rekey_cmd;
mod locks_cmd;
mod verify_cmd;
use cmd::rekey as rekey_cmd;
use context as global;

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
        Command::Audit(a) => audit_cmd::run(&ctx, &a),
        Command::Locks(a) => locks_cmd::run(&ctx, &a),
        Command::Verify(a) => verify_cmd::run(&ctx, &a),
        Command::Bootstrap(a) => bootstrap_cmd::run(&ctx, &a),
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
