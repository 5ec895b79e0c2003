//! `vipd-drill`: the local failover drill (the README's first command runs it through
//! `scripts/drill.sh`). Dev-only: it lives in the lab crate, never in the product binaries.

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "vipd drill",
    version,
    about = "Local failover drill: starts vipd agents in network namespaces on an embedded default \
             configuration, fails the master over and prints the timeline"
)]
struct Cli {
    #[command(flatten)]
    args: vipd_lab::drill::DrillArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match vipd_lab::drill::run(&cli.args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("vipd drill: {e}");
            ExitCode::from(2)
        }
    }
}
