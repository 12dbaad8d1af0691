//! Every read path of context applies the same rule (`model::access`): a value is readable by a
//! reader at a time iff its visibility allows the reader and the time is before its expiry.
//! Each read path is checked against each case of the rule; time moves only by a manual clock.

use std::collections::BTreeMap;
use std::time::Duration;

use maos_coord::model::{AgentId, ContextKey, Event, EventFilter, Recorded, Subject, Visibility, Withheld};
use maos_coord::{Coordinator, Durability, Error, Lsn, ManualClock, SetOptions, Timestamp};
use serde_json::json;

fn agent(name: &str) -> AgentId {
    AgentId::new(name).unwrap()
}

fn key(k: &str) -> ContextKey {
    ContextKey::new(k).unwrap()
}

/// What a read path showed of one version of a value.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// The value, with its metadata.
    Value(serde_json::Value, BTreeMap<String, String>),
    /// Nothing: absent (get, past versions, watch) or left out (list).
    Absent,
    /// Refused with `NotVisible`.
    Refused,
    /// Delivered with the value withheld (null value, empty metadata).
    Withheld(Withheld),
}

/// The outcome the rule gives.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rule {
    Readable,
    Expired,
    NotVisible,
}

/// One case: a key set (twice) by the owner, and who reads it.
struct Case {
    name: &'static str,
    key: &'static str,
    reader: &'static str,
    rule: Rule,
}

const CASES: [Case; 8] = [
    Case { name: "private, read by its owner", key: "private", reader: "owner", rule: Rule::Readable },
    Case {
        name: "private, read by another agent",
        key: "private",
        reader: "outsider",
        rule: Rule::NotVisible,
    },
    Case { name: "restricted, reader listed", key: "restricted", reader: "friend", rule: Rule::Readable },
    Case {
        name: "restricted, reader not listed",
        key: "restricted",
        reader: "outsider",
        rule: Rule::NotVisible,
    },
    Case { name: "shared", key: "shared", reader: "outsider", rule: Rule::Readable },
    Case { name: "expired (at its expiry time)", key: "expired", reader: "owner", rule: Rule::Expired },
    Case {
        name: "expired and private to another agent",
        key: "expired-private",
        reader: "outsider",
        rule: Rule::Expired,
    },
    Case { name: "expires later", key: "expires-later", reader: "outsider", rule: Rule::Readable },
];

/// The read paths, and which versions of a key each shows.
#[derive(Debug, Clone, Copy)]
enum Path {
    GetContext,
    GetContextVersion,
    ListContext,
    WatchContext,
    Subscribe,
    SubscribeDurable,
    History,
}

const PATHS: [Path; 7] = [
    Path::GetContext,
    Path::GetContextVersion,
    Path::ListContext,
    Path::WatchContext,
    Path::Subscribe,
    Path::SubscribeDurable,
    Path::History,
];

fn metadata(version: u64) -> BTreeMap<String, String> {
    BTreeMap::from([("note".to_owned(), format!("secret {version}"))])
}

/// What `path` shows of `version` under `rule`.
fn expected(path: Path, rule: Rule, version: u64) -> Seen {
    match (rule, path) {
        (Rule::Readable, _) => Seen::Value(json!({"v": version}), metadata(version)),
        (Rule::Expired | Rule::NotVisible, Path::ListContext) => Seen::Absent,
        (Rule::Expired, Path::Subscribe | Path::SubscribeDurable | Path::History) => {
            Seen::Withheld(Withheld::Expired)
        }
        (Rule::NotVisible, Path::Subscribe | Path::SubscribeDurable | Path::History) => {
            Seen::Withheld(Withheld::NotVisible)
        }
        (Rule::Expired, _) => Seen::Absent,
        (Rule::NotVisible, _) => Seen::Refused,
    }
}

