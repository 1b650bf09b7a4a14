//! The `rhip` binary: parses the command line and hands over to the library.

/// mimalloc instead of the system allocator: a node allocates and frees
/// many small JSON values and rows per change, and glibc's malloc was a
/// fifth of the federation apply profile (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    rhip::run()
}
