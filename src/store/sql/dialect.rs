//! The store's SQL is written once, in the dialect both engines read; what
//! PostgreSQL spells differently is rewritten here, once per statement (the
//! result is cached with the prepared statement).
//!
//! Rewritten, outside string literals, quoted identifiers and comments:
//! - `?N` and `?` parameters become `$N`;
//! - `user` and `interval`, keywords in PostgreSQL, become `"user"` and `"interval"`
//!   (the table and the column of those names);
//! - `INSERT OR IGNORE INTO …` becomes `INSERT INTO … ON CONFLICT DO NOTHING`;
//! - `LIKE` becomes `ILIKE`, since SQLite's `LIKE` ignores ASCII case;
//! - `IFNULL` becomes `COALESCE`, `GROUP_CONCAT` becomes `STRING_AGG`;
//! - `MAX(a, b)` and `MIN(a, b)`, SQLite's scalar forms (two or more arguments),
//!   become `GREATEST` and `LEAST` (which skip NULLs where SQLite answers NULL:
//!   the store passes them no NULL);
//! - `a IS b` and `a IS NOT b` (SQLite's NULL-safe comparisons, when `b` is not
//!   `NULL`) become `IS NOT DISTINCT FROM` and `IS DISTINCT FROM`;
//! - `BEGIN IMMEDIATE` becomes `BEGIN` (PostgreSQL locks rows as it writes them).
//!
//! Anything else must be written portably in the module (`RETURNING` instead of
//! `last_insert_rowid()`, `ON CONFLICT … DO UPDATE` instead of `INSERT OR REPLACE`).

/// The PostgreSQL form of a statement written for SQLite.
pub fn to_postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut next_param = 1u32;
    let mut ignore_conflicts = false;
    let mut chars = sql.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' | '"' => {
                let end = closing_quote(sql, i, c);
                out.push_str(&sql[i..end]);
                skip_to(&mut chars, end);
            }
            '-' if sql[i..].starts_with("--") => {
                let end = sql[i..].find('\n').map_or(sql.len(), |n| i + n);
                out.push_str(&sql[i..end]);
                skip_to(&mut chars, end);
            }
            '/' if sql[i..].starts_with("/*") => {
                let end = sql[i..].find("*/").map_or(sql.len(), |n| i + n + 2);
                out.push_str(&sql[i..end]);
                skip_to(&mut chars, end);
            }
            '?' => {
                let digits = sql[i + 1..]
                    .find(|d: char| !d.is_ascii_digit())
                    .map_or(sql.len() - i - 1, |n| n);
                let n = if digits == 0 {
                    next_param
                } else {
                    sql[i + 1..i + 1 + digits].parse().unwrap_or(next_param)
                };
                next_param = next_param.max(n + 1);
                out.push('$');
                out.push_str(&n.to_string());
                skip_to(&mut chars, i + 1 + digits);
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let end = sql[i..]
                    .find(|w: char| !(w.is_ascii_alphanumeric() || w == '_' || w == '$'))
                    .map_or(sql.len(), |n| i + n);
                let word = &sql[i..end];
                let after_dot = out.ends_with('.');
                if word.eq_ignore_ascii_case("INSERT") && or_ignore(&sql[end..]).is_some() {
                    let skip = or_ignore(&sql[end..]).unwrap_or(0);
                    out.push_str(word);
                    ignore_conflicts = true;
                    skip_to(&mut chars, end + skip);
                    continue;
                }
                if word.eq_ignore_ascii_case("IS") {
                    let (text, skip) = null_safe_is(&sql[end..]);
                    out.push_str(text);
                    skip_to(&mut chars, end + skip);
                    continue;
                }
                let scalar = (word.eq_ignore_ascii_case("MAX") || word.eq_ignore_ascii_case("MIN"))
                    && has_top_level_comma(&sql[end..]);
                match (scalar, word.to_ascii_uppercase().as_str()) {
                    (true, "MAX") => out.push_str("GREATEST"),
                    (true, _) => out.push_str("LEAST"),
                    (false, _) => out.push_str(rename(word, after_dot)),
                }
                skip_to(&mut chars, end);
            }
            c => out.push(c),
        }
    }
    if ignore_conflicts {
        append_on_conflict(&mut out);
    }
    out
}

