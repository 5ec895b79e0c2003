//! vipd: the VRRP agent. `vipd --config FILE` runs it, `vipd --check --config FILE` validates a
//! configuration; `vipd --check lb1.toml lb2.toml` (or `-c lb1.toml -c lb2.toml`) validates
//! several peers' files and cross-checks their tracker weights.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser as _;
use vipd::cli::vipd::{Cli, LogFormat};

/// Starts logging; with JSON, returns where the router id of the lines is set once the
/// configuration is read (until then: the host name).
fn init_logging(
    format: LogFormat,
    filter: &str,
) -> Option<std::sync::Arc<std::sync::RwLock<String>>> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal as _;
    // Colours only on a terminal: journald and log files get plain text; no module paths
    // (the sentence says what happened).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
            builder.init();
            None
        }
        LogFormat::Json => {
            let json =
                vipd::logfmt::FlatJson::new(vipd_config::Global::default().effective_router_id());
            let handle = json.router_id_handle();
            builder.event_format(json).init();
            Some(handle)
        }
    }
}

const DEFAULT_CONFIG: &str = "/etc/vipd/vipd.toml";

/// `vipd --check`: every file on its own, then the weights across files.
fn check(paths: &[PathBuf], host: vipd_config::HostChecks, strict: bool) -> ExitCode {
    if vipd_config::check_files(
        paths,
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

/// `vipd --check --against-running`: the running daemon's reload plan for each file.
fn against_running(paths: &[PathBuf]) -> ExitCode {
    let mut ok = true;
    for path in paths {
        let (text, socket) = match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| {
                vipd_config::parse_str(&t, path)
                    .map(|l| (t, l.config.global.control_socket))
                    .map_err(|d| d.to_string())
            }) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                ok = false;
                continue;
            }
        };
        let cmd = vipd::ctl::Command::ReloadPlan {
            config: Some(text),
            origin: Some(path.display().to_string()),
        };
        match vipd::ctl::request(&socket, cmd, std::time::Duration::from_secs(10)) {
            Ok(r) if r.ok => {
                for p in r.plan.unwrap_or_default() {
                    println!("{}: {p}", path.display());
                }
                if let Some(m) = r.message {
                    println!("{}: {m}", path.display());
                }
            }
            Ok(r) => {
                eprintln!("{}: {}", path.display(), r.error.unwrap_or_default());
                ok = false;
            }
            Err(e) => {
                eprintln!(
                    "{}: cannot ask the running vipd at {}: {e}",
                    path.display(),
                    socket.display()
                );
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.print_schema {
        return match serde_json::to_string_pretty(vipd_config::json_schema()) {
            Ok(s) => {
                println!("{s}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vipd: cannot print the schema: {e}");
                ExitCode::from(1)
            }
        };
    }
    if cli.check {
        let mut paths = cli.config.clone();
        paths.extend(cli.files.iter().cloned());
        if paths.is_empty() {
            paths.push(PathBuf::from(DEFAULT_CONFIG));
        }
        let host = if cli.no_host_checks {
            vipd_config::HostChecks::Skip
        } else {
            vipd_config::HostChecks::Daemon
        };
        let code = check(&paths, host, cli.strict);
        if cli.against_running && code == ExitCode::SUCCESS {
            return against_running(&paths);
        }
        return code;
    }
    let config = match cli.config.as_slice() {
        [] => PathBuf::from(DEFAULT_CONFIG),
        [one] => one.clone(),
        _ => {
            eprintln!(
                "vipd: --config may be given once when running (several files only with --check)"
            );
            return ExitCode::from(2);
        }
    };
    if cli.upgrade_probe {
        return match vipd_config::load(&config) {
            Ok(_) => {
                println!(
                    "{} {}",
                    vipd::daemon::upgrade::PROBE_ANSWER,
                    vipd::daemon::upgrade::FORMAT
                );
                ExitCode::SUCCESS
            }
            Err(diags) => {
                eprintln!("{diags}");
                ExitCode::from(1)
            }
        };
    }
    let router_id = init_logging(cli.log_format, &cli.log);
    // First, before anything else opens a descriptor: what the previous binary handed over.
    let handover = cli.handover_fd.and_then(vipd::daemon::upgrade::receive);
    let loaded = match vipd_config::load(&config) {
        Ok(l) => l,
        Err(diags) => {
            eprintln!("{diags}");
            return ExitCode::from(1);
        }
    };
    if let (Some(handle), Some(id)) = (&router_id, &loaded.config.global.router_id)
        && let Ok(mut h) = handle.write()
    {
        h.clone_from(id);
    }
    // One line per finding (the snippet is for terminals: `vipd --check`).
    for w in &loaded.warnings {
        tracing::warn!(file = %w.file.display(), line = w.line, column = w.column, "{}", w.one_line());
    }
    match vipd::daemon::run(loaded.config, config, handover) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "vipd stopped on an error");
            ExitCode::from(1)
        }
    }
}
