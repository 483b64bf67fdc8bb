//! Table patterns: `link.schema.table` with a glob per part, as grants
//! and agreements name tables.

use globset::{Glob, GlobMatcher};

/// One table pattern: a glob per dot-separated part.
#[derive(Debug, Clone)]
pub struct TablePattern {
    text: String,
    parts: Vec<GlobMatcher>,
    /// The last part is a lone `*`: it matches any number of deeper parts.
    open_ended: bool,
}

impl TablePattern {
    /// Parses `link.schema.table`, `ref.*`, `kesehatan.*`, ...
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Err("empty pattern".into());
        }
        let raw: Vec<&str> = text.split('.').collect();
        if raw.len() > 3 {
            return Err("at most three parts: link.schema.table".into());
        }
        let mut parts = Vec::with_capacity(raw.len());
        for p in &raw {
            if p.is_empty() {
                return Err("empty part".into());
            }
            let glob = Glob::new(p).map_err(|e| e.to_string())?;
            parts.push(glob.compile_matcher());
        }
        Ok(Self {
            text: text.to_string(),
            open_ended: raw.last() == Some(&"*"),
            parts,
        })
    }

    /// Whether the pattern covers `name`.
    pub fn matches(&self, name: &[String]) -> bool {
        let n = self.parts.len();
        if name.len() == n {
            return self.parts.iter().zip(name).all(|(g, s)| g.is_match(s));
        }
        if self.open_ended && name.len() > n {
            return self.parts[..n - 1]
                .iter()
                .zip(name)
                .all(|(g, s)| g.is_match(s));
        }
        false
    }

    /// Whether a table under `prefix` (a link, or a link's schema) could
    /// match: used to hide whole catalogs and schemas.
    pub fn may_match_under(&self, prefix: &[String]) -> bool {
        let n = self.parts.len();
        let k = prefix.len().min(n);
        let head_ok = self.parts[..k]
            .iter()
            .zip(prefix)
            .all(|(g, s)| g.is_match(s));
        // A shorter pattern only reaches deeper through an open end.
        head_ok && (n > prefix.len() || self.open_ended)
    }

    /// The table name the pattern matches when it has no wildcard (so it
    /// matches that one name only).
    pub fn literal(&self) -> Option<Vec<String>> {
        let plain = |p: &str| !p.contains(['*', '?', '[', ']', '{', '}', '\\']);
        let parts: Vec<&str> = self.text.split('.').collect();
        parts
            .iter()
            .all(|p| plain(p))
            .then(|| parts.iter().map(|p| p.to_string()).collect())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Vec<String> {
        s.split('.').map(String::from).collect()
    }

    #[test]
    fn literal_patterns_name_one_table() {
        let lit = TablePattern::parse("pg.public.t").unwrap();
        assert_eq!(lit.literal(), Some(n("pg.public.t")));
        assert!(lit.matches(&n("pg.public.t")));
        for globbed in ["pg.*", "pg.public.t?", "pg.public.[ab]", "*"] {
            assert_eq!(
                TablePattern::parse(globbed).unwrap().literal(),
                None,
                "{globbed}"
            );
        }
    }

    #[test]
    fn patterns() {
        let p = TablePattern::parse("kesehatan.*").unwrap();
        assert!(p.matches(&n("kesehatan.kesehatan.kunjungan")));
        assert!(!p.matches(&n("kependudukan.public.penduduk")));
        let p = TablePattern::parse("ref.*").unwrap();
        assert!(p.matches(&n("ref.kecamatan")));
        let p = TablePattern::parse("kependudukan.public.penduduk_*").unwrap();
        assert!(p.matches(&n("kependudukan.public.penduduk_agregat")));
        assert!(!p.matches(&n("kependudukan.public.penduduk")));
        assert!(!p.matches(&n("kependudukan.other.penduduk_x")));
    }
}
