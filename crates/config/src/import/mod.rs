//! keepalived.conf importer: converts a keepalived VRRP configuration into vipd TOML.
//!
//! ```
//! use std::path::Path;
//! let conf = r#"
//! global_defs { router_id lb1 }
//! vrrp_instance VI_1 {
//!     state MASTER
//!     interface eth0
//!     virtual_router_id 51
//!     priority 150
//!     virtual_ipaddress { 10.0.0.100/24 }
//! }
//! "#;
//! let out = vipd_config::import::convert(conf, Path::new("keepalived.conf")).unwrap();
//! assert!(out.toml.contains("vrid = 51"));
//! // `state` has no vipd equivalent: it is reported, never silently dropped.
//! assert!(out.notes.iter().any(|n| n.keyword == "state"));
//! vipd_config::parse_str(&out.toml, Path::new("vipd.toml")).unwrap();
//! ```
//!
//! Every keyword or block that is not converted, or converted with a change in meaning,
//! produces a [`Note`]; the notes are also written as comments at the top of the TOML.
//! Hostile input is bounded: each file at most [`MAX_FILE_SIZE`] bytes, [`MAX_TOKENS`]
//! tokens in all, blocks nested at most 16 deep, includes at most [`MAX_INCLUDE_DEPTH`]
//! deep and [`MAX_FILES`] files, [`MAX_NOTES`] notes. See `docs/migration.md`.

mod convert;
mod emit;
mod glob;
mod keywords;
mod lex;
mod pre;
mod routes;
mod shell;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use crate::MAX_FILE_SIZE;

use lex::Token;

/// Deepest chain of `include`s followed (the main file is depth 0).
pub const MAX_INCLUDE_DEPTH: usize = 8;
/// Most files read for one conversion (the main file and everything it includes).
pub const MAX_FILES: usize = 256;
/// Most tokens (words, quoted strings, braces) over all files.
pub const MAX_TOKENS: usize = 262_144;
/// Most notes kept; any beyond are summarised in one final note.
pub const MAX_NOTES: usize = 1000;

/// How a keyword was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NoteSeverity {
    /// Converted; something worth knowing (a default made explicit, vipd behaving slightly differently).
    Info,
    /// Converted with a change in meaning: review it.
    Warning,
    /// Not converted: vipd has no equivalent (or the value was invalid).
    NotConverted,
    /// A security setting that could not be carried over (IPsec AH, an `auth_hmac` or
    /// peer restriction the importer cannot read): the result is weaker than the original,
    /// and `vipctl import-keepalived` refuses it unless told `--accept-weaker`.
    SecurityLost,
}

impl NoteSeverity {
    /// The label used in TOML comments and on stderr.
    pub fn label(self) -> &'static str {
        match self {
            NoteSeverity::Info => "NOTE",
            NoteSeverity::Warning => "WARNING",
            NoteSeverity::NotConverted => "NOT CONVERTED",
            NoteSeverity::SecurityLost => "SECURITY NOT CONVERTED",
        }
    }
}

/// A remark about one keepalived keyword. `line`/`column` are 1-based; 0 means "the whole file".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// How much it matters.
    pub severity: NoteSeverity,
    /// The keepalived file the keyword is in (the main file or an included one).
    pub file: PathBuf,
    /// 1-based line (0: the whole file).
    pub line: usize,
    /// 1-based column (0: the whole file).
    pub column: usize,
    /// The keepalived keyword (or block name) the note is about.
    pub keyword: String,
    /// What happened to it.
    pub message: String,
}

impl fmt::Display for Note {
    /// `file:line:column: LABEL: keyword: message` (one line).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        write!(
            f,
            ": {}: {}: {}",
            self.severity.label(),
            emit::clean(&self.keyword, 64),
            emit::clean(&self.message, 1000)
        )
    }
}

/// The converted configuration.
#[derive(Debug, Clone)]
pub struct Conversion {
    /// vipd TOML, starting with a header comment that names the source and lists every note.
    pub toml: String,
    /// Every keyword not converted or converted with a change in meaning, in file order.
    pub notes: Vec<Note>,
}

