//! vipd's BGP announcement (`[instance.announce]`) next to ExaBGP with its healthcheck.
//!
//! ```text
//! cargo build --release --bins --examples
//! sudo target/release/examples/bgp_bench [--reps 10]
//! ```
//!
//! The routed lab of `vipd_lab::bgp`: a router (FRR 8.4 bgpd, ECMP, BFD 3 x 100 ms), two load
//! balancers in subnets of their own, a client. Active-active: both announce 203.0.113.10/32.
//! Per load-balancer speaker (vipd + FRR, vipd + BIRD 2, ExaBGP 4.2 + exabgp-healthcheck)
//! and repetition:
//!
//! - **health failure → route gone**: lb0's check (`test "$(cat FILE)" = 0`, every 100 ms, fall
//!   1, rise 1: vipd's `[[track_script]]`, ExaBGP's `--cmd`) starts failing (the file gets `1`);
//!   measured until the router's forwarding table has lb1 as its only next hop. Also split
//!   at the moment the VIP leaves lb0's `lo` (netlink event), i.e. when the node has decided:
//!   **decision → route gone** is the BGP daemon's and the router's share.
//! - **recovery → back in ECMP**: the file gets `0` again, until both are next hops.
//! - **host death → traffic moved**: the load balancer carrying the client's pings (one every
//!   10 ms) loses its uplink (every frame dropped, carrier up); until the router has only the
//!   other next hop, and until the other answers the client. Detection is the router's BFD for
//!   FRR and BIRD; ExaBGP has no BFD, so its sessions fall back on the 3 s hold timer.
//!
//! kube-vip is not measured: it is not in Debian's packages nor in any registry this machine
//! reaches (docs/benchmarks.md). Prints a Markdown table; per-repetition lines go to stderr.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use vipd_lab::bgp::{self, Fabric, Speaker, TABLE, VIP};
use vipd_lab::ns::{ChildGuard, Netns};
use vipd_lab::watch::AddrWatcher;

#[derive(Parser, Debug)]
struct Args {
    /// Repetitions per row.
    #[arg(long, default_value_t = 10)]
    reps: usize,
    /// The vipd binary.
    #[arg(long)]
    vipd: Option<PathBuf>,
    /// Only these rows (comma-separated: frr, bird, exabgp).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Who {
    Vipd(Speaker),
    ExaBgp,
}

impl Who {
    fn name(self) -> String {
        match self {
            Who::Vipd(s) => format!("vipd + {}", s.name()),
            Who::ExaBgp => "ExaBGP 4.2 + healthcheck".into(),
        }
    }
}

const CHECK_INTERVAL: f64 = 0.1;

fn check_cmd(file: &Path) -> String {
    format!("test \"$(cat {})\" = 0", file.display())
}

fn vipd_config(dir: &Path, lb: usize, file: &Path) -> io::Result<PathBuf> {
    let text = format!(
        "[global]\ncontrol_socket = \"{}\"\nscript_user = \"root\"\n\n\
         [[track_script]]\nname = \"lb\"\nshell = '{}'\ninterval = \"100ms\"\ntimeout = \"1s\"\nrise = 1\nfall = 1\nweight = 0\n\n\
         [[instance]]\nname = \"web\"\ninterface = \"up0\"\nvips = [\"{VIP}\"]\ntrack_scripts = [\"lb\"]\n\n\
         [instance.announce]\npolicy = \"active-active\"\ntable = {TABLE}\n",
        dir.join(format!("lb{lb}.sock")).display(),
        check_cmd(file)
    );
    let cfg = dir.join(format!("lb{lb}.toml"));
    std::fs::write(&cfg, text)?;
    Ok(cfg)
}

#[derive(Default)]
struct Row {
    health_gone: Vec<Duration>,
    decision_gone: Vec<Duration>,
    recovery: Vec<Duration>,
    death_route: Vec<Duration>,
    death_traffic: Vec<Duration>,
}

