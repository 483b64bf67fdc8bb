//! One audit record, its canonical encoding and its place in the hash chain.
//!
//! A record is one line of JSON (JSON Lines) with six keys:
//!
//! ```text
//! {"fields":{…},"hash":"<64 hex>","kind":"intent","prev":"<64 hex>","seq":17,"ts":"2025-01-02T03:04:05.123456Z"}
//! ```
//!
//! - `seq`: 1-based, contiguous over the whole log.
//! - `ts`: when the appender sequenced it, RFC 3339 UTC with microseconds.
//! - `kind`: [`Kind`], a string.
//! - `fields`: a JSON object the engine fills (user, roles, purpose, SQL, …);
//!   a `completion` names its `intent` record's seq in `fields.intent`.
//! - `prev`: `hash` of record `seq - 1`; 64 zeros for record 1.
//! - `hash`: SHA-256 of the record's *canonical encoding without `hash`*.
//!
//! ## Canonical encoding
//!
//! The canonical encoding is the JSON Canonicalization Scheme (RFC 8785),
//! implemented here over `serde_json::Value` without relying on how any
//! serde_json version prints JSON:
//!
//! - no white space at all;
//! - object members sorted by their keys' UTF-16 code units (for the
//!   record's own keys: `fields`, `hash`, `kind`, `prev`, `seq`, `ts`);
//! - strings in double quotes with only `"` → `\"`, `\` → `\\`, U+0008 →
//!   `\b`, U+0009 → `\t`, U+000A → `\n`, U+000C → `\f`, U+000D → `\r` and
//!   the other characters below U+0020 as `\u00xx` (lower-case hex) escaped;
//!   everything else, non-ASCII included, as its UTF-8 bytes;
//! - `true`, `false`, `null` as such;
//! - numbers that are integers (as serde_json holds them: `i64`/`u64`) in
//!   plain decimal, exactly (RFC 8785 would round integers beyond 2^53 to
//!   doubles; below that the two agree); other numbers as ECMAScript's
//!   `Number.prototype.toString` (RFC 8785 §3.2.2.3): the shortest
//!   round-tripping digits, plain between 1e-6 and 1e21, else `d.ddde±x`.
//!
//! `hash` = SHA-256(canonical encoding of the record without its `hash`
//! member). The line written to the segment file is the canonical encoding
//! of the whole record (with `hash`), so [`check_line`] also refuses a line
//! that was merely re-spaced, re-ordered or given a duplicate key: any byte
//! that differs from what the appender wrote is reported.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::hash::{hash_from_hex, push_hex, sha256, Hash};

/// A record's position in the log, from 1.
pub type Seq = u64;

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A successful login (user, roles, application, client address).
    Login,
    /// A refused login (user name as given, client address, reason).
    LoginFailed,
    /// A session ended.
    Logout,
    /// A statement is about to run: written (and durable) before any source
    /// is contacted (user, purpose, SQL, tables/columns, agreements, policy
    /// version, decision, SQL sent per link).
    Intent,
    /// A statement ended (`fields.intent` = the intent's seq; rows, bytes,
    /// duration, SQLSTATE).
    Completion,
    /// A statement refused by policy before anything ran.
    Denied,
    /// The server started (config and policy version).
    Startup,
    /// The server stopped cleanly.
    Shutdown,
    /// The policy (grants, agreements) was loaded or changed.
    Policy,
    /// A link went up or down (`fields.link`, `fields.status`, `fields.error`).
    Link,
}

impl Kind {
    /// The kind as written in the log.
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Login => "login",
            Kind::LoginFailed => "login_failed",
            Kind::Logout => "logout",
            Kind::Intent => "intent",
            Kind::Completion => "completion",
            Kind::Denied => "denied",
            Kind::Startup => "startup",
            Kind::Shutdown => "shutdown",
            Kind::Policy => "policy",
            Kind::Link => "link",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the engine hands the log: the kind and the fields. The log adds
/// `seq`, `ts`, `prev` and `hash`.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// What the record is about.
    pub kind: Kind,
    /// A JSON object (anything else is wrapped as `{"value": …}`).
    pub fields: Value,
}

