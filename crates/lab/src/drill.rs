//! `vipd drill`: the local failover drill. It builds a LAN of network namespaces (a bridge as
//! the switch, one namespace per load balancer, one client), starts a vipd agent in each host
//! namespace on an embedded default configuration, then:
//!
//! 1. waits for the election (the highest priority holds the VIP, the client reaches it);
//! 2. **crash**: SIGKILLs the master and cuts its cable, and times the takeover;
//! 3. **clean stop**: SIGTERMs the new master and times the handover (priority 0).
//!
//! Every step is printed as a timeline next to the protocol bound. Exit status: 0 if every
//! takeover happened within its bound (+ tolerance), 1 otherwise.

use std::fmt::Write as _;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use super::lan::{ChildGuard, Lan};
use super::sniff::{Event, Seen, Sniffer};
use super::toml_out::Doc;
use super::watch::AddrWatcher;
use vipd_proto::{self as proto, Version};

/// Options of `vipd drill`.
#[derive(Args, Debug, Clone)]
pub struct DrillArgs {
    /// Number of agents (load balancers), 2 or 3.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub hosts: u8,
    /// Advertisement interval in milliseconds (VRRPv3: multiple of 10; VRRPv2: of 1000).
    #[arg(long, default_value_t = 100)]
    pub interval_ms: u64,
    /// VRRP version.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub vrrp_version: u8,
    /// Use an IPv6 VIP (VRRPv3 only).
    #[arg(long)]
    pub ipv6: bool,
    /// Which failovers to run.
    #[arg(long, value_enum, default_value_t = Phases::Both)]
    pub phases: Phases,
    /// The vipd binary to run in the namespaces (default: `vipd` next to this binary).
    #[arg(long)]
    pub vipd: Option<PathBuf>,
    /// Extra tolerance over the protocol bound before a takeover counts as late, in ms.
    #[arg(long, default_value_t = 50)]
    pub tolerance_ms: u64,
}

/// Which failovers the drill runs.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Phases {
    /// Crash (SIGKILL + link down), then clean stop (SIGTERM).
    Both,
    /// Only the crash.
    Crash,
    /// Only the clean stop.
    Stop,
}

/// The embedded default configuration of host `host` of the drill: one VRRP instance
/// `VI_DRILL` on `eth0`, VRID 51, a 1 s second GARP burst.
pub fn embedded_default(
    host: &str,
    dir: &std::path::Path,
    version: u8,
    priority: u8,
    interval_ms: u64,
    vip: IpAddr,
    prefix: u8,
) -> String {
    use vipd_config::keys;
    Doc::new()
        .comment(&format!("vipd drill: host {host}"))
        .table(keys::file::global)
        .set(keys::global::router_id, format!("drill-{host}"))
        .set(
            keys::global::control_socket,
            format!("{}/{host}.sock", dir.display()),
        )
        .set(keys::global::garp_master_delay, "1s")
        .array_table(keys::file::instance)
        .set(keys::instance::name, "VI_DRILL")
        .set(keys::instance::interface, "eth0")
        .set(keys::instance::vrid, 51)
        .set(keys::instance::version, i64::from(version))
        .set(keys::instance::priority, i64::from(priority))
        .set(keys::instance::advert_interval, format!("{interval_ms}ms"))
        .list(keys::instance::vips, [format!("{vip}/{prefix}")])
        .finish()
}

/// Priority of host `i`: 150, 100, 50.
fn priority_of(i: usize) -> u8 {
    u8::try_from(150usize.saturating_sub(50 * i))
        .unwrap_or(1)
        .max(1)
}

struct Agent {
    name: String,
    child: Option<ChildGuard>,
    priority: u8,
    src: IpAddr,
}

struct Timeline {
    origin: Instant,
    out: String,
}

