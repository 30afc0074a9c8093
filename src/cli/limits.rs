//! Limits checked before and right after parsing, so that a huge or absurdly nested file is
//! refused in milliseconds instead of minutes: libyaml's scanner (under serde_yaml_ng) takes time
//! quadratic in the nesting of flow collections (`[[[[...`), and the parser's own recursion limit
//! applies only after the whole flow collection has been scanned.

use std::io::Read;
use std::path::Path;

use serde_yaml_ng::Value;

/// Largest manifest file read (a Kubernetes object is at most 1.5 MiB in etcd).
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Deepest nesting accepted (a DirectorySync is about 6 levels deep).
pub const MAX_DEPTH: usize = 64;
/// Most YAML documents in one file (a DirectorySync and its Secrets are a handful).
pub const MAX_DOCUMENTS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} is larger than {MAX_FILE_BYTES} bytes (4 MiB), the most a manifest file may be")]
    TooLarge { path: String },
    #[error("{path} is not UTF-8 text")]
    NotText { path: String },
}

/// Reads a whole file, refusing it past [`MAX_FILE_BYTES`] without reading further (the size is
/// not trusted from metadata alone: `/dev/stdin` or a FIFO has none).
pub fn read_file(path: &Path) -> Result<String, ReadError> {
    let name = || path.display().to_string();
    let io = |source| ReadError::Io { path: name(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    if file.metadata().map_err(io)?.len() > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge { path: name() });
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge { path: name() });
    }
    String::from_utf8(bytes).map_err(|_| ReadError::NotText { path: name() })
}

/// Whether `text` holds more than [`MAX_DOCUMENTS`] documents (`---` lines), counted before
/// parsing: a 4 MiB file of empty documents takes the parser a second.
pub fn too_many_documents(text: &str) -> bool {
    let markers = text
        .lines()
        .filter(|l| {
            l.strip_prefix("---")
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
        })
        .count();
    // The first document needs no marker.
    markers + 1 > MAX_DOCUMENTS
}

