//! Property tests over thousands of seeded random fault schedules.
//!
//! Replay one seed with a full trace:
//! `VIPD_SIM_SEED=<n> cargo test --test sim_props replay -- --nocapture`
//! Change the number of seeds per test with `VIPD_SIM_SEEDS=<n>`.

use std::time::Instant;

use vipd_sim::Schedule;

/// 4 tests x 2500 = 10,000 schedules by default.
const PER_TEST: u64 = 2500;

fn seeds_per_test() -> u64 {
    std::env::var("VIPD_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(PER_TEST)
}

fn run_range(first: u64) {
    let base = Instant::now();
    let n = seeds_per_test();
    let mut failures = Vec::new();
    for seed in first..first + n {
        if let Err(e) = Schedule::random(seed).run(base, false) {
            failures.push(e);
        }
    }
    if let Some(f) = failures.first() {
        panic!("{} of {n} schedules failed; first:\n{f}", failures.len());
    }
}

#[test]
fn schedules_block_0() {
    run_range(0);
}

#[test]
fn schedules_block_1() {
    run_range(1_000_000);
}

#[test]
fn schedules_block_2() {
    run_range(2_000_000);
}

#[test]
fn schedules_block_3() {
    run_range(3_000_000);
}

/// Replays `VIPD_SIM_SEED` with a trace (no-op without the variable).
#[test]
fn replay() {
    let Some(seed) = std::env::var("VIPD_SIM_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return;
    };
    let s = Schedule::random(seed);
    println!("{s:#?}");
    println!("settle bound {:?}", s.settle_bound());
    match s.run(Instant::now(), true) {
        Ok(o) => println!("ok: {o:?}"),
        Err(e) => panic!("{e}"),
    }
}
