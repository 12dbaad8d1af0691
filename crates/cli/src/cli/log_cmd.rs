//! `maos-coord log ...`: status, verify, dump and append from the shell.

use clap::Subcommand;
use maos_coord::{Durability, ErrorKind, Log, Lsn, RecordKind};
use serde_json::json;

use super::repair::{self, JOURNAL_LINES};
use super::{Failure, Global, Out, StoreArgs};

#[derive(Subcommand)]
pub enum LogCommand {
    /// Positions of the log, what recovery would repair, and the latest repairs recorded in the
    /// recovery journal. Reads only: never creates, locks exclusively or changes the store.
    Status,
    /// Read every record and check every checksum, header and LSN (exit code 3 on corruption,
    /// naming segment, offset and LSN). Reads only: a torn tail is reported, never cut.
    Verify,
    /// Print records: LSN, time, kind, and the payload as JSON (MessagePack) or hex. Reads only.
    Dump {
        /// First LSN to print (default: everything the store holds, starting with the records
        /// keyed compaction kept).
        #[arg(long)]
        from: Option<u64>,
        /// Print at most this many records.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Say what recovery would cut: a torn tail above the durable watermark (bytes of writes
    /// never acknowledged as durable), leftover files. With --apply, cut it and say what was cut
    /// (recorded in the recovery journal). Records below the durable watermark are never cut:
    /// damage there is corruption (exit code 3).
    Repair {
        /// Do it (without: only print the plan).
        #[arg(long)]
        apply: bool,
    },
    /// Append one record whose payload is a JSON value, stored as MessagePack; prints its LSN
    /// (with --json, `{"lsn": N}`). Kinds 1 to 15 belong to the coordination layer and are
    /// refused.
    Append {
        /// Record kind (1 to 65535).
        #[arg(long)]
        kind: u16,
        /// The payload, as JSON.
        #[arg(long)]
        data: String,
        /// Acknowledge once in the OS page cache instead of on stable storage.
        #[arg(long)]
        buffered: bool,
    },
}

pub fn run(cmd: LogCommand, g: &Global, out: &mut Out) -> Result<(), Failure> {
    let (store, json) = (&g.store(), g.json());
    match cmd {
        LogCommand::Status => status(store, json, out),
        LogCommand::Verify => verify(store, json, out),
        LogCommand::Dump { from, limit } => dump(store, from, limit, json, out),
        LogCommand::Repair { apply } => repair::repair(store, apply, json, out),
        LogCommand::Append { kind, data, buffered } => append(store, kind, &data, buffered, json, out),
    }
}

/// Opens the store for reading only: never creates it ("no store at DIR"), never writes.
fn open(store: &StoreArgs) -> Result<Log, Failure> {
    Ok(store.log_options()?.read_only().open()?)
}

fn status(store: &StoreArgs, as_json: bool, out: &mut Out) -> Result<(), Failure> {
    let log = open(store)?;
    let report = log.recovery_report();
    let journal = log.recovery_journal(JOURNAL_LINES)?;
    let value = json!({
        "dir": log.dir(),
        "first_lsn": log.first_lsn()?.get(),
        "next_lsn": log.next_lsn().get(),
        "durable_lsn": log.durable_lsn().get(),
        "unrepaired_sync_failures": log.unrepaired_sync_failures(),
        "recovered_from_segments": report.tail_from_segments,
        "pending_repair": repair::plan_json(report),
        "recovery_journal": journal,
    });
    if as_json {
        out.line(value)?;
    } else {
        out.line(format_args!("log         {}", log.dir().display()))?;
        if log.next_lsn() > log.first_lsn()? {
            out.line(format_args!(
                "records     {} to {}",
                log.first_lsn()?,
                log.next_lsn().get().saturating_sub(1)
            ))?;
        } else {
            out.line(format_args!("records     none (the next gets LSN {})", log.next_lsn()))?;
        }
        out.line(format_args!("durable     below LSN {}", log.durable_lsn()))?;
        let unrepaired = log.unrepaired_sync_failures();
        if unrepaired > 0 {
            out.line(format_args!(
                "sync        {unrepaired} failed segment sync(s) not repaired yet: nothing becomes durable until the next append or writable open writes their bytes again"
            ))?;
        }
        repair::print_plan(report, out)?;
        repair::print_journal(&journal, out)?;
    }
    Ok(())
}

fn verify(store: &StoreArgs, as_json: bool, out: &mut Out) -> Result<(), Failure> {
    let log = open(store)?;
    let report = log.verify()?;
    super::repair_cmd::check(&log, out, as_json)?;
    let recovery = log.recovery_report();
    let journal = log.recovery_journal(JOURNAL_LINES)?;
    if as_json {
        out.line(json!({
            "ok": true, "records": report.records, "segments": report.segments,
            "first_lsn": report.first.get(), "next_lsn": report.next.get(), "payload_bytes": report.payload_bytes,
            "compacted_records": report.compacted_records, "durable_lsn": log.durable_lsn().get(),
            "pending_repair": repair::plan_json(recovery), "recovery_journal": journal,
        }))?;
    } else {
        out.line(format_args!(
            "ok: {} records (LSN {} to {}) in {} segment{}, {} payload bytes, every checksum verified",
            report.records,
            report.first,
            report.next.get().saturating_sub(1),
            report.segments,
            if report.segments == 1 { "" } else { "s" },
            report.payload_bytes
        ))?;
        if report.compacted_records > 0 {
            out.line(format_args!(
                "ok: {} records kept by keyed compaction, every checksum verified",
                report.compacted_records
            ))?;
        }
        repair::print_plan(recovery, out)?;
        repair::print_journal(&journal, out)?;
    }
    Ok(())
}

fn dump(
    store: &StoreArgs,
    from: Option<u64>,
    limit: Option<u64>,
    as_json: bool,
    out: &mut Out,
) -> Result<(), Failure> {
    let log = open(store)?;
    let mut reader = match from {
        Some(lsn) => Reader::Log(log.reader_from(Lsn::new(lsn))?),
        None => Reader::Audit(log.audit_reader()?),
    };
    let mut printed = 0;
    while limit.is_none_or(|l| printed < l) {
        let Some(record) = reader.next()? else { break };
        let payload = match rmp_serde::from_slice::<serde_json::Value>(record.payload) {
            Ok(value) => value,
            Err(_) => json!({ "hex": hex(record.payload) }),
        };
        if as_json {
            out.line(json!({
                "lsn": record.lsn.get(), "time_us": record.timestamp.as_micros(),
                "kind": record.kind.get(), "payload": payload,
            }))?;
        } else {
            out.line(format_args!(
                "{:>8}  {}  kind {:<5} {}",
                record.lsn, record.timestamp, record.kind, payload
            ))?;
        }
        printed += 1;
    }
    Ok(())
}

/// The log from an LSN, or everything the store holds.
enum Reader {
    Log(maos_coord::log::LogReader),
    Audit(maos_coord::log::AuditReader),
}

impl Reader {
    fn next(&mut self) -> maos_coord::Result<Option<maos_coord::log::Record<'_>>> {
        match self {
            Reader::Log(r) => r.next(),
            Reader::Audit(r) => r.next(),
        }
    }
}

fn append(
    store: &StoreArgs,
    kind: u16,
    data: &str,
    buffered: bool,
    as_json: bool,
    out: &mut Out,
) -> Result<(), Failure> {
    let value: serde_json::Value = serde_json::from_str(data)
        .map_err(|e| Failure::new(ErrorKind::Invalid, format_args!("--data is not JSON: {e}")))?;
    let payload = rmp_serde::to_vec(&value).map_err(|e| Failure::new(ErrorKind::Internal, e))?;
    let kind = RecordKind::new(kind)?;
    let durability = if buffered { Durability::Buffered } else { Durability::Sync };
    let log = store.log_options()?.durability(durability).open()?;
    let lsn = log.append(kind, &payload)?;
    if as_json {
        out.line(json!({"lsn": lsn.get()}))?;
    } else {
        out.line(lsn)?;
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