/// Where flow collections (`[`, `{`) first nest deeper than [`MAX_DEPTH`]: `(line, column)`,
/// from 1. A lexical pre-scan, not a parser: it skips comments, quoted scalars and block scalars,
/// and counts a bracket only where YAML starts a flow collection (at the start of a node in
/// block context, anywhere outside a scalar in flow context). It leans towards counting (a
/// bracket on a continuation line of a plain scalar counts), so it refuses only files with over
/// 64 unclosed brackets outside quotes; a file it misreads is merely slow to parse, not accepted
/// wrongly (the parser and [`depth`] still apply the limit).
pub fn flow_too_deep(text: &str) -> Option<(usize, usize)> {
    #[derive(PartialEq)]
    enum State {
        Normal,
        Single,
        Double,
    }
    let mut state = State::Normal;
    let mut depth = 0usize;
    // Block scalar (`|`, `>`): lines indented deeper than this column are its content.
    let mut block_scalar_parent: Option<usize> = None;
    // A plain scalar ended the last line (indented this much): a deeper line continues it.
    let mut plain_scalar_indent: Option<usize> = None;
    for (line_no, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let blank = line.trim().is_empty();
        if let Some(parent) = block_scalar_parent {
            if blank || indent > parent {
                continue;
            }
            block_scalar_parent = None;
        }
        if blank && state == State::Normal {
            continue;
        }
        let mut chars = line.char_indices().peekable();
        // Where this line's block node starts (after any `- ` or `? ` markers).
        let mut node_col: Option<usize> = None;
        let mut at_node_start = state == State::Normal;
        let mut in_plain = false;
        if state == State::Normal
            && let Some(parent) = plain_scalar_indent
            && (depth > 0 || indent > parent)
            && !line.trim_start().starts_with('#')
        {
            in_plain = true;
            at_node_start = false;
        }
        if state == State::Normal && depth == 0 {
            if line.starts_with('%') {
                continue; // A directive.
            }
            if (line.starts_with("---") || line.starts_with("..."))
                && line[3..].chars().next().is_none_or(|c| c == ' ' || c == '\t')
            {
                chars.nth(2); // A document marker; a node may follow on the same line.
                at_node_start = true;
                in_plain = false;
            }
        }
        let mut prev: Option<char> = None;
        while let Some((col, c)) = chars.next() {
            let next = chars.peek().map(|(_, n)| *n);
            let space_or_end = |n: Option<char>| n.is_none_or(|n| n == ' ' || n == '\t');
            match state {
                State::Single => {
                    if c == '\'' {
                        if next == Some('\'') {
                            chars.next();
                        } else {
                            state = State::Normal;
                        }
                    }
                }
                State::Double => match c {
                    '\\' => {
                        chars.next();
                    }
                    '"' => state = State::Normal,
                    _ => {}
                },
                State::Normal => {
                    let after_space = prev.is_none_or(|p| p == ' ' || p == '\t');
                    if c != ' ' && c != '\t' && node_col.is_none() && !(matches!(c, '-' | '?') && space_or_end(next)) {
                        node_col = Some(col);
                    }
                    match c {
                        ' ' | '\t' => {}
                        '#' if after_space => break,
                        '-' | '?' if at_node_start && depth == 0 && space_or_end(next) => {}
                        ':' if space_or_end(next) || (depth > 0 && matches!(next, Some(',' | ']' | '}'))) => {
                            in_plain = false;
                            at_node_start = true;
                        }
                        '[' | '{' if depth > 0 || (at_node_start && !in_plain) => {
                            depth += 1;
                            if depth > MAX_DEPTH {
                                return Some((line_no + 1, col + 1));
                            }
                            at_node_start = true;
                            in_plain = false;
                        }
                        ']' | '}' if depth > 0 => {
                            depth -= 1;
                            in_plain = false;
                            at_node_start = false;
                        }
                        ',' if depth > 0 => {
                            in_plain = false;
                            at_node_start = true;
                        }
                        '\'' | '"' if at_node_start && !in_plain => {
                            state = if c == '\'' { State::Single } else { State::Double };
                            at_node_start = false;
                        }
                        '|' | '>' if at_node_start && !in_plain && depth == 0 => {
                            // The rest of the line is the header; the content follows.
                            block_scalar_parent = Some(node_col.unwrap_or(indent));
                            break;
                        }
                        '&' | '*' | '!' if at_node_start && !in_plain => {
                            // Anchor, alias or tag: a name up to the next space; the node follows.
                            while chars
                                .peek()
                                .is_some_and(|(_, n)| !matches!(n, ' ' | '\t' | ',' | ']' | '}'))
                            {
                                chars.next();
                            }
                        }
                        _ => {
                            if at_node_start {
                                in_plain = true;
                                at_node_start = false;
                            }
                        }
                    }
                }
            }
            prev = Some(c);
        }
        plain_scalar_indent = (state == State::Normal && in_plain).then_some(indent);
    }
    None
}

