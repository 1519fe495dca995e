//! One module per subcommand (or family of subcommands): each parses nothing itself (its
//! arguments are clap structs here, wired in `cli.rs`), runs the libraries, and hands what it
//! prints to `render/` or the `outln!` macros.

pub mod audit;
pub mod bootstrap;
pub mod crypt;
pub mod dr;
pub mod fleet;
pub mod inspect;
pub mod keyprovider;
pub mod lock;
pub mod locks;
pub mod outputs;
pub mod rekey;
pub mod serve;
pub mod state;
pub mod validate;
pub mod verify;
pub mod workspace;
