//! HTML text for the pages tautan writes itself (the yearly report, the
//! HTTP door's catalog and status pages): every value is escaped here.

/// `s` as HTML text (also safe inside a quoted attribute).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The style every page shares.
pub const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:4px 8px;\
text-align:left;vertical-align:top}td.n{text-align:right}.bar{fill:#2a6f97}\
.chart{display:block;margin:1em 0}code{word-break:break-all}.up{color:#1b7f3b}\
.down{color:#b3261e}details{margin:.3em 0}";

#[cfg(test)]
mod tests {
    #[test]
    fn markup_in_values_is_text() {
        assert_eq!(
            super::escape("<script>alert('x&y')</script>\""),
            "&lt;script&gt;alert(&#39;x&amp;y&#39;)&lt;/script&gt;&quot;"
        );
    }
}
