//! The `maos-coord` command: a demo, and log maintenance and inspection from the shell.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
