//! The command line.

use std::path::Path;
use std::time::Duration;

use super::super::flags::{FailMode, Flags};

#[test]
fn flags_parse_like_etcd() {
    let args = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let f = Flags::parse(args(
        "--name p --initial-cluster=e=http://127.0.0.1:1,p=http://127.0.0.1:2 \
         -initial-cluster-token tok --no-append-ack --stats-every 0.5",
    ))
    .unwrap();
    assert_eq!(f.name, "p");
    assert_eq!(f.initial_cluster_token, "tok");
    assert!(f.no_append_ack);
    assert_eq!(f.stats_every, Some(Duration::from_millis(500)));
    let (cluster, me, addrs) = f.resolve().unwrap();
    assert_eq!(cluster.members.len(), 2);
    assert_eq!(me.name, "p");
    assert_eq!(addrs, ["127.0.0.1:2"]);

    assert!(Flags::parse(args("--name p")).is_err(), "no cluster");
    assert!(Flags::parse(args("--bogus 1 --initial-cluster a=http://h:1")).is_err());
    assert!(Flags::parse(args("--initial-cluster a=http://h:1 --stats-every x")).is_err());
    let no_me = Flags::parse(args("--name z --initial-cluster a=http://h:1")).unwrap();
    assert!(no_me.resolve().is_err());
}

#[test]
fn flags_for_following_and_failing() {
    let args = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let base = "--initial-cluster a=http://127.0.0.1:1";
    let f = Flags::parse(args(base)).unwrap();
    assert_eq!(
        (f.data_dir.as_deref(), f.held_down(), f.events),
        (None, false, false)
    );
    assert_eq!((f.fail_snapshots, f.fail_mode), (0, FailMode::Status500));

    let f = Flags::parse(args(&format!(
        "{base} --data-dir /tmp/b --down-until-signal --events --fail-snapshots 3 --fail-mode=cut"
    )))
    .unwrap();
    assert_eq!(f.data_dir.as_deref(), Some(Path::new("/tmp/b")));
    assert!(f.down_until_signal && f.held_down() && f.events);
    assert_eq!((f.fail_snapshots, f.fail_mode), (3, FailMode::Cut));
    assert_eq!(FailMode::Cut.name(), "cut");

    let f = Flags::parse(args(&format!("{base} --start-delay 1.5"))).unwrap();
    assert_eq!(f.start_delay, Some(Duration::from_millis(1500)));
    assert!(f.held_down() && !f.down_until_signal);

    for bad in [
        "--fail-snapshots 3",
        "--data-dir /x --fail-snapshots x",
        "--data-dir /x --fail-mode 404",
        "--start-delay 0",
        "--data-dir",
    ] {
        assert!(
            Flags::parse(args(&format!("{base} {bad}"))).is_err(),
            "{bad}"
        );
    }
}
