//! `vipd`'s command line (the binary's behaviour is in `src/bin/vipd.rs`; the man page and
//! shell completions are generated from these definitions).

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "vipd", version, about = "VRRP virtual-IP failover agent")]
pub struct Cli {
    /// Configuration file (TOML). With --check it may be repeated (one file per peer).
    /// `-f FILE` (keepalived's spelling) works too.
    #[arg(short, long, short_alias = 'f', global = true)]
    pub config: Vec<PathBuf>,
    /// Validate the configuration(s), print errors and warnings, and exit (1 on errors). Given
    /// the files of every router of a virtual router, also warns about what they disagree on
    /// (VRID, version, interval, authentication, checksum form, VIPs, unicast peers, equal
    /// priorities) and about tracker weights that can never move the VIP.
    #[arg(long)]
    pub check: bool,
    /// With --check: skip what depends on this host (programs exist and pass
    /// enable_script_security, script users exist), to check another host's file.
    #[arg(long, requires = "check")]
    pub no_host_checks: bool,
    /// With --check: exit non-zero on warnings too (for CI).
    #[arg(long, requires = "check")]
    pub strict: bool,
    /// With --check: also ask the vipd running on this host (through the file's
    /// control_socket) what reloading this file would do to each instance ("unchanged",
    /// "updated in place: <keys>", "restart: the VIP will move", ...). Changes nothing.
    #[arg(long, requires = "check")]
    pub against_running: bool,
    /// Print the JSON schema of the configuration file (for editors: taplo / Even Better TOML)
    /// and exit. The package ships it as /usr/share/vipd/vipd.schema.json.
    #[arg(long, conflicts_with = "check")]
    pub print_schema: bool,
    /// More configuration files to check (only with --check).
    #[arg(value_name = "FILE", requires = "check")]
    pub files: Vec<PathBuf>,
    /// Internal (the previous binary of `vipctl upgrade` passes it): the descriptor of the
    /// state to go on from.
    #[arg(long, hide = true, value_name = "FD")]
    pub handover_fd: Option<i32>,
    /// Internal (asked by the running binary before `vipctl upgrade` hands over): load the
    /// configuration, print the handover formats this binary reads, and exit.
    #[arg(long, hide = true)]
    pub upgrade_probe: bool,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax); RUST_LOG overrides it.
    #[arg(long, default_value = "info", global = true)]
    pub log: String,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}