impl Note {
    /// Whether this note means VRRP behaviour was lost: a keyword not converted (or a
    /// security setting lost) that is not outside VRRP (e-mail, SNMP, LVS, keepalived's
    /// process settings, ...).
    pub fn loses_vrrp_behaviour(&self) -> bool {
        matches!(
            self.severity,
            NoteSeverity::NotConverted | NoteSeverity::SecurityLost
        ) && keywords::affects_vrrp(&self.keyword)
    }
}

impl Conversion {
    /// Whether a security setting could not be carried over (a [`NoteSeverity::SecurityLost`]
    /// note): the result would let in adverts the original refused.
    pub fn weakens_security(&self) -> bool {
        self.notes
            .iter()
            .any(|n| n.severity == NoteSeverity::SecurityLost)
    }
}

/// The input could not be converted at all: unreadable, too large, or a syntax error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// The file the error is in.
    pub file: PathBuf,
    /// 1-based; 0 when the error concerns the whole file.
    pub line: usize,
    /// 1-based column (0 with `line` 0).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        write!(f, ": error: {}", self.message)
    }
}

impl std::error::Error for ImportError {}

/// Converts keepalived.conf `text`; `origin` names it in notes and the header.
///
/// Does not touch the file system: `include` directives are reported as not converted
/// (use [`convert_file`] to follow them).
pub fn convert(text: &str, origin: &Path) -> Result<Conversion, ImportError> {
    convert_with(text, origin, &Options::default())
}

/// What a conversion depends on besides the files.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// keepalived's config id (`keepalived -i`): which `@id` lines count, and `${_INSTANCE}`.
    /// `None`: this host's name up to the first dot, as keepalived's default.
    pub host: Option<String>,
    /// The environment `${_ENV VAR}` reads (`None`: those references are left unresolved).
    pub env: Option<std::collections::HashMap<String, String>>,
}

impl Options {
    fn config_id(&self) -> String {
        self.host.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .unwrap_or_default()
                .trim()
                .split('.')
                .next()
                .unwrap_or_default()
                .to_string()
        })
    }
}

/// [`convert`] with [`Options`].
pub fn convert_with(text: &str, origin: &Path, opts: &Options) -> Result<Conversion, ImportError> {
    let mut src = Sources::new(false, opts);
    if text.len() as u64 > MAX_FILE_SIZE {
        return Err(whole(
            origin,
            format!(
                "input is {} bytes; the limit is {MAX_FILE_SIZE} bytes",
                text.len()
            ),
        ));
    }
    let mut tokens = Vec::new();
    src.load(text, origin, 0, &mut tokens)?;
    src.finish(&tokens)
}

/// Reads and converts the keepalived.conf at `path`, following `include` globs (relative
/// patterns are relative to the including file's directory) up to [`MAX_INCLUDE_DEPTH`] deep.
/// An include cycle is an error.
pub fn convert_file(path: &Path) -> Result<Conversion, ImportError> {
    convert_file_with(path, &Options::default())
}

/// [`convert_file`] with [`Options`].
pub fn convert_file_with(path: &Path, opts: &Options) -> Result<Conversion, ImportError> {
    let text = read_capped(path)?;
    let mut src = Sources::new(true, opts);
    src.stack
        .push(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()));
    let mut tokens = Vec::new();
    src.load(&text, path, 0, &mut tokens)?;
    src.finish(&tokens)
}

/// A note before its file index is resolved to a path.
#[derive(Debug, Clone)]
pub(crate) struct RawNote {
    pub(crate) severity: NoteSeverity,
    pub(crate) file: usize,
    pub(crate) line: usize,
    pub(crate) col: usize,
    pub(crate) keyword: String,
    pub(crate) message: String,
}

impl RawNote {
    pub(crate) fn at(severity: NoteSeverity, t: &Token, keyword: &str, message: String) -> Self {
        RawNote {
            severity,
            file: t.file,
            line: t.line,
            col: t.col,
            keyword: keyword.to_string(),
            message,
        }
    }
}

fn whole(file: &Path, message: String) -> ImportError {
    ImportError {
        file: file.to_path_buf(),
        line: 0,
        column: 0,
        message,
    }
}

/// The files read so far and the state of include expansion.
struct Sources {
    files: Vec<PathBuf>,
    follow_includes: bool,
    /// Canonical paths of the files being read, outermost first (cycle detection).
    stack: Vec<PathBuf>,
    notes: Vec<RawNote>,
    /// keepalived's preprocessor (shared by every file: definitions carry across includes).
    pre: pre::Pre,
}

