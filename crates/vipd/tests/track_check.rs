//! `vipd --check`: tracker weight arithmetic across peer files, script security, tracker
//! configuration diagnostics.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use vipd_config::{TrackKind, parse_str};

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("vipd-check-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn vipd(args: &[&Path]) -> Output {
    vipd_check(&[], args)
}

/// `vipd --check FLAGS FILES`.
fn vipd_check(flags: &[&str], files: &[&Path]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_vipd"))
        .arg("--check")
        .args(flags)
        .args(files)
        .output()
        .unwrap()
}

fn lb(priority: u8, weight: i32) -> String {
    format!(
        r#"[global]
enable_script_security = false

[[track_script]]
name = "chk_nginx"
command = ["/bin/true"]
weight = {weight}

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = {priority}
vips = ["10.0.0.100/24"]
track_scripts = ["chk_nginx"]
"#
    )
}

#[test]
fn weight_that_cannot_move_the_vip_is_reported_with_the_arithmetic() {
    let d = Dir::new("weights");
    let (a, b) = (d.0.join("lb1.toml"), d.0.join("lb2.toml"));
    std::fs::write(&a, lb(150, -20)).unwrap();
    std::fs::write(&b, lb(100, -20)).unwrap();
    let out = vipd_check(&["--no-host-checks"], &[&a, &b]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let want = format!(
        "{}:7:10: warning: 150 - 20 = 130 >= 100 on {}",
        a.display(),
        b.display()
    );
    assert!(err.contains(&want), "{err}");
    assert!(
        err.contains("the VIP never moves when script `chk_nginx` fails"),
        "{err}"
    );
    assert!(err.contains("use weight = -51 or lower"), "{err}");
    // The -c form works the same; a sufficient weight is not reported.
    std::fs::write(&a, lb(150, -60)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vipd"))
        .args(["--check", "--no-host-checks", "-c"])
        .arg(&a)
        .arg("-c")
        .arg(&b)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains(">= 100"), "{err}");
    // One file alone cannot know: no warning.
    std::fs::write(&a, lb(150, -20)).unwrap();
    let out = vipd_check(&["--no-host-checks"], &[&a]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains(">="));
}

#[test]
fn script_security_refuses_a_world_writable_script() {
    let d = Dir::new("security");
    let script = d.0.join("chk.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o777)).unwrap();
    let cfg = d.0.join("lb.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[[track_script]]
name = "chk"
command = ["{}"]

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
vips = ["10.0.0.100/24"]
track_scripts = ["chk"]
"#,
            script.display()
        ),
    )
    .unwrap();
    let out = vipd(&[&cfg]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    if nix::unistd::geteuid().is_root() {
        assert!(
            err.contains(&format!(
                "{}:3:11: error: track_script `chk`: refusing",
                cfg.display()
            )),
            "{err}"
        );
        assert!(
            err.contains("is writable by every user (mode 0777)"),
            "{err}"
        );
    }
    // Fixed mode: accepted.
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = vipd(&[&cfg]);
    if nix::unistd::geteuid().is_root() {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A tracked file in a directory any user may write (even with the sticky bit: whoever
/// creates the file first decides the value) is refused; in a directory only root writes,
/// accepted.
#[test]
fn script_security_refuses_a_track_file_in_an_open_directory() {
    let d = Dir::new("fileopen");
    let open = d.0.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let cfg = d.0.join("lb.toml");
    let write = |dir: &Path| {
        std::fs::write(
            &cfg,
            format!(
                r#"[[track_file]]
name = "w"
path = "{}/weight"

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
vips = ["10.0.0.100/24"]
track_files = ["w"]
"#,
                dir.display()
            ),
        )
        .unwrap();
    };
    write(&open);
    let out = vipd(&[&cfg]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{}:3:8: error: track_file `w`: refusing",
            cfg.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("is writable by every user (mode 1777)"),
        "{err}"
    );
    write(&d.0);
    let out = vipd(&[&cfg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two routers of one virtual router that disagree (VRRPv2 with a password against VRRPv3):
/// `vipd --check a b` warns, located in the first file and naming the second; `--strict`
/// (for CI) makes the warning fail; `vipctl check --strict` too.
#[test]
fn pair_linter_and_strict() {
    let d = Dir::new("pair");
    let (a, b) = (d.0.join("lb1.toml"), d.0.join("lb2.toml"));
    let inst = |prio: u8, extra: &str| {
        format!(
            "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = {prio}\nvips = [\"10.0.0.100/24\"]\n{extra}\n"
        )
    };
    std::fs::write(&a, inst(150, "version = 2\nauth_pass = \"s3cret\"")).unwrap();
    std::fs::write(&b, inst(100, "version = 3")).unwrap();
    let out = vipd_check(&["--no-host-checks"], &[&a, &b]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "{}:7:11: warning: `VI_1` speaks VRRPv2",
            a.display()
        )),
        "{err}"
    );
    assert!(err.contains(&format!("{}:7", b.display())), "{err}");
    let out = vipd_check(&["--no-host-checks", "--strict"], &[&a, &b]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("warning(s), failing"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vipctl"))
        .args(["check", "--no-host-checks", "--strict"])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // Agreeing files without any warning: --strict passes.
    std::fs::write(&a, inst(150, "version = 3")).unwrap();
    let out = vipd_check(&["--no-host-checks", "--strict"], &[&a, &b]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // keepalived's spelling of the file option.
    let out = vipd_check(&["--no-host-checks", "-f", a.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn errors(text: &str) -> String {
    match parse_str(text, Path::new("t.toml")) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(d) => d.to_string(),
    }
}

const INST: &str =
    "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvips = [\"10.0.0.100/24\"]\n";

#[test]
fn tracker_diagnostics() {
    let sec = "[global]\nenable_script_security = false\n";
    // Unknown tracker, with did-you-mean.
    let e = errors(&format!(
        "{sec}[[track_script]]\nname = \"chk_nginx\"\ncommand = [\"/bin/true\"]\n{INST}track_scripts = [\"chk_ngnix\"]\n"
    ));
    assert!(
        e.contains("t.toml:11:18: error: instance `VI_1`: no [[track_script]] called `chk_ngnix`"),
        "{e}"
    );
    assert!(e.contains("did you mean `chk_nginx`?"), "{e}");
    // keepalived spelling.
    let e = errors(&format!(
        "{sec}[[track_script]]\nname = \"c\"\nscript = \"/bin/true\"\n"
    ));
    assert!(e.contains("unknown key `script` in `track_script`"), "{e}");
    assert!(e.contains("command = ["), "{e}");
    // Weight range, https, both command and shell.
    let e = errors(&format!(
        "{sec}[[track_tcp]]\nname = \"t\"\naddress = \"127.0.0.1:443\"\nweight = 300\n"
    ));
    assert!(e.contains("weight 300 is out of range (-254..=254)"), "{e}");
    let e = errors(&format!(
        "{sec}[[track_http]]\nname = \"h\"\nurl = \"https://127.0.0.1/\"\n"
    ));
    assert!(e.contains("https is not supported"), "{e}");
    let e = errors(&format!(
        "{sec}[[track_script]]\nname = \"c\"\ncommand = [\"/bin/true\"]\nshell = \"true\"\n"
    ));
    assert!(e.contains("has both command and shell"), "{e}");
    // A tracker listed under the wrong kind.
    let e = errors(&format!(
        "{sec}[[track_tcp]]\nname = \"t\"\naddress = \"127.0.0.1:443\"\n{INST}track_scripts = [\"t\"]\n"
    ));
    assert!(
        e.contains("`t` is a [[track_tcp]], not a [[track_script]]"),
        "{e}"
    );
}

#[test]
fn tracker_config_resolves() {
    let text = format!(
        r#"[global]
enable_script_security = false

[[track_http]]
name = "web"
url = "http://127.0.0.1:8080/healthz"
expect_status = [200, 204]
interval = "250ms"
weight = -30

[[track_process]]
name = "hap"
process = "haproxy"

{INST}priority = 150
track_http = [{{ name = "web", weight = -60 }}]
track_processes = ["hap"]
track_interfaces = ["eth1", {{ name = "eth2", weight = -10 }}]
notify = ["/bin/true", "x"]
notify_timeout = "2s"
"#
    );
    let l = parse_str(&text, Path::new("t.toml")).unwrap_or_else(|d| panic!("{d}"));
    let c = l.config;
    assert_eq!(c.track_http[0].url.port, 8080);
    assert_eq!(c.track_http[0].expect_status, vec![200, 204]);
    assert_eq!(c.track_http[0].probe.interval.as_millis(), 250);
    assert_eq!(c.track_http[0].probe.timeout.as_millis(), 250);
    let i = &c.instances[0];
    let w: Vec<(TrackKind, &str, i32)> = i
        .track
        .iter()
        .map(|t| (t.kind, t.name.as_str(), t.weight))
        .collect();
    assert_eq!(
        w,
        vec![
            (TrackKind::Http, "web", -60),
            (TrackKind::Process, "hap", 0),
            (TrackKind::Interface, "eth1", 0),
            (TrackKind::Interface, "eth2", -10),
        ]
    );
    assert_eq!(i.notify.any.as_deref().map(|v| v[1].as_str()), Some("x"));
    assert_eq!(i.notify.timeout.as_secs(), 2);
    assert_eq!(c.global.script_user, "nobody");
    assert!(!c.global.enable_script_security);
}

/// `--no-host-checks`: another host's file whose programs and users do not exist here passes
/// the file-only checks; without the flag the host pass names each missing thing at its place.
#[test]
fn host_checks_can_be_skipped_for_another_hosts_file() {
    let dir = Dir::new("host");
    let f = dir.0.join("lb2.toml");
    std::fs::write(
        &f,
        r#"[global]
script_user = "vipd-no-such-user"

[[track_script]]
name = "chk_lb"
command = ["vipd-no-such-program", "--quick"]

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
vips = ["10.0.0.100/24"]
track_scripts = ["chk_lb"]
notify_master = "/opt/vipd-no-such-dir/notify.sh master"
"#,
    )
    .unwrap();
    let here = vipd(&[&f]);
    assert_eq!(here.status.code(), Some(1));
    let err = String::from_utf8_lossy(&here.stderr);
    assert!(
        err.contains("lb2.toml:6:11: error: track_script `chk_lb`: program \"vipd-no-such-program\" not found"),
        "{err}"
    );
    assert!(
        err.contains("notify_master: program /opt/vipd-no-such-dir/notify.sh cannot be used"),
        "{err}"
    );
    assert!(
        err.contains("runs as user `vipd-no-such-user`, which does not exist on this host"),
        "{err}"
    );
    let skipped = vipd_check(&["--no-host-checks"], &[&f]);
    assert!(
        skipped.status.success(),
        "{}",
        String::from_utf8_lossy(&skipped.stderr)
    );
    // The library view: the program keeps the name written; with the host pass it resolves.
    let text = std::fs::read_to_string(&f).unwrap();
    let l = vipd_config::parse_str_with(&text, &f, vipd_config::HostChecks::Skip).unwrap();
    assert_eq!(l.config.track_scripts[0].argv[0], "vipd-no-such-program");
    let shell = text
        .replace("vipd-no-such-program", "sh")
        .replace("/opt/vipd-no-such-dir/notify.sh", "/bin/true")
        .replace("vipd-no-such-user", "root")
        .replace("[global]", "[global]\nenable_script_security = false");
    let l = parse_str(&shell, Path::new("t.toml")).unwrap_or_else(|d| panic!("{d}"));
    assert!(l.config.track_scripts[0].argv[0].ends_with("/sh"));
    assert!(l.config.track_scripts[0].argv[0].starts_with('/'));
}

/// A weight that does lower the master below the backup, but the backup has preempt =
/// false: a backup without preempt never takes over from a live master whose priority
/// dropped (RFC 9568 §6.4.2), so the VIP does not move; `--check` says so.
#[test]
fn weight_against_a_non_preempting_backup_is_reported() {
    let d = Dir::new("nopreempt");
    let (a, b) = (d.0.join("lb1.toml"), d.0.join("lb2.toml"));
    std::fs::write(&a, lb(150, -60)).unwrap();
    std::fs::write(
        &b,
        lb(100, -60).replace("priority = 100", "priority = 100\npreempt = false"),
    )
    .unwrap();
    let out = vipd_check(&["--no-host-checks"], &[&a, &b]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("has preempt = false: a backup without preempt does not take over"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}:7:10: warning", a.display())),
        "{err}"
    );
    // With preempt on the backup: nothing to say.
    std::fs::write(&b, lb(100, -60)).unwrap();
    let out = vipd_check(&["--no-host-checks"], &[&a, &b]);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("preempt = false"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