impl Entry {
    /// An entry of `kind` with `fields`.
    pub fn new(kind: Kind, fields: Value) -> Self {
        let fields = match fields {
            Value::Object(_) => fields,
            Value::Null => Value::Object(Default::default()),
            other => serde_json::json!({ "value": other }),
        };
        Entry { kind, fields }
    }

    /// The completion of the statement whose intent was record `intent`:
    /// `fields.intent` is set to it.
    pub fn completion(intent: Seq, fields: Value) -> Self {
        let mut e = Entry::new(Kind::Completion, fields);
        if let Value::Object(map) = &mut e.fields {
            map.insert("intent".into(), Value::from(intent));
        }
        e
    }
}

/// A sealed record, as read back from a segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Position in the log, from 1.
    pub seq: Seq,
    /// RFC 3339 UTC with microseconds.
    pub ts: String,
    /// What it is about.
    pub kind: Kind,
    /// The engine's fields.
    pub fields: Value,
    /// Hex SHA-256 of the previous record.
    pub prev: String,
    /// Hex SHA-256 of this record's canonical encoding without `hash`.
    pub hash: String,
}

impl Record {
    /// Parses one line (without its newline).
    pub fn parse(line: &[u8]) -> Result<Record, String> {
        serde_json::from_slice(line).map_err(|e| format!("not a record: {e}"))
    }

    /// The SHA-256 of the canonical encoding without `hash`.
    pub fn compute_hash(&self) -> Hash {
        let fields = canonical(&self.fields);
        let pre = preimage(self.seq, &self.ts, self.kind, &fields, &self.prev);
        sha256(pre.as_bytes())
    }

    /// The stored `hash`, decoded (None when it is not 64 lower-case hex).
    pub fn stored_hash(&self) -> Option<Hash> {
        hash_from_hex(&self.hash)
    }

    /// The canonical line (without newline), `hash` included as stored.
    pub fn to_line(&self) -> String {
        let fields = canonical(&self.fields);
        line_with(
            self.seq, &self.ts, self.kind, &fields, &self.prev, &self.hash,
        )
    }

    /// `fields.intent` of a completion.
    pub fn intent_ref(&self) -> Option<Seq> {
        self.fields.get("intent").and_then(Value::as_u64)
    }
}

/// What is wrong with one line taken alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineFault {
    /// Not JSON, or not a record.
    Unparseable(String),
    /// `hash` is not what the content hashes to: the content was altered.
    HashMismatch {
        /// As stored.
        stored: String,
        /// As recomputed.
        computed: String,
    },
    /// The hash holds but the bytes are not the canonical encoding.
    NotCanonical,
}

impl std::fmt::Display for LineFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineFault::Unparseable(e) => write!(f, "unreadable line ({e})"),
            LineFault::HashMismatch { stored, computed } => write!(
                f,
                "content altered: stored hash {stored} but the record hashes to {computed}"
            ),
            LineFault::NotCanonical => f.write_str(
                "line is not in canonical form (re-spaced, re-ordered or duplicated keys)",
            ),
        }
    }
}

/// Parses a line and checks its hash and canonical form; on success returns
/// the record and its hash.
pub fn check_line(line: &[u8]) -> Result<(Record, Hash), LineFault> {
    let record = Record::parse(line).map_err(LineFault::Unparseable)?;
    let fields = canonical(&record.fields);
    let pre = preimage(record.seq, &record.ts, record.kind, &fields, &record.prev);
    let computed = sha256(pre.as_bytes());
    let mut computed_hex = String::with_capacity(64);
    push_hex(&mut computed_hex, &computed);
    if computed_hex != record.hash {
        return Err(LineFault::HashMismatch {
            stored: record.hash.clone(),
            computed: computed_hex,
        });
    }
    let canonical_line = line_with(
        record.seq,
        &record.ts,
        record.kind,
        &fields,
        &record.prev,
        &record.hash,
    );
    if canonical_line.as_bytes() != line {
        return Err(LineFault::NotCanonical);
    }
    Ok((record, computed))
}

