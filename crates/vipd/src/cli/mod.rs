//! The command lines of `vipd` and `vipctl`: one definition each, which the binaries parse
//! and from which the man pages and shell completions are generated.

pub mod vipctl;
pub mod vipd;
