//! The harness itself (vipd_lab through tests/common): LAN construction, addressing,
//! link down/up, impairments, capture, spawned processes, cleanup.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns
mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::{Capture, Lan, Netns, wait_until};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn netns_list() -> String {
    String::from_utf8_lossy(
        &std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned()
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn lan_hosts_reach_each_other_and_cleanup() -> TestResult {
    let stem;
    {
        let mut lan = Lan::new("harness_basic", 2)?;
        stem = lan.stem().to_owned();
        let (h0, h1) = (lan.host(0), lan.host(1));
        assert_eq!(h0.ifname, "eth0");
        assert_ne!(h0.mac, h1.mac);
        // No tentative addresses (DAD off), link-local present.
        for h in lan.hosts() {
            let addrs = h.addrs_on("eth0")?;
            assert!(addrs.iter().all(|a| !a.tentative()), "{addrs:?}");
            assert!(addrs.iter().any(|a| a.addr == IpAddr::V6(h.ll)));
            assert!(addrs.iter().any(|a| a.addr == IpAddr::V4(h.v4)));
        }
        assert!(h0.ping(h1.v4.into())?, "v4 ping");
        assert!(h0.ping(h1.v6.into())?, "v6 ping");
        assert!(h0.ping(h1.ll.into())?, "link-local ping");
        // A handle on an existing namespace sees the same interfaces.
        let again = Netns::existing(h0.name());
        assert_eq!(again.link("eth0")?.index, h0.ifindex);
        let c = lan.add_client()?.clone();
        assert!(c.ping(lan.host(1).v4.into())?);
        assert_eq!(lan.clients().len(), 1);
        for n in lan.ns_names() {
            assert!(netns_list().contains(&n), "{n} missing");
        }
    }
    let after = netns_list();
    assert!(!after.contains(&stem), "leftover namespaces: {after}");
    Ok(())
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn lan_cleanup_on_panic() {
    let stem = std::sync::Mutex::new(String::new());
    let r = std::panic::catch_unwind(|| {
        let lan = Lan::new("harness_panic", 1).unwrap();
        *stem.lock().unwrap() = lan.stem().to_owned();
        panic!("boom");
    });
    assert!(r.is_err());
    let stem = stem.into_inner().unwrap();
    assert!(!stem.is_empty());
    assert!(!netns_list().contains(&stem));
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn errors_name_the_command_and_namespace() -> TestResult {
    let lan = Lan::new("harness_errors", 1)?;
    let h = lan.host(0);
    let e = h
        .ip(&["link", "set", "nosuch0", "up"])
        .unwrap_err()
        .to_string();
    assert!(e.contains(h.name()) && e.contains("nosuch0"), "{e}");
    assert!(
        e.to_lowercase().contains("cannot find device"),
        "stderr missing: {e}"
    );
    let e = h
        .exec_ok(&["sh", "-c", "echo oops >&2; exit 3"])
        .unwrap_err();
    let e = e.to_string();
    assert!(e.contains(h.name()) && e.contains("oops"), "{e}");
    let out = h.exec(&["false"])?;
    assert!(!out.status.success());
    assert!(h.link("nosuch0").is_err());
    assert!(lan.link_down(7).is_err());
    assert!(lan.tc_clear(7).is_err());
    assert!(Lan::new("harness_too_big", 81).is_err());
    let gone = Netns::existing("vipd-test-no-such-ns");
    assert!(gone.run(|| ()).is_err());
    assert!(gone.ping(h.v4.into()).is_err());
    Ok(())
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn link_down_gives_no_carrier_on_host() -> TestResult {
    let lan = Lan::new("harness_link", 2)?;
    let h = lan.host(0);
    assert!(h.link("eth0")?.lower_up);
    lan.link_down(0)?;
    let st = h.link("eth0")?;
    assert!(st.admin_up, "{st:?}");
    assert!(st.no_carrier && !st.lower_up, "{st:?}");
    assert!(!h.ping(lan.host(1).v4.into())?);
    lan.link_up(0)?;
    assert!(
        wait_until(Duration::from_secs(3), || h
            .link("eth0")
            .is_ok_and(|l| l.lower_up))
        .is_some()
    );
    assert!(
        wait_until(Duration::from_secs(3), || h
            .ping(lan.host(1).v4.into())
            .unwrap())
        .is_some()
    );
    Ok(())
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn impairments_apply_and_clear() -> TestResult {
    let lan = Lan::new("harness_netem", 2)?;
    let (h0, h1) = (lan.host(0), lan.host(1));
    let short = Duration::from_millis(300);
    if common::netem_available(h0) {
        lan.tc_netem(0, "delay 50ms")?;
        let t = std::time::Instant::now();
        assert!(h0.ping(h1.v4.into())?);
        assert!(t.elapsed() >= Duration::from_millis(50));
        lan.tc_clear(0)?;
    } else {
        // Without netem only "loss N%" can be emulated: anything else is an error.
        let e = lan.tc_netem(0, "delay 50ms").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::Unsupported, "{e}");
    }
    // 100% loss through whichever mechanism this kernel offers.
    lan.tc_netem(0, "loss 100%")?;
    assert!(!h0.ping_timeout(h1.v4.into(), short)?);
    lan.tc_clear(0)?;
    assert!(h0.ping(h1.v4.into())?);
    lan.tc_netem_port(0, "loss 100%")?;
    assert!(!h0.ping_timeout(h1.v4.into(), short)?);
    lan.tc_clear(0)?;
    assert!(h0.ping(h1.v4.into())?);
    lan.block_ingress(0)?;
    assert!(!h0.ping_timeout(h1.v4.into(), short)?);
    lan.tc_clear(0)?;
    lan.block_egress(0)?;
    assert!(!h0.ping_timeout(h1.v4.into(), short)?);
    lan.tc_clear(0)?;
    assert!(h0.ping(h1.v4.into())?);
    Ok(())
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn capture_sees_ping() -> TestResult {
    let lan = Lan::new("harness_capture", 2)?;
    let mut cap = Capture::start(lan.host(1), "eth0", "icmp")?;
    assert!(lan.host(0).ping(lan.host(1).v4.into())?);
    assert!(cap.wait_for(Duration::from_secs(3), |f| f.len() >= 42)?);
    let pkts = cap.stop()?;
    assert!(
        pkts.iter().any(|p| p.src == Some(lan.host(0).v4.into())
            && p.proto == "ICMP"
            && p.ttl == Some(64)
            && p.bytes.len() >= 42),
        "{pkts:#?}"
    );
    let rows = cap.fields("icmp.type == 8", &["ip.src"])?;
    assert!(
        rows.iter().any(|r| r[0] == lan.host(0).v4.to_string()),
        "{rows:?}"
    );
    assert!(
        cap.verbose("icmp")?
            .contains("Internet Control Message Protocol")
    );
    Ok(())
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn capture_on_missing_interface_is_an_error() -> TestResult {
    let lan = Lan::new("harness_capture_err", 1)?;
    let e = Capture::start(lan.host(0), "nosuch0", "").unwrap_err();
    assert!(e.to_string().contains("nosuch0"), "{e}");
    Ok(())
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn spawn_runs_in_namespace_and_is_killed_on_drop() -> TestResult {
    let lan = Lan::new("harness_spawn", 1)?;
    let h = lan.host(0);
    let mut c = h.spawn(&["sh", "-c", "ip -br addr show dev eth0; exec sleep 30"])?;
    let pid = c.pid();
    assert!(wait_until(Duration::from_secs(3), || c.log().contains("10.99.")).is_some());
    assert!(c.try_wait().is_none());
    drop(c);
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok();
    assert!(!alive, "child survived its guard");
    let out = h.exec(&["ip", "link", "show", "eth0"])?;
    assert!(out.status.success());
    Ok(())
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn spawn_logged_signal_and_wait() -> TestResult {
    let lan = Lan::new("harness_spawn_logged", 1)?;
    let h = lan.host(0);
    let dir = common::TempDir::new("spawn_logged");
    let log = dir.path().join("child.log");
    // Exits 0 on SIGTERM.
    let mut c = h.spawn_logged(
        &[
            "sh",
            "-c",
            "trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.05; done",
        ],
        &log,
    )?;
    assert!(wait_until(Duration::from_secs(3), || c.log().contains("ready")).is_some());
    assert_eq!(c.wait_timeout(Duration::from_millis(50))?, None);
    c.signal(nix::sys::signal::Signal::SIGTERM)?;
    let st = c.wait_timeout(Duration::from_secs(3))?.expect("exited");
    assert!(st.success(), "{st:?}");
    assert_eq!(c.try_wait(), Some(st));
    c.kill()?;
    c.kill()?; // idempotent
    drop(c);
    // The caller owns the log: it outlives the guard.
    assert!(std::fs::read_to_string(&log)?.contains("bye"));

    // terminate(): SIGTERM ignored -> SIGKILL after the timeout, None.
    let mut c = h.spawn(&["sh", "-c", "trap '' TERM; echo ready; exec sleep 30"])?;
    assert!(wait_until(Duration::from_secs(3), || c.log().contains("ready")).is_some());
    assert_eq!(c.terminate(Duration::from_millis(200)), None);
    assert!(c.try_wait().is_some());
    Ok(())
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn run_async_and_spawn_async_enter_the_namespace() -> TestResult {
    let lan = Lan::new("harness_async", 1)?;
    let h = lan.host(0);
    let idx = h.ifindex;
    let got = h.run_async(|| async { nix::net::if_::if_nametoindex("eth0").ok() })?;
    assert_eq!(got, Some(idx));
    let j = h.spawn_async(|| async { nix::net::if_::if_nametoindex("eth0").ok() })?;
    assert_eq!(j.join().unwrap()?, Some(idx));
    // A panic inside is resumed in the caller.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = h.run(|| -> u8 { panic!("inside") });
    }));
    assert!(r.is_err());
    Ok(())
}