/// A store where the owner set every key of [`CASES`] twice, at the same instant, and then the
/// clock moved 10 s on: keys set to expire in 10 s have just expired, those set to expire in
/// 11 s have not.
async fn store(root: &std::path::Path) -> (Coordinator, ManualClock) {
    let clock = ManualClock::new(Timestamp::from_micros(1_800_000_000_000_000));
    let c = Coordinator::options(root).durability(Durability::Buffered).clock(clock.shared()).open().unwrap();
    for name in ["owner", "friend", "outsider"] {
        c.register_agent(&agent(name), "r", vec![]).await.unwrap();
    }
    let owner = agent("owner");
    let settings: [(&str, Visibility, Option<u64>); 6] = [
        ("private", Visibility::Private, None),
        ("restricted", Visibility::Restricted(vec![agent("friend")]), None),
        ("shared", Visibility::Shared, None),
        ("expired", Visibility::Shared, Some(10)),
        ("expired-private", Visibility::Private, Some(10)),
        ("expires-later", Visibility::Shared, Some(11)),
    ];
    for (k, visibility, expires_in) in settings {
        for version in 1..=2 {
            let opts = SetOptions {
                visibility: visibility.clone(),
                expires_in: expires_in.map(Duration::from_secs),
                metadata: metadata(version),
                ..SetOptions::default()
            };
            c.set_context_with(&owner, &key(k), json!({"v": version}), opts).await.unwrap();
        }
    }
    assert!(c.get_context(&owner, &key("expired")).unwrap().is_some(), "not expired before the clock moves");
    clock.advance(Duration::from_secs(10));
    (c, clock)
}

