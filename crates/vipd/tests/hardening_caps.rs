//! Least privilege: vipd runs as `nobody` with only CAP_NET_RAW and CAP_NET_ADMIN (ambient
//! capabilities through util-linux `setpriv`, as systemd's AmbientCapabilities= gives them)
//! and still elects, claims the VIP, fails over and releases the VIP on SIGTERM. One agent
//! gets a control socket in a directory it cannot write (it must run anyway, without the
//! socket); the other a directory it owns (vipctl as root works). Needs root
//! (scripts/test.sh).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{ChildGuard, Lan, TempDir};

const NOBODY: u32 = 65534;
/// CAP_NET_ADMIN (12) | CAP_NET_RAW (13).
const NET_CAPS: u64 = (1 << 12) | (1 << 13);

fn config(dir: &Path, sock: &Path, priority: u8, vip: IpAddr) -> PathBuf {
    let path = dir.join(format!("p{priority}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"[global]
control_socket = "{}"
garp_master_delay = "0s"

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 61
priority = {priority}
advert_interval = "100ms"
vips = ["{vip}/24"]
"#,
            sock.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    path
}

fn spawn_unprivileged(lan: &Lan, i: usize, vipd: &Path, cfg: &Path) -> ChildGuard {
    lan.host(i)
        .spawn(&[
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--inh-caps=-all,+net_raw,+net_admin",
            "--ambient-caps=-all,+net_raw,+net_admin",
            "--bounding-set=-all,+net_raw,+net_admin",
            vipd.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
        ])
        .unwrap()
}

/// (uid, effective caps, bounding set) of a running process.
fn creds(pid: u32) -> (u32, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
            .to_owned()
    };
    let uid = field("Uid:")
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let hex = |s: String| u64::from_str_radix(&s, 16).unwrap();
    (uid, hex(field("CapEff:")), hex(field("CapBnd:")))
}

fn holders(lan: &Lan, vip: IpAddr) -> Vec<usize> {
    (0..2)
        .filter(|&i| lan.host(i).has_addr("eth0", vip).unwrap())
        .collect()
}

fn vipctl_state(sock: &Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vipctl"))
        .arg("--socket")
        .arg(sock)
        .args(["status", "--json"])
        .output()
        .unwrap();
    if !out.status.success() {
        return format!("vipctl failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let s: vipd::ctl::Status = serde_json::from_slice(&out.stdout).unwrap();
    s.instances[0].state.clone()
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn runs_as_nobody_with_net_raw_and_net_admin_only() {
    let mut lan = Lan::new("caps", 2).unwrap();
    lan.add_client().unwrap();
    let dir = TempDir::new("caps");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // nobody may not be able to reach target/ (home directories, 0700 parents): run a copy.
    let vipd = dir.path().join("vipd");
    std::fs::copy(env!("CARGO_BIN_EXE_vipd"), &vipd).unwrap();
    std::fs::set_permissions(&vipd, std::fs::Permissions::from_mode(0o755)).unwrap();
    // h0: socket in a root-owned directory nobody cannot write.
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sock0 = locked.join("vipd.sock");
    // h1: socket in a directory owned by nobody, as systemd's RuntimeDirectory= makes it.
    let run1 = dir.path().join("run1");
    std::fs::create_dir(&run1).unwrap();
    std::fs::set_permissions(&run1, std::fs::Permissions::from_mode(0o750)).unwrap();
    nix::unistd::chown(
        &run1,
        Some(nix::unistd::Uid::from_raw(NOBODY)),
        Some(nix::unistd::Gid::from_raw(NOBODY)),
    )
    .unwrap();
    let sock1 = run1.join("vipd.sock");
    let vip = lan.vip(false);
    let cfg0 = config(dir.path(), &sock0, 150, vip);
    let cfg1 = config(dir.path(), &sock1, 100, vip);

    let mut c1 = spawn_unprivileged(&lan, 1, &vipd, &cfg1);
    common::wait_until(Duration::from_secs(3), || sock1.exists())
        .unwrap_or_else(|| panic!("h1: no control socket\n{}", c1.log()));
    let mut c0 = spawn_unprivileged(&lan, 0, &vipd, &cfg0);
    let logs = |c0: &ChildGuard, c1: &ChildGuard| format!("h0:\n{}\nh1:\n{}", c0.log(), c1.log());

    // Election: h0 (150) claims the VIP through netlink, the client reaches it.
    common::wait_until(Duration::from_secs(5), || holders(&lan, vip) == vec![0])
        .unwrap_or_else(|| panic!("h0 never took the VIP alone\n{}", logs(&c0, &c1)));
    assert!(
        lan.client(0)
            .ping_timeout(vip, Duration::from_secs(2))
            .unwrap(),
        "client cannot reach the VIP"
    );
    // Both really run as nobody with exactly the two capabilities.
    for c in [&c0, &c1] {
        let (uid, eff, bnd) = creds(c.pid());
        assert_eq!(uid, NOBODY, "{}", c.description());
        assert_eq!(eff, NET_CAPS, "effective capabilities {eff:#x}");
        assert_eq!(bnd, NET_CAPS, "bounding set {bnd:#x}");
    }

    // h0 had no place for its control socket: it said so and runs anyway.
    assert!(!sock0.exists());
    assert!(
        c0.log().contains("no control socket"),
        "h0 did not report the missing control socket\n{}",
        c0.log()
    );
    // h1's socket: owned by nobody, mode 0600, and root's vipctl talks to it.
    let meta = std::fs::metadata(&sock1).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.uid(), NOBODY);
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(vipctl_state(&sock1), "BACKUP");

    // Failover: SIGTERM h0 -> priority 0, VIP released (netlink as nobody), h1 takes over.
    c0.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    let st = c0.wait_timeout(Duration::from_secs(2)).unwrap();
    assert!(
        st.is_some_and(|s| s.success()),
        "h0 did not exit 0 on SIGTERM: {st:?}\n{}",
        c0.log()
    );
    common::wait_until(Duration::from_secs(3), || holders(&lan, vip) == vec![1])
        .unwrap_or_else(|| panic!("h1 did not take over alone\n{}", logs(&c0, &c1)));
    assert_eq!(vipctl_state(&sock1), "MASTER");

    // A crash of the unprivileged master is covered too: restart h0 (preempts back), then
    // SIGKILL it and h1 takes over again after Master_Down_Interval.
    let mut c0 = spawn_unprivileged(&lan, 0, &vipd, &cfg0);
    common::wait_until(Duration::from_secs(5), || holders(&lan, vip) == vec![0])
        .unwrap_or_else(|| panic!("h0 did not preempt back\n{}", logs(&c0, &c1)));
    c0.kill().unwrap();
    common::wait_until(Duration::from_secs(3), || {
        lan.host(1).has_addr("eth0", vip).unwrap()
    })
    .unwrap_or_else(|| panic!("h1 did not take over after the crash\n{}", logs(&c0, &c1)));
    // Tidy the VIP the SIGKILL left on h0.
    let _ = lan
        .host(0)
        .exec(&["ip", "addr", "del", &format!("{vip}/24"), "dev", "eth0"]);

    // Clean stop of the last one releases the VIP; the socket file goes away.
    c1.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    let st = c1.wait_timeout(Duration::from_secs(2)).unwrap();
    assert!(
        st.is_some_and(|s| s.success()),
        "h1 did not exit 0 on SIGTERM: {st:?}\n{}",
        c1.log()
    );
    assert!(holders(&lan, vip).is_empty(), "VIP left behind on SIGTERM");
    assert!(!sock1.exists(), "control socket left behind");
    let log = c1.log();
    for bad in ["Operation not permitted", "Permission denied", "ERROR"] {
        assert!(!log.contains(bad), "h1 logged {bad:?}:\n{log}");
    }
}

/// CAP_SETGID (6) | CAP_SETUID (7).
const SETID_CAPS: u64 = (1 << 6) | (1 << 7);
/// `daemon`, the user scripts run as in these tests (any user other than vipd's).
const DAEMON: u32 = 1;

/// A cgroup delegated to `nobody`, as systemd's `Delegate=yes` makes one for the unit;
/// everything left in it is killed and it is removed on drop. `.1`: its path below the
/// cgroup2 root.
struct Delegated(PathBuf, String);

impl Delegated {
    fn new(tag: &str) -> Delegated {
        let own = vipd::track::cgroup::own_dir().expect("a cgroup2 hierarchy");
        let dir = own.join(format!("test-delegated-{tag}-{}", std::process::id()));
        // Its path below the cgroup2 root, for a namespace that mounts the root elsewhere.
        let rel = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let rel = rel.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
        let below = Path::new(rel.trim().trim_start_matches('/'))
            .join(format!("test-delegated-{tag}-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let nobody = Some(nix::unistd::Uid::from_raw(NOBODY));
        for f in [
            "",
            "cgroup.procs",
            "cgroup.threads",
            "cgroup.subtree_control",
        ] {
            nix::unistd::chown(&dir.join(f), nobody, None).unwrap();
        }
        Delegated(dir, below.to_string_lossy().into_owned())
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        // Script cgroups vipd left (if any), then ours; a killed cgroup can be removed only
        // once the kernel has let go of its processes: retry for up to 2 s each.
        let remove = |dir: &Path| {
            let _ = std::fs::write(dir.join("cgroup.kill"), "1");
            for _ in 0..100 {
                if std::fs::remove_dir(dir).is_ok() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        if let Ok(entries) = std::fs::read_dir(&self.0) {
            for e in entries.flatten().filter(|e| e.path().is_dir()) {
                remove(&e.path());
            }
        }
        remove(&self.0);
    }
}

/// Processes whose command line contains `marker`.
fn running(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .contains(marker)
            })
        })
        .count()
}

/// The shipped unit's identity model: vipd runs as its own unprivileged user with
/// CAP_NET_RAW, CAP_NET_ADMIN, CAP_SETUID and CAP_SETGID, in a cgroup delegated to it, and
/// runs scripts as another user (`script_user`). A script gets no capability, cannot stop
/// vipd (`kill -STOP $PPID`, or vipd found by name), and what it starts with `setsid` does
/// not outlive it. A script_user vipd cannot honour (its own user; no CAP_SETUID) is a
/// configuration error.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn scripts_never_share_vipds_identity() {
    let lan = Lan::new("capscript", 1).unwrap();
    let dir = TempDir::new("capscript");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let vipd = dir.path().join("vipd");
    std::fs::copy(env!("CARGO_BIN_EXE_vipd"), &vipd).unwrap();
    std::fs::set_permissions(&vipd, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    nix::unistd::chown(&run, Some(nix::unistd::Uid::from_raw(NOBODY)), None).unwrap();
    // Where the scripts (as `daemon`) write what they saw.
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755)).unwrap();
    nix::unistd::chown(&out, Some(nix::unistd::Uid::from_raw(DAEMON)), None).unwrap();
    let mark = format!("{}.{}", 50_000 + std::process::id() % 10_000, 7);
    let vip = lan.vip(false);
    let cfg = config(dir.path(), &run.join("vipd.sock"), 150, vip);
    let base = std::fs::read_to_string(&cfg).unwrap();
    let with_scripts = |user: &str| {
        base.replace(
            "[[instance]]",
            &format!(
                r#"script_user = "{user}"

[[track_script]]
name = "caps"
shell = "grep -E '^(Uid|CapEff|CapAmb|CapPrm)' /proc/self/status > {out}/caps"
interval = "200ms"

[[track_script]]
name = "stop"
shell = "kill -STOP $PPID 2>/dev/null; echo $? > {out}/ppid; pkill -STOP -x vipd; echo $? > {out}/byname; true"
interval = "300ms"

[[track_script]]
name = "daemons"
shell = "setsid sleep {mark} & sleep {mark} & true"
interval = "200ms"

[[instance]]"#,
                out = out.display()
            ),
        ) + "track_scripts = [\"caps\", \"stop\", \"daemons\"]\n"
    };
    std::fs::write(&cfg, with_scripts("daemon")).unwrap();
    // script_user is global: move it into [global].
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replacen("script_user", "#", 1);
    let text = text.replacen("[global]\n", "[global]\nscript_user = \"daemon\"\n", 1);
    std::fs::write(&cfg, &text).unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();

    let cg = Delegated::new("scripts");
    let setpriv = |caps: &str, args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            &format!("--inh-caps=-all,{caps}"),
            &format!("--ambient-caps=-all,{caps}"),
            &format!("--bounding-set=-all,{caps}"),
            vipd.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(args.iter().map(|s| s.to_string()));
        v
    };
    let unit_caps = "+net_raw,+net_admin,+setuid,+setgid";
    // `ip netns exec` gives the namespace a sysfs of its own, without cgroup mounts: mount the
    // cgroup2 hierarchy there (systemd's services see it at /sys/fs/cgroup), join the
    // delegated cgroup, then become the unit's user.
    let cmd = format!(
        "mount -t cgroup2 cgroup2 /sys/fs/cgroup && echo $$ > /sys/fs/cgroup/{}/cgroup.procs && exec {}",
        cg.1,
        setpriv(unit_caps, &["--config", cfg.to_str().unwrap()]).join(" ")
    );
    let mut c = lan.host(0).spawn(&["sh", "-c", &cmd]).unwrap();
    common::wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(out.join("caps")).is_ok_and(|s| s.lines().count() == 4)
            && out.join("ppid").exists()
            && out.join("byname").exists()
    })
    .unwrap_or_else(|| panic!("the scripts never ran\n{}", c.log()));

    // The script ran as `daemon` without any capability.
    let caps = std::fs::read_to_string(out.join("caps")).unwrap();
    for line in caps.lines() {
        let v = line.split_whitespace().nth(1).unwrap();
        if line.starts_with("Uid:") {
            assert_eq!(v, DAEMON.to_string(), "{caps}");
        } else {
            assert_eq!(
                u64::from_str_radix(v, 16).unwrap(),
                0,
                "a script has capabilities: {caps}"
            );
        }
    }
    // Its attempts to stop vipd failed, and vipd runs on, master, for 2 s of such attempts.
    for _ in 0..10 {
        let state = std::fs::read_to_string(format!("/proc/{}/status", c.pid()))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("State:").map(str::trim).map(str::to_owned))
            .unwrap();
        assert!(
            !state.starts_with('T'),
            "a script stopped vipd: {state}\n{}",
            c.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_ne!(
        std::fs::read_to_string(out.join("ppid")).unwrap().trim(),
        "0"
    );
    assert_ne!(
        std::fs::read_to_string(out.join("byname")).unwrap().trim(),
        "0"
    );
    assert_eq!(vipctl_state(&run.join("vipd.sock")), "MASTER");
    // vipd itself: its user and its four capabilities.
    let (uid, eff, _) = creds(c.pid());
    assert_eq!(uid, NOBODY);
    assert_eq!(eff, NET_CAPS | SETID_CAPS);
    // Daemons started by a script do not accumulate: each run's are killed with it (the
    // script's cgroup, in the delegated one).
    assert!(
        c.log().contains("scripts run in cgroups of their own"),
        "{}",
        c.log()
    );
    for _ in 0..5 {
        let n = running(&format!("sleep {mark}"));
        assert!(n <= 2, "{n} leftover daemons of the scripts\n{}", c.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    c.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    let st = c.wait_timeout(Duration::from_secs(3)).unwrap();
    assert!(st.is_some_and(|s| s.success()), "{st:?}\n{}", c.log());
    common::wait_until(Duration::from_secs(2), || {
        running(&format!("sleep {mark}")) == 0
    })
    .unwrap_or_else(|| panic!("script daemons outlived vipd\n{}", c.log()));

    // A script_user vipd cannot honour is a configuration error.
    let check = |caps: &str, user: &str| {
        let bad = dir.path().join(format!("bad-{user}.toml"));
        std::fs::write(
            &bad,
            text.replace(
                "script_user = \"daemon\"",
                &format!("script_user = \"{user}\""),
            ),
        )
        .unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o644)).unwrap();
        let argv = setpriv(caps, &["--check", "--config", bad.to_str().unwrap()]);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        lan.host(0).exec(&argv).unwrap()
    };
    let o = check(unit_caps, "nobody");
    let err = String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("which is vipd's own user"), "{err}");
    let o = check("+net_raw,+net_admin", "daemon");
    let err = String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("lacks CAP_SETUID and CAP_SETGID"), "{err}");
    let o = check(unit_caps, "daemon");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    drop(cg);
}
