//! Diagnostics: located errors and warnings, rendered like a compiler's.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The configuration is rejected.
    Error,
    /// The configuration is accepted, but probably not what the operator meant.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One located error or warning about a configuration file.
///
/// `Display` renders it like a compiler does:
///
/// ```text
/// /etc/vipd/vipd.toml:12:19: error: advert_interval 15ms is not a multiple of 10ms (VRRPv3 counts centiseconds)
///    |
/// 12 | advert_interval = "15ms"
///    |                   ^^^^^^
///   hint: use 10ms or 20ms
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file the diagnostic is about (as given to [`load`](super::load) / [`parse_str`](super::parse_str)).
    pub file: PathBuf,
    /// 1-based line; 0 when the diagnostic concerns the file as a whole (e.g. it cannot be read).
    pub line: usize,
    /// 1-based column in characters; 0 when `line` is 0.
    pub column: usize,
    /// What is wrong, in one line.
    pub message: String,
    /// How to fix it, if we have a concrete suggestion.
    pub hint: Option<String>,
    /// The source line `line` refers to (without the line terminator), for caret rendering.
    pub source_line: Option<String>,
    /// How many characters to underline starting at `column` (at least 1 when `source_line` is set).
    pub width: usize,
}

impl Diagnostic {
    /// A diagnostic about the file as a whole (no line/column).
    pub fn whole_file(severity: Severity, file: &Path, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: message.into(),
            hint: None,
            source_line: None,
            width: 0,
        }
    }

    /// True for [`Severity::Error`].
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl Diagnostic {
    /// The source line with the span underlined, rendered by annotate-snippets (the gutter,
    /// line number and carets of a compiler message; tabs expanded consistently).
    fn snippet(&self, src: &str) -> String {
        use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
        let byte_at = |chars: usize| src.char_indices().nth(chars).map_or(src.len(), |(i, _)| i);
        let start = byte_at(self.column.saturating_sub(1));
        let end = byte_at(self.column.saturating_sub(1) + self.width.max(1)).max(start);
        // An empty span (at the end of the line) still gets one caret.
        let span = if start == end {
            start..start
        } else {
            start..end
        };
        let level = match self.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let report = [Group::with_level(level).element(
            Snippet::source(src)
                .line_start(self.line)
                .fold(false)
                .annotation(AnnotationKind::Primary.span(span)),
        )];
        Renderer::plain().render(&report)
    }
}

impl Diagnostic {
    /// The diagnostic on one line, for logs: `file:line:column: severity: message (hint: ...)`
    /// (the source snippet is for terminals).
    pub fn one_line(&self) -> String {
        let hint = self
            .hint
            .as_deref()
            .map(|h| format!(" (hint: {h})"))
            .unwrap_or_default();
        format!("{}{hint}", self.headline())
    }

