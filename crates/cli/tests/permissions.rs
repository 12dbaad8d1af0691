//! Files of the store are the store's own: modes whatever the umask, the access recorded in the
//! store, refusal of a store others may write to, and (when the tests run as root) what another
//! user can and cannot do.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use maos_coord::coordinator::{init, store_dir, CompactOptions};
use maos_coord::model::{AgentId, ContextKey, EventFilter, NewTask, Visibility};
use maos_coord::{Coordinator, Durability, Error, StoreAccess};

const BIN: &str = env!("CARGO_BIN_EXE_maos-coord");
const SECRET: &str = "s3cret-value-only-for-its-owner";
/// The unprivileged user and group of Debian (`nobody`, `nogroup`).
const NOBODY: u32 = 65534;

/// A project directory, 0700 whatever the umask (one test of this file sets the process's umask to
/// 000 while others run).
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

fn set_umask(mask: u32) {
    // SAFETY: umask has no preconditions; it changes the mask of the whole test process, which
    // is why every test of this file creates files only through the code under test.
    unsafe { libc::umask(mask) };
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Every directory and file under `dir` (itself included) with its mode.
fn modes(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = vec![(dir.to_owned(), std::fs::metadata(dir).unwrap().mode() & 0o7777)];
    if dir.is_dir() {
        for entry in std::fs::read_dir(dir).unwrap() {
            out.extend(modes(&entry.unwrap().path()));
        }
    }
    out
}

/// A store with every kind of file: several segments (so index files), a snapshot, a durable
/// cursor, a keyed compaction (the compacted-records file) and a private context value.
async fn busy_store(root: &Path, access: StoreAccess) {
    let c = Coordinator::options(root)
        .durability(Durability::Buffered)
        .segment_size(16 << 10)
        .access(access)
        .open()
        .unwrap();
    let me = AgentId::new("owner").unwrap();
    c.register_agent(&me, "r", vec![]).await.unwrap();
    let key = ContextKey::new("secret").unwrap();
    c.set_context(&me, &key, serde_json::json!(SECRET), Visibility::Private).await.unwrap();
    drop(c.subscribe_durable(&me, "audit", EventFilter::all()).unwrap());
    for i in 0..30 {
        c.create_task(&me, NewTask::new(format!("task {i} {}", "x".repeat(200)))).await.unwrap();
    }
    c.snapshot().unwrap();
    c.compact(&CompactOptions { keyed: true, force: true, ..CompactOptions::default() }).unwrap();
    for i in 30..60 {
        c.create_task(&me, NewTask::new(format!("task {i} {}", "x".repeat(200)))).await.unwrap();
    }
    // Reading sealed segments to their end writes their index files.
    let mut reader = c.log().reader().unwrap();
    while reader.next().unwrap().is_some() {}
}

/// The newest segment file of the store.
fn a_segment(root: &Path) -> PathBuf {
    let log = store_dir(root).join("log");
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    segments.pop().expect("a segment")
}

fn assert_modes(root: &Path, access: StoreAccess) {
    let all = modes(&root.join(".maos"));
    let names: Vec<String> =
        all.iter().filter_map(|(p, _)| p.file_name().map(|n| n.to_string_lossy().into_owned())).collect();
    for wanted in ["access", "log.lock", "compact.lock", "compacted.log", "cursor"] {
        assert!(names.iter().any(|n| n.contains(wanted)), "the store has no {wanted} file: {names:?}");
    }
    assert!(names.iter().any(|n| n.ends_with(".snap")) && names.iter().any(|n| n.ends_with(".seg.idx")));
    for (path, mode) in all {
        let want = if path.is_dir() { access.dir_mode() } else { access.file_mode() };
        assert_eq!(mode, want, "{} has mode {mode:o}, not {want:o} ({access})", path.display());
    }
}

#[tokio::test]
async fn every_file_of_a_store_has_the_mode_of_its_access_whatever_the_umask() {
    for (mask, access) in [
        (0o000, StoreAccess::Private),
        (0o022, StoreAccess::Private),
        (0o000, StoreAccess::GroupRead),
        (0o077, StoreAccess::GroupRead),
        (0o077, StoreAccess::GroupWrite),
    ] {
        set_umask(mask);
        let root = project();
        busy_store(root.path(), access).await;
        assert_modes(root.path(), access);
        let store = store_dir(root.path());
        assert_eq!(maos_coord::fs::read_access(&store).unwrap(), Some(access), "the access is recorded");
        // Reopened with another access asked for: the recorded one stays.
        drop(Coordinator::options(root.path()).access(StoreAccess::GroupWrite).open().unwrap());
        assert_eq!(maos_coord::fs::read_access(&store).unwrap(), Some(access));
    }
    set_umask(0o022);
}

#[tokio::test]
async fn a_store_others_may_write_to_is_refused_naming_the_path_and_its_mode() {
    let root = project();
    busy_store(root.path(), StoreAccess::Private).await;
    let store = store_dir(root.path());
    let log = store.join("log");
    let segment = a_segment(root.path());
    let snapshot = std::fs::read_dir(store.join("snapshots")).unwrap().next().unwrap().unwrap().path();
    let before = modes(&root.path().join(".maos"));
    let bytes = std::fs::read(&segment).unwrap();
    for (path, bits) in [
        (root.path().join(".maos"), 0o002),
        (store.clone(), 0o020),
        (log.clone(), 0o002),
        (segment.clone(), 0o020),
        (snapshot.clone(), 0o002),
        (log.join("log.lock"), 0o022),
        (store.join("access"), 0o002),
    ] {
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o7777;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode | bits)).unwrap();
        match Coordinator::open(root.path()) {
            Err(Error::InsecurePermissions { path: named, mode: found, access, .. }) => {
                assert_eq!((named, found, access), (path.clone(), mode | bits, StoreAccess::Private));
            }
            Err(other) => panic!("{} with mode {:o}: {other}", path.display(), mode | bits),
            Ok(_) => panic!("{} with mode {:o} opened", path.display(), mode | bits),
        }
        // The log alone, for reading or writing, is refused the same way (when the damage is in it).
        if path.starts_with(&log) {
            let err = maos_coord::Log::open_read_only(&log).unwrap_err();
            assert!(matches!(err, Error::InsecurePermissions { .. }), "{err}");
            assert!(err.to_string().contains(&path.display().to_string()), "{err}");
        }
        // Allowed explicitly, it opens (and reads what is there).
        let c = Coordinator::options(root.path()).allow_insecure_permissions(true).open().unwrap();
        assert_eq!(c.list_tasks(None).unwrap().len(), 60);
        drop(c);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    assert_eq!(std::fs::read(&segment).unwrap(), bytes, "the refused opens wrote nothing");
    assert_eq!(modes(&root.path().join(".maos")).len(), before.len());
    drop(Coordinator::open(root.path()).unwrap());
}

