//! vipd next to keepalived: load-balancer health failure → VIP moved.
//!
//! ```text
//! cargo build --release --bins --examples
//! sudo target/release/examples/health_bench [--reps 9] [--interval-ms 1000]
//! ```
//!
//! A 2-node namespace LAN (master h0 priority 150, backup h1 priority 100, preempt on, VRRPv3).
//! The master follows a tracked file (vipd `[[track_file]]`, keepalived `vrrp_track_file`, the
//! same value × weight semantics); the health failure is writing `1` into it. Measured: from
//! that write to the VIP's RTM_NEWADDR in the backup's namespace. Tracker variants: weight 0
//! (the master goes to FAULT and hands over with priority 0), weight -60 (the master advertises
//! 90 < 100; the preempting backup ignores it and waits out Master_Down_Interval, RFC 9568), and
//! weight -60 with vipd's `fast_preempt` (the backup takes over one Skew_Time after the lower
//! advert; keepalived has no equivalent). Each repetition faults at its own phase after one of
//! the master's adverts, the same phases for both implementations; the file goes back to `0`
//! and the pair settles (the master preempts back) before the next one.
//!
//! Prints a Markdown table (docs/benchmarks.md). Needs root, keepalived, and the vipd binary
//! (default: next to this example's directory, i.e. target/release/).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use nix::sys::signal::Signal;
use vipd_lab::keepalived::{self, Keepalived, Spec};
use vipd_lab::lan::{ChildGuard, Lan, Netns};
use vipd_lab::watch::AddrWatcher;
use vipd_proto::{Version, master_down_interval, skew_time};

#[derive(Parser, Debug)]
struct Args {
    /// Repetitions per row.
    #[arg(long, default_value_t = 9)]
    reps: usize,
    /// Advert interval, ms.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// The vipd binary.
    #[arg(long)]
    vipd: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Impl {
    Vipd,
    Keepalived,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    Fault,
    Negative,
    NegativeFast,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Fault => "weight 0 (FAULT, priority-0 handover)",
            Variant::Negative => "weight -60 (150 → 90 < 100)",
            Variant::NegativeFast => "weight -60, vipd `fast_preempt = true`",
        }
    }
    fn weight(self) -> i32 {
        match self {
            Variant::Fault => 0,
            Variant::Negative | Variant::NegativeFast => -60,
        }
    }
}

enum Node {
    Vipd(ChildGuard),
    Ka(Keepalived),
}

fn start(
    imp: Impl,
    ns: &Netns,
    dir: &std::path::Path,
    spec: &Spec,
    tag: &str,
    vipd: &std::path::Path,
) -> io::Result<Node> {
    match imp {
        Impl::Vipd => {
            let cfg = dir.join(format!("{tag}.toml"));
            let sock = dir.join(format!("{tag}.sock"));
            std::fs::write(
                &cfg,
                keepalived::vipd_toml(tag, &sock, std::slice::from_ref(spec)),
            )?;
            let child = ns.spawn_logged(
                &[
                    &vipd.display().to_string(),
                    "--config",
                    &cfg.display().to_string(),
                    "--log",
                    "warn",
                ],
                &dir.join(format!("{tag}.log")),
            )?;
            Ok(Node::Vipd(child))
        }
        Impl::Keepalived => Ok(Node::Ka(Keepalived::start(
            ns,
            dir,
            tag,
            &keepalived::keepalived_conf(tag, std::slice::from_ref(spec)),
        )?)),
    }
}