fn seen_entry(result: Result<Option<maos_coord::model::ContextEntry>, Error>) -> Seen {
    match result {
        Ok(Some(entry)) => Seen::Value(entry.value, entry.metadata),
        Ok(None) => Seen::Absent,
        Err(Error::NotVisible { .. }) => Seen::Refused,
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// A delivered context record as the reader saw it (and checks that a withheld one shows
/// nothing of the value).
fn seen_record(recorded: &Recorded, withheld: Option<Withheld>) -> (u64, Seen) {
    let Event::ContextUpdated { value, metadata, version, .. } = &recorded.event else {
        panic!("not a context update: {recorded:?}");
    };
    match withheld {
        None => (*version, Seen::Value(value.clone(), metadata.clone())),
        Some(why) => {
            assert_eq!((value, metadata.len()), (&serde_json::Value::Null, 0), "withheld shows nothing");
            (*version, Seen::Withheld(why))
        }
    }
}

/// What `path` shows `reader` of each version of `k` (version, seen), in order.
async fn observe(
    c: &Coordinator,
    path: Path,
    reader: &AgentId,
    k: &ContextKey,
    n: usize,
) -> Vec<(u64, Seen)> {
    let updates = EventFilter::all().types(["ContextUpdated"]);
    let of_key = |r: &Recorded| r.event.context_key() == Some(k);
    match path {
        Path::GetContext => vec![(2, seen_entry(c.get_context(reader, k)))],
        Path::GetContextVersion => {
            (1..=2).map(|v| (v, seen_entry(c.get_context_version(reader, k, v)))).collect()
        }
        Path::ListContext => {
            let listed = c.list_context(reader, k.as_str()).unwrap().into_iter().find(|e| e.key == *k);
            vec![(2, seen_entry(Ok(listed)))]
        }
        Path::WatchContext => {
            let mut watcher = c.watch_context(reader, k, Some(1)).unwrap();
            let mut seen = Vec::new();
            for v in 1..=2 {
                // The records exist: the watcher answers at once (the bound only ends a hang).
                let next = tokio::time::timeout(Duration::from_secs(30), watcher.next()).await.unwrap();
                seen.push((
                    v,
                    seen_entry(next.map(|(version, entry)| {
                        assert_eq!(version, v);
                        entry
                    })),
                ));
            }
            seen
        }
        Path::Subscribe => {
            let mut subscription = c.subscribe_from(reader, updates, Lsn::new(1)).unwrap();
            let mut seen = Vec::new();
            while let Some(d) = subscription.try_next().unwrap() {
                if of_key(&d.recorded) {
                    seen.push(seen_record(&d.recorded, d.withheld));
                }
            }
            seen
        }
        Path::SubscribeDurable => {
            let mut subscription = c.subscribe_durable(reader, &format!("audit-{n}"), updates).unwrap();
            let mut seen = Vec::new();
            while let Some(d) = subscription.try_next().unwrap() {
                if of_key(&d.recorded) {
                    seen.push(seen_record(&d.recorded, d.withheld));
                }
            }
            seen
        }
        Path::History => c
            .history(reader, &Subject::Context(k.to_string()))
            .unwrap()
            .iter()
            .map(|e| seen_record(&e.recorded, e.withheld))
            .collect(),
    }
}

#[tokio::test]
async fn every_read_path_applies_the_same_visibility_and_expiry_rule() {
    let root = tempfile::tempdir().unwrap();
    let (c, _clock) = store(root.path()).await;
    let mut failures = Vec::new();
    let mut n = 0;
    for path in PATHS {
        for case in &CASES {
            n += 1;
            let seen = observe(&c, path, &agent(case.reader), &key(case.key), n).await;
            let versions: Vec<u64> = seen.iter().map(|(v, _)| *v).collect();
            let wanted: Vec<(u64, Seen)> =
                versions.iter().map(|v| (*v, expected(path, case.rule, *v))).collect();
            if seen.is_empty() || seen != wanted {
                failures.push(format!("{path:?} × {}: expected {wanted:?}, saw {seen:?}", case.name));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test]
async fn a_subscription_does_not_hand_another_agent_a_private_value() {
    let root = tempfile::tempdir().unwrap();
    let (c, _clock) = store(root.path()).await;
    let (owner, outsider) = (agent("owner"), agent("outsider"));
    let mut theirs = c.subscribe(&outsider, EventFilter::all().types(["ContextUpdated"])).unwrap();
    let mut mine = c.subscribe(&owner, EventFilter::all().types(["ContextUpdated"])).unwrap();
    c.set_context(&owner, &key("plan"), json!("do not share"), Visibility::Private).await.unwrap();

    let delivered = theirs.try_next().unwrap().unwrap();
    assert_eq!(delivered.withheld, Some(Withheld::NotVisible));
    let Event::ContextUpdated { value, key: k, version, .. } = &delivered.recorded.event else {
        panic!("{delivered:?}");
    };
    assert_eq!((value, k.as_str(), *version), (&json!(null), "plan", 1), "the record, not the value");
    let own = mine.try_next().unwrap().unwrap();
    assert_eq!(own.withheld, None);
    assert!(
        matches!(&own.recorded.event, Event::ContextUpdated { value, .. } if *value == json!("do not share"))
    );
}

#[tokio::test]
async fn a_metadata_filter_does_not_match_a_withheld_value() {
    let root = tempfile::tempdir().unwrap();
    let (c, _clock) = store(root.path()).await;
    let by_note = || EventFilter::all().types(["ContextUpdated"]).metadata("note", "secret 1");
    let count = |reader: &str| {
        let mut subscription = c.subscribe_from(&agent(reader), by_note(), Lsn::new(1)).unwrap();
        let mut keys = Vec::new();
        while let Some(d) = subscription.try_next().unwrap() {
            keys.push(d.recorded.event.context_key().unwrap().to_string());
        }
        keys
    };
    assert_eq!(count("owner"), ["private", "restricted", "shared", "expires-later"]);
    assert_eq!(count("friend"), ["restricted", "shared", "expires-later"]);
    assert_eq!(count("outsider"), ["shared", "expires-later"], "what it may not read does not match");
}

#[tokio::test]
async fn a_value_expires_for_subscribers_once_the_clock_passes_its_expiry() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::from_micros(1_800_000_000_000_000));
    let c = Coordinator::options(root.path())
        .durability(Durability::Buffered)
        .clock(clock.shared())
        .open()
        .unwrap();
    let a = agent("a");
    c.register_agent(&a, "r", vec![]).await.unwrap();
    let opts = SetOptions { expires_in: Some(Duration::from_secs(60)), ..SetOptions::default() };
    c.set_context_with(&a, &key("lease"), json!("held"), opts).await.unwrap();
    let updates = || EventFilter::all().types(["ContextUpdated"]);

    let before = c.subscribe_from(&a, updates(), Lsn::new(1)).unwrap().try_next().unwrap().unwrap();
    assert_eq!(before.withheld, None);
    assert_eq!(c.history(&a, &Subject::Context("lease".into())).unwrap()[0].withheld, None);
    clock.advance(Duration::from_secs(60));
    let after = c.subscribe_from(&a, updates(), Lsn::new(1)).unwrap().try_next().unwrap().unwrap();
    assert_eq!(after.withheld, Some(Withheld::Expired));
    assert_eq!(
        c.history(&a, &Subject::Context("lease".into())).unwrap()[0].withheld,
        Some(Withheld::Expired)
    );
    assert!(c.get_context(&a, &key("lease")).unwrap().is_none());
}

#[tokio::test]
async fn history_needs_a_registered_reader() {
    let root = tempfile::tempdir().unwrap();
    let (c, _clock) = store(root.path()).await;
    let err = c.history(&agent("ghost"), &Subject::Context("shared".into())).unwrap_err();
    assert!(matches!(err, Error::UnknownAgent { .. }), "{err}");
}
