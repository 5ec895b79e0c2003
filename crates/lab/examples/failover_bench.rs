//! vipd next to keepalived: failover times and the cost of many instances.
//!
//! ```text
//! cargo build --release --bins
//! sudo target/release/examples/failover_bench [--reps N] [--quick]     # or:
//! cargo run --release --example failover_bench -- [--reps N] [--quick]  # as root
//! ```
//!
//! 1. **Failover**: a 2-node namespace LAN (+ a sniffing client). For each implementation
//!    (vipd, keepalived), advert interval (1 s, 100 ms, 10 ms) and fault (crash = SIGKILL +
//!    cable cut; clean stop = SIGTERM), N repetitions: fault-to-VIP-up (netlink, in the
//!    backup's namespace) and fault-to-GARP-seen (client), and the distance to the protocol
//!    bound measured from where the backup's timer really starts (crash: the last advert of
//!    the old master, bound Master_Down_Interval; clean stop: the priority-0 advert, bound
//!    Skew_Time).
//! 2. **Scale**: one daemon with 100 / 500 / 1000 instances at 100 ms as master (250 VRIDs
//!    per interface): CPU % of one core over a window and RSS, vipd next to keepalived. Two
//!    variants: *aligned* (every instance priority 200: all become master at the same instant
//!    and share one timer phase) and *staggered* (priorities spread over 1..=254: each
//!    priority has its own Skew_Time, so the instances become master at 254 different moments
//!    0.39 ms apart and keep 254 distinct advert phases; same configuration for both
//!    implementations).
//!
//! Prints Markdown tables (docs/benchmarks.md). Needs root, keepalived, and the vipd binary
//! (default: `vipd` next to this example's directory, i.e. target/release/vipd).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use nix::sys::signal::Signal;
use vipd_lab::keepalived::{self, Keepalived, Spec};
use vipd_lab::lan::{ChildGuard, Lan, Netns};
use vipd_lab::sniff::{Seen, Sniffer};
use vipd_lab::watch::AddrWatcher;
use vipd_proto::{self as proto, Version};

#[derive(Parser, Debug)]
struct Args {
    /// Repetitions per failover row (>= 5 for the published table).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Short run: 3 repetitions, 100 ms and 10 ms only, scale 100 and 1000 with 5 s windows.
    #[arg(long)]
    quick: bool,
    /// Skip the failover benchmark.
    #[arg(long)]
    no_failover: bool,
    /// Skip the scale benchmark.
    #[arg(long)]
    no_scale: bool,
    /// Only these advert intervals (ms), e.g. `--intervals 100,10`.
    #[arg(long, value_delimiter = ',')]
    intervals: Vec<u64>,
    /// Only these faults (default: both), e.g. `--faults stop`.
    #[arg(long, value_delimiter = ',', value_enum)]
    faults: Vec<Fault>,
    /// Only these instance counts for the scale benchmark.
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<usize>,
    /// Scale variants to run (default: both).
    #[arg(long, value_delimiter = ',', value_enum)]
    phases: Vec<Phase>,
    /// CPU sampling window of the scale benchmark, seconds.
    #[arg(long, default_value_t = 10)]
    window: u64,
    /// Scale rows: vipd signs and verifies every advert (`auth_hmac`; keepalived 2.2.7 has no
    /// auth_hmac and runs unsigned).
    #[arg(long)]
    hmac: bool,
    /// The vipd binary.
    #[arg(long)]
    vipd: Option<PathBuf>,
}