fn stop(node: Node) -> io::Result<()> {
    match node {
        Node::Vipd(mut c) => {
            c.signal(Signal::SIGTERM)?;
            c.wait_timeout(Duration::from_secs(5))?;
        }
        Node::Ka(mut k) => {
            k.stop()?;
            k.wait_exit(Duration::from_secs(5))?;
        }
    }
    Ok(())
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

/// Fault → VIP up on the backup, per repetition.
fn row(
    imp: Impl,
    variant: Variant,
    reps: usize,
    interval: Duration,
    vipd: &std::path::Path,
    run: usize,
) -> io::Result<Vec<Duration>> {
    let lan = Lan::new("health", 2)?;
    let vip = lan.vip(false);
    let (h0, h1) = (lan.host(0).ns.clone(), lan.host(1).ns.clone());
    let dir = std::env::temp_dir().join(format!("vipd-healthbench-{}-{run}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("lb-health");
    std::fs::write(&file, "0\n")?;
    let mut master = Spec::new(51, 150, interval, vip, 24);
    master.track_file = Some((file.clone(), variant.weight()));
    let mut backup = Spec::new(51, 100, interval, vip, 24);
    backup.fast_preempt = variant == Variant::NegativeFast;
    let b = start(imp, &h1, &dir, &backup, "h1", vipd)?;
    let m = start(imp, &h0, &dir, &master, "h0", vipd)?;
    let steady =
        || -> io::Result<bool> { Ok(h0.has_addr("eth0", vip)? && !h1.has_addr("eth0", vip)?) };
    let mut out = Vec::new();
    for rep in 0..reps {
        if !wait_until(Duration::from_secs(30), &steady)? {
            return Err(io::Error::other(format!(
                "{imp:?} {variant:?}: the pair never settled"
            )));
        }
        // Settled for a while (the master's second GARP burst is past), then the fault lands
        // at this repetition's phase of the advert interval (the same for both
        // implementations).
        std::thread::sleep(Duration::from_secs(2) + interval.mul_f64((rep as f64 * 0.382) % 1.0));
        let mut w = AddrWatcher::start(h1.name())?;
        let t0 = Instant::now();
        std::fs::write(&file, "1\n")?;
        let up = w.wait(t0, vip, true, Duration::from_secs(20));
        let Some(up) = up else {
            return Err(io::Error::other(format!(
                "{imp:?} {variant:?}: the VIP never moved"
            )));
        };
        let dt = up - t0;
        eprintln!(
            "{imp:?} {variant:?} rep {rep}: health failure → VIP up on the backup {:.1} ms",
            dt.as_secs_f64() * 1e3
        );
        out.push(dt);
        std::fs::write(&file, "0\n")?;
    }
    stop(m)?;
    stop(b)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn summary(s: &[Duration]) -> String {
    let mut v: Vec<f64> = s.iter().copied().map(ms).collect();
    v.sort_by(f64::total_cmp);
    let (Some(min), Some(max)) = (v.first(), v.last()) else {
        return "–".into();
    };
    let med = v[v.len() / 2];
    format!("{med:.1} ({min:.1} … {max:.1})")
}

fn median(s: &[Duration]) -> Option<f64> {
    let mut v: Vec<f64> = s.iter().copied().map(ms).collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    vipd_lab::lan::require_root()?;
    let vipd = match &args.vipd {
        Some(p) => p.clone(),
        None => vipd_lab::sibling_binary("vipd")?,
    };
    if !keepalived::available() {
        return Err(io::Error::other("keepalived is not installed"));
    }
    let interval = Duration::from_millis(args.interval_ms);
    let variants = [Variant::Fault, Variant::Negative, Variant::NegativeFast];
    let mut rows: Vec<(Variant, Impl, Vec<Duration>)> = Vec::new();
    let mut run = 0;
    for v in variants {
        for imp in [Impl::Vipd, Impl::Keepalived] {
            if imp == Impl::Keepalived && v == Variant::NegativeFast {
                continue;
            }
            run += 1;
            rows.push((v, imp, row(imp, v, args.reps, interval, &vipd, run)?));
        }
    }
    let skew = skew_time(Version::V3, 100, interval);
    let mdi = master_down_interval(Version::V3, 100, interval);
    println!(
        "## Health failure → VIP moved (VRRPv3, {} ms adverts, master 150 with a tracked file / backup 100, preempt on; {} repetitions: median (min … max), ms)",
        args.interval_ms, args.reps
    );
    println!();
    println!(
        "| tracker on the master | protocol bound after detection | vipd | keepalived 2.2.7 | vipd / keepalived (median) |"
    );
    println!("|---|---|---|---|---|");
    for v in variants {
        let get = |imp: Impl| {
            rows.iter()
                .find(|(x, i, _)| *x == v && *i == imp)
                .map(|(_, _, s)| s.as_slice())
        };
        let bound = match v {
            Variant::Fault | Variant::NegativeFast => format!("Skew_Time(100) = {:.1}", ms(skew)),
            Variant::Negative => format!(
                "≤ Master_Down_Interval(100) = {:.1} (from the master's last higher advert)",
                ms(mdi)
            ),
        };
        let vs = get(Impl::Vipd).unwrap_or(&[]);
        let ks = get(Impl::Keepalived);
        let ratio = match (median(vs), ks.and_then(median)) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.3}", a / b),
            _ => "–".into(),
        };
        println!(
            "| {} | {bound} | {} | {} | {ratio} |",
            v.name(),
            summary(vs),
            ks.map_or_else(|| "no equivalent".into(), summary)
        );
    }
    Ok(())
}