impl Timeline {
    fn line(&mut self, at: Instant, text: &str) {
        let t = at.saturating_duration_since(self.origin);
        let _ = writeln!(self.out, "  [{:>8.1} ms] {text}", t.as_secs_f64() * 1e3);
        println!("  [{:>8.1} ms] {text}", t.as_secs_f64() * 1e3);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs the drill; `Ok(true)` if every takeover met its bound.
pub fn run(args: &DrillArgs) -> io::Result<bool> {
    if !nix::unistd::geteuid().is_root() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the drill builds network namespaces: run it as root",
        ));
    }
    let version = if args.vrrp_version == 2 {
        Version::V2
    } else {
        Version::V3
    };
    if version == Version::V2 && args.ipv6 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "VRRPv2 is IPv4 only",
        ));
    }
    let interval = Duration::from_millis(args.interval_ms);
    let exe = match &args.vipd {
        Some(p) => p.clone(),
        None => crate::sibling_binary("vipd")?,
    };
    let n = usize::from(args.hosts);
    let mut lan = Lan::new("drill", n)?;
    lan.add_client()?;
    let dir = tempdir(lan.stem())?;
    let vip = lan.vip(args.ipv6);
    println!(
        "vipd drill: {n} agents, VRRPv{}, {} VIP {vip}, advert interval {} ms, namespaces {}-*",
        args.vrrp_version,
        if args.ipv6 { "IPv6" } else { "IPv4" },
        args.interval_ms,
        lan.stem()
    );
    let mut agents = Vec::new();
    for i in 0..n {
        let host = lan.host(i);
        let name = format!("h{i}");
        let priority = priority_of(i);
        let cfg = embedded_default(
            &name,
            &dir,
            args.vrrp_version,
            priority,
            args.interval_ms,
            vip,
            if args.ipv6 { 64 } else { 24 },
        );
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, cfg)?;
        let src = if args.ipv6 {
            IpAddr::V6(host.ll)
        } else {
            IpAddr::V4(host.v4)
        };
        println!(
            "  {name}: {} priority {priority}, log {}",
            src,
            dir.join(format!("{name}.log")).display()
        );
        agents.push(Agent {
            name,
            child: None,
            priority,
            src,
        });
    }
    let client = lan.client(0).ns.clone();
    let mut sniff = Sniffer::start(Some(client.name()))?;
    let mut tl = Timeline {
        origin: Instant::now(),
        out: String::new(),
    };
    for (i, a) in agents.iter_mut().enumerate() {
        let cfg = dir.join(format!("{}.toml", a.name));
        let log = dir.join(format!("{}.log", a.name));
        let ns = lan.host(i).ns.clone();
        a.child = Some(ns.spawn_logged(
            &[
                exe.to_string_lossy().as_ref(),
                "--config",
                cfg.to_string_lossy().as_ref(),
            ],
            &log,
        )?);
    }
    tl.line(Instant::now(), "agents started");

    // 1. Election.
    let start = tl.origin;
    let first = agents.first().map(|a| (a.src, a.priority));
    let Some((m_src, m_prio)) = first else {
        return Ok(false);
    };
    let elect_bound = proto::master_down_interval(version, priority_of(n - 1), interval)
        + interval * 2
        + Duration::from_secs(2);
    let elected = sniff.wait_for(start, elect_bound, |e| {
        matches!(e.what, Seen::Advert { src, priority, .. } if src == m_src && priority == m_prio)
    });
    let Some(e) = elected else {
        println!(
            "FAIL: h0 never advertised as master; see the agent logs in {}",
            dir.display()
        );
        print_logs(&dir, &agents);
        return Ok(false);
    };
    // Printed in the order they happened (a new master announces its VIP, then advertises).
    let mut seen = vec![(e.at, format!("h0 advertises as master (priority {m_prio})"))];
    if let Some(g) = sniff.wait_for(start, Duration::from_secs(2), |e| announces(e, vip)) {
        seen.push((
            g.at,
            format!("gratuitous announcement of {vip} seen by the client"),
        ));
    }
    seen.sort_by_key(|(at, _)| *at);
    for (at, what) in &seen {
        tl.line(*at, what);
    }
    let host0 = lan.host(0).ns.clone();
    let held = wait_addr(&host0, vip, true, Duration::from_secs(2))?;
    if held.is_none() {
        println!("FAIL: h0 does not hold {vip}");
        print_logs(&dir, &agents);
        return Ok(false);
    }
    if client.ping(vip)? {
        tl.line(Instant::now(), &format!("client reaches {vip}"));
    } else {
        println!("FAIL: the client cannot reach {vip}");
        return Ok(false);
    }
    let mut ok = true;
    let tol = Duration::from_millis(args.tolerance_ms);

    // 2. Crash of h0.
    if args.phases != Phases::Stop {
        println!("--- crash: SIGKILL h0 and cut its cable");
        let backup_prio = agents.get(1).map(|a| a.priority).unwrap_or(1);
        let bound = proto::master_down_interval(version, backup_prio, interval);
        let mut watch = AddrWatcher::start(lan.host(1).ns.name())?;
        let t0 = Instant::now();
        if let Some(c) = agents.get_mut(0).and_then(|a| a.child.as_mut()) {
            c.kill()?;
        }
        lan.link_down(0)?;
        tl.line(t0, "fault injected");
        ok &= observe_takeover(
            &mut tl, &mut sniff, &mut watch, &lan, &agents, 1, vip, t0, bound, tol, &client,
        )?;
        // h0 is gone for the rest of the drill.
    }

    // 3. Clean stop of the current master.
    if args.phases != Phases::Crash {
        let (master, next) = if args.phases == Phases::Stop {
            (0, 1)
        } else {
            (1, 2)
        };
        if next >= n {
            println!("--- clean stop skipped: needs a third agent (--hosts 3) after the crash");
        } else {
            println!("--- clean stop: SIGTERM h{master}");
            let next_prio = agents.get(next).map(|a| a.priority).unwrap_or(1);
            let bound = proto::skew_time(version, next_prio, interval);
            let mut watch = AddrWatcher::start(lan.host(next).ns.name())?;
            let t0 = Instant::now();
            if let Some(c) = agents.get(master).and_then(|a| a.child.as_ref()) {
                c.signal(nix::sys::signal::Signal::SIGTERM)?;
            }
            tl.line(t0, &format!("SIGTERM sent to h{master}"));
            let msrc = agents.get(master).map(|a| a.src);
            if let Some(e) = sniff.wait_for(
                t0,
                Duration::from_secs(2),
                |e| matches!(e.what, Seen::Advert { src, priority: 0, .. } if Some(src) == msrc),
            ) {
                tl.line(e.at, &format!("h{master} sends priority 0 (hands over)"));
            } else {
                println!("  FAIL: no priority-0 advert from h{master}");
                ok = false;
            }
            ok &= observe_takeover(
                &mut tl, &mut sniff, &mut watch, &lan, &agents, next, vip, t0, bound, tol, &client,
            )?;
            let status = agents
                .get_mut(master)
                .and_then(|a| a.child.as_mut())
                .map(|c| c.wait_timeout(Duration::from_secs(2)))
                .transpose()?
                .flatten();
            match status {
                Some(s) if s.success() => {
                    tl.line(Instant::now(), &format!("h{master} exited cleanly"))
                }
                other => {
                    println!("  FAIL: h{master} did not exit cleanly within 2 s ({other:?})");
                    ok = false;
                }
            }
            let mns = lan.host(master).ns.clone();
            if mns.has_addr("eth0", vip)? {
                println!("  FAIL: h{master} still holds {vip} after stopping");
                ok = false;
            } else {
                tl.line(Instant::now(), &format!("h{master} holds no VIP"));
            }
        }
    }
    println!("result: {}", if ok { "PASS" } else { "FAIL" });
    if !ok {
        print_logs(&dir, &agents);
    }
    for a in agents.iter_mut() {
        if let Some(mut c) = a.child.take() {
            let _ = c.signal(nix::sys::signal::Signal::SIGTERM);
            let _ = c.wait_timeout(Duration::from_secs(2));
        }
    }
    drop(sniff);
    drop(lan);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ok)
}

