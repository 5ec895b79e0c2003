//! keepalived.conf tokens and the block tree built from them.
//!
//! keepalived's grammar is line oriented: a statement is a keyword and its arguments on one
//! line; `{ ... }` opens a block, either at the end of the header line or alone on the next
//! line. `#` and `!` start a comment when they begin a token. `"..."` quotes a token (with
//! `\"` and `\\` escapes) so it may hold spaces, braces and comment characters.

/// One token, with its position (1-based line and column, in characters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) text: String,
    pub(crate) quoted: bool,
    pub(crate) file: usize,
    pub(crate) line: usize,
    pub(crate) col: usize,
    /// The physical line it was lexed from (lines the preprocessor made from one source line
    /// share `line` but not this).
    pub(crate) row: usize,
}

impl Token {
    pub(crate) fn is(&self, punct: &str) -> bool {
        !self.quoted && self.text == punct
    }

    /// Same file and (physical) line as `other`.
    pub(crate) fn same_line(&self, other: &Token) -> bool {
        self.file == other.file && self.row == other.row
    }
}

/// A syntax error at a position of file `file` (an index into the caller's file list).
#[derive(Debug, Clone)]
pub(crate) struct SyntaxError {
    pub(crate) file: usize,
    pub(crate) line: usize,
    pub(crate) col: usize,
    pub(crate) message: String,
}

/// Splits `text` into tokens, appending to `out`; fails past `max_tokens` tokens in `out`.
#[cfg(test)]
pub(crate) fn lex(
    text: &str,
    file: usize,
    max_tokens: usize,
    out: &mut Vec<Token>,
) -> Result<(), SyntaxError> {
    let lines: Vec<(usize, String)> = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect();
    lex_lines(&lines, file, max_tokens, out)
}

/// [`lex`] over preprocessed lines, each with the source line it came from.
pub(crate) fn lex_lines(
    lines: &[(usize, String)],
    file: usize,
    max_tokens: usize,
    out: &mut Vec<Token>,
) -> Result<(), SyntaxError> {
    for (row, (line_no, raw_line)) in lines.iter().enumerate() {
        let line_no = *line_no;
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        let mut chars = line.chars().enumerate().peekable();
        while let Some(&(i, c)) = chars.peek() {
            let col = i + 1;
            if c.is_whitespace() {
                chars.next();
                continue;
            }
            if c == '#' || c == '!' {
                break;
            }
            if out.len() >= max_tokens {
                return Err(SyntaxError {
                    file,
                    line: line_no,
                    col,
                    message: format!(
                        "too many tokens (the limit is {} in all files); refusing to convert",
                        super::MAX_TOKENS
                    ),
                });
            }
            let mut tok = Token {
                text: String::new(),
                quoted: false,
                file,
                line: line_no,
                col,
                row,
            };
            if c == '{' || c == '}' {
                chars.next();
                tok.text.push(c);
            } else if c == '"' {
                chars.next();
                tok.quoted = true;
                let mut closed = false;
                while let Some((_, c)) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => match chars.peek() {
                            Some(&(_, n @ ('"' | '\\'))) => {
                                tok.text.push(n);
                                chars.next();
                            }
                            _ => tok.text.push('\\'),
                        },
                        c => tok.text.push(c),
                    }
                }
                if !closed {
                    return Err(SyntaxError {
                        file,
                        line: line_no,
                        col,
                        message: "unterminated quoted string (quotes must close on the same line)"
                            .to_string(),
                    });
                }
            } else {
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_whitespace() || c == '{' || c == '}' {
                        break;
                    }
                    tok.text.push(c);
                    chars.next();
                }
            }
            out.push(tok);
        }
    }
    Ok(())
}

/// A statement: a keyword, the rest of its line, and an optional `{ }` block.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) key: Token,
    pub(crate) args: Vec<Token>,
    pub(crate) block: Option<Vec<Node>>,
}

