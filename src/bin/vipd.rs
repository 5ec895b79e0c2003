//! vipd: the VRRP agent. `vipd --config FILE` runs it, `vipd --check --config FILE` validates a
//! configuration, `vipd drill` runs a local failover drill between agents in network namespaces.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "vipd", version, about = "VRRP virtual-IP failover agent")]
struct Cli {
    /// Configuration file (TOML).
    #[arg(short, long, default_value = "/etc/vipd/vipd.toml", global = true)]
    config: PathBuf,
    /// Validate the configuration, print errors and warnings, and exit (1 on errors).
    #[arg(long)]
    check: bool,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax); RUST_LOG overrides it.
    #[arg(long, default_value = "info", global = true)]
    log: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Local failover drill: starts agents in network namespaces on an embedded default
    /// configuration, fails the master over and prints the timeline.
    Drill(vipd::lab::drill::DrillArgs),
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal as _;
    // Colours only on a terminal: journald and log files get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Drill(args)) = cli.command {
        return match vipd::lab::drill::run(&args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("vipd drill: {e}");
                ExitCode::from(2)
            }
        };
    }
    if cli.check {
        return match vipd::config::load(&cli.config) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    eprintln!("{w}");
                }
                println!(
                    "{}: ok ({} instance(s), {} warning(s))",
                    cli.config.display(),
                    loaded.config.instances.len(),
                    loaded.warnings.len()
                );
                ExitCode::SUCCESS
            }
            Err(diags) => {
                eprintln!("{diags}");
                ExitCode::from(1)
            }
        };
    }
    init_logging(cli.log_format, &cli.log);
    let loaded = match vipd::config::load(&cli.config) {
        Ok(l) => l,
        Err(diags) => {
            eprintln!("{diags}");
            return ExitCode::from(1);
        }
    };
    for w in &loaded.warnings {
        tracing::warn!(target: "vipd::config", "{w}");
    }
    match vipd::daemon::run(loaded.config, cli.config.clone()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "vipd stopped on an error");
            ExitCode::from(1)
        }
    }
}