/// Seals a record: returns its hash and its line (without newline).
/// `fields` must already be canonical ([`canonical`]).
pub fn seal(seq: Seq, ts: &str, kind: Kind, fields: &str, prev: &Hash) -> (Hash, String) {
    let mut prev_hex = String::with_capacity(64);
    push_hex(&mut prev_hex, prev);
    let pre = preimage(seq, ts, kind, fields, &prev_hex);
    let hash = sha256(pre.as_bytes());
    let mut hash_hex = String::with_capacity(64);
    push_hex(&mut hash_hex, &hash);
    (hash, line_with(seq, ts, kind, fields, &prev_hex, &hash_hex))
}

/// The canonical encoding without `hash` (the hash's input).
fn preimage(seq: Seq, ts: &str, kind: Kind, fields: &str, prev: &str) -> String {
    let mut s = String::with_capacity(fields.len() + ts.len() + 140);
    s.push_str("{\"fields\":");
    s.push_str(fields);
    s.push_str(",\"kind\":");
    push_string(&mut s, kind.as_str());
    s.push_str(",\"prev\":");
    push_string(&mut s, prev);
    let _ = write!(s, ",\"seq\":{seq},\"ts\":");
    push_string(&mut s, ts);
    s.push('}');
    s
}

/// The canonical encoding with `hash` (the stored line).
fn line_with(seq: Seq, ts: &str, kind: Kind, fields: &str, prev: &str, hash: &str) -> String {
    let mut s = String::with_capacity(fields.len() + ts.len() + 220);
    s.push_str("{\"fields\":");
    s.push_str(fields);
    s.push_str(",\"hash\":");
    push_string(&mut s, hash);
    s.push_str(",\"kind\":");
    push_string(&mut s, kind.as_str());
    s.push_str(",\"prev\":");
    push_string(&mut s, prev);
    let _ = write!(s, ",\"seq\":{seq},\"ts\":");
    push_string(&mut s, ts);
    s.push('}');
    s
}

/// The canonical encoding (RFC 8785, integers exact) of a JSON value.
pub fn canonical(v: &Value) -> String {
    let mut s = String::new();
    push_canonical(&mut s, v);
    s
}

/// Appends the canonical encoding of `v` to `out`.
pub fn push_canonical(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                let _ = write!(out, "{u}");
            } else if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if let Some(f) = n.as_f64() {
                push_es_number(out, f);
            } else {
                out.push_str("null");
            }
        }
        Value::String(s) => push_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_canonical(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_string(out, k);
                out.push(':');
                if let Some(v) = map.get(*k) {
                    push_canonical(out, v);
                }
            }
            out.push('}');
        }
    }
}

/// A JSON string, escaped as RFC 8785 says.
fn push_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\u{8}' => Some("\\b"),
            '\t' => Some("\\t"),
            '\n' => Some("\\n"),
            '\u{c}' => Some("\\f"),
            '\r' => Some("\\r"),
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