/// The PostgreSQL spelling of one word, or the word itself.
fn rename(word: &str, after_dot: bool) -> &str {
    let upper = word.to_ascii_uppercase();
    match upper.as_str() {
        "USER" if !after_dot => "\"user\"",
        "INTERVAL" => "\"interval\"",
        "LIKE" => "ILIKE",
        "IFNULL" => "COALESCE",
        "GROUP_CONCAT" => "STRING_AGG",
        "IMMEDIATE" | "DEFERRED" | "EXCLUSIVE" => "",
        _ => word,
    }
}

/// `IS` as PostgreSQL spells it, given what follows it, and how much of what
/// follows that spelling replaces (`NOT` in `IS NOT ?1`).
fn null_safe_is(rest: &str) -> (&'static str, usize) {
    let words: Vec<(usize, &str)> = words_ahead(rest, 2);
    let is_literal = |w: &str| {
        ["NULL", "TRUE", "FALSE", "DISTINCT", "UNKNOWN"]
            .iter()
            .any(|k| w.eq_ignore_ascii_case(k))
    };
    match words.as_slice() {
        [(_, not), (_, next), ..] if not.eq_ignore_ascii_case("NOT") && is_literal(next) => {
            ("IS", 0)
        }
        [(end, not), ..] if not.eq_ignore_ascii_case("NOT") => ("IS DISTINCT FROM", *end),
        [(_, next), ..] if is_literal(next) => ("IS", 0),
        _ => ("IS NOT DISTINCT FROM", 0),
    }
}

/// The next `n` words of `rest` (a parameter or a parenthesis counts as one), each
/// with the offset just past it.
fn words_ahead(rest: &str, n: usize) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut at = 0;
    while out.len() < n {
        let tail = &rest[at..];
        let trimmed = tail.trim_start();
        if trimmed.is_empty() {
            break;
        }
        let start = at + (tail.len() - trimmed.len());
        let len = trimmed
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '?'))
            .map_or(trimmed.len(), |l| l.max(1));
        out.push((start + len, &rest[start..start + len]));
        at = start + len;
    }
    out
}

/// Whether `rest` starts with a parenthesised list of two or more items: a call
/// `(a, b)` rather than `(a)`.
fn has_top_level_comma(rest: &str) -> bool {
    let Some(inner) = rest.trim_start().strip_prefix('(') else {
        return false;
    };
    let mut depth = 0;
    let mut quote = None;
    for c in inner.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') if depth == 0 => return false,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => return true,
            _ => {}
        }
    }
    false
}

/// The length of ` OR IGNORE` at the start of `rest`, when it is there.
fn or_ignore(rest: &str) -> Option<usize> {
    let trimmed = rest.trim_start();
    let lead = rest.len() - trimmed.len();
    let (or, tail) = trimmed.split_at_checked(2)?;
    if !or.eq_ignore_ascii_case("OR") {
        return None;
    }
    let tail_trimmed = tail.trim_start();
    let gap = tail.len() - tail_trimmed.len();
    let ignore = tail_trimmed.get(..6)?;
    (gap > 0 && ignore.eq_ignore_ascii_case("IGNORE")).then_some(lead + 2 + gap + 6)
}

/// Puts `ON CONFLICT DO NOTHING` after the inserted rows: before a `RETURNING`
/// clause and a final `;`, if any.
fn append_on_conflict(out: &mut String) {
    let trimmed_len = out.trim_end().trim_end_matches(';').trim_end().len();
    let tail = out.split_off(trimmed_len);
    let upper = out.to_ascii_uppercase();
    match upper.rfind("RETURNING") {
        Some(at) => out.insert_str(at, "ON CONFLICT DO NOTHING "),
        None => out.push_str(" ON CONFLICT DO NOTHING"),
    }
    out.push_str(&tail);
}

