//! The `maos-coord` command: every operation of the coordination API from a shell, a demo, and
//! log maintenance and inspection.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
