//! The values of arguments: JSON given inline, as `@FILE` or as `-` (standard input); `k=v`
//! pairs; visibilities; durations. Each error names the argument, and the file when there is
//! one. Values that clap checks (durations, `k=v`, visibilities) fail as usage errors (exit code
//! 2) before anything is opened; JSON, read once the command runs, fails as an invalid value
//! (exit code 1), also before anything is opened or appended.

use std::io::Read;
use std::time::Duration;

use maos_coord::{AgentId, ErrorKind, Visibility};

use super::Failure;

/// A JSON argument: the text itself, `@FILE` (the file's contents) or `-` (standard input).
/// `what` names the argument in errors (`the value of ctx set`, `--metadata`).
pub fn json(what: &str, arg: &str) -> Result<serde_json::Value, Failure> {
    let (text, from) = if arg == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| {
            Failure::new(ErrorKind::Io, format_args!("{what}: cannot read standard input: {e}"))
        })?;
        (text, " (from standard input)".to_owned())
    } else if let Some(path) = arg.strip_prefix('@') {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::new(ErrorKind::Io, format_args!("{what}: cannot read file {path}: {e}")))?;
        (text, format!(" (from file {path})"))
    } else {
        (arg.to_owned(), String::new())
    };
    serde_json::from_str(&text)
        .map_err(|e| Failure::new(ErrorKind::Invalid, format_args!("{what}{from} is not JSON: {e}")))
}

/// A duration such as `30s`, `5m`, `1h 30m` (humantime).
pub fn duration(text: &str) -> Result<Duration, String> {
    let duration =
        humantime::parse_duration(text).map_err(|e| format!("{e} (a duration such as 30s, 5m, 2h)"))?;
    if duration > MAX_DURATION {
        return Err(format!("{text} is longer than the 1000 years a duration may be"));
    }
    Ok(duration)
}

/// The longest duration a flag takes: times stay well inside what a record's time can hold.
const MAX_DURATION: Duration = Duration::from_secs(1000 * 365 * 24 * 3600);

/// A duration that must not be zero: a lease, an expiry, a heartbeat timeout (a zero one would
/// end before it starts).
pub fn span(text: &str) -> Result<Duration, String> {
    match duration(text)? {
        Duration::ZERO => Err(format!("{text} is zero; this must last a while (such as 30s, 5m)")),
        span => Ok(span),
    }
}

/// A `KEY=VALUE` pair.
pub fn pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

/// `shared`, `private` or `restricted:A,B` (the owner and the agents listed may read).
pub fn visibility(text: &str) -> Result<Visibility, String> {
    match text {
        "shared" => Ok(Visibility::Shared),
        "private" => Ok(Visibility::Private),
        _ => {
            let Some(list) = text.strip_prefix("restricted:") else {
                return Err(format!("{text:?} is not shared, private or restricted:AGENT,AGENT..."));
            };
            let agents = list
                .split(',')
                .map(|name| AgentId::new(name.trim()).map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Visibility::Restricted(agents))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_past_what_a_record_time_holds_and_zero_spans_are_refused() {
        assert_eq!(duration("0s").unwrap(), Duration::ZERO);
        assert!(duration("500000years").unwrap_err().contains("1000 years"));
        assert_eq!(span("30s").unwrap(), Duration::from_secs(30));
        assert!(span("0s").unwrap_err().contains("zero"));
        assert!(span("500000years").is_err());
    }

    #[test]
    fn arguments_parse_or_say_what_they_expected() {
        assert_eq!(pair("a=b=c").unwrap(), ("a".to_owned(), "b=c".to_owned()));
        assert!(pair("=x").unwrap_err().contains("KEY=VALUE"));
        assert_eq!(visibility("private").unwrap(), Visibility::Private);
        let Visibility::Restricted(agents) = visibility("restricted:a, b").unwrap() else { panic!() };
        assert_eq!(agents, [AgentId::new("a").unwrap(), AgentId::new("b").unwrap()]);
        assert!(visibility("restricted:").unwrap_err().contains("agent id"));
        assert!(visibility("public").unwrap_err().contains("shared, private"));
        assert_eq!(duration("1m 30s").unwrap(), Duration::from_secs(90));
        assert!(duration("soon").unwrap_err().contains("30s"));
        let Err(Failure::Error { message, .. }) = json("--metadata", "{oops") else { panic!() };
        assert!(message.starts_with("--metadata is not JSON: key must be a string"), "{message}");
        let Err(Failure::Error { message, .. }) = json("--metadata", "@/nonexistent/m.json") else {
            panic!()
        };
        assert!(message.contains("cannot read file /nonexistent/m.json"), "{message}");
    }
}
