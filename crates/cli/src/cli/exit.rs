//! Exit codes: one table from the kind of an error ([`ErrorKind`]) to the code the process
//! exits with, the same for every command, and the text `--help` shows of it.

use maos_coord::ErrorKind;

/// The command did what it was asked.
pub const EXIT_OK: u8 = 0;

/// The command line was not right: clap's own code for what it finds, and ours for what it
/// cannot (a flag a command needs, such as the acting agent, given neither as a flag nor in the
/// environment).
pub const EXIT_USAGE: u8 = 2;

/// `maos-coord health` found a check that failed: the one exit code that does not come from an
/// error's kind (the report on standard output says which check failed).
pub const EXIT_UNHEALTHY: u8 = 1;

/// The exit code of each kind of error (clap exits with 2 on a usage error, before any kind).
const EXIT_CODES: [(ErrorKind, u8); 7] = [
    (ErrorKind::Io, 1),
    (ErrorKind::Invalid, 1),
    (ErrorKind::Internal, 1),
    (ErrorKind::Corruption, 3),
    (ErrorKind::Conflict, 4),
    (ErrorKind::NotFound, 5),
    (ErrorKind::Timeout, 5),
];

/// The exit codes as `--help` shows them: each line names the kinds that exit with its code.
pub const HELP: &str = "\
Exit codes (the same for every command):
  0  done
  1  error: io, invalid (a bad value, no store at --root, a store others may write to), internal
  2  usage: an unknown command or flag, a missing or malformed argument (--agent / MAOS_AGENT for commands that act)
  3  corruption found: a checksum, lock, cursor or snapshot file, an undecodable record, an unsupported version
  4  conflict: a version mismatch, a lock or task held by another agent, a wait on a held lock that timed out, a lease lost
  5  nothing to do: not_found (an unknown id, no claimable task, a key absent or not visible), timeout (a wait that timed out)

With --json, an error is one line on stderr: {\"error\": {\"kind\": \"<kind>\", \"message\": \"...\"}}
(kind \"usage\" for exit code 2).

One exception: `maos-coord health` exits with 1 when one of its checks fails (kind \"unhealthy\"), and
with 0 when all pass; an error that keeps it from judging exits by its kind as above. `maos-coord
verify` exits with 3 when it finds corruption, after printing its report.";

/// The exit code of an error of this kind.
pub fn code(kind: ErrorKind) -> u8 {
    // A kind a newer library adds is an error (1) until the table gives it its own code.
    EXIT_CODES.iter().find(|(k, _)| *k == kind).map_or(1, |&(_, code)| code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_exits_with_its_documented_code() {
        let documented = [
            (ErrorKind::Io, 1),
            (ErrorKind::Invalid, 1),
            (ErrorKind::Internal, 1),
            (ErrorKind::Corruption, 3),
            (ErrorKind::Conflict, 4),
            (ErrorKind::NotFound, 5),
            (ErrorKind::Timeout, 5),
        ];
        for kind in ErrorKind::ALL {
            let listed = EXIT_CODES.iter().filter(|(k, _)| *k == kind).count();
            assert_eq!(listed, 1, "{kind} is in the table once");
            let expected = documented.iter().find(|(k, _)| *k == kind).map(|&(_, c)| c);
            assert_eq!(Some(code(kind)), expected, "{kind}");
            // --help names the kind on the line of its code.
            let line = HELP.lines().find(|l| l.starts_with(&format!("  {}  ", code(kind))));
            assert!(line.is_some_and(|l| l.contains(kind.as_str())), "{kind} in --help:\n{HELP}");
        }
        assert!(HELP.contains("  0  done") && HELP.contains("  2  usage"), "{HELP}");
    }
}
