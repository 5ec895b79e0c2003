//! vipctl: talk to a running vipd (status, drills, maintenance, reload) and work with
//! configurations (check, import from keepalived).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser as _;
use vipd::cli::vipctl::{Cli, Cmd, DrillCmd, OnOff};
use vipd::ctl::{self, Command, DrillReport, InstanceStatus, Response, Status};

fn socket_path(cli: &Cli) -> PathBuf {
    if let Some(s) = &cli.socket {
        return s.clone();
    }
    match vipd_config::load_with(&cli.config, vipd_config::HostChecks::Skip) {
        Ok(l) => l.config.global.control_socket,
        Err(_) => PathBuf::from(vipd_config::DEFAULT_CONTROL_SOCKET),
    }
}

fn call(socket: &Path, cmd: Command, timeout: Duration) -> Result<Response, String> {
    ctl::request(socket, cmd, timeout).map_err(|e| e.to_string())
}

fn ago(unix_ms: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let secs = (now.saturating_sub(u128::from(unix_ms)) / 1000) as u64;
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7199 => format!("{}m", secs / 60),
        7200..=172_799 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

/// Whether instance `i` runs VRRP (every instance but an active-active announced one).
fn runs_vrrp(i: &InstanceStatus) -> bool {
    i.announce
        .as_ref()
        .is_none_or(|a| a.policy != "active-active")
}

fn print_status(st: &Status, only: Option<&str>) -> bool {
    let mut out = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "vipd {} on {} (pid {}, up {}), config {}",
        st.version,
        st.router_id,
        st.pid,
        ago(st.started_unix_ms),
        st.config
    );
    let insts: Vec<&InstanceStatus> = st
        .instances
        .iter()
        .filter(|i| only.is_none_or(|n| i.name == n))
        .collect();
    if insts.is_empty() {
        eprintln!("no such instance");
        return false;
    }
    let _ = writeln!(
        out,
        "\n{:<16} {:>4} {:<10} {:<9} {:>7} {:>9}  {:<24} {:<30} VIPS",
        "INSTANCE", "VRID", "IFACE", "STATE", "SINCE", "PRIO", "WHY", "MASTER (SINCE)"
    );
    for i in &insts {
        let prio = if i.base_priority == i.effective_priority {
            format!("{}", i.base_priority)
        } else {
            format!("{}->{}", i.base_priority, i.effective_priority)
        };
        let master = i
            .master
            .as_ref()
            .map(|m| match i.master_since_unix_ms {
                Some(t) => format!("{} ({}, {})", m.address, m.priority, ago(t)),
                None => format!("{} ({})", m.address, m.priority),
            })
            .unwrap_or_else(|| "-".into());
        let vips: Vec<String> = i
            .vips
            .iter()
            .map(|v| {
                let mut shown = v.address.clone();
                if let Some(dev) = &v.interface {
                    shown.push('@');
                    shown.push_str(dev);
                }
                if v.excluded {
                    shown.push_str("(x)");
                }
                if v.present {
                    shown.push('*');
                }
                shown
            })
            .collect();
        let state = if i.maintenance {
            format!("{}(m)", i.state)
        } else {
            i.state.clone()
        };
        let _ = writeln!(
            out,
            "{:<16} {:>4} {:<10} {:<9} {:>7} {:>9}  {:<24} {:<30} {}",
            i.name,
            if runs_vrrp(i) {
                i.vrid.to_string()
            } else {
                "-".to_owned()
            },
            i.interface,
            state,
            ago(i.since_unix_ms),
            prio,
            i.fault.clone().unwrap_or_else(|| i.reason.clone()),
            master,
            vips.join(" ")
        );
    }
    let _ = writeln!(
        out,
        "\n(* = VIP present on the interface, (m) = maintenance)"
    );
    for i in &insts {
        let c = &i.counters;
        if let Some(a) = &i.announce {
            let _ = writeln!(
                out,
                "\n{} (announced by BGP, {}{}):",
                i.name,
                a.policy,
                a.table
                    .map(|t| format!(", host routes in table {t}"))
                    .unwrap_or_default()
            );
            let _ = writeln!(
                out,
                "  {} for {} ({}), VIPs on {}",
                if a.announced {
                    "ANNOUNCED"
                } else {
                    "WITHDRAWN"
                },
                ago(a.since_unix_ms),
                a.reason,
                a.device
            );
        }
        // An active-active instance runs no VRRP: no interval, no master, no adverts to show.
        if runs_vrrp(i) {
            let _ = writeln!(
                out,
                "\n{} (VRRPv{}, source {}, {}):",
                i.name,
                i.version,
                i.source,
                if i.unicast_peers.is_empty() {
                    "multicast".to_string()
                } else {
                    format!("unicast to {}", i.unicast_peers.join(", "))
                }
            );
            let _ = writeln!(
                out,
                "  interval {} ms (master's {} ms), master down interval {:.1} ms, preempt {}{}",
                i.advert_interval_ms,
                i.master_advert_interval_ms,
                i.master_down_interval_ms,
                i.preempt,
                if i.preempt && i.preempt_delay_ms > 0 {
                    format!(" after {} ms", i.preempt_delay_ms)
                } else {
                    String::new()
                }
            );
        }
        if !i.trackers.is_empty() {
            let _ = writeln!(out, "  trackers:");
            for t in &i.trackers {
                let effect = if t.faults {
                    "-> FAULT".to_owned()
                } else {
                    format!("contributes {:+}", t.contribution)
                };
                let why = if t.detail.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", t.detail)
                };
                let _ = writeln!(
                    out,
                    "    {:<20} {:<9} {:<4} weight {:>4}  {effect}{why}",
                    t.name,
                    t.kind,
                    if t.up { "up" } else { "DOWN" },
                    t.weight,
                );
            }
        }
        let _ = writeln!(
            out,
            "  adverts sent {} received {} (priority 0: sent {} received {}), transitions {} (became master {}, master changes {}), gratuitous {}, VIPs restored {}, send errors {}",
            c.adverts_sent,
            c.adverts_received,
            c.priority_zero_sent,
            c.priority_zero_received,
            c.transitions,
            c.became_master,
            c.master_changes,
            c.gratuitous_sent,
            c.vips_restored,
            c.send_errors
        );
        if !c.drops.is_empty() {
            let d: Vec<String> = c.drops.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(out, "  drops: {}", d.join(" "));
        }
        if c.lower_priority_received > 0 {
            let _ = writeln!(
                out,
                "  other routers that believed they were master: {} (answered; the VIPs were re-announced)",
                c.lower_priority_received
            );
        }
        if c.address_list_mismatch > 0 {
            let _ = writeln!(
                out,
                "  adverts with another VIP list: {} (check both configurations)",
                c.address_list_mismatch
            );
        }
        for a in &i.alarms {
            let detail = if a.detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", a.detail)
            };
            let _ = writeln!(
                out,
                "  ALARM {}: {} {}{detail}; since {} ago, {} times",
                a.kind,
                a.peer,
                a.meaning,
                ago(a.since_unix_ms),
                a.count
            );
        }
        if !i.transitions.is_empty() {
            let _ = writeln!(out, "  last transitions:");
            for t in i.transitions.iter().rev().take(5) {
                let _ = writeln!(
                    out,
                    "    {:>6} ago  {} -> {}  ({})",
                    ago(t.unix_ms),
                    t.from,
                    t.to,
                    t.reason
                );
            }
        }
        if let Some(d) = &i.last_drill {
            let _ = writeln!(
                out,
                "  last drill: {} {} ago: {}",
                if d.crash { "crash" } else { "handover" },
                ago(d.started_unix_ms),
                match d.total_ms {
                    Some(t) => format!("{t:.1} ms (bound {:.1} ms)", d.bound_ms),
                    None => d.problem.clone().unwrap_or_default(),
                }
            );
        }
    }
    for (ifname, drops) in &st.interface_drops {
        let d: Vec<String> = drops.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            out,
            "\n{ifname}: dropped before any instance: {}",
            d.join(" ")
        );
    }
    if st.queue_full_drops > 0 {
        let _ = writeln!(out, "receive queue overflows: {}", st.queue_full_drops);
    }
    let _ = std::io::stdout().write_all(out.as_bytes());
    true
}

