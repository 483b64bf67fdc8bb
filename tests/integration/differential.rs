//! The differential harness: tautan's answer is the source's answer.
//!
//! Two tables hold every mapped type with extremes, NULLs, empty values,
//! non-ASCII text, padding, special floats and dates and the widest
//! decimals (`sql/uji.*.sql`, table `beda`). The oracle is PostgreSQL:
//! for the PostgreSQL link the source itself, for the MariaDB link a
//! PostgreSQL table holding the same values (`beda_my`) — tautan answers
//! MariaDB data with PostgreSQL's semantics (byte-exact strings; the
//! README's type table says where a value's form differs).
//!
//! For every column, with pushdown on and off: the values as text and as
//! binary (type OID and bytes), equality / range / IN / LIKE filters with a
//! value of that column, ORDER BY it (selected and not), min/max, GROUP BY,
//! and COPY in text, CSV and binary; then seeded random filter trees over
//! all columns or over one, compared as filters and as values (seed 1
//! unless `TAUTAN_TEST_SEED` says another, or `random`). Every mismatch is
//! collected; the test fails listing them all, and prints what it checked.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::common::*;

/// What a column holds, for choosing the operations that apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Number,
    Text,
    Bytes,
    Temporal,
    Other,
}

struct Target {
    link: &'static str,
    /// The table through tautan.
    tautan: &'static str,
    /// The same values in PostgreSQL.
    oracle: &'static str,
    columns: &'static [(&'static str, Kind)],
}

const TARGETS: &[Target] = &[
    Target {
        link: "postgres",
        tautan: "uji_pg.public.beda",
        oracle: "public.beda",
        columns: &[
            ("b", Kind::Bool),
            ("i2", Kind::Number),
            ("i4", Kind::Number),
            ("i8", Kind::Number),
            ("f4", Kind::Number),
            ("f8", Kind::Number),
            ("n", Kind::Number),
            ("n38", Kind::Number),
            ("t", Kind::Text),
            ("vc", Kind::Text),
            ("ch", Kind::Text),
            ("by", Kind::Bytes),
            ("d", Kind::Temporal),
            ("ts", Kind::Temporal),
            ("tstz", Kind::Temporal),
            ("tm", Kind::Temporal),
            ("u", Kind::Other),
            ("iv", Kind::Other),
        ],
    },
    Target {
        link: "mariadb",
        tautan: "uji_my.tautan_uji.beda",
        oracle: "public.beda_my",
        columns: &[
            ("flag", Kind::Bool),
            ("ti", Kind::Number),
            ("tu", Kind::Number),
            ("si", Kind::Number),
            ("i", Kind::Number),
            ("bi", Kind::Number),
            ("bu", Kind::Number),
            ("f", Kind::Number),
            ("d8", Kind::Number),
            ("de", Kind::Number),
            ("t", Kind::Text),
            ("vc", Kind::Text),
            ("ch", Kind::Text),
            ("bl", Kind::Bytes),
            ("dt", Kind::Temporal),
            ("dtm", Kind::Temporal),
            ("tm", Kind::Temporal),
        ],
    },
];

/// Any value, as its binary bytes.
#[derive(Debug, PartialEq)]
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Rows of `sql` as text (simple protocol), or the error's SQLSTATE.
async fn text_rows(client: &Client, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    let messages = client
        .simple_query(sql)
        .await
        .map_err(|e| format!("error {}", sqlstate(&e)))?;
    Ok(messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect())
}

/// Rows of `sql` in binary (extended protocol): each value's type and bytes.
async fn binary_rows(client: &Client, sql: &str) -> Result<Vec<Vec<(u32, Option<Raw>)>>, String> {
    let rows = client
        .query(sql, &[])
        .await
        .map_err(|e| format!("error {}", sqlstate(&e)))?;
    Ok(rows
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| (r.columns()[i].type_().oid(), r.get::<_, Option<Raw>>(i)))
                .collect()
        })
        .collect())
}

