//! The lab: what the local failover drill, the network tests and the benchmarks share —
//! entering network namespaces and watching the wire.

// pub mod drill; (waits for lab::lan)
pub mod netns;
pub mod sniff;
pub mod watch;