/// A drill moves the production VIP: ask first (on a terminal), or require `--yes`.
fn confirm_drill(yes: bool, instance: Option<&str>, crash: bool) -> Result<(), String> {
    use std::io::IsTerminal as _;
    if yes {
        return Ok(());
    }
    let what = instance.map_or_else(|| "the master instance's".to_owned(), |i| format!("{i}'s"));
    if !std::io::stdin().is_terminal() {
        return Err(format!(
            "a drill moves {what} VIP to a peer and back: pass --yes to run it without asking"
        ));
    }
    eprint!(
        "This moves {what} VIP to a peer and back{}: clients see a short interruption. Continue? [y/N] ",
        if crash {
            " (this node goes silent as if it had crashed)"
        } else {
            ""
        }
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES") {
        Ok(())
    } else {
        Err("not confirmed: nothing done".into())
    }
}

fn print_drill(d: &DrillReport) {
    println!(
        "failover drill on {} ({}):",
        d.instance,
        if d.crash {
            "simulated crash, no priority-0 advert"
        } else {
            "clean handover with priority 0"
        }
    );
    let mut steps: Vec<_> = d.steps.iter().collect();
    steps.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    for s in steps {
        println!("  [{:>8.1} ms] {}", s.at_ms, s.what);
    }
    match d.total_ms {
        Some(t) => println!(
            "  total {t:.1} ms; protocol bound {:.1} ms: {}",
            d.bound_ms,
            if d.ok { "within" } else { "OVER" }
        ),
        None => println!("  no takeover observed"),
    }
    if let Some(p) = &d.problem {
        println!("  problem: {p}");
    }
    if d.crash {
        println!(
            "  note: a real crash leaves more behind. If only vipd dies (SIGKILL, OOM), the VIPs stay on this host, answering ARP beside the new master's, until vipd restarts and removes them; if the host dies they die with it. The drill releases them at once, so it measures detection and takeover, not that window."
        );
    }
    println!("result: {}", if d.ok { "PASS" } else { "FAIL" });
}