/// The index just past the quote that closes the one at `start` (a doubled quote
/// is an escaped one), or the end of `sql` when it is never closed.
fn closing_quote(sql: &str, start: usize, quote: char) -> usize {
    let bytes = sql.as_bytes();
    let q = quote as u8;
    let mut i = start + 1;
    while i < bytes.len() {
        if bytes[i] == q {
            if bytes.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    sql.len()
}

fn skip_to(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>, end: usize) {
    while chars.peek().is_some_and(|&(j, _)| j < end) {
        chars.next();
    }
}

#[cfg(test)]
mod tests {
    use super::to_postgres;

    #[test]
    fn parameters_are_numbered_as_sqlite_numbers_them() {
        assert_eq!(to_postgres("SELECT ?1, ?, ?3, ?"), "SELECT $1, $2, $3, $4");
        assert_eq!(
            to_postgres("WHERE a = ?2 AND b = ?12"),
            "WHERE a = $2 AND b = $12"
        );
    }

    #[test]
    fn literals_identifiers_and_comments_are_left_alone() {
        let sql = "SELECT 'user ? it''s', \"user\" -- user ?\n FROM user /* ?1 */ WHERE u.user = ?";
        assert_eq!(
            to_postgres(sql),
            "SELECT 'user ? it''s', \"user\" -- user ?\n FROM \"user\" /* ?1 */ WHERE u.user = $1"
        );
    }

    #[test]
    fn keywords_and_functions_take_their_postgres_names() {
        assert_eq!(
            to_postgres("SELECT IFNULL(x, 0), interval FROM t WHERE e LIKE ?1 ESCAPE '\\'"),
            "SELECT COALESCE(x, 0), \"interval\" FROM t WHERE e ILIKE $1 ESCAPE '\\'"
        );
        assert_eq!(to_postgres("BEGIN IMMEDIATE").trim(), "BEGIN");
        assert_eq!(
            to_postgres("SELECT user_id FROM users"),
            "SELECT user_id FROM users"
        );
    }

    #[test]
    fn null_safe_comparisons_become_distinct_from() {
        assert_eq!(
            to_postgres("WHERE id IS NOT ?2 AND b IS ?1 AND c IS NOT NULL AND d IS NULL"),
            "WHERE id IS DISTINCT FROM $2 AND b IS NOT DISTINCT FROM $1 AND c IS NOT NULL \
             AND d IS NULL"
        );
        assert_eq!(to_postgres("WHERE a IS NOT TRUE"), "WHERE a IS NOT TRUE");
    }

    #[test]
    fn scalar_max_and_min_become_greatest_and_least() {
        assert_eq!(
            to_postgres("SELECT MAX(COALESCE((SELECT MAX(id) FROM t), 0), f(1, 2)) + 1"),
            "SELECT GREATEST(COALESCE((SELECT MAX(id) FROM t), 0), f(1, 2)) + 1"
        );
        assert_eq!(
            to_postgres("SET x = min(x, ?1), y = MAX(y)"),
            "SET x = LEAST(x, $1), y = MAX(y)"
        );
        assert_eq!(to_postgres("SELECT MAX(',')"), "SELECT MAX(',')");
    }

    #[test]
    fn insert_or_ignore_becomes_on_conflict_do_nothing() {
        assert_eq!(
            to_postgres("INSERT OR IGNORE INTO t (a) VALUES (?1);"),
            "INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING;"
        );
        assert_eq!(
            to_postgres("insert or ignore into t (a) values (?1) RETURNING id"),
            "insert into t (a) values ($1) ON CONFLICT DO NOTHING RETURNING id"
        );
        assert_eq!(
            to_postgres("INSERT INTO t VALUES (1)"),
            "INSERT INTO t VALUES (1)"
        );
    }
}