#[tokio::test]
async fn a_group_write_store_lets_its_group_write_and_nobody_else() {
    let root = project();
    busy_store(root.path(), StoreAccess::GroupWrite).await;
    let segment = a_segment(root.path());
    // Group-writable files are what this access means: they open.
    drop(Coordinator::open(root.path()).unwrap());
    std::fs::set_permissions(&segment, std::fs::Permissions::from_mode(0o662)).unwrap();
    let err = Coordinator::open(root.path()).err().expect("refused");
    assert!(err.to_string().contains("may be written by any user"), "{err}");
}

#[tokio::test]
async fn init_gives_an_existing_store_the_access_asked_for_and_again_changes_nothing() {
    let root = project();
    busy_store(root.path(), StoreAccess::Private).await;
    let done = init(root.path(), StoreAccess::GroupRead, None).unwrap();
    assert!(!done.created && done.changed > 5, "{done:?}");
    assert_eq!((done.previous, done.access), (Some(StoreAccess::Private), StoreAccess::GroupRead));
    assert_modes(root.path(), StoreAccess::GroupRead);
    let again = init(root.path(), StoreAccess::GroupRead, None).unwrap();
    assert_eq!((again.changed, again.previous), (0, Some(StoreAccess::GroupRead)));
    let fresh = project();
    let made = init(fresh.path(), StoreAccess::Private, None).unwrap();
    assert!(made.created && made.previous.is_none());
    assert_eq!(maos_coord::fs::read_access(&store_dir(fresh.path())).unwrap(), Some(StoreAccess::Private));
}