impl Sources {
    fn new(follow_includes: bool, opts: &Options) -> Self {
        let mut pre = pre::Pre::new(&opts.config_id());
        pre.env = opts.env.clone();
        Sources {
            files: Vec::new(),
            follow_includes,
            stack: Vec::new(),
            notes: Vec::new(),
            pre,
        }
    }

    fn error_at(&self, t: &Token, message: String) -> ImportError {
        ImportError {
            file: self.files.get(t.file).cloned().unwrap_or_default(),
            line: t.line,
            column: t.col,
            message,
        }
    }

    /// Lexes `text` (the contents of `path`) into `out`, splicing in included files.
    fn load(
        &mut self,
        text: &str,
        path: &Path,
        depth: usize,
        out: &mut Vec<Token>,
    ) -> Result<(), ImportError> {
        let id = self.files.len();
        self.files.push(path.to_path_buf());
        let lines = self.pre.expand(text, path).map_err(|m| whole(path, m))?;
        for (line, message) in std::mem::take(&mut self.pre.problems) {
            self.notes.push(RawNote {
                severity: NoteSeverity::Warning,
                file: id,
                line,
                col: 1,
                keyword: "(preprocessor)".to_string(),
                message,
            });
        }
        let mut raw = Vec::new();
        lex::lex_lines(&lines, id, MAX_TOKENS.saturating_sub(out.len()), &mut raw).map_err(
            |e| ImportError {
                file: path.to_path_buf(),
                line: e.line,
                column: e.col,
                message: e.message,
            },
        )?;
        let mut j = 0;
        while let Some(t) = raw.get(j) {
            let first_on_line = j == 0 || raw.get(j - 1).is_none_or(|p| !p.same_line(t));
            if !(first_on_line && t.is("include")) {
                out.push(t.clone());
                j += 1;
                continue;
            }
            let args: Vec<&Token> = raw
                .get(j + 1..)
                .unwrap_or(&[])
                .iter()
                .take_while(|a| a.same_line(t))
                .collect();
            j += 1 + args.len();
            self.include(t, &args, path, depth, out)?;
        }
        if out.len() > MAX_TOKENS {
            return Err(whole(
                path,
                format!("more than {MAX_TOKENS} tokens in all; refusing to convert"),
            ));
        }
        Ok(())
    }

    fn include(
        &mut self,
        t: &Token,
        args: &[&Token],
        path: &Path,
        depth: usize,
        out: &mut Vec<Token>,
    ) -> Result<(), ImportError> {
        let Some((pat, extra)) = args.split_first() else {
            self.notes.push(RawNote::at(
                NoteSeverity::NotConverted,
                t,
                "include",
                "`include` without a file name".to_string(),
            ));
            return Ok(());
        };
        if !extra.is_empty() {
            let rest: Vec<&str> = extra.iter().map(|a| a.text.as_str()).collect();
            self.notes.push(RawNote::at(
                NoteSeverity::NotConverted,
                t,
                "include",
                format!(
                    "extra arguments `{}` ignored (keepalived reads one pattern per include)",
                    rest.join(" ")
                ),
            ));
        }
        if !self.follow_includes {
            self.notes.push(RawNote::at(
                NoteSeverity::NotConverted,
                t,
                "include",
                format!(
                    "`include {}` not followed: the text was converted without file access; convert the file itself to follow includes",
                    pat.text
                ),
            ));
            return Ok(());
        }
        if depth + 1 > MAX_INCLUDE_DEPTH {
            return Err(self.error_at(
                t,
                format!("includes nested deeper than {MAX_INCLUDE_DEPTH} levels"),
            ));
        }
        let pattern = Path::new(&pat.text);
        let full = if pattern.is_absolute() {
            pattern.to_path_buf()
        } else {
            path.parent().unwrap_or(Path::new("")).join(pattern)
        };
        let matches = glob::expand(&full, MAX_FILES);
        if matches.is_empty() {
            self.notes.push(RawNote::at(
                NoteSeverity::Warning,
                t,
                "include",
                format!("`{}` matched no files; nothing included", full.display()),
            ));
        }
        for m in matches {
            if m.is_dir() {
                self.notes.push(RawNote::at(
                    NoteSeverity::NotConverted,
                    t,
                    "include",
                    format!("`{}` is a directory; not included", m.display()),
                ));
                continue;
            }
            let canon = std::fs::canonicalize(&m).unwrap_or_else(|_| m.clone());
            if self.stack.contains(&canon) {
                let chain: Vec<String> = self
                    .stack
                    .iter()
                    .chain(std::iter::once(&canon))
                    .map(|p| p.display().to_string())
                    .collect();
                return Err(self.error_at(t, format!("include cycle: {}", chain.join(" -> "))));
            }
            if self.files.len() >= MAX_FILES {
                return Err(self.error_at(
                    t,
                    format!("more than {MAX_FILES} files included; refusing to convert"),
                ));
            }
            let text = read_capped(&m).map_err(|e| {
                self.error_at(t, format!("cannot include {}: {}", m.display(), e.message))
            })?;
            self.stack.push(canon);
            let r = self.load(&text, &m, depth + 1, out);
            self.stack.pop();
            r?;
        }
        Ok(())
    }

