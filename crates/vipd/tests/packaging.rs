//! The Debian package: installs the .deb built by scripts/package.sh (path in `VIPD_DEB`;
//! scripts/test.sh builds it and sets it), checks its files and unit, runs the INSTALLED
//! /usr/sbin/vipd in a network namespace (it elects, tells systemd READY=1 only once its
//! control socket is up, reloads on SIGHUP, stops on SIGTERM), queries it with the installed
//! /usr/bin/vipctl, upgrades the package to a later version (`VIPD_DEB_NEXT`) while the
//! installed vipd is master of a pair (nothing moves), then purges the package. Ignored unless asked for (`--include-ignored`, as
//! scripts/test.sh does); fails without `VIPD_DEB`. Needs root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Lan, TempDir};

const VIPD: &str = "/usr/sbin/vipd";
const VIPCTL: &str = "/usr/bin/vipctl";

fn run(cmd: &[&str]) -> std::process::Output {
    Command::new(cmd[0]).args(&cmd[1..]).output().unwrap()
}

fn run_ok(cmd: &[&str]) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "`{}` failed: {}\n{}",
        cmd.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Purges the package on drop (also when an assertion fails half-way).
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = run(&["dpkg", "--purge", "vipd"]);
    }
}

fn unit_path() -> PathBuf {
    [
        "/lib/systemd/system/vipd.service",
        "/usr/lib/systemd/system/vipd.service",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("vipd.service installed")
}

/// `Key=value` lines of a unit file (last one wins is not needed: keys are unique here).
fn unit_value(unit: &str, key: &str) -> Option<String> {
    unit.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_owned))
}

