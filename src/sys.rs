//! The one module allowed to use `unsafe`: thin wrappers over socket options and
//! link-layer addresses that socket2 and nix do not expose safely.