    fn finish(mut self, tokens: &[Token]) -> Result<Conversion, ImportError> {
        // A template parameter nobody defined (an `@host` definition for another host, a
        // variable the deployment tool should have filled): keepalived would choke on the
        // word, and a converted file must not carry it either.
        if let Some((t, name)) = tokens
            .iter()
            .filter(|t| !t.quoted)
            .find_map(|t| pre::Pre::unresolved(&t.text).map(|n| (t, n)))
        {
            return Err(self.error_at(
                t,
                format!(
                    "`{}` uses the parameter ${name}, which is not defined for config id `{}`: define it, or choose the host with --host NAME",
                    t.text, self.pre.config_id
                ),
            ));
        }
        if self.pre.used {
            self.notes.push(RawNote {
                severity: NoteSeverity::Info,
                file: 0,
                line: 0,
                col: 0,
                keyword: "(preprocessor)".to_string(),
                message: format!(
                    "keepalived's preprocessor applied ($parameters, @conditions, ~SEQ/~LST) for config id `{}`; convert once per host (--host NAME)",
                    self.pre.config_id
                ),
            });
        }
        let nodes = lex::parse(tokens).map_err(|e| ImportError {
            file: self.files.get(e.file).cloned().unwrap_or_default(),
            line: e.line,
            column: e.col,
            message: e.message,
        })?;
        let (model, mut notes) = convert::convert(&nodes);
        notes.append(&mut self.notes);
        notes.sort_by_key(|n| (n.file, n.line, n.col));
        if notes.len() > MAX_NOTES {
            let dropped = notes.len() - (MAX_NOTES - 1);
            notes.truncate(MAX_NOTES - 1);
            notes.push(RawNote {
                severity: NoteSeverity::NotConverted,
                file: 0,
                line: 0,
                col: 0,
                keyword: "(more)".to_string(),
                message: format!(
                    "{dropped} further notes omitted; the input has too many unconverted keywords to list"
                ),
            });
        }
        let notes: Vec<Note> = notes
            .into_iter()
            .map(|n| Note {
                severity: n.severity,
                file: self.files.get(n.file).cloned().unwrap_or_default(),
                line: n.line,
                column: n.col,
                keyword: n.keyword,
                message: n.message,
            })
            .collect();
        let toml = emit::emit(&model, &notes, &self.files);
        Ok(Conversion { toml, notes })
    }
}

/// Reads `path` as UTF-8, refusing files over [`MAX_FILE_SIZE`].
fn read_capped(path: &Path) -> Result<String, ImportError> {
    let fail = |m: String| whole(path, m);
    let file = std::fs::File::open(path)
        .map_err(|e| fail(format!("cannot open {}: {e}", path.display())))?;
    if let Ok(meta) = file.metadata()
        && meta.is_dir()
    {
        return Err(fail(format!("{} is a directory", path.display())));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(fail(format!(
            "{} is larger than the limit of {MAX_FILE_SIZE} bytes",
            path.display()
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let prefix = e.as_bytes().get(..valid).unwrap_or(&[]);
        let prefix = String::from_utf8_lossy(prefix);
        let line = prefix.matches('\n').count() + 1;
        let column = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ImportError {
            file: path.to_path_buf(),
            line,
            column,
            message: "file is not valid UTF-8".to_string(),
        }
    })
}