fn check_files_and_unit() {
    for f in [
        VIPD,
        VIPCTL,
        "/usr/share/doc/vipd/README.md",
        "/usr/share/doc/vipd/docs/security.md",
        "/usr/share/doc/vipd/docs/config.md",
        "/usr/share/doc/vipd/changelog.Debian.gz",
        "/usr/share/doc/vipd/examples/lb1.toml",
        "/usr/share/doc/vipd/examples/vipd.service.d/control-group.conf",
        "/usr/share/doc/vipd/copyright",
        "/usr/share/doc/vipd/examples/vipd.toml",
        "/usr/share/doc/vipd/examples/two-lbs-master.toml",
        "/usr/share/vipd/vipd.schema.json",
        "/usr/share/man/man8/vipd.8.gz",
        "/usr/share/man/man8/vipctl.8.gz",
        "/usr/share/man/man8/vipctl-status.8.gz",
        "/usr/share/man/man5/vipd.toml.5.gz",
        "/usr/share/bash-completion/completions/vipd",
        "/usr/share/bash-completion/completions/vipctl",
        "/usr/share/zsh/vendor-completions/_vipctl",
        "/usr/share/fish/vendor_completions.d/vipctl.fish",
    ] {
        assert!(Path::new(f).exists(), "{f} not installed");
    }
    // The man pages render (man -l: the installed files, as `man vipd` would show them).
    for (page, must) in [
        ("/usr/share/man/man8/vipd.8.gz", "--check"),
        ("/usr/share/man/man8/vipctl.8.gz", "vipctl-status"),
        ("/usr/share/man/man5/vipd.toml.5.gz", "unicast_min_ttl"),
    ] {
        let out = std::process::Command::new("man")
            .args(["-l", page])
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "man -l {page}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(must), "man -l {page} lacks {must}:\n{text}");
    }
    // Every relative link of the installed README and docs leads to an installed file.
    let mut docs: Vec<PathBuf> = vec![PathBuf::from("/usr/share/doc/vipd/README.md")];
    for e in std::fs::read_dir("/usr/share/doc/vipd/docs").unwrap() {
        docs.push(e.unwrap().path());
    }
    for doc in &docs {
        let text = std::fs::read_to_string(doc).unwrap();
        for target in text.split("](").skip(1).filter_map(|r| r.split(')').next()) {
            let target = target.split('#').next().unwrap_or("");
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let path = doc.parent().unwrap().join(target);
            assert!(
                path.exists(),
                "{}: link to {target} leads nowhere once installed",
                doc.display()
            );
        }
    }
    // The bash completion knows the subcommands.
    let bash = std::fs::read_to_string("/usr/share/bash-completion/completions/vipctl").unwrap();
    assert!(bash.contains("import-keepalived") && bash.contains("maintenance"));
    // The shipped schema is the one the installed binary prints.
    let printed = run_ok(&[VIPD, "--print-schema"]);
    let shipped = std::fs::read_to_string("/usr/share/vipd/vipd.schema.json").unwrap();
    assert_eq!(
        printed.trim_end(),
        shipped.trim_end(),
        "shipped schema differs"
    );
    assert!(
        !Path::new("/etc/vipd/vipd.toml").exists(),
        "the package must not ship an active configuration"
    );
    let version = run_ok(&[VIPD, "--version"]);
    assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
    // Every shipped example is valid for the installed binary.
    for e in std::fs::read_dir("/usr/share/doc/vipd/examples").unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        run_ok(&[VIPD, "--check", "--config", p.to_str().unwrap()]);
    }
    let unit_file = unit_path();
    let unit = std::fs::read_to_string(&unit_file).unwrap();
    assert_eq!(unit_value(&unit, "Type").as_deref(), Some("notify"));
    assert_eq!(
        unit_value(&unit, "ExecStart").as_deref(),
        Some("/usr/sbin/vipd --config /etc/vipd/vipd.toml")
    );
    assert!(
        unit_value(&unit, "ExecReload")
            .unwrap()
            .contains("-HUP $MAINPID")
    );
    assert_eq!(
        unit_value(&unit, "AmbientCapabilities").as_deref(),
        Some("CAP_NET_RAW CAP_NET_ADMIN CAP_SETUID CAP_SETGID")
    );
    assert_eq!(
        unit_value(&unit, "CapabilityBoundingSet").as_deref(),
        Some("CAP_NET_RAW CAP_NET_ADMIN CAP_SETUID CAP_SETGID")
    );
    // Scripts in cgroups of their own (docs/security.md), a watchdog, bounded resources.
    assert_eq!(unit_value(&unit, "Delegate").as_deref(), Some("yes"));
    assert_eq!(unit_value(&unit, "ProtectControlGroups"), None);
    assert_eq!(unit_value(&unit, "WatchdogSec").as_deref(), Some("10s"));
    assert_eq!(unit_value(&unit, "LimitNOFILE").as_deref(), Some("1024"));
    assert!(unit_value(&unit, "TasksMax").is_some());
    assert!(unit_value(&unit, "MemoryMax").is_some());
    assert_eq!(
        unit_value(&unit, "ConditionPathExists").as_deref(),
        Some("/etc/vipd/vipd.toml")
    );
    if Path::new("/usr/bin/systemd-analyze").exists() {
        let out = run(&["systemd-analyze", "verify", unit_file.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !err.contains("vipd.service"),
            "systemd-analyze verify: {err}"
        );
        eprintln!("systemd-analyze verify: ok");
        // The exposure docs/security.md reports, and never worse than before (2.7).
        let out = run(&[
            "systemd-analyze",
            "security",
            "--offline=true",
            unit_file.to_str().unwrap(),
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        let score: f64 = text
            .lines()
            .find_map(|l| l.split("Overall exposure level for vipd.service: ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no exposure level in: {text}"));
        eprintln!("systemd-analyze security: {score}");
        assert!(score < 2.7, "exposure {score}");
        let doc = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/security.md"),
        )
        .unwrap();
        assert!(
            doc.contains(&format!("rates the unit {score:.1}")),
            "docs/security.md must report the unit's exposure {score:.1}"
        );
    } else {
        eprintln!("systemd-analyze not installed: unit checked by parsing only");
    }
}

/// Waits for a datagram on the notify socket; returns its text.
fn notify_wait(sock: &UnixDatagram, timeout: Duration) -> Option<String> {
    sock.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 4096];
    sock.recv(&mut buf)
        .ok()
        .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn run_installed_agent(dir: &TempDir) {
    let lan = Lan::new("pkg", 1).unwrap();
    let vip = lan.vip(false).to_string();
    let sock = dir.path().join("ctl/vipd.sock");
    let cfg = dir.path().join("vipd.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[global]
control_socket = "{}"

[[instance]]
name = "VI_PKG"
interface = "eth0"
vrid = 71
priority = 150
advert_interval = "100ms"
vips = ["{vip}/24"]
"#,
            sock.display()
        ),
    )
    .unwrap();
    run_ok(&[VIPD, "--check", "--config", cfg.to_str().unwrap()]);
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let env = format!("NOTIFY_SOCKET={}", notify_path.display());
    let t0 = Instant::now();
    let mut child = lan
        .host(0)
        .spawn(&["env", &env, VIPD, "--config", cfg.to_str().unwrap()])
        .unwrap();
    // READY=1 comes once the control socket is up.
    let msg = notify_wait(&notify, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no sd_notify message\n{}", child.log()));
    assert!(msg.contains("READY=1"), "first notification: {msg:?}");
    assert!(sock.exists(), "READY=1 before the control socket existed");
    eprintln!("installed vipd: READY=1 after {:?}", t0.elapsed());
    let status = |sock: &Path| {
        let out = run(&[
            VIPCTL,
            "--socket",
            sock.to_str().unwrap(),
            "status",
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<vipd::ctl::Status>(&out.stdout).unwrap()
    };
    let vip_ip: std::net::IpAddr = vip.parse().unwrap();
    common::wait_until(Duration::from_secs(3), || {
        status(&sock).instances[0].state == "MASTER"
            && lan.host(0).has_addr("eth0", vip_ip).unwrap()
    })
    .unwrap_or_else(|| panic!("installed vipd never became master\n{}", child.log()));
    let table = run_ok(&[VIPCTL, "--socket", sock.to_str().unwrap(), "status"]);
    assert!(table.contains("MASTER"), "{table}");
    // SIGHUP: RELOADING=1, then READY=1 again.
    child.signal(nix::sys::signal::Signal::SIGHUP).unwrap();
    let mut seen = String::new();
    while !seen.contains("READY=1") {
        match notify_wait(&notify, Duration::from_secs(3)) {
            Some(m) => seen.push_str(&format!("{m};")),
            None => panic!("no READY=1 after SIGHUP, got {seen:?}\n{}", child.log()),
        }
    }
    assert!(seen.contains("RELOADING=1"), "{seen:?}");
    assert_eq!(status(&sock).instances[0].state, "MASTER");
    // SIGTERM: STOPPING=1, VIP released, exit 0, socket removed.
    child.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    let st = child.wait_timeout(Duration::from_secs(2)).unwrap();
    assert!(
        st.is_some_and(|s| s.success()),
        "installed vipd: {st:?}\n{}",
        child.log()
    );
    let stopping = notify_wait(&notify, Duration::from_secs(1)).unwrap_or_default();
    assert!(stopping.contains("STOPPING=1"), "{stopping:?}");
    assert!(!lan.host(0).has_addr("eth0", vip_ip).unwrap());
    assert!(!sock.exists());
}

/// `dpkg -i` of a later version (`next`) while the installed vipd is the master of a pair and
/// a client pings the VIP every 20 ms: the postinst's `vipctl upgrade` re-executes the new
/// /usr/sbin/vipd in the same process. The backup never leaves BACKUP, no ping is lost, and
/// the VIP never moves (netlink watched on both hosts).
fn upgrade_installed_master(dir: &TempDir, next: &Path) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut lan = Lan::new("pkgup", 2).unwrap();
    lan.add_client().unwrap();
    let vip = lan.vip(false);
    let sock = |i: usize| dir.path().join(format!("h{i}.sock"));
    // The installed master tells "systemd" (this socket) what it does.
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let env = format!("NOTIFY_SOCKET={}", notify_path.display());
    let mut nodes = Vec::new();
    for (i, (binary, priority)) in [(VIPD, 150), (env!("CARGO_BIN_EXE_vipd"), 100)]
        .into_iter()
        .enumerate()
    {
        let cfg = dir.path().join(format!("h{i}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[global]\ncontrol_socket = \"{}\"\n\n[[instance]]\nname = \"VI_UP\"\ninterface = \"eth0\"\n\
                 vrid = 72\npriority = {priority}\nadvert_interval = \"100ms\"\nvips = [\"{vip}/24\"]\n",
                sock(i).display()
            ),
        )
        .unwrap();
        let cfg = cfg.to_str().unwrap();
        nodes.push(if i == 0 {
            lan.host(i)
                .spawn(&["env", &env, binary, "--config", cfg])
                .unwrap()
        } else {
            lan.host(i).spawn(&[binary, "--config", cfg]).unwrap()
        });
    }
    let status = |i: usize| {
        let out = run(&[
            VIPCTL,
            "--socket",
            sock(i).to_str().unwrap(),
            "status",
            "--json",
        ]);
        serde_json::from_slice::<vipd::ctl::Status>(&out.stdout).ok()
    };
    let state = |i: usize| status(i).map(|s| s.instances[0].state.clone());
    common::wait_until(Duration::from_secs(5), || {
        state(0).as_deref() == Some("MASTER") && state(1).as_deref() == Some("BACKUP")
    })
    .unwrap_or_else(|| panic!("pair never settled\n{}\n{}", nodes[0].log(), nodes[1].log()));
    std::thread::sleep(Duration::from_millis(500));
    while notify_wait(&notify, Duration::from_millis(50)).is_some() {}
    let (before, backup) = (status(0).unwrap(), status(1).unwrap());
    let mut watch: Vec<vipd_lab::watch::AddrWatcher> = (0..2)
        .map(|i| vipd_lab::watch::AddrWatcher::start(lan.host(i).name()).unwrap())
        .collect();
    let t0 = Instant::now();
    let stop = AtomicBool::new(false);
    let (installed, (sent, lost)) = std::thread::scope(|s| {
        let pinger = s.spawn(|| common::ping_loop(&lan, vip, &stop));
        std::thread::sleep(Duration::from_millis(300));
        let out = Command::new("dpkg")
            .arg("-i")
            .arg(next)
            .env("VIPD_CONTROL_SOCKET", sock(0))
            .output()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        (out, pinger.join().unwrap())
    });
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&installed.stdout),
        String::from_utf8_lossy(&installed.stderr)
    );
    assert!(
        installed.status.success(),
        "dpkg -i {}: {said}",
        next.display()
    );
    assert!(
        said.contains("upgraded in place"),
        "postinst: {said}\n{}",
        nodes[0].log()
    );
    // Same main process for systemd: RELOADING=1 from the old binary, READY=1 from the new.
    let mut seen = String::new();
    while let Some(m) = notify_wait(&notify, Duration::from_millis(500)) {
        seen.push_str(&format!("{m};"));
    }
    let (reloading, ready) = (seen.find("RELOADING=1"), seen.rfind("READY=1"));
    assert!(
        reloading.is_some() && ready > reloading,
        "notifications around the upgrade: {seen:?}"
    );
    let version = run_ok(&["dpkg-query", "-W", "-f=${Version}", "vipd"]);
    assert!(version.ends_with("+next"), "installed {version}");
    let (after, backup_after) = (status(0).unwrap(), status(1).unwrap());
    assert_eq!(after.pid, before.pid, "the PID stays");
    assert_eq!(after.upgrade.as_ref().map(|u| u.masters), Some(1));
    assert_eq!(after.instances[0].state, "MASTER");
    assert_eq!(
        backup_after.instances[0].counters.transitions,
        backup.instances[0].counters.transitions,
        "the backup left BACKUP\n{}",
        nodes[1].log()
    );
    for (i, w) in watch.iter_mut().enumerate() {
        let moved = w.events().iter().any(|(at, ev)| {
            *at >= t0
                && matches!(ev, vipd::net::netlink::NetEvent::AddrAdded { addr, .. }
                    | vipd::net::netlink::NetEvent::AddrRemoved { addr, .. } if *addr == vip)
        });
        assert!(
            !moved,
            "the VIP moved on host {i} during the package upgrade"
        );
    }
    assert!(
        sent > 10 && lost == 0,
        "pings lost during the package upgrade: {lost} of {sent}"
    );
    for n in &nodes {
        n.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    }
    for n in &mut nodes {
        let _ = n.wait_timeout(Duration::from_secs(2));
    }
}