/// ECMAScript `Number.prototype.toString` of a finite double.
fn push_es_number(out: &mut String, f: f64) {
    if f == 0.0 || !f.is_finite() {
        // -0 prints as 0; JSON (and serde_json) has no NaN or infinity.
        out.push('0');
        return;
    }
    if f < 0.0 {
        out.push('-');
    }
    // Rust's `{:e}` prints the shortest digits that round-trip.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    let k = digits.len() as i32;
    let n = exp + 1;
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = n - 1;
        let _ = write!(out, "e{}{}", if e < 0 { '-' } else { '+' }, e.abs());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::hash::{to_hex, ZERO_HASH};
    use serde_json::json;

    #[test]
    fn audit_canonical_sorts_keys_and_escapes() {
        let v = json!({"b": 1, "a": [true, null, "x\"\\\n\u{1}é"], "A": {"z": -3, "y": 2.5}});
        assert_eq!(
            canonical(&v),
            r#"{"A":{"y":2.5,"z":-3},"a":[true,null,"x\"\\\n\u0001é"],"b":1}"#
        );
    }

    #[test]
    fn audit_canonical_sorts_by_utf16_not_utf8() {
        // U+FF61 sorts after U+1F600 in UTF-8 bytes but before it in UTF-16
        // (the emoji is a surrogate pair starting 0xD83D).
        let v = json!({"\u{ff61}": 1, "\u{1f600}": 2});
        assert_eq!(canonical(&v), "{\"\u{1f600}\":2,\"\u{ff61}\":1}");
    }

    #[test]
    fn audit_canonical_numbers_follow_ecmascript() {
        let cases: &[(f64, &str)] = &[
            (1.5, "1.5"),
            (0.1, "0.1"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123456789.125, "123456789.125"),
            (0.000001, "0.000001"),
            (0.0000001, "1e-7"),
            (-2.5e-10, "-2.5e-10"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (-0.0, "0"),
        ];
        for (f, want) in cases {
            let mut s = String::new();
            push_es_number(&mut s, *f);
            assert_eq!(&s, want, "{f}");
        }
        // Integers stay exact beyond 2^53.
        assert_eq!(canonical(&json!(u64::MAX)), "18446744073709551615");
        assert_eq!(canonical(&json!(i64::MIN)), "-9223372036854775808");
    }

    #[test]
    fn audit_seal_then_check_round_trips() {
        let fields = canonical(&json!({"user": "ani", "sql": "SELECT 1", "rows": 3, "d": 0.25}));
        let (h, line) = seal(
            1,
            "2025-01-02T03:04:05.000001Z",
            Kind::Intent,
            &fields,
            &ZERO_HASH,
        );
        assert_eq!(
            line,
            format!(
                "{{\"fields\":{fields},\"hash\":\"{}\",\"kind\":\"intent\",\"prev\":\"{}\",\"seq\":1,\"ts\":\"2025-01-02T03:04:05.000001Z\"}}",
                to_hex(&h),
                "0".repeat(64)
            )
        );
        // The hash is over the same text without the hash member.
        let pre = format!(
            "{{\"fields\":{fields},\"kind\":\"intent\",\"prev\":\"{}\",\"seq\":1,\"ts\":\"2025-01-02T03:04:05.000001Z\"}}",
            "0".repeat(64)
        );
        assert_eq!(h, sha256(pre.as_bytes()));
        let (r, h2) = check_line(line.as_bytes()).unwrap();
        assert_eq!(h2, h);
        assert_eq!(r.to_line(), line);
        assert_eq!(r.compute_hash(), h);
    }

    #[test]
    fn audit_check_line_finds_edits_and_reformatting() {
        let fields = canonical(&json!({"user": "ani"}));
        let (_, line) = seal(
            7,
            "2025-01-02T03:04:05.000001Z",
            Kind::Login,
            &fields,
            &ZERO_HASH,
        );
        let edited = line.replace("ani", "anu");
        assert!(matches!(
            check_line(edited.as_bytes()),
            Err(LineFault::HashMismatch { .. })
        ));
        let spaced = line.replacen("{\"fields\":", "{ \"fields\":", 1);
        assert_eq!(check_line(spaced.as_bytes()), Err(LineFault::NotCanonical));
        let dup = line.replacen(
            "{\"user\":\"ani\"}",
            "{\"user\":\"ani\",\"user\":\"ani\"}",
            1,
        );
        assert_eq!(check_line(dup.as_bytes()), Err(LineFault::NotCanonical));
        assert!(matches!(
            check_line(b"{\"seq\":"),
            Err(LineFault::Unparseable(_))
        ));
    }

    #[test]
    fn audit_canonical_is_stable_through_a_parse() {
        // What the appender writes must read back to the same text, floats
        // included (serde_json's float_roundtrip feature).
        for f in [0.1, 1.0 / 3.0, 2.0e-300, 123.456e100, 9007199254740993.0] {
            let text = canonical(&json!({ "x": f }));
            let back: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(canonical(&back), text);
        }
    }
}