impl Node {
    pub(crate) fn name(&self) -> &str {
        &self.key.text
    }
    pub(crate) fn arg(&self, i: usize) -> Option<&Token> {
        self.args.get(i)
    }
}

/// Deepest `{ }` nesting accepted (keepalived itself uses at most four levels).
pub(crate) const MAX_DEPTH: usize = 16;

/// Builds the statement tree from `tokens`.
pub(crate) fn parse(tokens: &[Token]) -> Result<Vec<Node>, SyntaxError> {
    let mut i = 0;
    parse_block(tokens, &mut i, 0, None)
}

fn err(t: &Token, message: String) -> SyntaxError {
    SyntaxError {
        file: t.file,
        line: t.line,
        col: t.col,
        message,
    }
}

fn parse_block(
    toks: &[Token],
    i: &mut usize,
    depth: usize,
    open: Option<&Token>,
) -> Result<Vec<Node>, SyntaxError> {
    let mut nodes: Vec<Node> = Vec::new();
    let mut cur: Option<Node> = None;
    loop {
        let Some(t) = toks.get(*i) else {
            if let Some(o) = open {
                return Err(err(
                    o,
                    "unbalanced braces: this `{` is never closed".to_string(),
                ));
            }
            nodes.extend(cur.take());
            return Ok(nodes);
        };
        if let Some(c) = &cur
            && !c.key.same_line(t)
        {
            nodes.extend(cur.take());
        }
        *i += 1;
        if t.is("{") {
            if depth + 1 > MAX_DEPTH {
                return Err(err(
                    t,
                    format!("blocks nested deeper than {MAX_DEPTH} levels"),
                ));
            }
            let children = parse_block(toks, i, depth + 1, Some(t))?;
            match cur.take() {
                Some(mut n) => {
                    n.block = Some(children);
                    nodes.push(n);
                }
                None => match nodes.last_mut() {
                    Some(n) if n.block.is_none() => n.block = Some(children),
                    _ => nodes.push(Node {
                        key: t.clone(),
                        args: Vec::new(),
                        block: Some(children),
                    }),
                },
            }
            continue;
        }
        if t.is("}") {
            nodes.extend(cur.take());
            if open.is_none() {
                return Err(err(
                    t,
                    "unbalanced braces: `}` without a matching `{`".to_string(),
                ));
            }
            return Ok(nodes);
        }
        match &mut cur {
            Some(n) => n.args.push(t.clone()),
            None => {
                cur = Some(Node {
                    key: t.clone(),
                    args: Vec::new(),
                    block: None,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Token> {
        let mut v = Vec::new();
        lex(s, 0, 10_000, &mut v).unwrap();
        v
    }

    #[test]
    fn comments_quotes_braces() {
        let t = toks("a \"b c\" {d}# x\n ! y\nlabel eth0:1 \"q\\\"\" pass#1");
        let texts: Vec<&str> = t.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "a", "b c", "{", "d", "}", "label", "eth0:1", "q\"", "pass#1"
            ]
        );
        assert_eq!((t[5].line, t[5].col), (3, 1));
    }

    #[test]
    fn brace_on_next_line_and_inline_blocks() {
        let t = toks("global_defs\n{\n router_id x\n}\ng { a b }\nnopreempt\n");
        let n = parse(&t).unwrap();
        assert_eq!(n.len(), 3);
        assert_eq!(n[0].name(), "global_defs");
        assert_eq!(n[0].block.as_ref().unwrap()[0].args[0].text, "x");
        let g = n[1].block.as_ref().unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].args.len(), 1);
        assert!(n[2].block.is_none());
    }

    #[test]
    fn unbalanced() {
        let e = parse(&toks("a {\n b {\n}")).unwrap_err();
        assert_eq!((e.line, e.col), (1, 3));
        let e = parse(&toks("a }")).unwrap_err();
        assert_eq!((e.line, e.col), (1, 3));
        let mut v = Vec::new();
        assert!(lex("x \"abc", 0, 10, &mut v).is_err());
    }
}
