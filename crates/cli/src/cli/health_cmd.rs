//! `maos-coord health`: every check of the library's `Coordinator::health`, each named with
//! what it found; exit code 0 when all pass, 1 when one fails (the one exception to the table
//! of exit codes by error kind: a failed check is a finding, not an error).

use maos_coord::coordinator::{HealthOptions, HealthReport, DEFAULT_MAX_CURSOR_LAG};
use serde_json::json;

use super::{view, Failure, Global, Out};

#[derive(clap::Args)]
pub struct HealthArgs {
    /// A durable cursor this many records (or more) behind the tail fails the `subscriptions`
    /// check.
    #[arg(long, value_name = "RECORDS", default_value_t = DEFAULT_MAX_CURSOR_LAG)]
    max_lag: u64,
}

pub fn run(args: &HealthArgs, g: &Global, out: &mut Out) -> Result<(), Failure> {
    let report = g.open()?.health(&HealthOptions { max_cursor_lag: args.max_lag })?;
    if g.json() {
        let checks: Vec<_> = report
            .checks
            .iter()
            .map(|c| json!({"name": c.name, "ok": c.ok, "finding": c.finding, "details": c.details}))
            .collect();
        out.line(json!({"healthy": report.healthy(), "time": view::time(report.now), "checks": checks}))?;
    } else {
        print_text(&report, out)?;
    }
    if report.healthy() {
        return Ok(());
    }
    let failed: Vec<&str> = report.checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
    Err(Failure::Unhealthy(format!("not healthy: {} failed", failed.join(", "))))
}

fn print_text(report: &HealthReport, out: &mut Out) -> Result<(), Failure> {
    for c in &report.checks {
        out.line(format_args!("{:<4}  {:<14} {}", if c.ok { "ok" } else { "FAIL" }, c.name, c.finding))?;
        for detail in &c.details {
            out.line(format_args!("{:<21}{detail}", ""))?;
        }
    }
    out.line(if report.healthy() { "healthy" } else { "not healthy" })?;
    Ok(())
}
