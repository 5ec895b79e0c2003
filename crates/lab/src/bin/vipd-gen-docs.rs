//! `vipd-gen-docs DIR`: writes the man pages — vipd(8) and vipctl(8) from the clap definitions
//! (`vipd::cli`), vipd.toml(5) from the configuration's types (its JSON schema) — and the
//! bash, zsh and fish completions of both commands into DIR (`man/`, `completions/`).
//! scripts/package.sh runs it; the package ships what it writes.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: vipd-gen-docs DIR");
        return ExitCode::from(2);
    };
    match vipd_lab::gendocs::write_all(Path::new(&dir)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vipd-gen-docs: {e}");
            ExitCode::from(1)
        }
    }
}
