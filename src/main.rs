//! The `balas` command: see `balas --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Before anything is allocated in earnest (App::open does it again for
    // programs that embed the service).
    balas::allocator::configure();
    balas::cli::main()
}
