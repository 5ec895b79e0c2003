//! vipd next to keepalived: VIP moves and lost client packets per operation on the master.
//!
//! ```text
//! cargo build --release --bins --examples
//! sudo target/release/examples/operations_bench [--reps N] [--interval-ms 100]
//! ```
//!
//! A 2-node namespace LAN (master h0 priority 150, backup h1 priority 100, preempt on,
//! VRRPv3 at 100 ms) and a client pinging the VIP every 20 ms (a ping unanswered within 500 ms
//! is lost). For each implementation and operation, N repetitions on the master, each from a
//! steady pair until the pair is steady again (at least 3 s): the number of times the VIP
//! changed hosts (netlink, both hosts watched) and the pings lost.
//!
//! Operations: *reload in place* (the master's priority and preempt_delay change, SIGHUP),
//! *reload re-open* (a unicast pair; the master's peer set gains a third peer, or loses it
//! again: for vipd another virtual router on the wire, so the instance restarts; SIGHUP), *restart* (SIGTERM, then start again), *upgrade*
//! (vipd: `vipctl upgrade`; keepalived has none: a restart, as its package does).
//!
//! Prints a Markdown table (docs/benchmarks.md). Needs root, keepalived, and the vipd and vipctl
//! binaries (default: next to this example's directory, i.e. target/release/).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use nix::sys::signal::Signal;
use vipd::net::netlink::NetEvent;
use vipd_lab::keepalived::{self, Keepalived, Spec};
use vipd_lab::lan::{ChildGuard, Lan, Netns};
use vipd_lab::watch::AddrWatcher;

#[derive(Parser, Debug)]
struct Args {
    /// Repetitions per operation.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Advert interval, ms.
    #[arg(long, default_value_t = 100)]
    interval_ms: u64,
    /// The vipd binary (vipctl is taken from the same directory).
    #[arg(long)]
    vipd: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Impl {
    Vipd,
    Keepalived,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    ReloadInPlace,
    ReloadReopen,
    Restart,
    Upgrade,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::ReloadInPlace => "reload, in place (priority, preempt_delay, GARP delay; SIGHUP)",
            Op::ReloadReopen => "reload, re-open (unicast pair: the peer set changes; SIGHUP)",
            Op::Restart => "restart (SIGTERM, then start)",
            Op::Upgrade => "upgrade (vipd: `vipctl upgrade`; keepalived has none: a restart)",
        }
    }
}

/// A running daemon on the master host.
enum Node {
    Vipd {
        child: ChildGuard,
        cfg: PathBuf,
        sock: PathBuf,
    },
    Ka(Keepalived),
}

struct Bench {
    vipd: PathBuf,
    vipctl: PathBuf,
    dir: PathBuf,
    runs: u32,
}

impl Bench {
    fn start(&mut self, imp: Impl, ns: &Netns, spec: &Spec, tag: &str) -> io::Result<Node> {
        self.runs += 1;
        let name = format!("{tag}-{}", self.runs);
        match imp {
            Impl::Vipd => {
                let cfg = self.dir.join(format!("{tag}.toml"));
                let sock = self.dir.join(format!("{tag}.sock"));
                std::fs::write(
                    &cfg,
                    keepalived::vipd_toml(tag, &sock, std::slice::from_ref(spec)),
                )?;
                let log = self.dir.join(format!("{name}.log"));
                let child = ns.spawn_logged(
                    &[
                        &self.vipd.display().to_string(),
                        "--config",
                        &cfg.display().to_string(),
                        "--log",
                        "warn",
                    ],
                    &log,
                )?;
                Ok(Node::Vipd { child, cfg, sock })
            }
            Impl::Keepalived => Ok(Node::Ka(Keepalived::start(
                ns,
                &self.dir,
                &name,
                &keepalived::keepalived_conf(tag, std::slice::from_ref(spec)),
            )?)),
        }
    }

    fn reload(&self, node: &Node, spec: &Spec, tag: &str) -> io::Result<()> {
        match node {
            Node::Vipd { child, cfg, sock } => {
                std::fs::write(
                    cfg,
                    keepalived::vipd_toml(tag, sock, std::slice::from_ref(spec)),
                )?;
                child.signal(Signal::SIGHUP)
            }
            Node::Ka(k) => k.reload(&keepalived::keepalived_conf(
                tag,
                std::slice::from_ref(spec),
            )),
        }
    }