fn wait(timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<Instant> {
    let t0 = Instant::now();
    loop {
        if cond() {
            return Some(Instant::now());
        }
        if t0.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// The load balancers the router forwards the VIP to.
fn hops(f: &Fabric) -> Vec<usize> {
    f.lbs_routed(IpAddr::V4(VIP))
}

fn run(who: Who, reps: usize, vipd: &Path) -> io::Result<Row> {
    let mut f = Fabric::new("bgpbench", 2)?;
    let dir = f.dir().to_path_buf();
    let files: Vec<PathBuf> = (0..2).map(|i| dir.join(format!("lb{i}.health"))).collect();
    let mut vipds: Vec<ChildGuard> = Vec::new();
    for (i, file) in files.iter().enumerate() {
        std::fs::write(file, "0\n")?;
        match who {
            Who::Vipd(s) => {
                f.start_speaker(i, s)?;
                let cfg = vipd_config(&dir, i, file)?;
                vipds.push(f.lbs[i].spawn_logged(
                    &[
                        &vipd.display().to_string(),
                        "--config",
                        &cfg.display().to_string(),
                        "--log",
                        "warn",
                    ],
                    &dir.join(format!("vipd-lb{i}.log")),
                )?);
            }
            Who::ExaBgp => {
                // ExaBGP splits its `run` line on spaces: the check is a script.
                let script = dir.join(format!("check-lb{i}.sh"));
                std::fs::write(&script, format!("#!/bin/sh\n{}\n", check_cmd(file)))?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
                f.start_exabgp(i, &script.display().to_string(), CHECK_INTERVAL)?
            }
        }
    }
    let (both, only1) = ([0, 1], [1]);
    let fail = |f: &Fabric, what: &str| -> io::Error {
        io::Error::other(format!("{}: {what}\n{}", who.name(), f.logs()))
    };
    if f.wait_lbs(IpAddr::V4(VIP), &both, Duration::from_secs(30))
        .is_none()
    {
        return Err(fail(&f, "both never announced"));
    }
    let mut row = Row::default();
    for rep in 0..reps {
        std::thread::sleep(Duration::from_millis(700 + (rep as u64 * 37) % 100));
        let mut w = AddrWatcher::start(f.lbs[0].name())?;
        let t0 = Instant::now();
        std::fs::write(&files[0], "1\n")?;
        let Some(gone) = wait(Duration::from_secs(10), || hops(&f) == only1) else {
            return Err(fail(&f, "lb0's route never went"));
        };
        let decided = w.wait(t0, IpAddr::V4(VIP), false, Duration::from_millis(10));
        row.health_gone.push(gone - t0);
        if let Some(d) = decided {
            row.decision_gone.push(gone.saturating_duration_since(d));
        }
        std::thread::sleep(Duration::from_millis(300));
        let t1 = Instant::now();
        std::fs::write(&files[0], "0\n")?;
        let Some(back) = wait(Duration::from_secs(10), || hops(&f) == both) else {
            return Err(fail(&f, "lb0 never came back"));
        };
        row.recovery.push(back - t1);
        eprintln!(
            "{} rep {rep}: health failure -> route gone {:.1} ms (decision -> gone {}), recovery -> ECMP {:.1} ms",
            who.name(),
            ms(gone - t0),
            decided.map_or("-".into(), |d| format!(
                "{:.1} ms",
                ms(gone.saturating_duration_since(d))
            )),
            ms(back - t1)
        );
    }
    // Host death, fewer repetitions (each costs a BFD or hold-timer recovery).
    for rep in 0..reps.div_ceil(2) {
        if f.wait_lbs(IpAddr::V4(VIP), &both, Duration::from_secs(30))
            .is_none()
        {
            return Err(fail(&f, "not both in ECMP before host death"));
        }
        std::thread::sleep(Duration::from_secs(2));
        // BFD up on every session (two per load balancer: IPv4 and IPv6); ExaBGP has none.
        if matches!(who, Who::Vipd(_))
            && wait(Duration::from_secs(20), || f.bfd_up() >= 4).is_none()
        {
            return Err(fail(&f, "BFD sessions did not come up"));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let before: Vec<u64> = (0..2).map(|i| f.echo_replies(i)).collect();
        let pinger = {
            let client = f.client.name().to_owned();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let c = Netns::existing(&client);
                while !stop.load(Ordering::Relaxed) {
                    let _ = c.ping_timeout(IpAddr::V4(VIP), Duration::from_millis(10));
                }
            })
        };
        std::thread::sleep(Duration::from_millis(300));
        let carrying = (0..2)
            .max_by_key(|&i| f.echo_replies(i) - before[i])
            .unwrap_or(0);
        let other = 1 - carrying;
        let t0 = Instant::now();
        f.isolate(carrying)?;
        let base = f.echo_replies(other);
        let only = [other];
        let route = wait(Duration::from_secs(15), || hops(&f) == only);
        let traffic = wait(Duration::from_secs(15), || f.echo_replies(other) > base);
        stop.store(true, Ordering::Relaxed);
        let _ = pinger.join();
        f.heal(carrying)?;
        let (Some(route), Some(traffic)) = (route, traffic) else {
            return Err(fail(&f, "host death: the route or the traffic never moved"));
        };
        row.death_route.push(route - t0);
        row.death_traffic.push(traffic - t0);
        eprintln!(
            "{} host death rep {rep}: route gone {:.1} ms, client answered by lb{other} {:.1} ms",
            who.name(),
            ms(route - t0),
            ms(traffic - t0)
        );
    }
    drop(vipds);
    Ok(row)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn stats(v: &[Duration]) -> String {
    if v.is_empty() {
        return "—".into();
    }
    let mut s: Vec<f64> = v.iter().map(|d| ms(*d)).collect();
    s.sort_by(f64::total_cmp);
    let med = s[s.len() / 2];
    let max = s[s.len() - 1];
    format!("{med:.0} / {max:.0}")
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    let vipd = match args.vipd {
        Some(p) => p,
        None => vipd_lab::sibling_binary("vipd")?,
    };
    let wanted = |k: &str| args.only.is_empty() || args.only.iter().any(|o| o == k);
    let mut whos = Vec::new();
    if wanted("frr") {
        whos.push(Who::Vipd(Speaker::Frr));
    }
    if wanted("bird") {
        whos.push(Who::Vipd(Speaker::Bird));
    }
    if wanted("exabgp") {
        if bgp::exabgp_available() {
            whos.push(Who::ExaBgp);
        } else {
            eprintln!("ExaBGP is not installed (apt-get install exabgp): its row is left out");
        }
    }
    let mut rows = Vec::new();
    for who in whos {
        rows.push((who, run(who, args.reps, &vipd)?));
    }
    println!(
        "| load balancer | health failure → route gone at the router | decision → route gone | recovery → back in ECMP | host death → route gone | host death → client answered by the other |"
    );
    println!("|---|---|---|---|---|---|");
    for (who, r) in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            who.name(),
            stats(&r.health_gone),
            stats(&r.decision_gone),
            stats(&r.recovery),
            stats(&r.death_route),
            stats(&r.death_traffic)
        );
    }
    println!(
        "\nms, median / max; {} repetitions ({} of host death); checks every {:.0} ms, BFD {} x {} ms.",
        args.reps,
        args.reps.div_ceil(2),
        CHECK_INTERVAL * 1e3,
        bgp::BFD_MULTIPLIER,
        bgp::BFD_INTERVAL_MS
    );
    Ok(())
}