/// How deeply `value` nests (a scalar is 0), stopping once past [`MAX_DEPTH`].
pub fn depth(value: &Value) -> usize {
    fn go(value: &Value, level: usize) -> usize {
        if level > MAX_DEPTH {
            return level;
        }
        match value {
            Value::Sequence(items) => items.iter().map(|v| go(v, level + 1)).max().unwrap_or(level + 1),
            Value::Mapping(map) => map
                .iter()
                .map(|(k, v)| go(k, level + 1).max(go(v, level + 1)))
                .max()
                .unwrap_or(level + 1),
            Value::Tagged(t) => go(&t.value, level),
            _ => level,
        }
    }
    go(value, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, close: &str, n: usize) -> String {
        format!("spec: {}x{}\n", open.repeat(n), close.repeat(n))
    }

    #[test]
    fn deep_flow_nesting_is_found_without_parsing() {
        assert_eq!(flow_too_deep(&nested("[", "]", MAX_DEPTH)), None);
        assert_eq!(flow_too_deep(&nested("[", "]", MAX_DEPTH + 1)), Some((1, 71)));
        assert_eq!(flow_too_deep(&nested("{a: ", "}", 100)), Some((1, 7 + 4 * 64)));
        let start = std::time::Instant::now();
        assert!(flow_too_deep(&nested("[", "]", 2_000_000)).is_some());
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
        // Across lines, and after `- ` markers.
        let mut text = "items:\n".to_string();
        for _ in 0..70 {
            text.push_str("- [\n");
        }
        assert_eq!(flow_too_deep(&text), Some((66, 3)));
    }

    #[test]
    fn brackets_in_scalars_and_comments_do_not_count() {
        let deep = "[".repeat(200);
        let closed = "]".repeat(200);
        for text in [
            format!("a: '{deep}'\n"),
            format!("a: \"{deep}\\\"\"\n"),
            format!("a: 'it''s {deep}'\n"),
            format!("a: \"multi\n  line {deep}\"\n"),
            format!("a: dc={deep}\n"),
            format!("a: b # {deep}\n"),
            format!("# {deep}\n"),
            format!("a: |\n  {deep}\n  more\nb: [x]\n"),
            format!("- key: >-\n    {deep}\n"),
            format!("a: [\"{closed}\", '{deep}', x]\n"),
            format!("a: {{b: \"{deep}\"}}\n"),
            "a: &anchor [x]\nb: *anchor\n".to_string(),
            format!("a: {}\n", "[x], ".repeat(500)),
        ] {
            assert_eq!(flow_too_deep(&text), None, "{text}");
        }
    }

    #[test]
    fn quotes_cannot_hide_real_brackets() {
        // A closing bracket inside quotes does not close anything; an apostrophe inside a plain
        // scalar does not open a quote.
        for text in [
            format!("a: {}'{}' {}\n", "[".repeat(40), "]".repeat(40), "[".repeat(40)),
            format!("a: [it's, {}\n", "[".repeat(70)),
            format!("a: x'y\nb: {}\n", "[".repeat(70)),
            format!("a: |\n  x\nb: {}\n", "[".repeat(70)),
        ] {
            assert!(flow_too_deep(&text).is_some(), "{text}");
        }
    }

    #[test]
    fn documents_are_counted_by_their_markers() {
        assert!(!too_many_documents(&"---\na: b\n".repeat(MAX_DOCUMENTS - 1)));
        assert!(too_many_documents(&"---\na: b\n".repeat(MAX_DOCUMENTS)));
        assert!(too_many_documents(&"--- {}\n".repeat(MAX_DOCUMENTS)));
        assert!(!too_many_documents(&"----\n  ---\n".repeat(MAX_DOCUMENTS)));
    }

    #[test]
    fn depth_counts_collections() {
        let v = |s: &str| serde_yaml_ng::from_str::<Value>(s).unwrap();
        assert_eq!(depth(&v("x")), 0);
        assert_eq!(depth(&v("[]")), 1);
        assert_eq!(depth(&v("{a: [1, {b: c}]}")), 3);
        assert!(depth(&v(&nested("[", "]", 100))) > MAX_DEPTH);
    }

    #[test]
    fn files_over_the_limit_are_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.yaml");
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(MAX_FILE_BYTES + 1).unwrap();
        assert!(matches!(read_file(&big), Err(ReadError::TooLarge { .. })));
        let ok = dir.path().join("ok.yaml");
        std::fs::write(&ok, "a: b\n").unwrap();
        assert_eq!(read_file(&ok).unwrap(), "a: b\n");
        std::fs::write(&ok, [0xff, 0xfe]).unwrap();
        assert!(matches!(read_file(&ok), Err(ReadError::NotText { .. })));
    }
}