#[test]
#[ignore = "needs root and the .deb: scripts/test.sh builds it, sets VIPD_DEB and runs this"]
fn debian_package_installs_runs_and_purges() {
    let Some(deb) = std::env::var_os("VIPD_DEB") else {
        panic!("set VIPD_DEB to the .deb of scripts/package.sh (scripts/test.sh does)");
    };
    common::require_root();
    let deb = PathBuf::from(deb);
    assert!(deb.exists(), "{} does not exist", deb.display());
    let info = run_ok(&["dpkg-deb", "--info", deb.to_str().unwrap()]);
    eprintln!("{info}");
    assert!(info.contains("Package: vipd"));
    assert!(info.contains("Section: net"));
    let was = run(&["dpkg-query", "-W", "-f=${Status}", "vipd"]);
    assert!(
        !String::from_utf8_lossy(&was.stdout).contains("installed"),
        "vipd is already installed on this machine; the test would purge it"
    );
    let guard = Installed;
    run_ok(&["dpkg", "-i", deb.to_str().unwrap()]);
    let listed = run_ok(&["dpkg", "-L", "vipd"]);
    eprintln!("installed files:\n{listed}");
    check_files_and_unit();
    // Enabled on install (deb-systemd-helper works without a running systemd).
    let wants = Path::new("/etc/systemd/system/multi-user.target.wants/vipd.service");
    assert!(wants.exists(), "the unit was not enabled on install");
    let dir = TempDir::new("pkg");
    run_installed_agent(&dir);
    // An upgrade to a later version while the installed vipd is master moves nothing.
    let next = std::env::var_os("VIPD_DEB_NEXT").map(PathBuf::from).unwrap_or_else(|| {
        panic!("set VIPD_DEB_NEXT to the later .deb of scripts/package.sh --dev-next (scripts/test.sh does)")
    });
    let up = TempDir::new("pkgup");
    upgrade_installed_master(&up, &next);
    drop(guard);
    assert!(!Path::new(VIPD).exists(), "purge left {VIPD}");
    assert!(!Path::new(VIPCTL).exists(), "purge left {VIPCTL}");
    assert!(!wants.exists(), "purge left the enablement symlink");
    let after = run(&["dpkg-query", "-W", "-f=${Status}", "vipd"]);
    assert!(
        !String::from_utf8_lossy(&after.stdout).contains("installed"),
        "still installed after purge"
    );
}