    /// `file:line:column: severity: message` (`file: severity: message` for the whole file):
    /// the first line of the terminal form and the start of [`Diagnostic::one_line`].
    fn headline(&self) -> String {
        if self.line == 0 {
            format!(
                "{}: {}: {}",
                self.file.display(),
                self.severity,
                self.message
            )
        } else {
            format!(
                "{}:{}:{}: {}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.severity,
                self.message
            )
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.headline())?;
        if let Some(src) = &self.source_line {
            f.write_str(&self.snippet(src))?;
            f.write_str("\n")?;
        }
        if let Some(hint) = &self.hint {
            writeln!(f, "  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Upper bound on stored diagnostics; more are counted, not kept (bounded memory on hostile input).
pub const MAX_DIAGNOSTICS: usize = 200;

/// A set of diagnostics for one file; the `Err` side of [`load`](super::load) and
/// [`parse_str`](super::parse_str) (then it holds at least one error, plus any warnings).
///
/// `Display` renders every diagnostic, errors first (each group in source order), then a summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
    dropped: usize,
}

impl Diagnostics {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a diagnostic (dropped, but counted, beyond [`MAX_DIAGNOSTICS`]).
    pub fn push(&mut self, d: Diagnostic) {
        if self.items.len() < MAX_DIAGNOSTICS {
            self.items.push(d);
        } else {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    /// The errors, in source order.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }

    /// The warnings, in source order.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    /// Every stored diagnostic: errors first, each group in source order.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.errors().chain(self.warnings())
    }

    /// True if at least one error is present.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// Number of stored diagnostics.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True if nothing was reported.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// How many diagnostics were reported beyond [`MAX_DIAGNOSTICS`] and not stored.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// All stored diagnostics, errors first.
    pub fn into_vec(self) -> Vec<Diagnostic> {
        let (mut errors, warnings): (Vec<_>, Vec<_>) =
            self.items.into_iter().partition(Diagnostic::is_error);
        errors.extend(warnings);
        errors
    }

    pub(crate) fn sort(&mut self) {
        self.items.sort_by_key(|d| (d.severity, d.line, d.column));
    }

    pub(crate) fn take_warnings(self) -> Vec<Diagnostic> {
        self.items
            .into_iter()
            .filter(|d| d.severity == Severity::Warning)
            .collect()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in self.iter() {
            write!(f, "{d}")?;
        }
        if self.dropped > 0 {
            writeln!(f, "note: {} further diagnostics not shown", self.dropped)?;
        }
        let errors = self.errors().count();
        let warnings = self.warnings().count();
        if errors > 0 || warnings > 0 {
            let plural = |n: usize, w: &str| {
                if n == 1 {
                    format!("{n} {w}")
                } else {
                    format!("{n} {w}s")
                }
            };
            writeln!(
                f,
                "{}, {}",
                plural(errors, "error"),
                plural(warnings, "warning")
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

/// Maps byte offsets of one source text to line/column and collects diagnostics against it.
pub(crate) struct Reporter<'a> {
    text: &'a str,
    file: &'a Path,
    line_starts: Vec<usize>,
    pub(crate) diags: Diagnostics,
}

impl<'a> Reporter<'a> {
    pub(crate) fn new(text: &'a str, file: &'a Path) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Reporter {
            text,
            file,
            line_starts,
            diags: Diagnostics::new(),
        }
    }

    pub(crate) fn text(&self) -> &'a str {
        self.text
    }

    /// Builds a diagnostic for the byte range `span`.
    pub(crate) fn make(
        &self,
        severity: Severity,
        span: Range<usize>,
        message: String,
        hint: Option<String>,
    ) -> Diagnostic {
        let start = floor_char_boundary(self.text, span.start.min(self.text.len()));
        let end = floor_char_boundary(self.text, span.end.clamp(start, self.text.len()));
        let idx = match self.line_starts.binary_search(&start) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let line_start = self.line_starts.get(idx).copied().unwrap_or(0);
        let line_end = self
            .line_starts
            .get(idx + 1)
            .map_or(self.text.len(), |&n| n.saturating_sub(1));
        let src = self.text.get(line_start..line_end).unwrap_or("");
        let src = src.strip_suffix('\r').unwrap_or(src);
        let column = self
            .text
            .get(line_start..start)
            .map_or(0, |s| s.chars().count())
            + 1;
        let width = self
            .text
            .get(start..end.min(line_start + src.len()).max(start))
            .map_or(1, |s| s.chars().count())
            .max(1);
        Diagnostic {
            severity,
            file: self.file.to_path_buf(),
            line: idx + 1,
            column,
            message,
            hint,
            source_line: Some(src.to_string()),
            width,
        }
    }

    /// True once [`MAX_DIAGNOSTICS`] are stored: callers may skip expensive hints.
    pub(crate) fn is_full(&self) -> bool {
        self.diags.items.len() >= MAX_DIAGNOSTICS
    }

    fn add(
        &mut self,
        severity: Severity,
        span: Range<usize>,
        message: String,
        hint: Option<String>,
    ) {
        if self.is_full() {
            self.diags.dropped = self.diags.dropped.saturating_add(1);
            return;
        }
        let d = self.make(severity, span, message, hint);
        self.diags.push(d);
    }

    pub(crate) fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.add(Severity::Error, span, message.into(), None);
    }

    pub(crate) fn error_hint(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.add(Severity::Error, span, message.into(), Some(hint.into()));
    }

    pub(crate) fn error_opt(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.add(Severity::Error, span, message.into(), hint);
    }

    pub(crate) fn warn(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.add(Severity::Warning, span, message.into(), hint);
    }

    /// 1-based line of a byte offset (for "first defined at line N" messages).
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.diags.has_errors()
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Optimal-string-alignment edit distance (Levenshtein plus adjacent transpositions).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a plausible typo.
pub(crate) fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    // Bound the work on hostile input: keys longer than this are no typo of ours.
    if word.chars().count() > 64 {
        return None;
    }
    let lower = word.to_ascii_lowercase().replace('-', "_");
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| c.len() <= 256)
        .map(|c| {
            let lc = c.to_ascii_lowercase();
            let close = lower.len() >= 4 && (lc.starts_with(&lower) || lc.ends_with(&lower));
            (edit_distance(&lower, &lc), close, c)
        })
        .filter(|&(d, close, _)| d <= limit || close)
        .min_by_key(|&(d, _, _)| d)
        .map(|(_, _, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(edit_distance("vrid", "vrid"), 0);
        assert_eq!(edit_distance("virid", "vrid"), 1);
        assert_eq!(edit_distance("prioirty", "priority"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn suggestions() {
        let keys = ["priority", "preempt", "preempt_delay", "vrid", "vips"];
        assert_eq!(did_you_mean("prioirty", keys), Some("priority"));
        assert_eq!(did_you_mean("preempt-delay", keys), Some("preempt_delay"));
        assert_eq!(did_you_mean("xyzzy", keys), None);
        assert_eq!(did_you_mean("vip", keys), Some("vips"));
    }

    #[test]
    fn locate_and_render() {
        let text = "a = 1\n\tb = \"15ms\"\n";
        let path = Path::new("x.toml");
        let r = Reporter::new(text, path);
        let d = r.make(Severity::Error, 11..17, "bad".into(), Some("fix".into()));
        assert_eq!((d.line, d.column, d.width), (2, 6, 6));
        let s = d.to_string();
        assert!(s.starts_with("x.toml:2:6: error: bad\n"), "{s}");
        // Tabs are expanded (to four columns) in the line and under it alike.
        assert!(
            s.contains("2 |     b = \"15ms\"\n  |         ^^^^^^\n"),
            "{s}"
        );
        assert!(s.ends_with("  hint: fix\n"), "{s}");
    }

    #[test]
    fn multibyte_columns() {
        let text = "# é\nname = \"é\" x\n";
        let r = Reporter::new(text, Path::new("f"));
        let off = text.find('x').unwrap_or(0);
        let d = r.make(Severity::Error, off..off + 1, "m".into(), None);
        assert_eq!((d.line, d.column), (2, 12));
    }
}
