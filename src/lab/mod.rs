//! The lab: throw-away LANs of network namespaces shared by `vipd drill`, the network tests and the benchmarks.
pub mod capture;
pub mod lan;
pub mod ns;
