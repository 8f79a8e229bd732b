//! The `clip` command. Thin by design: parse arguments, call the `clip` library, format output.
//!
//! Exit codes (documented in README.md): 0 success, 1 a negative verdict where a command has one
//! (reserved for `moderate`), 2 any error (bad arguments, unreadable input, bad checkpoint).

// The allocator tuning needs one FFI call; everything else is safe code.
#![deny(unsafe_op_in_unsafe_fn)]
// User data (paths, texts, files) never meets an unwrap: every failure is an error message.
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod allocator;
mod commands;
mod output;

use clap::Parser;

use commands::Command;

/// The command line: one subcommand.
#[derive(Parser)]
#[command(
    name = "clip",
    version,
    about = "CLIP in Rust: embed, classify, tokenize and preprocess with the reference's numbers"
)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// Exit status for every error; clap uses the same code for usage errors.
pub const EXIT_ERROR: i32 = 2;

/// Tunes the allocator before any thread starts, runs the subcommand, and exits with its code
/// (errors print one line on stderr and exit [`EXIT_ERROR`]).
fn main() {
    allocator::keep_freed_memory();
    let cli = Cli::parse();
    match cli.command.run() {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("clip: error: {err:#}");
            std::process::exit(EXIT_ERROR);
        }
    }
}
