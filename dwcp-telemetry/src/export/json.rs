//! A minimal JSON writer (objects, strings, numbers) for the summary and health documents.

use std::fmt::Write as _;

/// Append `s` as a JSON string literal (quotes included), escaping `"`, `\` and controls.
pub(crate) fn string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            c if (c as u32) < 0x20 => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Append a number; JSON has no NaN or infinities, so those become `null`.
pub(crate) fn number(out: &mut String, v: f64) {
    if v.is_finite() {
        if v.fract() == 0.0 && v.abs() < 1e15 {
            let _ = write!(out, "{}", v as i64);
        } else {
            let _ = write!(out, "{v:?}");
        }
    } else {
        out.push_str("null");
    }
}

/// Append `"key":` (with a leading comma unless `first`).
pub(crate) fn key(out: &mut String, k: &str, first: bool) {
    if !first {
        out.push(',');
    }
    string(out, k);
    out.push(':');
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes() {
        let mut s = String::new();
        super::string(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, "\"a\\\"b\\\\c\\nd\\u0001é\"");
        let mut n = String::new();
        super::number(&mut n, f64::NAN);
        n.push(' ');
        super::number(&mut n, 2.0);
        n.push(' ');
        super::number(&mut n, 0.25);
        assert_eq!(n, "null 2 0.25");
    }
}
