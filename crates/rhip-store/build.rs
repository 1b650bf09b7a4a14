//! Rebuilds the crate when a migration changes: `embed_migrations!` reads
//! the migration folders at compile time, which cargo does not track.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