fn check(files: &[PathBuf], no_host_checks: bool, strict: bool) -> ExitCode {
    let host = if no_host_checks {
        vipd_config::HostChecks::Skip
    } else {
        vipd_config::HostChecks::Run
    };
    if vipd_config::check_files(
        files,
        host,
        strict,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    ) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let socket = socket_path(&cli);
    let result: Result<bool, String> = match &cli.command {
        Cmd::Check {
            files,
            no_host_checks,
            strict,
        } => return check(files, *no_host_checks, *strict),
        Cmd::ImportKeepalived {
            file,
            accept_weaker,
            host,
        } => return import(file, *accept_weaker, host.clone()),
        Cmd::Status { instance } => call(&socket, Command::Status, Duration::from_secs(5))
            .and_then(|r| {
                let mut st = r
                    .status
                    .ok_or_else(|| r.error.unwrap_or_else(|| "no status".into()))?;
                if let Some(n) = instance {
                    st.instances.retain(|i| &i.name == n);
                    if st.instances.is_empty() {
                        return Err(format!("no such instance `{n}`"));
                    }
                }
                if cli.json {
                    serde_json::to_string_pretty(&st)
                        .map(|s| {
                            println!("{s}");
                            true
                        })
                        .map_err(|e| e.to_string())
                } else {
                    Ok(print_status(&st, instance.as_deref()))
                }
            }),
        Cmd::Drill {
            what:
                DrillCmd::Failover {
                    instance,
                    crash,
                    yes,
                },
        } => confirm_drill(*yes, instance.as_deref(), *crash).and_then(|()| {
            call(
                &socket,
                Command::Drill {
                    instance: instance.clone(),
                    crash: *crash,
                },
                Duration::from_secs(120),
            )
            .and_then(|r| match r.drill {
                Some(d) => {
                    if cli.json {
                        println!("{}", serde_json::to_string_pretty(&d).unwrap_or_default());
                    } else {
                        print_drill(&d);
                    }
                    Ok(d.ok)
                }
                None => Err(r.error.unwrap_or_else(|| "the drill did not run".into())),
            })
        }),
        Cmd::Maintenance { mode, instance } => call(
            &socket,
            Command::Maintenance {
                instance: instance.clone(),
                on: matches!(mode, OnOff::On),
            },
            Duration::from_secs(5),
        )
        .and_then(done),
        Cmd::Reload { dry_run: false } => {
            call(&socket, Command::Reload, Duration::from_secs(30)).and_then(done)
        }
        Cmd::Upgrade { binary, timeout } => upgrade(&socket, binary.clone(), *timeout),
        Cmd::Reload { dry_run: true } => call(
            &socket,
            Command::ReloadPlan {
                config: None,
                origin: None,
            },
            Duration::from_secs(10),
        )
        .and_then(print_plan),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) if e.starts_with("no such instance") => {
            eprintln!("vipctl: {e}");
            ExitCode::from(4)
        }
        Err(e) => {
            eprintln!("vipctl: {e}");
            ExitCode::from(2)
        }
    }
}

