//! `cargo nekos …` — build, run, test and benchmark NekOS. The command line is
//! `nekos_packaging::cli`; this file only runs it.

fn main() -> std::process::ExitCode {
    nekos_packaging::cli::main()
}