    fn stop(node: Node) -> io::Result<()> {
        match node {
            Node::Vipd { mut child, .. } => {
                child.signal(Signal::SIGTERM)?;
                child.wait_timeout(Duration::from_secs(5))?;
            }
            Node::Ka(mut k) => {
                k.stop()?;
                k.wait_exit(Duration::from_secs(5))?;
            }
        }
        Ok(())
    }

    fn upgrade(&self, node: &Node) -> io::Result<()> {
        let Node::Vipd { sock, .. } = node else {
            return Err(io::Error::other("keepalived has no upgrade"));
        };
        let out = std::process::Command::new(&self.vipctl)
            .arg("--socket")
            .arg(sock)
            .arg("upgrade")
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "vipctl upgrade: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }
}

fn wait_until(timeout: Duration, mut cond: impl FnMut() -> io::Result<bool>) -> io::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Times `vip` was added on the watched host since `t0`.
fn arrivals(w: &mut AddrWatcher, t0: Instant, vip: IpAddr) -> usize {
    w.events()
        .iter()
        .filter(|(at, ev)| {
            *at >= t0 && matches!(ev, NetEvent::AddrAdded { addr, .. } if *addr == vip)
        })
        .count()
}

struct Sample {
    moves: usize,
    lost: u32,
    sent: u32,
}

fn row(
    bench: &mut Bench,
    imp: Impl,
    op: Op,
    reps: usize,
    interval: Duration,
) -> io::Result<Vec<Sample>> {
    let mut lan = Lan::new("ops", 2)?;
    lan.add_client()?;
    let vip = lan.vip(false);
    let (h0, h1) = (lan.host(0).ns.clone(), lan.host(1).ns.clone());
    // The re-open row runs a unicast pair and changes the master's peer set (for vipd that
    // makes it another virtual router: the instance restarts); the others run multicast.
    let (src0, src1) = (IpAddr::V4(lan.host(0).v4), IpAddr::V4(lan.host(1).v4));
    let unicast = op == Op::ReloadReopen;
    let master_spec = |v: usize| {
        let mut s = Spec::new(51, 150 + (v % 2) as u8 * 10, interval, vip, 24);
        s.garp_master_delay_s = 1;
        if unicast {
            s.unicast = Some((src0, vec![src1]));
        }
        s
    };
    let mut backup_spec = Spec::new(51, 100, interval, vip, 24);
    if unicast {
        backup_spec.unicast = Some((src1, vec![src0]));
    }
    let _backup = bench.start(imp, &h1, &backup_spec, "h1")?;
    let mut master = Some(bench.start(imp, &h0, &master_spec(0), "h0")?);
    let steady = |h0: &Netns, h1: &Netns| -> io::Result<bool> {
        Ok(h0.has_addr("eth0", vip)? && !h1.has_addr("eth0", vip)?)
    };
    let mut out = Vec::new();
    for rep in 0..reps {
        if !wait_until(Duration::from_secs(20), || steady(&h0, &h1))? {
            return Err(io::Error::other(format!(
                "{imp:?} {op:?}: the pair never settled"
            )));
        }
        std::thread::sleep(Duration::from_secs(1));
        let mut w0 = AddrWatcher::start(h0.name())?;
        let mut w1 = AddrWatcher::start(h1.name())?;
        let t0 = Instant::now();
        let stop = AtomicBool::new(false);
        let op_result = std::thread::scope(|s| -> io::Result<(u32, u32)> {
            let pinger = s.spawn(|| {
                let (mut sent, mut lost) = (0u32, 0u32);
                while !stop.load(Ordering::Relaxed) {
                    sent += 1;
                    if !lan
                        .client(0)
                        .ping_timeout(vip, Duration::from_millis(500))
                        .unwrap_or(false)
                    {
                        lost += 1;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                (sent, lost)
            });
            std::thread::sleep(Duration::from_millis(300));
            let node = master.take().ok_or_else(|| io::Error::other("no master"))?;
            let done = match (op, imp) {
                (Op::ReloadInPlace, _) => {
                    let mut spec = master_spec(rep + 1);
                    spec.garp_master_delay_s = 1 + (rep as u32 % 2);
                    bench.reload(&node, &spec, "h0").map(|()| node)
                }
                (Op::ReloadReopen, _) => {
                    let mut spec = master_spec(0);
                    if rep % 2 == 0 {
                        // A third peer (no host has it) joins the set; the next rep drops it.
                        spec.unicast = Some((src0, vec![src1, IpAddr::V4(lan.addr_v4(77))]));
                    }
                    bench.reload(&node, &spec, "h0").map(|()| node)
                }
                (Op::Upgrade, Impl::Vipd) => bench.upgrade(&node).map(|()| node),
                (Op::Restart, _) | (Op::Upgrade, Impl::Keepalived) => {
                    Bench::stop(node)?;
                    bench.start(imp, &h0, &master_spec(0), "h0")
                }
            };
            master = Some(done?);
            // Steady again, and for at least 3 s (a restarted master takes the VIP back
            // after Master_Down_Interval).
            std::thread::sleep(Duration::from_secs(3));
            let settled = wait_until(Duration::from_secs(20), || steady(&h0, &h1))?;
            std::thread::sleep(Duration::from_millis(300));
            stop.store(true, Ordering::Relaxed);
            let r = pinger
                .join()
                .map_err(|_| io::Error::other("pinger panicked"))?;
            if !settled {
                return Err(io::Error::other(format!(
                    "{imp:?} {op:?}: not steady after the operation"
                )));
            }
            Ok(r)
        })?;
        let moves = arrivals(&mut w0, t0, vip) + arrivals(&mut w1, t0, vip);
        let (sent, lost) = op_result;
        eprintln!("{imp:?} {op:?} rep {rep}: {moves} VIP moves, {lost}/{sent} pings lost");
        out.push(Sample { moves, lost, sent });
    }
    if let Some(m) = master {
        Bench::stop(m)?;
    }
    Ok(out)
}

fn sibling(vipd: &Path, name: &str) -> PathBuf {
    vipd.with_file_name(name)
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    vipd_lab::lan::require_root()?;
    let vipd = match &args.vipd {
        Some(p) => p.clone(),
        None => vipd_lab::sibling_binary("vipd")?,
    };
    let vipctl = sibling(&vipd, "vipctl");
    for b in [&vipd, &vipctl] {
        if !b.exists() {
            return Err(io::Error::other(format!(
                "{} not found: run `cargo build --release --bins` first or pass --vipd",
                b.display()
            )));
        }
    }
    if !keepalived::available() {
        return Err(io::Error::other("keepalived is not installed"));
    }
    let dir = std::env::temp_dir().join(format!("vipd-opsbench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut bench = Bench {
        vipd,
        vipctl,
        dir: dir.clone(),
        runs: 0,
    };
    let interval = Duration::from_millis(args.interval_ms);
    let ops = [
        Op::ReloadInPlace,
        Op::ReloadReopen,
        Op::Restart,
        Op::Upgrade,
    ];
    let mut rows = Vec::new();
    for op in ops {
        for imp in [Impl::Vipd, Impl::Keepalived] {
            rows.push((op, imp, row(&mut bench, imp, op, args.reps, interval)?));
        }
    }
    println!(
        "## VIP moves and lost client packets per operation (VRRPv3, {} ms adverts, master 150 / backup 100, preempt on; ping every 20 ms, lost = no answer within 500 ms; {} repetitions, totals per operation: mean)",
        args.interval_ms, args.reps
    );
    println!();
    println!(
        "| operation on the master | vipd: VIP moves | vipd: pings lost | keepalived 2.2.7: VIP moves | keepalived 2.2.7: pings lost |"
    );
    println!("|---|---|---|---|---|");
    for op in ops {
        let cell = |imp: Impl| {
            let s = rows
                .iter()
                .find(|(o, i, _)| *o == op && *i == imp)
                .map(|(_, _, s)| s.as_slice())
                .unwrap_or(&[]);
            let n = s.len().max(1) as f64;
            let moves: usize = s.iter().map(|x| x.moves).sum();
            let lost: u32 = s.iter().map(|x| x.lost).sum();
            let sent: u32 = s.iter().map(|x| x.sent).sum();
            (
                format!("{:.1} ({} in {})", moves as f64 / n, moves, s.len()),
                format!("{:.1} ({} of {})", f64::from(lost) / n, lost, sent),
            )
        };
        let (vm, vl) = cell(Impl::Vipd);
        let (km, kl) = cell(Impl::Keepalived);
        println!("| {} | {vm} | {vl} | {km} | {kl} |", op.name());
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