fn announces(e: &Event, vip: IpAddr) -> bool {
    match (&e.what, vip) {
        (Seen::Garp { ip, .. }, IpAddr::V4(v)) => *ip == v,
        (Seen::Na { target, .. }, IpAddr::V6(v)) => *target == v,
        _ => false,
    }
}

#[allow(clippy::too_many_arguments)]
fn observe_takeover(
    tl: &mut Timeline,
    sniff: &mut Sniffer,
    watch: &mut AddrWatcher,
    lan: &Lan,
    agents: &[Agent],
    next: usize,
    vip: IpAddr,
    t0: Instant,
    bound: Duration,
    tol: Duration,
    client: &super::lan::Netns,
) -> io::Result<bool> {
    let Some(a) = agents.get(next) else {
        return Ok(false);
    };
    let limit = bound + tol + Duration::from_secs(2);
    let nsrc = a.src;
    let nprio = a.priority;
    let mut ok = true;
    let since = |at: Instant| ms(at.saturating_duration_since(t0));
    // What the takeover is made of, printed in the order it happened.
    let mut seen: Vec<(Instant, String)> = Vec::new();
    let advert = sniff.wait_for(t0, limit, |e| {
        matches!(e.what, Seen::Advert { src, priority, .. } if src == nsrc && priority == nprio)
    });
    // The backup's adverts only start once it is master.
    match advert {
        Some(e) => seen.push((
            e.at,
            format!("h{next} first advert as master (+{:.1} ms)", since(e.at)),
        )),
        None => {
            println!("  FAIL: h{next} never advertised as master");
            return Ok(false);
        }
    }
    let up = watch.wait(t0, vip, true, limit);
    if let Some(at) = up {
        seen.push((at, format!("{vip} up on h{next} (+{:.1} ms)", since(at))));
    }
    let garp = sniff.wait_for(t0, limit, |e| {
        announces(e, vip) && e.eth_src == lan.host(next).mac
    });
    if let Some(e) = &garp {
        seen.push((
            e.at,
            format!(
                "gratuitous announcement from h{next} seen by the client (+{:.1} ms)",
                since(e.at)
            ),
        ));
    }
    seen.sort_by_key(|(at, _)| *at);
    for (at, what) in &seen {
        tl.line(*at, what);
    }
    if up.is_none() {
        println!("  FAIL: {vip} never came up on h{next}");
        ok = false;
    }
    match garp {
        Some(e) => {
            let took = e.at.saturating_duration_since(t0);
            let verdict = if took <= bound + tol {
                "within"
            } else {
                "OVER"
            };
            println!(
                "  takeover {:.1} ms; protocol bound {:.1} ms (+{} ms tolerance): {verdict}",
                ms(took),
                ms(bound),
                tol.as_millis()
            );
            if took > bound + tol {
                ok = false;
            }
        }
        None => {
            println!("  FAIL: no gratuitous announcement from h{next}");
            ok = false;
        }
    }
    if client.ping(vip)? {
        tl.line(Instant::now(), &format!("client reaches {vip} again"));
    } else {
        println!("  FAIL: the client cannot reach {vip} after the takeover");
        ok = false;
    }
    Ok(ok)
}

/// Polls (every 2 ms) until `addr` is (or is not) on eth0 in `ns`; returns when it was seen.
fn wait_addr(
    ns: &super::lan::Netns,
    addr: IpAddr,
    present: bool,
    timeout: Duration,
) -> io::Result<Option<Instant>> {
    let deadline = Instant::now() + timeout;
    loop {
        if ns.has_addr("eth0", addr)? == present {
            return Ok(Some(Instant::now()));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn tempdir(stem: &str) -> io::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("vipd-drill-{stem}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn print_logs(dir: &Path, agents: &[Agent]) {
    for a in agents {
        let p = dir.join(format!("{}.log", a.name));
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        println!("--- last lines of {}:", p.display());
        for l in tail.iter().rev() {
            println!("    {l}");
        }
    }
}
