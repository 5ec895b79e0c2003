//! `vipctl`'s command line (the binary's behaviour is in `src/bin/vipctl.rs`; the man page
//! and shell completions are generated from these definitions).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "vipctl", version, about = "Control and inspect vipd")]
pub struct Cli {
    /// vipd's control socket (default: the control_socket of --config, else
    /// /run/vipd/vipd.sock). Before the subcommand; not for check and import-keepalived,
    /// which do not talk to vipd.
    #[arg(short, long, env = "VIPD_CONTROL_SOCKET")]
    pub socket: Option<PathBuf>,
    /// vipd's configuration file (to find the control socket). Before the subcommand.
    #[arg(short, long, default_value = "/etc/vipd/vipd.toml")]
    pub config: PathBuf,
    /// Machine-readable output (status: the control protocol's status object; drill: its
    /// report), for every subcommand that prints a result.
    #[arg(short = 'j', long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// State of every instance: state and why, priorities and trackers, master, VIPs, counters.
    Status {
        /// Only this instance.
        instance: Option<String>,
    },
    /// Failover drills.
    Drill {
        #[command(subcommand)]
        what: DrillCmd,
    },
    /// Drain an instance (all without a name): hand over at once and never take over.
    Maintenance {
        /// on or off.
        mode: OnOff,
        /// Instance name (all instances when omitted).
        instance: Option<String>,
    },
    /// Re-read the configuration and apply it, in place where it can be (no VIP moves).
    Reload {
        /// Change nothing: print, per instance, what a reload would do ("unchanged",
        /// "updated in place: <keys>", "restart: the VIP will move", "added", "removed").
        #[arg(long)]
        dry_run: bool,
    },
    /// Upgrade without failover: vipd re-executes its binary (the one a package upgrade
    /// has just replaced, or --binary) in the same process and hands it its sockets and
    /// state; a master keeps its VIPs and backups notice nothing. Waits until the new binary
    /// has taken over and says how. `systemctl restart` instead hands over to a peer.
    Upgrade {
        /// The new binary (absolute path; default: the one vipd was started from).
        #[arg(long)]
        binary: Option<PathBuf>,
        /// How long to wait for the new binary to take over.
        #[arg(long, default_value = "30s", value_parser = parse_timeout)]
        timeout: Duration,
    },
    /// Convert a keepalived.conf (following its includes) to vipd's TOML on stdout; every
    /// keyword that is not converted, or converted with a change in meaning, is listed on
    /// stderr and in the output's header. Review the result with `vipctl check`.
    ImportKeepalived {
        /// The keepalived.conf.
        file: PathBuf,
        /// Write the result even when a security setting (IPsec AH, an auth_hmac or
        /// unicast_peer option it cannot read) could not be carried over. Without it,
        /// such a conversion prints its notes, no configuration, and exits with status 3.
        #[arg(long)]
        accept_weaker: bool,
        /// keepalived's config id (`keepalived -i NAME`): which `@NAME` / `@^NAME` lines
        /// apply and what `${_INSTANCE}` is. Default: this host's name up to the first dot,
        /// as keepalived. Convert a shared template once per host.
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
    },
    /// Validate configuration files (several files: cross-check peers' priorities and weights).
    Check {
        /// Configuration files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Skip what depends on this host (programs exist and pass enable_script_security,
        /// script users exist), to check another host's file.
        #[arg(long)]
        no_host_checks: bool,
        /// Exit non-zero on warnings too (for CI).
        #[arg(long)]
        strict: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum DrillCmd {
    /// On the master: hand over (priority 0), watch a peer take over, print the timeline,
    /// then restore. Fails if no peer took over within the protocol bound.
    Failover {
        /// Instance (the only master instance when omitted).
        instance: Option<String>,
        /// Simulate a dead master (no priority-0 advert) to measure real detection time.
        #[arg(long)]
        crash: bool,
        /// Do not ask: the drill moves the production VIP to a peer and back (clients see a
        /// short interruption). Without it, vipctl asks on a terminal and refuses elsewhere.
        #[arg(short, long)]
        yes: bool,
    },
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    vipd_config::parse_duration(s).map_err(|e| e.to_string())
}