/// Timer phases of the scale benchmark's instances.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
enum Phase {
    /// Priority 200 everywhere: one shared phase.
    Aligned,
    /// Priority `1 + i % 254`: 254 phases spread over the interval.
    Staggered,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Aligned => "aligned",
            Phase::Staggered => "staggered",
        }
    }
    fn priority(self, i: usize) -> u8 {
        match self {
            Phase::Aligned => 200,
            Phase::Staggered => (1 + i % 254) as u8,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Impl {
    Vipd,
    Keepalived,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::Vipd => "vipd",
            Impl::Keepalived => "keepalived",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
enum Fault {
    /// SIGKILL + cable cut.
    Crash,
    /// SIGTERM (priority 0).
    Stop,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Crash => "crash (SIGKILL + link down)",
            Fault::Stop => "clean stop (SIGTERM)",
        }
    }
}

enum Node {
    Vipd(ChildGuard),
    Ka(Keepalived),
}

impl Node {
    fn crash(&mut self) -> io::Result<()> {
        match self {
            Node::Vipd(c) => c.kill(),
            Node::Ka(k) => k.crash(),
        }
    }
    fn stop(&self) -> io::Result<()> {
        match self {
            Node::Vipd(c) => c.signal(Signal::SIGTERM),
            Node::Ka(k) => k.stop(),
        }
    }
    fn wait_exit(&mut self) -> io::Result<()> {
        match self {
            Node::Vipd(c) => c.wait_timeout(Duration::from_secs(5)).map(drop),
            Node::Ka(k) => k.wait_exit(Duration::from_secs(5)).map(drop),
        }
    }
    /// Every process doing the work (keepalived: parent and VRRP child).
    fn pids(&self) -> Vec<u32> {
        match self {
            Node::Vipd(c) => vec![c.pid()],
            Node::Ka(k) => [Some(k.pid()), k.vrrp_pid()]
                .into_iter()
                .flatten()
                .collect(),
        }
    }
    fn log(&self) -> String {
        match self {
            Node::Vipd(c) => c.log(),
            Node::Ka(k) => k.log(),
        }
    }
}

struct Ctx {
    vipd: PathBuf,
    runs: u32,
}

impl Ctx {
    fn start(
        &mut self,
        imp: Impl,
        ns: &Netns,
        dir: &Path,
        specs: &[Spec],
        tag: &str,
    ) -> io::Result<Node> {
        self.runs += 1;
        let name = format!("{tag}-{}", self.runs);
        match imp {
            Impl::Vipd => {
                let cfg = dir.join(format!("{name}.toml"));
                let sock = dir.join(format!("{name}.sock"));
                std::fs::write(&cfg, keepalived::vipd_toml(&name, &sock, specs))?;
                let log = dir.join(format!("{name}.log"));
                let exe = self.vipd.display().to_string();
                let cfg_s = cfg.display().to_string();
                Ok(Node::Vipd(ns.spawn_logged(
                    &[&exe, "--config", &cfg_s, "--log", "warn"],
                    &log,
                )?))
            }
            Impl::Keepalived => {
                let conf = keepalived::keepalived_conf(&name, specs);
                Ok(Node::Ka(Keepalived::start(ns, dir, &name, &conf)?))
            }
        }
    }
}

fn tempdir(tag: &str) -> io::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("vipd-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A cheap xorshift for the fault phase (uniform over one advert interval).
struct Rng(u64);
impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Sample {
    /// Which rep (fault phase) this is.
    rep: usize,
    vip_up: f64,
    garp: f64,
    dist: f64,
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
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One failover row: `reps` faults of the master (h0, priority 150) with h1 (priority 100)
/// taking over.
///
/// Rep `k` faults the master `phases[k] × interval` after one of its adverts (as seen by the
/// client), so both implementations are measured at the same fault phases and their fault →
/// VIP-up times compare pair by pair (for a crash that time is the bound minus the phase).
fn failover_row(
    ctx: &mut Ctx,
    imp: Impl,
    interval: Duration,
    fault: Fault,
    phases: &[f64],
) -> io::Result<Vec<Sample>> {
    let mut lan = Lan::new("bench", 2)?;
    lan.add_client()?;
    let dir = tempdir(lan.stem())?;
    let mut sniff = Sniffer::start(Some(lan.client(0).name()))?;
    let vip = lan.vip(false);
    let spec = |prio: u8| Spec::new(51, prio, interval, vip, 24);
    let h0 = lan.host(0).ns.clone();
    let h1 = lan.host(1).ns.clone();
    let h0_src = IpAddr::V4(lan.host(0).v4);
    let h1_mac = lan.host(1).mac;
    let _backup = ctx.start(imp, &h1, &dir, &[spec(100)], "h1")?;
    let mut master = ctx.start(imp, &h0, &dir, &[spec(150)], "h0")?;
    let settle_limit =
        proto::master_down_interval(Version::V3, 1, interval) * 3 + Duration::from_secs(10);
    let bound = match fault {
        Fault::Crash => proto::master_down_interval(Version::V3, 100, interval),
        Fault::Stop => proto::skew_time(Version::V3, 100, interval),
    };
    let mut out = Vec::new();
    for (rep, &phase) in phases.iter().enumerate() {
        let ok = wait_until(settle_limit, || {
            Ok(h0.has_addr("eth0", vip)? && !h1.has_addr("eth0", vip)?)
        })?;
        if !ok {
            return Err(io::Error::other(format!(
                "{} {interval:?}: h0 did not (re)gain the master role; log:\n{}",
                imp.name(),
                master.log()
            )));
        }
        // Settle, then fault at this rep's phase after an advert of the master.
        std::thread::sleep(interval * 3 + Duration::from_millis(300));
        let mut watch = AddrWatcher::start(h1.name())?;
        let since = Instant::now();
        let advert = sniff
            .wait_for(
                since,
                interval * 3,
                |e| matches!(e.what, Seen::Advert { src, priority: 150, .. } if src == h0_src),
            )
            .ok_or_else(|| {
                io::Error::other(format!("{}: the master does not advertise", imp.name()))
            })?;
        let at = advert.at + interval.mul_f64(phase);
        if let Some(wait) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let t0 = Instant::now();
        match fault {
            Fault::Crash => {
                master.crash()?;
                lan.link_down(0)?;
            }
            Fault::Stop => master.stop()?,
        }
        let limit = bound + Duration::from_secs(5);
        let up = watch.wait(t0, vip, true, limit);
        let garp = sniff.wait_for(t0, limit, |e| {
            e.eth_src == h1_mac && matches!(e.what, Seen::Garp { ip, .. } if IpAddr::V4(ip) == vip)
        });
        let reference = match fault {
            Fault::Crash => sniff
                .events()
                .iter()
                .filter(|e| {
                    e.at < t0
                        && matches!(e.what, Seen::Advert { src, priority: 150, .. } if src == h0_src)
                })
                .map(|e| e.at)
                .next_back(),
            Fault::Stop => sniff
                .wait_for(t0, limit, |e| {
                    matches!(e.what, Seen::Advert { src, priority: 0, .. } if src == h0_src)
                })
                .map(|e| e.at),
        };
        match (up, garp, reference) {
            (Some(up), Some(g), Some(r)) => {
                let s = Sample {
                    rep,
                    vip_up: ms(up - t0),
                    garp: ms(g.at - t0),
                    dist: ms(up.saturating_duration_since(r)) - ms(bound),
                };
                eprintln!(
                    "  {} {:>5} ms {:<5} rep {rep}: VIP up +{:.1} ms, GARP +{:.1} ms, timer-to-VIP minus bound {:+.2} ms",
                    imp.name(),
                    interval.as_millis(),
                    if fault == Fault::Crash {
                        "crash"
                    } else {
                        "stop"
                    },
                    s.vip_up,
                    s.garp,
                    s.dist
                );
                out.push(s);
            }
            other => eprintln!(
                "  {} rep {rep}: takeover not observed (vip {:?} garp {:?} ref {:?})",
                imp.name(),
                other.0.is_some(),
                other.1.is_some(),
                other.2.is_some()
            ),
        }
        // Restore the master.
        match fault {
            Fault::Crash => lan.link_up(0)?,
            Fault::Stop => master.wait_exit()?,
        }
        master = ctx.start(imp, &h0, &dir, &[spec(150)], "h0")?;
    }
    drop(master);
    drop(_backup);
    drop(sniff);
    drop(lan);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

fn stats(v: &[f64]) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let med = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    Some((med, s[0], s[n - 1]))
}

fn fmt_stats(v: &[f64], signed: bool) -> String {
    match stats(v) {
        Some((m, lo, hi)) if signed => format!("{m:+.2} ({lo:+.2} … {hi:+.2})"),
        Some((m, lo, hi)) => format!("{m:.1} ({lo:.1} … {hi:.1})"),
        None => "—".to_owned(),
    }
}

// ---- scale ----

const PER_IF: usize = 250;

fn proc_ticks(pid: u32) -> io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command (which may contain spaces) start after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("bad /proc stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): utime is field 14, stime 15.
    let ut: u64 = f.get(11).and_then(|s| s.parse().ok()).unwrap_or(0);
    let st: u64 = f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok(ut + st)
}

fn proc_rss_kib(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

struct ScaleResult {
    cpu_pct: f64,
    rss_kib: Vec<u64>,
    adverts_per_s: f64,
    vips_up: usize,
    startup_s: f64,
}

fn count_vips(ns: &Netns, ifaces: usize) -> io::Result<usize> {
    let mut n = 0;
    for k in 0..ifaces {
        n += ns
            .addrs_on(&format!("eth{}", k + 1))?
            .iter()
            .filter(|a| matches!(a.addr, IpAddr::V4(v) if v.octets()[2] == 1))
            .count();
    }
    Ok(n)
}

fn scale_row(
    ctx: &mut Ctx,
    imp: Impl,
    n: usize,
    phase: Phase,
    window: Duration,
    hmac: bool,
) -> io::Result<ScaleResult> {
    let lan = Lan::new("scale", 1)?;
    let dir = tempdir(lan.stem())?;
    let key = dir.join("hmac.key");
    if hmac && imp == Impl::Vipd {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::write(&key, "a benchmark key of at least thirty-two bytes\n")?;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
    }
    let h0 = lan.host(0).ns.clone();
    let ifaces = n.div_ceil(PER_IF);
    for k in 0..ifaces {
        let ifname = format!("eth{}", k + 1);
        let port = format!("s{k}");
        lan.switch().ip(&[
            "link",
            "add",
            &port,
            "type",
            "veth",
            "peer",
            "name",
            &ifname,
            "netns",
            h0.name(),
        ])?;
        lan.switch().ip(&["link", "set", &port, "up"])?;
        h0.ip(&[
            "addr",
            "add",
            &format!("10.{}.0.1/16", 200 + k),
            "dev",
            &ifname,
        ])?;
        h0.ip(&["link", "set", &ifname, "up"])?;
    }
    let specs: Vec<Spec> = (0..n)
        .map(|i| {
            let k = i / PER_IF;
            let vrid = (i % PER_IF + 1) as u8;
            let vip = IpAddr::V4(Ipv4Addr::new(10, (200 + k) as u8, 1, vrid));
            let mut s = Spec::new(vrid, phase.priority(i), Duration::from_millis(100), vip, 16);
            s.name = format!("VI_{k}_{vrid}");
            s.interface = format!("eth{}", k + 1);
            if hmac && imp == Impl::Vipd {
                s.hmac_key_file = Some(key.clone());
            }
            s
        })
        .collect();
    let t0 = Instant::now();
    let node = ctx.start(imp, &h0, &dir, &specs, "scale")?;
    let mut up = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        up = count_vips(&h0, ifaces)?;
        if up >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let startup_s = t0.elapsed().as_secs_f64();
    // Past the second GARP burst (1 s after becoming master).
    std::thread::sleep(Duration::from_secs(3));
    // Advert rate on the wire (switch side), measured apart from the CPU window.
    let adverts_per_s = {
        let mut sniff = Sniffer::start(Some(lan.switch().name()))?;
        let a = Instant::now();
        std::thread::sleep(Duration::from_secs(2));
        let b = Instant::now();
        let c = sniff
            .events()
            .iter()
            .filter(|e| e.at >= a && e.at < b && matches!(e.what, Seen::Advert { .. }))
            .count();
        c as f64 / (b - a).as_secs_f64()
    };
    std::thread::sleep(Duration::from_millis(500));
    let pids = node.pids();
    let tick = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let ticks = |pids: &[u32]| -> io::Result<u64> {
        pids.iter().map(|&p| proc_ticks(p)).sum::<io::Result<u64>>()
    };
    let a = Instant::now();
    let ta = ticks(&pids)?;
    std::thread::sleep(window);
    let tb = ticks(&pids)?;
    let b = Instant::now();
    let cpu_pct = (tb - ta) as f64 / tick / (b - a).as_secs_f64() * 100.0;
    let rss_kib = pids
        .iter()
        .map(|&p| proc_rss_kib(p))
        .collect::<io::Result<Vec<u64>>>()?;
    drop(node);
    drop(lan);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ScaleResult {
        cpu_pct,
        rss_kib,
        adverts_per_s,
        vips_up: up,
        startup_s,
    })
}

fn machine() -> String {
    let nproc = std::process::Command::new("nproc")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let lscpu = std::process::Command::new("lscpu")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let model = lscpu
        .lines()
        .find(|l| l.starts_with("Model name:"))
        .map(|l| l.trim_start_matches("Model name:").trim().to_owned())
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let ka = std::process::Command::new("keepalived")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .unwrap_or_default();
    format!("{nproc} CPUs ({model}), Linux {}, {ka}", kernel.trim())
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    vipd_lab::lan::require_root()?;
    let vipd = match &args.vipd {
        Some(p) => p.clone(),
        None => vipd_lab::sibling_binary("vipd")?,
    };
    if !vipd.exists() {
        return Err(io::Error::other(format!(
            "{} not found: run `cargo build --release --bins` first or pass --vipd",
            vipd.display()
        )));
    }
    if !keepalived::available() {
        return Err(io::Error::other("keepalived is not installed"));
    }
    let reps = if args.quick { 3 } else { args.reps };
    let intervals: Vec<u64> = if !args.intervals.is_empty() {
        args.intervals.clone()
    } else if args.quick {
        vec![100, 10]
    } else {
        vec![1000, 100, 10]
    };
    let sizes: Vec<usize> = if !args.sizes.is_empty() {
        args.sizes.clone()
    } else if args.quick {
        vec![100, 1000]
    } else {
        vec![100, 500, 1000]
    };
    let window = Duration::from_secs(if args.quick { 5 } else { args.window });
    let phases = if args.phases.is_empty() {
        vec![Phase::Aligned, Phase::Staggered]
    } else {
        args.phases.clone()
    };
    let faults = if args.faults.is_empty() {
        vec![Fault::Crash, Fault::Stop]
    } else {
        args.faults.clone()
    };
    let mut ctx = Ctx { vipd, runs: 0 };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9e37_79b9)
        | 1;
    let mut rng = Rng(seed);
    println!("# failover_bench — {}", machine());
    println!();
    if !args.no_failover {
        struct Row {
            imp: Impl,
            interval: u64,
            fault: Fault,
            samples: Vec<Sample>,
        }
        let mut rows = Vec::new();
        for &iv in &intervals {
            for &fault in &faults {
                // One phase sequence per row, shared by both implementations.
                let phases: Vec<f64> = (0..reps).map(|_| rng.next_f64()).collect();
                for imp in [Impl::Vipd, Impl::Keepalived] {
                    let samples =
                        failover_row(&mut ctx, imp, Duration::from_millis(iv), fault, &phases)?;
                    rows.push(Row {
                        imp,
                        interval: iv,
                        fault,
                        samples,
                    });
                }
            }
        }
        println!(
            "## Failover (VRRPv3, IPv4, 2 nodes, backup priority 100; {reps} repetitions; ms, median (min … max))"
        );
        println!();
        println!(
            "| impl | advert interval | fault | n | fault → VIP up | fault → GARP seen | protocol bound | timer start → VIP up, minus bound |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        for r in &rows {
            let iv = Duration::from_millis(r.interval);
            let bound = match r.fault {
                Fault::Crash => proto::master_down_interval(Version::V3, 100, iv),
                Fault::Stop => proto::skew_time(Version::V3, 100, iv),
            };
            let up: Vec<f64> = r.samples.iter().map(|s| s.vip_up).collect();
            let garp: Vec<f64> = r.samples.iter().map(|s| s.garp).collect();
            let dist: Vec<f64> = r.samples.iter().map(|s| s.dist).collect();
            println!(
                "| {} | {} ms | {} | {} | {} | {} | {:.1} | {} |",
                r.imp.name(),
                r.interval,
                r.fault.name(),
                r.samples.len(),
                fmt_stats(&up, false),
                fmt_stats(&garp, false),
                ms(bound),
                fmt_stats(&dist, true)
            );
        }
        println!();
        println!(
            "| advert interval | fault | vipd / keepalived (median fault → VIP up) | vipd / keepalived (median fault → GARP) | vipd − keepalived, same fault phase (median of pairs, ms, fault → VIP up) | vipd within 2 ms of bound (median) |"
        );
        println!("|---|---|---|---|---|---|");
        for &iv in &intervals {
            for &fault in &faults {
                let get = |imp: Impl, f: &dyn Fn(&Sample) -> f64| {
                    rows.iter()
                        .find(|r| r.imp == imp && r.interval == iv && r.fault == fault)
                        .and_then(|r| stats(&r.samples.iter().map(f).collect::<Vec<_>>()))
                        .map(|s| s.0)
                };
                let ratio = |f: &dyn Fn(&Sample) -> f64| match (
                    get(Impl::Vipd, f),
                    get(Impl::Keepalived, f),
                ) {
                    (Some(a), Some(b)) if b > 0.0 => format!("{:.3}", a / b),
                    _ => "—".to_owned(),
                };
                let within = get(Impl::Vipd, &|s| s.dist)
                    .map(|d| {
                        if d.abs() <= 2.0 {
                            format!("yes ({d:+.2})")
                        } else {
                            format!("NO ({d:+.2})")
                        }
                    })
                    .unwrap_or_else(|| "—".to_owned());
                // Rep k of both rows faulted at the same phase: compare them pair by pair.
                let row = |imp: Impl| {
                    rows.iter()
                        .find(|r| r.imp == imp && r.interval == iv && r.fault == fault)
                };
                let paired = match (row(Impl::Vipd), row(Impl::Keepalived)) {
                    (Some(a), Some(b)) => {
                        let d: Vec<f64> = a
                            .samples
                            .iter()
                            .filter_map(|x| {
                                let y = b.samples.iter().find(|y| y.rep == x.rep)?;
                                Some(x.vip_up - y.vip_up)
                            })
                            .collect();
                        format!("{} n={}", fmt_stats(&d, true), d.len())
                    }
                    _ => "—".to_owned(),
                };
                println!(
                    "| {iv} ms | {} | {} | {} | {paired} | {within} |",
                    fault.name(),
                    ratio(&|s| s.vip_up),
                    ratio(&|s| s.garp)
                );
            }
        }
        println!();
    }
    if !args.no_scale {
        println!(
            "## Scale (one daemon as master of N VRRPv3 instances at 100 ms, 250 per interface; aligned: one timer phase, staggered: 254 phases; CPU over {} s)",
            window.as_secs()
        );
        println!();
        println!(
            "| impl | phases | instances | VIPs up | startup to all VIPs up (s) | adverts/s on the wire | CPU % of one core | RSS MiB |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        for &phase in &phases {
            for &n in &sizes {
                for imp in [Impl::Vipd, Impl::Keepalived] {
                    match scale_row(&mut ctx, imp, n, phase, window, args.hmac) {
                        Ok(r) => {
                            let total: u64 = r.rss_kib.iter().sum();
                            let parts = if r.rss_kib.len() > 1 {
                                format!(
                                    " ({})",
                                    r.rss_kib
                                        .iter()
                                        .map(|k| format!("{:.1}", *k as f64 / 1024.0))
                                        .collect::<Vec<_>>()
                                        .join(" + ")
                                )
                            } else {
                                String::new()
                            };
                            println!(
                                "| {} | {} | {n} | {} | {:.1} | {:.0} | {:.2} | {:.1}{parts} |",
                                imp.name(),
                                phase.name(),
                                r.vips_up,
                                r.startup_s,
                                r.adverts_per_s,
                                r.cpu_pct,
                                total as f64 / 1024.0
                            );
                        }
                        Err(e) => println!(
                            "| {} | {} | {n} | error: {e} | | | | |",
                            imp.name(),
                            phase.name()
                        ),
                    }
                }
            }
        }
        println!();
    }
    Ok(())
}