/// `vipctl upgrade`: asks for it, then waits until the new binary answers with its upgrade
/// generation one higher than before.
fn upgrade(socket: &Path, binary: Option<PathBuf>, timeout: Duration) -> Result<bool, String> {
    let status = |t: Duration| -> Result<Status, String> {
        let r = call(socket, Command::Status, t)?;
        r.status
            .ok_or_else(|| r.error.unwrap_or_else(|| "no status".into()))
    };
    let before = status(Duration::from_secs(10))?;
    let generation = before.upgrade.as_ref().map_or(0, |u| u.generation);
    match call(socket, Command::Upgrade { binary }, Duration::from_secs(30)) {
        Ok(r) if !r.ok => return Err(r.error.unwrap_or_else(|| "upgrade refused".into())),
        Ok(r) => {
            if let Some(m) = r.message {
                println!("{m}");
            }
        }
        // The process image went before the answer was written: the poll below tells.
        Err(_) => {}
    }
    let deadline = std::time::Instant::now() + timeout;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(st) = status(Duration::from_secs(2)) {
            match &st.upgrade {
                Some(u) if u.generation > generation && st.pid == before.pid => {
                    println!(
                        "upgraded in place: vipd {} -> {} (pid {} kept): {} instance(s) resumed ({} master(s) kept their VIPs), {} started afresh",
                        u.from_version, st.version, st.pid, u.resumed, u.masters, u.fresh
                    );
                    return Ok(true);
                }
                _ if st.pid != before.pid => {
                    return Err(format!(
                        "vipd was restarted (pid {} -> {}) instead of upgraded in place: its VIPs moved",
                        before.pid, st.pid
                    ));
                }
                _ if st.started_unix_ms != before.started_unix_ms => {
                    return Err(
                        "the new binary started afresh instead of taking the state over (see its log): this node's VIPs moved to a peer"
                            .into(),
                    );
                }
                _ => {}
            }
        }
        if std::time::Instant::now() >= deadline {
            return Err(format!(
                "no answer from an upgraded vipd within {} s (see its log)",
                timeout.as_secs()
            ));
        }
    }
}

/// Prints a reload plan, one line per instance.
fn print_plan(r: Response) -> Result<bool, String> {
    if !r.ok {
        return Err(r.error.unwrap_or_else(|| "failed".into()));
    }
    for p in r.plan.unwrap_or_default() {
        println!("{p}");
    }
    if let Some(m) = r.message {
        println!("{m}");
    }
    Ok(true)
}

fn done(r: Response) -> Result<bool, String> {
    if r.ok {
        if let Some(m) = r.message {
            println!("{m}");
        }
        Ok(true)
    } else {
        Err(r.error.unwrap_or_else(|| "failed".into()))
    }
}

fn import(file: &Path, accept_weaker: bool, host: Option<String>) -> ExitCode {
    let opts = vipd_config::import::Options {
        host,
        env: Some(std::env::vars().collect()),
    };
    match vipd_config::import::convert_file_with(file, &opts) {
        Ok(conv) => {
            for n in &conv.notes {
                eprintln!("{n}");
            }
            if conv.weakens_security() && !accept_weaker {
                let lost = conv
                    .notes
                    .iter()
                    .filter(|n| n.severity == vipd_config::import::NoteSeverity::SecurityLost)
                    .count();
                eprintln!(
                    "vipctl import-keepalived: refusing to write a weaker configuration: {lost} security setting(s) above (SECURITY NOT CONVERTED) cannot be carried over, so vipd would accept adverts keepalived refuses. Fix them in keepalived.conf (use auth_hmac instead of AH), or rerun with --accept-weaker to write the result anyway"
                );
                return ExitCode::from(3);
            }
            print!("{}", conv.toml);
            let not_converted = conv
                .notes
                .iter()
                .filter(|n| n.severity == vipd_config::import::NoteSeverity::NotConverted)
                .count();
            eprintln!(
                "vipctl import-keepalived: {} note(s), {not_converted} not converted; check the result with `vipctl check`",
                conv.notes.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}