async fn copy_bytes(client: &Client, sql: &str) -> Result<Vec<u8>, String> {
    use futures::TryStreamExt;
    let stream = client
        .copy_out(sql)
        .await
        .map_err(|e| format!("error {}", sqlstate(&e)))?;
    let chunks: Vec<bytes::Bytes> = stream
        .try_collect()
        .await
        .map_err(|e| format!("error mid-stream: {e}"))?;
    Ok(chunks.concat())
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Differences that are deliberate, each with its reason (README, "Where
/// tautan's answer differs from PostgreSQL's"): a check whose text holds
/// the fragment may differ.
const DELIBERATE: &[(&str, &str)] = &[
    (
        "min(by), max(by)",
        "PostgreSQL has no min/max of bytea; tautan orders bytes and answers",
    ),
    (
        "min(bl), max(bl)",
        "PostgreSQL has no min/max of bytea; tautan orders bytes and answers",
    ),
    (
        "min(ch), max(ch)",
        "an aggregate of char(n) comes back without its padding (a text result)",
    ),
    (
        "GROUP BY iv",
        "grouping and ordering intervals: PostgreSQL takes '1 mon' = '30 days', \
         DataFusion keeps them apart (comparisons follow PostgreSQL)",
    ),
    ("ORDER BY iv", "as above"),
    ("count(DISTINCT iv)", "as above"),
];

/// What was checked and what differed.
#[derive(Default)]
struct Tally {
    checks: usize,
    deliberate: usize,
    mismatches: Vec<String>,
}

impl Tally {
    fn compare<T: PartialEq + std::fmt::Debug>(&mut self, what: String, tautan: T, oracle: T) {
        self.checks += 1;
        if tautan != oracle {
            if DELIBERATE
                .iter()
                .any(|(fragment, _)| what.contains(fragment))
            {
                self.deliberate += 1;
                return;
            }
            self.mismatches.push(format!(
                "{what}\n    tautan: {tautan:?}\n    oracle: {oracle:?}"
            ));
        }
    }
}

/// Values of `column` in the oracle, as text, NULLs left out.
async fn values(oracle: &Client, table: &str, column: &str) -> Vec<String> {
    text_rows(oracle, &format!("SELECT {column} FROM {table} ORDER BY id"))
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect()
}

async fn set_pushdown(client: &Client, on: bool) {
    client
        .batch_execute(if on {
            "SET tautan.pushdown = on"
        } else {
            "SET tautan.pushdown = off"
        })
        .await
        .expect("set pushdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_and_operation_answers_as_the_source() {
    // A fixed seed by default, so the suite (and CI) is repeatable;
    // `TAUTAN_TEST_SEED=random` explores, a number repeats a run.
    let seed: u64 = match std::env::var("TAUTAN_TEST_SEED").ok().as_deref() {
        Some("random") => rand::random(),
        Some(s) => s.parse().unwrap_or(1),
        None => 1,
    };
    println!("differential seed: {seed} (TAUTAN_TEST_SEED={seed} repeats it)");
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    let oracle = pg_admin("tautan_uji").await;
    let mut tally = Tally::default();
    let mut random_queries = 0;
    for target in TARGETS {
        let (tt, ot) = (target.tautan, target.oracle);
        for pushdown in [true, false] {
            set_pushdown(&client, pushdown).await;
            let tag = |what: &str| format!("[{} pushdown={pushdown}] {what}", target.link);
            for &(column, kind) in target.columns {
                let select = |t: &str| format!("SELECT id, {column} FROM {t} ORDER BY id");
                tally.compare(
                    tag(&format!("{column}: text values")),
                    text_rows(&client, &select(tt)).await,
                    text_rows(&oracle, &select(ot)).await,
                );
                tally.compare(
                    tag(&format!("{column}: binary values")),
                    binary_rows(&client, &select(tt)).await,
                    binary_rows(&oracle, &select(ot)).await,
                );
                let mut shapes = vec![
                    format!("SELECT id FROM {{t}} WHERE {column} IS NULL ORDER BY id"),
                    format!("SELECT id FROM {{t}} WHERE {column} IS NOT NULL ORDER BY id"),
                    format!("SELECT count(*), count({column}), count(DISTINCT {column}) FROM {{t}}"),
                    format!("SELECT {column}, count(*) FROM {{t}} GROUP BY {column} ORDER BY {column} NULLS FIRST"),
                    format!("SELECT id FROM {{t}} ORDER BY {column} NULLS FIRST, id LIMIT 5"),
                    format!("SELECT id, {column} FROM {{t}} ORDER BY {column} DESC NULLS LAST, id LIMIT 5"),
                ];
                if !matches!(kind, Kind::Bool | Kind::Other) {
                    shapes.push(format!("SELECT min({column}), max({column}) FROM {{t}}"));
                }
                let vals = values(&oracle, ot, column).await;
                for v in vals.iter().take(12) {
                    let l = literal(v);
                    shapes.push(format!(
                        "SELECT id FROM {{t}} WHERE {column} = {l} ORDER BY id"
                    ));
                    shapes.push(format!(
                        "SELECT id FROM {{t}} WHERE {column} <> {l} ORDER BY id"
                    ));
                    shapes.push(format!(
                        "SELECT id FROM {{t}} WHERE {column} IN ({l}, {}) ORDER BY id",
                        literal(vals.first().map(String::as_str).unwrap_or_default())
                    ));
                    if !matches!(kind, Kind::Bool | Kind::Other) {
                        shapes.push(format!(
                            "SELECT id FROM {{t}} WHERE {column} < {l} ORDER BY id"
                        ));
                        shapes.push(format!(
                            "SELECT id FROM {{t}} WHERE {column} >= {l} ORDER BY id"
                        ));
                    }
                    if kind == Kind::Text {
                        let prefix: String = v.chars().take(1).collect();
                        let like = literal(&format!(
                            "{}%",
                            prefix
                                .replace('\\', "\\\\")
                                .replace('%', "\\%")
                                .replace('_', "\\_")
                        ));
                        shapes.push(format!(
                            "SELECT id FROM {{t}} WHERE {column} LIKE {like} ORDER BY id"
                        ));
                        // Trailing blanks: insignificant for char(n), part
                        // of the value for text and varchar (MariaDB's PAD
                        // SPACE collations answer as MariaDB, not as this
                        // PostgreSQL oracle: not compared).
                        if target.link == "postgres" {
                            let padded = literal(&format!("{v}  "));
                            shapes.push(format!(
                                "SELECT id FROM {{t}} WHERE {column} = {padded} ORDER BY id"
                            ));
                            shapes.push(format!(
                                "SELECT id FROM {{t}} WHERE {column} IN ({padded}, '   ') ORDER BY id"
                            ));
                            shapes.push(format!(
                                "SELECT id FROM {{t}} WHERE {column} NOT IN ({padded}) ORDER BY id"
                            ));
                            // random() keeps the whole OR in tautan.
                            shapes.push(format!(
                                "SELECT id FROM {{t}} WHERE {column} IN ({padded}, '   ') OR random() > 2 ORDER BY id"
                            ));
                            shapes.push(format!(
                                "SELECT id FROM {{t}} WHERE {column} = {padded} OR {column} < {padded} OR random() > 2 ORDER BY id"
                            ));
                        }
                    }
                }
                for shape in shapes {
                    let (a, b) = (shape.replace("{t}", tt), shape.replace("{t}", ot));
                    tally.compare(
                        tag(&a),
                        text_rows(&client, &a).await,
                        text_rows(&oracle, &b).await,
                    );
                }
            }
            // COPY of the whole table in every format.
            for format in ["text", "csv", "binary"] {
                if format == "binary" && target.link == "mariadb" {
                    continue; // column types differ from the oracle's
                }
                let copy = |t: &str| {
                    format!("COPY (SELECT * FROM {t} ORDER BY id) TO STDOUT (FORMAT {format})")
                };
                tally.compare(
                    tag(&format!("COPY {format}")),
                    copy_bytes(&client, &copy(tt)).await,
                    copy_bytes(&oracle, &copy(ot)).await,
                );
            }
            // Seeded random filter trees.
            let mut rng =
                StdRng::seed_from_u64(seed ^ (pushdown as u64) ^ target.link.len() as u64);
            let mut samples = Vec::new();
            for &(column, kind) in target.columns {
                samples.push((column, kind, values(&oracle, ot, column).await));
            }
            for n in 0..60 {
                // Every other tree is over one column, where IN lists,
                // equalities and negations of the same column meet (the
                // simplifier combines those, see src/simplify.rs).
                let one = rng.random_range(0..samples.len());
                let over = if n % 2 == 0 {
                    &samples[..]
                } else {
                    &samples[one..=one]
                };
                let predicate = random_predicate(&mut rng, over, 3);
                // As a filter, and as a value (NULL is not false).
                let filter = |t: &str| format!("SELECT id FROM {t} WHERE {predicate} ORDER BY id");
                let value = |t: &str| format!("SELECT id, ({predicate}) FROM {t} ORDER BY id");
                for sql in [&filter as &dyn Fn(&str) -> String, &value] {
                    tally.compare(
                        tag(&format!("random: {}", sql(tt))),
                        text_rows(&client, &sql(tt)).await,
                        text_rows(&oracle, &sql(ot)).await,
                    );
                    random_queries += 1;
                }
            }
        }
    }
    println!(
        "differential: {} checks ({} random queries), {} mismatches, {} deliberate differences \
         (seed {seed})",
        tally.checks,
        random_queries,
        tally.mismatches.len(),
        tally.deliberate
    );
    assert!(
        tally.mismatches.is_empty(),
        "{} of {} checks differ from the oracle (seed {seed}):\n{}",
        tally.mismatches.len(),
        tally.checks,
        tally.mismatches.join("\n")
    );
}

/// A random filter over `samples` (column, kind, values), `depth` deep.
fn random_predicate(rng: &mut StdRng, samples: &[(&str, Kind, Vec<String>)], depth: u32) -> String {
    if depth > 0 && rng.random_bool(0.4) {
        let a = random_predicate(rng, samples, depth - 1);
        let b = random_predicate(rng, samples, depth - 1);
        return match rng.random_range(0..3) {
            0 => format!("({a} AND {b})"),
            1 => format!("({a} OR {b})"),
            _ => format!("NOT ({a})"),
        };
    }
    let (column, kind, values) = &samples[rng.random_range(0..samples.len())];
    let Some(v) = values.get(rng.random_range(0..values.len().max(1))) else {
        return format!("{column} IS NULL");
    };
    // A number is written bare half the time: `n > 1.5` compares with a
    // numeric constant, `n > '1.5'` with one of the column's type.
    // (Not one of more than 38 digits, which tautan reads as a float:
    // README, "Deliberate differences".)
    let bare = matches!(kind, Kind::Number)
        && v.parse::<f64>()
            .is_ok_and(|f| f.is_finite() && f.abs() < 1e30)
        && rng.random_bool(0.5);
    let l = if bare { v.clone() } else { literal(v) };
    let ordered = !matches!(kind, Kind::Bool | Kind::Other);
    let other = literal(&values[rng.random_range(0..values.len())]);
    match rng.random_range(0..9) {
        0 => format!("{column} = {l}"),
        1 => format!("{column} <> {l}"),
        2 if ordered => format!("{column} < {l}"),
        3 if ordered => format!("{column} >= {l}"),
        4 => format!("{column} IS NOT NULL"),
        5 => format!("{column} NOT IN ({l}, {other})"),
        6 => format!("{column} IN ({l}, NULL)"),
        7 => format!("{column} IN ({l})"),
        _ => format!("{column} IN ({l}, {other})"),
    }
}