#[test]
fn the_command_line_creates_private_stores_and_refuses_insecure_ones_with_exit_code_1() {
    let root = project();
    let run = |args: &[&str]| Command::new(BIN).args(args).arg("--root").arg(root.path()).output().unwrap();
    let o = run(&["init", "--group-shared"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let store = store_dir(root.path());
    assert_eq!(std::fs::metadata(&store).unwrap().mode() & 0o7777, 0o2750);
    let o = run(&["init", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((v["access"].as_str(), v["previous_access"].as_str()), (Some("private"), Some("group-read")));
    let lock = store.join("log").join("log.lock");
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let o = run(&["log", "status"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&lock.display().to_string()) && err.contains("0666"), "{err}");
    assert!(run(&["log", "status", "--allow-insecure-permissions"]).status.success());
    assert_eq!(run(&["store", "snapshot"]).status.code(), Some(1));
}

/// Runs `program args` as `uid`:`gid` with no supplementary groups.
fn run_as(uid: u32, gid: u32, program: &Path, args: &[&str]) -> Output {
    Command::new(program).args(args).uid(uid).gid(gid).output().unwrap()
}

/// A project root other users may enter (as a project directory usually is), and a copy of the
/// command-line tool they may run.
fn shared_root() -> (tempfile::TempDir, PathBuf) {
    let root = project();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = root.path().join("maos-coord");
    std::fs::copy(BIN, &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    (root, bin)
}

#[tokio::test]
async fn another_user_cannot_read_a_private_store() {
    if !is_root() {
        eprintln!("not root: other users are not tried (the modes are checked by the tests above)");
        return;
    }
    let (root, bin) = shared_root();
    busy_store(root.path(), StoreAccess::Private).await;
    let log = store_dir(root.path()).join("log").display().to_string();
    let mine = run_as(0, 0, Path::new("grep"), &["-rl", SECRET, &log]);
    assert!(mine.status.success(), "the owner finds the private value in the log's files");
    let theirs = run_as(NOBODY, NOBODY, Path::new("grep"), &["-rl", SECRET, &log]);
    assert!(!theirs.status.success(), "another user read the log's files");
    assert!(String::from_utf8_lossy(&theirs.stderr).contains("Permission denied"));
    let root_arg = root.path().display().to_string();
    let dump = run_as(NOBODY, NOBODY, &bin, &["log", "dump", "--root", &root_arg]);
    assert_eq!(dump.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&dump.stdout).contains(SECRET));
}

#[tokio::test]
async fn a_group_read_store_is_readable_by_its_group_and_writable_by_its_owner_only() {
    if !is_root() {
        eprintln!("not root: other users are not tried");
        return;
    }
    let (root, bin) = shared_root();
    let store = store_dir(root.path());
    busy_store(root.path(), StoreAccess::Private).await;
    // Shared afterwards, as a store usually is: init gives every file the group.
    init(root.path(), StoreAccess::GroupRead, Some(NOBODY)).unwrap();
    let root_arg = root.path().display().to_string();
    let dump = run_as(NOBODY, NOBODY, &bin, &["log", "dump", "--root", &root_arg]);
    assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
    assert!(String::from_utf8_lossy(&dump.stdout).contains("owner"), "the group reads the records");
    let status = run_as(NOBODY, NOBODY, &bin, &["log", "status", "--root", &root_arg]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    // The history commands open the store read-only: the group audits it.
    for args in [&["audit"][..], &["replay"], &["timeline", "--agent", "owner"]] {
        let o = run_as(NOBODY, NOBODY, &bin, &[args, &["--root", &root_arg]].concat());
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).contains("owner"), "{args:?}");
    }
    let append =
        run_as(NOBODY, NOBODY, &bin, &["log", "append", "--root", &root_arg, "--kind", "100", "--data", "1"]);
    assert_eq!(append.status.code(), Some(1), "the group may not write");
    let outsider =
        run_as(NOBODY - 1, NOBODY - 1, Path::new("cat"), &[&a_segment(root.path()).display().to_string()]);
    assert!(!outsider.status.success(), "a user outside the group read the segment file");
    drop(Coordinator::open(root.path()).unwrap());
    assert_eq!(maos_coord::fs::read_access(&store).unwrap(), Some(StoreAccess::GroupRead));
}

#[tokio::test]
async fn a_second_user_of_the_group_coordinates_through_a_group_write_store() {
    if !is_root() {
        eprintln!("not root: other users are not tried");
        return;
    }
    let (root, bin) = shared_root();
    busy_store(root.path(), StoreAccess::Private).await;
    let root_arg = root.path().display().to_string();
    let shared = Command::new(&bin)
        .args(["init", "--group-shared=write", "--group", "nogroup", "--root", &root_arg])
        .output()
        .unwrap();
    assert!(shared.status.success(), "{}", String::from_utf8_lossy(&shared.stderr));
    let snap = run_as(NOBODY, NOBODY, &bin, &["store", "snapshot", "--root", &root_arg]);
    assert!(snap.status.success(), "{}", String::from_utf8_lossy(&snap.stderr));
    let append =
        run_as(NOBODY, NOBODY, &bin, &["log", "append", "--root", &root_arg, "--kind", "100", "--data", "1"]);
    assert!(append.status.success(), "{}", String::from_utf8_lossy(&append.stderr));
    // What the other user created is the group's too, and the owner opens the store again.
    for (path, mode) in modes(&root.path().join(".maos")) {
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.gid(), NOBODY, "{} lost the group", path.display());
        let want = if path.is_dir() {
            StoreAccess::GroupWrite.dir_mode()
        } else {
            StoreAccess::GroupWrite.file_mode()
        };
        assert_eq!(mode, want, "{}", path.display());
    }
    assert!(modes(&root.path().join(".maos"))
        .iter()
        .any(|(p, _)| std::fs::metadata(p).unwrap().uid() == NOBODY));
    let c = Coordinator::open(root.path()).unwrap();
    assert_eq!(c.list_tasks(None).unwrap().len(), 60);
}
#[test]
fn concurrent_first_opens_of_a_group_store_all_succeed_and_agree() {
    for _ in 0..20 {
        let root = project();
        let opens: Vec<_> = (0..3)
            .map(|_| {
                let root = root.path().to_owned();
                std::thread::spawn(move || {
                    Coordinator::options(&root).access(StoreAccess::GroupWrite).open().map(drop)
                })
            })
            .collect();
        for open in opens {
            open.join().unwrap().unwrap();
        }
        let store = store_dir(root.path());
        assert_eq!(maos_coord::fs::read_access(&store).unwrap(), Some(StoreAccess::GroupWrite));
        let leftovers: Vec<_> =
            std::fs::read_dir(root.path().join(".maos")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, ["coordination"], "the losers' directories are gone");
    }
}

#[tokio::test]
async fn the_log_commands_check_the_whole_store_not_only_the_log() {
    let root = project();
    busy_store(root.path(), StoreAccess::Private).await;
    let store = store_dir(root.path());
    for path in [root.path().join(".maos"), store.clone(), store.join("snapshots"), store.join("access")] {
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o7777;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode | 0o002)).unwrap();
        for args in [&["log", "status"][..], &["log", "dump"], &["log", "verify"], &["repair"]] {
            let o = Command::new(BIN).args(args).arg("--root").arg(root.path()).output().unwrap();
            assert_eq!(o.status.code(), Some(1), "{args:?} with {}", path.display());
            assert!(String::from_utf8_lossy(&o.stderr).contains(&path.display().to_string()));
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

#[tokio::test]
async fn symbolic_links_are_judged_by_their_target_and_links_to_directories_refused() {
    let root = project();
    busy_store(root.path(), StoreAccess::Private).await;
    let log = store_dir(root.path()).join("log");
    // A link to a directory is refused, never walked (here: to the filesystem's root, and round
    // in a circle).
    for (name, target) in [("to-root", "/"), ("circle", "..")] {
        std::os::unix::fs::symlink(target, log.join(name)).unwrap();
        match Coordinator::open(root.path()) {
            Err(Error::InsecurePermissions { path, .. }) => assert_eq!(path, log.join(name)),
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("opened with a link to a directory in the store"),
        }
        std::fs::remove_file(log.join(name)).unwrap();
    }
    drop(Coordinator::open(root.path()).unwrap());
    // A link to a file others may write is refused, by the link's name.
    let open_file = root.path().join("world-writable");
    std::fs::write(&open_file, b"x").unwrap();
    std::fs::set_permissions(&open_file, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::os::unix::fs::symlink(&open_file, log.join("link")).unwrap();
    match Coordinator::open(root.path()) {
        Err(Error::InsecurePermissions { path, .. }) => assert_eq!(path, log.join("link")),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("opened through a link to a world-writable file"),
    }
}

#[tokio::test]
async fn init_by_someone_who_may_not_change_every_file_changes_nothing() {
    if !is_root() {
        eprintln!("not root: other users are not tried");
        return;
    }
    let (root, bin) = shared_root();
    busy_store(root.path(), StoreAccess::Private).await;
    init(root.path(), StoreAccess::GroupWrite, Some(NOBODY)).unwrap();
    let before = modes(&root.path().join(".maos"));
    let access = std::fs::read(store_dir(root.path()).join("access")).unwrap();
    // A member of the group, who owns none of the files, asks to make the store private.
    let root_arg = root.path().display().to_string();
    let o = run_as(NOBODY, NOBODY, &bin, &["init", "--root", &root_arg]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("nothing was changed"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(modes(&root.path().join(".maos")), before);
    assert_eq!(std::fs::read(store_dir(root.path()).join("access")).unwrap(), access);
    drop(Coordinator::open(root.path()).unwrap());
}

#[tokio::test]
async fn files_of_root_in_a_users_private_store_are_accepted() {
    if !is_root() {
        eprintln!("not root: other users are not tried");
        return;
    }
    let (root, bin) = shared_root();
    busy_store(root.path(), StoreAccess::Private).await;
    // The store becomes another user's; root then writes a snapshot into it.
    for (path, _) in modes(&root.path().join(".maos")) {
        std::os::unix::fs::chown(&path, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    Coordinator::open(root.path()).unwrap().snapshot().unwrap();
    let root_arg = root.path().display().to_string();
    let o = run_as(NOBODY, NOBODY, &bin, &["log", "status", "--root", &root_arg]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn two_users_creating_one_group_store_at_once_both_succeed() {
    if !is_root() {
        eprintln!("not root: other users are not tried");
        return;
    }
    let (dir, bin) = shared_root();
    for round in 0..10 {
        // A team's project directory: the group may write, set-group-ID keeps the group.
        let root = dir.path().join(format!("project-{round}"));
        std::fs::create_dir(&root).unwrap();
        std::os::unix::fs::chown(&root, None, Some(NOBODY)).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o2775)).unwrap();
        let root_arg = root.display().to_string();
        let args = ["init", "--group-shared=write", "--root", &root_arg];
        let users = [NOBODY, NOBODY - 1];
        let children: Vec<_> = users
            .iter()
            .map(|&uid| Command::new(&bin).args(args).uid(uid).gid(NOBODY).output())
            .map(|o| std::thread::spawn(move || o))
            .collect();
        for child in children {
            let o = child.join().unwrap().unwrap();
            assert!(o.status.success(), "round {round}: {}", String::from_utf8_lossy(&o.stderr));
        }
        for uid in users {
            let o = run_as(
                uid,
                NOBODY,
                &bin,
                &["log", "append", "--root", &root_arg, "--kind", "100", "--data", "1"],
            );
            assert!(o.status.success(), "round {round}, uid {uid}: {}", String::from_utf8_lossy(&o.stderr));
        }
        let leftovers: Vec<_> =
            std::fs::read_dir(root.join(".maos")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, ["coordination"], "round {round}");
    }
}

#[tokio::test]
async fn a_fifo_or_a_link_to_a_directory_in_the_store_is_refused_not_waited_on() {
    let root = project();
    busy_store(root.path(), StoreAccess::Private).await;
    let store = store_dir(root.path());
    let fifo = store.join("log").join("recovery.journal");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for args in [&["log", "status"][..], &["log", "verify"], &["store", "snapshot"]] {
        let o = Command::new(BIN).args(args).arg("--root").arg(root.path()).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("neither a regular file nor a directory"));
    }
    std::fs::remove_file(&fifo).unwrap();
    let elsewhere = project();
    std::os::unix::fs::symlink(elsewhere.path(), store.join("snapshots").join("more")).unwrap();
    let err = Coordinator::open(root.path()).err().expect("refused");
    assert!(err.to_string().contains("symbolic link to a directory"), "{err}");
}

#[tokio::test]
async fn a_store_other_users_wrote_cannot_be_made_private_and_nothing_changes() {
    if !is_root() {
        eprintln!("not root: other users are not tried");
        return;
    }
    let (root, bin) = shared_root();
    busy_store(root.path(), StoreAccess::Private).await;
    init(root.path(), StoreAccess::GroupWrite, Some(NOBODY)).unwrap();
    let root_arg = root.path().display().to_string();
    let o = run_as(NOBODY, NOBODY, &bin, &["store", "snapshot", "--root", &root_arg]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let before = modes(&root.path().join(".maos"));
    let err = init(root.path(), StoreAccess::Private, None).unwrap_err();
    assert!(err.to_string().contains("nothing was changed"), "{err}");
    assert_eq!(modes(&root.path().join(".maos")), before);
    // The same access again is no change at all, even with another user's files in the store.
    init(root.path(), StoreAccess::GroupWrite, Some(NOBODY)).unwrap();
    drop(Coordinator::open(root.path()).unwrap());
}

#[tokio::test]
async fn store_directories_killed_creators_left_are_removed_never_while_one_is_at_work() {
    let root = project();
    busy_store(root.path(), StoreAccess::Private).await;
    let maos = root.path().join(".maos");
    let dead = maos.join("coordination.dead01.new");
    let live = maos.join("coordination.dead02.new");
    let other = maos.join("coordination-notes");
    for dir in [&dead, &live, &other] {
        std::fs::create_dir(dir).unwrap();
        std::fs::write(dir.join("access"), b"private\n").unwrap();
    }
    // A creator at work holds a shared lock on `.maos` while it builds (here: this test).
    let held = std::fs::File::open(&maos).unwrap();
    // SAFETY: a valid, open file descriptor.
    assert_eq!(unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&held), libc::LOCK_SH) }, 0);
    drop(Coordinator::open(root.path()).unwrap());
    assert!(dead.exists() && live.exists(), "nothing is swept while a creator is at work");
    drop(held);
    drop(Coordinator::open(root.path()).unwrap());
    assert!(!dead.exists() && !live.exists(), "once no creator is at work, what they left is removed");
    assert!(other.exists(), "anything else stays");
}

#[tokio::test]
async fn init_refuses_what_no_mode_makes_safe_before_changing_anything() {
    let root = project();
    busy_store(root.path(), StoreAccess::Private).await;
    let store = store_dir(root.path());
    let fifo = store.join("cursors").join("x");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let before = modes(&root.path().join(".maos"));
    let err = init(root.path(), StoreAccess::GroupRead, None).unwrap_err();
    assert!(err.to_string().contains("neither a regular file nor a directory"), "{err}");
    assert_eq!(modes(&root.path().join(".maos")), before, "nothing changed");
    assert_eq!(maos_coord::fs::read_access(&store).unwrap(), Some(StoreAccess::Private));
    // A project root anyone may write to: refused before any store is made.
    let open_root = project();
    std::fs::set_permissions(open_root.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = init(open_root.path(), StoreAccess::Private, None).unwrap_err();
    assert!(err.to_string().contains("may be written by any user"), "{err}");
    assert!(!open_root.path().join(".maos").exists(), "nothing was created");
}

#[test]
fn concurrent_inits_asking_for_different_accesses_leave_one_consistent_store() {
    for round in 0..10 {
        let root = project();
        let inits: Vec<_> = [StoreAccess::Private, StoreAccess::GroupWrite, StoreAccess::GroupRead]
            .into_iter()
            .map(|access| {
                let root = root.path().to_owned();
                std::thread::spawn(move || init(&root, access, None).map(|done| done.access))
            })
            .collect();
        let asked: Vec<_> = inits.into_iter().map(|t| t.join().unwrap()).collect();
        // Each either did what it asked or failed with an error; the store is whole either way.
        let access = maos_coord::fs::read_access(&store_dir(root.path())).unwrap().unwrap();
        assert!(asked.iter().any(|a| matches!(a, Ok(x) if *x == access)), "round {round}: {asked:?}");
        drop(Coordinator::open(root.path()).unwrap_or_else(|e| panic!("round {round}: {e}")));
        assert_modes_of(root.path(), access);
    }
}

/// Every directory and file of the store (and `.maos`) has the modes of `access`.
fn assert_modes_of(root: &Path, access: StoreAccess) {
    for (path, mode) in modes(&root.join(".maos")) {
        let want = if path.is_dir() { access.dir_mode() } else { access.file_mode() };
        assert_eq!(mode, want, "{} has mode {mode:o}, not {want:o} ({access})", path.display());
    }
}
