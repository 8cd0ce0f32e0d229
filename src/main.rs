//! The `balas` command: see `balas --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    balas::cli::main()
}
