//! Governed access (issue 15): row filters and masks, and the bypass suite.
//!
//! The demo user `analis_kota` reads `kependudukan.public.penduduk` and
//! `kesehatan.kesehatan.kunjungan` under a row filter (two districts, from
//! the user's `wilayah` attribute) with NIK pseudonymized, names redacted
//! and birth dates as years (federation.toml). Every probe below runs as
//! that user; none may bring back a real NIK, a real name, or any sign of a
//! row outside the two districts.

use std::collections::BTreeSet;

use tokio_postgres::SimpleQueryMessage;

use crate::common::*;

const KOTA: (&str, &str) = ("analis_kota", "kota-demo");
const VISIBLE: [&str; 2] = ["31.71.01", "31.71.02"];
const KEY: &str = "kunci-uji-pseudonim-0123456789";

/// The shipped config with the pseudonym key in a file (so the test can
/// compute the pseudonyms it expects).
async fn policed() -> Server {
    let dir = temp_dir("policy-key");
    let key = dir.join("pseudonym.key");
    std::fs::write(&key, KEY).expect("key file");
    let text = config_text("").replace(
        "pseudonym_key_env = \"TAUTAN_PSEUDONYM_KEY\"",
        &format!("pseudonym_key_file = \"{}\"", key.display()),
    );
    assert!(text.contains("pseudonym_key_file"), "[policy] changed");
    start_config(&text).await
}

fn pseudonym(value: &str) -> String {
    tautan::policy::PseudonymKey::new(KEY.as_bytes().to_vec(), "test").pseudonym(value)
}

/// What the user must never see: every real NIK and name, and the codes of
/// the districts outside the filter.
struct Secrets {
    niks: BTreeSet<String>,
    names: BTreeSet<String>,
    hidden_districts: BTreeSet<String>,
    visible_rows: i64,
}

async fn secrets() -> Secrets {
    let pg = pg_admin("kependudukan").await;
    let rows = pg
        .query("SELECT nik::text, nama, kecamatan_kode FROM penduduk", &[])
        .await
        .expect("population");
    let mut s = Secrets {
        niks: BTreeSet::new(),
        names: BTreeSet::new(),
        hidden_districts: BTreeSet::new(),
        visible_rows: 0,
    };
    for r in rows {
        let district: String = r.get(2);
        s.niks.insert(r.get(0));
        s.names.insert(r.get(1));
        if VISIBLE.contains(&district.as_str()) {
            s.visible_rows += 1;
        } else {
            s.hidden_districts.insert(district);
        }
    }
    s
}

/// Everything a statement shows the user: rows as text, or the error's
/// message, detail and hint.
async fn shown(client: &tokio_postgres::Client, sql: &str) -> Result<String, String> {
    match client.simple_query(sql).await {
        Ok(messages) => {
            let mut out = String::new();
            for m in messages {
                if let SimpleQueryMessage::Row(r) = m {
                    for i in 0..r.len() {
                        out.push_str(r.get(i).unwrap_or("NULL"));
                        out.push('|');
                    }
                    out.push('\n');
                }
            }
            Ok(out)
        }
        Err(e) => {
            let mut text = e.to_string();
            if let Some(db) = e.as_db_error() {
                text.push_str(db.message());
                text.push_str(db.detail().unwrap_or(""));
                text.push_str(db.hint().unwrap_or(""));
            }
            Err(text)
        }
    }
}

/// Panics if `text` (what `sql` showed) holds a secret the query did not
/// itself contain.
fn assert_nothing_hidden(secrets: &Secrets, sql: &str, text: &str) {
    for nik in &secrets.niks {
        if text.contains(nik.as_str()) && !sql.contains(nik.as_str()) {
            panic!("{sql}\nshowed a real NIK {nik}:\n{text}");
        }
    }
    for name in &secrets.names {
        if text.contains(name.as_str()) && !sql.contains(name.as_str()) {
            panic!("{sql}\nshowed a real name {name}:\n{text}");
        }
    }
    for d in &secrets.hidden_districts {
        if text.contains(d.as_str()) && !sql.contains(d.as_str()) {
            panic!("{sql}\nshowed hidden district {d}:\n{text}");
        }
    }
    assert!(!text.contains(KEY), "{sql}\nshowed the pseudonym key");
}

fn single(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .trim_end_matches('|')
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_outside_the_filter_do_not_exist_and_masked_values_are_what_the_user_sees() {
    let server = policed().await;
    let secrets = secrets().await;
    let kota = server.connect(KOTA).await;
    let count = |sql: &'static str| {
        let kota = &kota;
        async move {
            kota.query_one(sql, &[])
                .await
                .unwrap_or_else(|e| panic!("{sql}: {}", message(&e)))
                .get::<_, i64>(0)
        }
    };
    assert_eq!(
        count("SELECT count(*) FROM kependudukan.public.penduduk").await,
        secrets.visible_rows
    );
    let districts: Vec<String> = kota
        .query(
            "SELECT DISTINCT kecamatan_kode FROM kependudukan.public.penduduk ORDER BY 1",
            &[],
        )
        .await
        .expect("districts")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(districts, VISIBLE);

    // Masked values, with the masked types.
    let row = kota
        .query_one(
            "SELECT nik, nama, tanggal_lahir, kecamatan_kode FROM kependudukan.public.penduduk \
             ORDER BY kecamatan_kode, nik LIMIT 1",
            &[],
        )
        .await
        .expect("masked row");
    let nik: String = row.get(0);
    assert_eq!(nik.len(), 64);
    assert!(nik.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(row.get::<_, String>(1), "***");
    let year: i32 = row.get(2);
    assert!((1950..2030).contains(&year), "{year}");
    // The pseudonym is the keyed HMAC of the real NIK.
    let pg = pg_admin("kependudukan").await;
    let real: Vec<String> = pg
        .query(
            "SELECT nik::text FROM penduduk WHERE kecamatan_kode = ANY($1)",
            &[&VISIBLE.to_vec()],
        )
        .await
        .expect("real")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(real.iter().any(|n| pseudonym(n) == nik));

    // Cross-agency linkage on the pseudonym: the same pairs as on the
    // real NIK, within the filter of both tables.
    let admin = server.connect(WALIDATA).await;
    let want: i64 = admin
        .query_one(
            "SELECT count(*) FROM kependudukan.public.penduduk p \
             JOIN kesehatan.kesehatan.kunjungan k ON p.nik = k.nik \
             WHERE p.kecamatan_kode IN ('31.71.01', '31.71.02') \
               AND k.kecamatan_kode IN ('31.71.01', '31.71.02')",
            &[],
        )
        .await
        .expect("oracle")
        .get(0);
    assert!(want > 0, "the demo data has visits of visible residents");
    assert_eq!(
        count(
            "SELECT count(*) FROM kependudukan.public.penduduk p \
             JOIN kesehatan.kesehatan.kunjungan k ON p.nik = k.nik"
        )
        .await,
        want
    );

    // Catalogs show the masked types; EXPLAIN names the policy, not the key.
    let types: Vec<(String, String)> = kota
        .query(
            "SELECT column_name, data_type FROM information_schema.columns \
             WHERE table_name = 'penduduk' AND column_name IN ('nik', 'nama', 'tanggal_lahir') \
             ORDER BY column_name",
            &[],
        )
        .await
        .expect("columns")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        types,
        vec![
            ("nama".to_string(), "text".to_string()),
            ("nik".to_string(), "text".to_string()),
            ("tanggal_lahir".to_string(), "integer".to_string()),
        ]
    );
    let plan = shown(
        &kota,
        "EXPLAIN SELECT nik FROM kependudukan.public.penduduk WHERE jenis_kelamin = 'L' \
         AND length(nik) > 3",
    )
    .await
    .expect("explain");
    assert!(plan.contains("PolicyExec"), "{plan}");
    assert!(plan.contains("nik=pseudonym"), "{plan}");
    assert!(!plan.contains(KEY), "{plan}");
    // The row filter and the leak-proof predicate go to the source; the
    // predicate on the masked column does not.
    let remote = plan
        .lines()
        .find(|l| l.contains("RemoteScanExec"))
        .unwrap_or_else(|| panic!("no remote scan:\n{plan}"));
    assert!(
        remote.contains("31.71.01") && remote.contains("'L'"),
        "{remote}"
    );
    assert!(!remote.to_lowercase().contains("length"), "{remote}");
    assert_nothing_hidden(&secrets, "EXPLAIN", &plan);

    // At the source: every statement sent for the analyst carries the row
    // filter, and no more rows than the filter's left it.
    let females: i64 = kota
        .query_one(
            "SELECT count(*) FROM kependudukan.public.penduduk WHERE jenis_kelamin = 'P' \
             AND length(nama) = 3",
            &[],
        )
        .await
        .expect("filtered at the source")
        .get(0);
    assert!(females > 0 && females < secrets.visible_rows);
    let sent = pg_admin("tautan_uji")
        .await
        .query(
            "SELECT s.query, s.calls, s.rows FROM pg_stat_statements s \
             JOIN pg_roles r ON r.oid = s.userid JOIN pg_database d ON d.oid = s.dbid \
             WHERE r.rolname = 'tautan_ro' AND d.datname = 'kependudukan' \
               AND s.query LIKE '%penduduk%' AND s.query LIKE '%jenis_kelamin%' \
               AND s.query LIKE '%kecamatan_kode%IN%'",
            &[],
        )
        .await
        .expect("pg_stat_statements");
    assert!(
        !sent.is_empty(),
        "no statement with the row filter reached the source"
    );
    for r in &sent {
        let (query, calls, rows): (String, i64, i64) = (r.get(0), r.get(1), r.get(2));
        assert!(
            rows <= calls * secrets.visible_rows,
            "{query}: {rows} rows in {calls} calls"
        );
    }
}

/// A probe and what it must show (beyond showing nothing hidden).
enum Expect {
    /// Exactly this single value.
    Value(&'static str),
    /// Rows or an error, as long as nothing hidden is in them.
    Anything,
    /// An error (a data-independent one, e.g. a type error).
    Error,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bypass_probes_show_nothing_hidden() {
    let server = policed().await;
    let secrets = secrets().await;
    let kota = server.connect(KOTA).await;
    let visible = secrets.visible_rows.to_string();
    let visible: &'static str = Box::leak(visible.into_boxed_str());
    // A real NIK from a hidden district and one from a visible district.
    let pg = pg_admin("kependudukan").await;
    let hidden_nik: String = pg
        .query_one(
            "SELECT nik::text FROM penduduk WHERE kecamatan_kode = '31.71.05' LIMIT 1",
            &[],
        )
        .await
        .expect("nik")
        .get(0);
    let visible_nik: String = pg
        .query_one(
            "SELECT nik::text FROM penduduk WHERE kecamatan_kode = '31.71.01' LIMIT 1",
            &[],
        )
        .await
        .expect("nik")
        .get(0);
    let p = "kependudukan.public.penduduk";
    let k = "kesehatan.kesehatan.kunjungan";
    let mut probes: Vec<(String, Expect)> = vec![
        // Nested references.
        (format!("SELECT count(*) FROM {p} WHERE nik IN (SELECT nik FROM {p})"), Expect::Value(visible)),
        (format!("SELECT count(*) FROM {p} x WHERE EXISTS (SELECT 1 FROM {p} y WHERE y.nik = x.nik)"), Expect::Value(visible)),
        (format!("SELECT (SELECT count(*) FROM {p})"), Expect::Value(visible)),
        (format!("SELECT (SELECT max(nik) FROM {p}) IS NOT NULL"), Expect::Value("t")),
        (format!("SELECT count(*) FROM (SELECT nik FROM {p} UNION ALL SELECT nik FROM {p}) u"), Expect::Anything),
        (format!("WITH x AS (SELECT * FROM {p}) SELECT count(*) FROM x"), Expect::Value(visible)),
        (format!("WITH penduduk AS (SELECT * FROM {p}) SELECT count(*) FROM penduduk"), Expect::Value(visible)),
        (format!("WITH RECURSIVE r(n) AS (SELECT count(*) FROM {p} UNION ALL SELECT n FROM r WHERE false) SELECT n FROM r"), Expect::Value(visible)),
        (format!("SELECT count(*) FROM {p} a JOIN {p} b ON a.nik = b.nik"), Expect::Value(visible)),
        (format!("SELECT count(*) FROM (SELECT DISTINCT kecamatan_kode FROM {p}) d"), Expect::Value("2")),
        (format!("SELECT string_agg(DISTINCT kecamatan_kode, ',' ORDER BY kecamatan_kode) FROM {p}"), Expect::Value("31.71.01,31.71.02")),
        (format!("SELECT count(*) FROM {k} WHERE nik NOT IN (SELECT nik FROM {p})"), Expect::Anything),
        (format!("SELECT count(DISTINCT kecamatan_kode) FROM {k}"), Expect::Value("2")),
        // Name tricks.
        ("SELECT count(*) FROM \"kependudukan\".\"public\".\"penduduk\"".into(), Expect::Value(visible)),
        ("SELECT count(*) FROM KEPENDUDUKAN.PUBLIC.PENDUDUK".into(), Expect::Value(visible)),
        ("SELECT count(*) FROM kependudukan.public.\"PENDUDUK\"".into(), Expect::Error),
        ("SELECT count(*) FROM \"kependudukan.public\".penduduk".into(), Expect::Value(visible)),
        ("SELECT count(*) FROM kependudukan.public.penduduk_per_kecamatan".into(), Expect::Error),
        // Masked-column probes.
        (format!("SELECT count(*) FROM {p} WHERE nik = '{visible_nik}'"), Expect::Value("0")),
        (format!("SELECT count(*) FROM {p} WHERE nik = '{hidden_nik}'"), Expect::Value("0")),
        (format!("SELECT count(*) FROM {p} WHERE nik LIKE '3171%'"), Expect::Value("0")),
        (format!("SELECT count(*) FROM {p} WHERE nik LIKE '%0001'"), Expect::Anything),
        (format!("SELECT min(length(nik)), max(length(nik)) FROM {p}"), Expect::Anything),
        (format!("SELECT min(nik), max(nik) FROM {p}"), Expect::Anything),
        (format!("SELECT nik FROM {p} ORDER BY nik LIMIT 3"), Expect::Anything),
        (format!("SELECT nik FROM {p} ORDER BY 1 DESC LIMIT 3"), Expect::Anything),
        (format!("SELECT substr(nik, 1, 6), count(*) FROM {p} GROUP BY 1 ORDER BY 2 DESC LIMIT 3"), Expect::Anything),
        (format!("SELECT count(*) FROM {p} p JOIN (VALUES ('{hidden_nik}'), ('{visible_nik}')) v(x) ON p.nik = v.x"), Expect::Value("0")),
        (format!("SELECT count(*) FROM {p} WHERE nama = 'Siti Santoso'"), Expect::Value("0")),
        (format!("SELECT DISTINCT nama FROM {p}"), Expect::Value("***")),
        (format!("SELECT count(*) FROM {p} WHERE nama LIKE 'S%'"), Expect::Value("0")),
        (format!("SELECT min(tanggal_lahir) >= 1950 FROM {p}"), Expect::Value("t")),
        (format!("SELECT count(*) FROM {p} WHERE tanggal_lahir = DATE '1990-01-01'"), Expect::Anything),
        (format!("SELECT nik::bigint FROM {p} LIMIT 1"), Expect::Anything),
        (format!("SELECT count(*) FROM {p} WHERE CAST(nik AS BIGINT) > 0"), Expect::Anything),
        (format!("SELECT nik FROM {p} WHERE kecamatan_kode = '31.71.01' LIMIT 2"), Expect::Anything),
        (format!("SELECT count(*) FROM {p} WHERE upper(nik) = nik"), Expect::Anything),
        (format!("SELECT count(*) FROM {p} WHERE kecamatan_kode LIKE '31.71.0%'"), Expect::Value(visible)),
        (format!("SELECT count(*) FROM {p} WHERE kecamatan_kode BETWEEN '31.71.03' AND '31.71.08'"), Expect::Value("0")),
        // Row-filter error and value oracles: nothing about hidden rows.
        (format!("SELECT count(*) FROM {p} WHERE kecamatan_kode = '31.71.05'"), Expect::Value("0")),
        (format!("SELECT count(*) FROM {p} WHERE kecamatan_kode > '31.71.02'"), Expect::Value("0")),
        (format!("SELECT count(*) FROM {p} WHERE kecamatan_kode NOT IN ('31.71.01', '31.71.02')"), Expect::Value("0")),
        (format!("SELECT count(*) FROM {p} WHERE 1 / (CASE WHEN kecamatan_kode = '31.71.05' THEN 0 ELSE 1 END) = 1"), Expect::Value(visible)),
        (format!("SELECT count(*) FROM {p} WHERE CAST(CASE WHEN kecamatan_kode = '31.71.05' THEN 'x' ELSE '1' END AS INT) = 1"), Expect::Value(visible)),
        (format!("SELECT count(*) FROM {p} WHERE jenis_kelamin = 'L' AND 1 / (CASE WHEN kecamatan_kode NOT IN ('31.71.01', '31.71.02') THEN 0 ELSE 1 END) = 1"), Expect::Anything),
        (format!("SELECT count(*) FROM {p} WHERE kecamatan_kode IS NULL OR 1 / (length(kecamatan_kode) - 8) = 0"), Expect::Error),
        (format!("SELECT count(*) FROM {k} WHERE 1 / (CASE WHEN kecamatan_kode = '31.71.07' THEN 0 ELSE 1 END) = 1"), Expect::Anything),
        (format!("SELECT count(*) FROM {p} WHERE kecamatan_kode ~ '^31\\.71\\.0[3-8]$'"), Expect::Value("0")),
        (format!("SELECT count(*) FROM {p} WHERE kecamatan_kode = '31.71.01' OR kecamatan_kode = '31.71.08'"), Expect::Anything),
        (format!("SELECT count(*) FROM {k} k JOIN {p} p ON p.kecamatan_kode = k.kecamatan_kode WHERE p.kecamatan_kode = '31.71.06'"), Expect::Value("0")),
        (format!("SELECT count(*) FROM ref.kecamatan r LEFT JOIN {p} p ON p.kecamatan_kode = r.kode WHERE p.nik IS NOT NULL AND r.kode NOT IN ('31.71.01', '31.71.02')"), Expect::Value("0")),
        // LATERAL: the subquery sees the policed table, not the source's.
        (format!("SELECT count(*) FROM ref.kecamatan r, LATERAL (SELECT x.nik FROM {p} x WHERE x.kecamatan_kode = r.kode) l"), Expect::Anything),
        (format!("SELECT r.kode FROM ref.kecamatan r CROSS JOIN LATERAL (SELECT count(*) AS n FROM {p} x WHERE x.kecamatan_kode = r.kode) l WHERE l.n > 0 ORDER BY 1"), Expect::Anything),
        (format!("SELECT count(*) FROM ref.kecamatan r JOIN LATERAL (SELECT x.nama FROM {p} x WHERE x.kecamatan_kode = r.kode LIMIT 1) l ON true WHERE r.kode = '31.71.05'"), Expect::Anything),
        // Cost oracles: work that grows with a hidden row's values runs
        // only on visible rows (see the plan check below).
        (format!("SELECT count(*) FROM {p} WHERE length(repeat(kecamatan_kode, CASE WHEN kecamatan_kode = '31.71.05' THEN 100000 ELSE 1 END)) > 0"), Expect::Value(visible)),
        (format!("SELECT count(*) FROM {p} WHERE regexp_like(nik, '^(a+)+$') OR kecamatan_kode = '31.71.05'"), Expect::Anything),
        // Metadata.
        ("SELECT count(*) FROM information_schema.columns WHERE table_name = 'penduduk'".into(), Expect::Anything),
        ("SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid WHERE c.relname = 'penduduk' AND a.attnum > 0".into(), Expect::Anything),
        ("SELECT * FROM system.tables".into(), Expect::Anything),
        ("SELECT * FROM system.grants".into(), Expect::Anything),
        ("SELECT * FROM system.links".into(), Expect::Anything),
        (format!("EXPLAIN VERBOSE SELECT nik FROM {p} WHERE nik = 'x'"), Expect::Anything),
        (format!("EXPLAIN ANALYZE SELECT count(*) FROM {p} WHERE 1 / (CASE WHEN kecamatan_kode = '31.71.05' THEN 0 ELSE 1 END) = 1"), Expect::Error),
        (format!("EXPLAIN ANALYZE SELECT * FROM ref.kecamatan r WHERE EXISTS (SELECT 1 FROM {p} x WHERE x.kecamatan_kode = r.kode)"), Expect::Error),
        (format!("SELECT nonexistent FROM {p}"), Expect::Error),
        (format!("SELECT nik + 1 FROM {p}"), Expect::Anything),
    ];
    // Generated: a comparison with every hidden district on each column
    // that can hold a district code, in and out of the pushable shape.
    for d in &secrets.hidden_districts {
        probes.push((
            format!("SELECT count(*) FROM {p} WHERE kecamatan_kode = '{d}'"),
            Expect::Value("0"),
        ));
        probes.push((
            format!("SELECT count(*) FROM {k} WHERE kecamatan_kode = '{d}'"),
            Expect::Value("0"),
        ));
        probes.push((
            format!("SELECT count(*) FROM {p} WHERE lower(kecamatan_kode) = '{d}'"),
            Expect::Value("0"),
        ));
        probes.push((
            format!("SELECT count(*) FROM {p} WHERE kecamatan_kode IN ('{d}', 'x') OR nik IS NULL"),
            Expect::Value("0"),
        ));
    }
    let mut ran = 0;
    for (sql, expect) in &probes {
        let out = shown(&kota, sql).await;
        let text = match &out {
            Ok(t) | Err(t) => t.clone(),
        };
        assert_nothing_hidden(&secrets, sql, &text);
        match (expect, &out) {
            (Expect::Value(v), Ok(t)) => assert_eq!(single(t), *v, "{sql}"),
            (Expect::Error, Err(_)) | (Expect::Anything, _) => {}
            (_, other) => panic!("{sql}: {other:?}"),
        }
        ran += 1;
    }

    // Bound parameters take the same path.
    for value in [hidden_nik.as_str(), visible_nik.as_str()] {
        let n: i64 = kota
            .query_one(
                &format!("SELECT count(*) FROM {p} WHERE nik = $1"),
                &[&value],
            )
            .await
            .expect("bound")
            .get(0);
        assert_eq!(n, 0);
        ran += 1;
    }
    let n: i64 = kota
        .query_one(
            &format!("SELECT count(*) FROM {p} WHERE kecamatan_kode = $1"),
            &[&"31.71.05"],
        )
        .await
        .expect("bound district")
        .get(0);
    assert_eq!(n, 0);
    ran += 1;
    // Cursors.
    let fetched = shown(
        &kota,
        &format!(
            "BEGIN; DECLARE c CURSOR FOR SELECT nik, nama, kecamatan_kode FROM {p}; \
             FETCH 50 FROM c; COMMIT"
        ),
    )
    .await
    .expect("cursor");
    assert_nothing_hidden(&secrets, "cursor", &fetched);
    assert_eq!(fetched.lines().count(), 50);
    ran += 1;
    // COPY TO STDOUT.
    let copy = kota
        .copy_out(&format!("COPY (SELECT nik, nama, kecamatan_kode FROM {p}) TO STDOUT") as &str)
        .await
        .expect("copy");
    let bytes: Vec<u8> = {
        use futures::TryStreamExt;
        let chunks: Vec<bytes::Bytes> = copy.try_collect().await.expect("copy rows");
        chunks.concat()
    };
    let text = String::from_utf8_lossy(&bytes);
    assert_nothing_hidden(&secrets, "COPY", &text);
    assert_eq!(text.lines().count() as i64, secrets.visible_rows);
    ran += 1;
    // Cost and error oracles by construction: a predicate that is not
    // leak-proof sits above the policy node in the plan (evaluated on
    // visible rows only), whatever the optimizer did.
    for sql in [
        format!("EXPLAIN SELECT count(*) FROM {p} WHERE length(repeat(kecamatan_kode, CASE WHEN kecamatan_kode = '31.71.05' THEN 100000 ELSE 1 END)) > 0"),
        format!("EXPLAIN SELECT count(*) FROM {p} WHERE 1 / (CASE WHEN kecamatan_kode = '31.71.05' THEN 0 ELSE 1 END) = 1"),
        format!("EXPLAIN SELECT r.kode, l.n FROM ref.kecamatan r CROSS JOIN LATERAL (SELECT count(*) AS n FROM {p} x WHERE x.kecamatan_kode = r.kode AND length(repeat(x.nama, 1000)) > 1) l"),
    ] {
        let plan = match shown(&kota, &sql).await {
            Ok(plan) => plan,
            // (LATERAL shapes DataFusion cannot plan are refused whole.)
            Err(e) if sql.contains("LATERAL") => {
                assert_nothing_hidden(&secrets, &sql, &e);
                println!("refused whole: {sql}: {e}");
                continue;
            }
            Err(e) => panic!("{sql}: {e}"),
        };
        let physical: Vec<&str> = plan
            .lines()
            .skip_while(|l| !l.contains("physical_plan"))
            .collect();
        let policy = physical
            .iter()
            .position(|l| l.contains("PolicyExec"))
            .unwrap_or_else(|| panic!("{sql}: no policy node\n{plan}"));
        let costly = physical
            .iter()
            .position(|l| l.contains("repeat") || l.contains("1 / CASE") || l.contains("Int64(1) / CASE"))
            .unwrap_or_else(|| panic!("{sql}: predicate not in the plan\n{plan}"));
        assert!(costly < policy, "{sql}: the predicate runs below the policy\n{plan}");
        ran += 1;
    }
    println!("bypass suite: {ran} cases, nothing hidden shown");
    assert!(ran >= 80, "only {ran} cases");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_policy_is_refused_when_the_config_loads() {
    for (grant, wants) in [
        ("masks = { nik = \"sha1\" }", "unknown mask"),
        ("masks = { nik = \"partial:x\" }", "partial"),
        ("row_filter = \"kecamatan_kode IN (\"", "row filter"),
        ("row_filter = \"a = 1; DROP TABLE x\"", "row filter"),
    ] {
        let text = format!(
            "{}\n[[grants]]\nrole = \"analis_kota\"\ntables = [\"kependudukan.public.penduduk\"]\n{grant}\n",
            config_text("")
        );
        let Err(e) = tautan::config::FederationConfig::parse(&text, std::path::Path::new("x.toml"))
        else {
            panic!("{grant} was accepted");
        };
        assert!(e.to_string().contains(wants), "{grant}: {e}");
    }
}

/// The oracle of the differential test: the population rows the policy
/// lets `analis_kota` see, masked by PostgreSQL itself (pgcrypto's HMAC),
/// in `tautan_uji.policy_oracle`.
async fn masked_copy_in_postgres() -> tokio_postgres::Client {
    let source = pg_admin("kependudukan").await;
    let rows = source
        .query(
            "SELECT nik::text, nama, jenis_kelamin::text, tanggal_lahir::text, kecamatan_kode, \
             status_kawin::text FROM penduduk WHERE kecamatan_kode IN ('31.71.01', '31.71.02')",
            &[],
        )
        .await
        .expect("visible rows");
    let oracle = pg_admin("tautan_uji").await;
    oracle
        .batch_execute(
            "CREATE EXTENSION IF NOT EXISTS pgcrypto;
             DROP TABLE IF EXISTS policy_raw, policy_oracle;
             CREATE TEMP TABLE policy_raw (nik text, nama text, jenis_kelamin text,
                 tanggal_lahir date, kecamatan_kode text, status_kawin text);",
        )
        .await
        .expect("oracle tables");
    let sink = oracle
        .copy_in("COPY policy_raw FROM STDIN")
        .await
        .expect("copy in");
    let mut text = String::new();
    for r in &rows {
        let fields: Vec<String> = (0..6).map(|i| r.get::<_, String>(i)).collect();
        text.push_str(&fields.join("\t"));
        text.push('\n');
    }
    {
        use futures::SinkExt;
        let mut sink = Box::pin(sink);
        sink.send(bytes::Bytes::from(text)).await.expect("rows");
        sink.as_mut().finish().await.expect("finish");
    }
    oracle
        .batch_execute(&format!(
            "CREATE TEMP TABLE policy_oracle AS SELECT
                 encode(hmac(nik, '{KEY}', 'sha256'), 'hex') COLLATE \"C\" AS nik,
                 CASE WHEN nama IS NULL THEN NULL ELSE '***' END AS nama,
                 jenis_kelamin,
                 extract(year FROM tanggal_lahir)::int AS tanggal_lahir,
                 kecamatan_kode COLLATE \"C\" AS kecamatan_kode, status_kawin
             FROM policy_raw"
        ))
        .await
        .expect("masked copy");
    oracle
}

/// One random predicate over the population table's columns, as a user
/// might write it: pushable comparisons, masked-column probes, and
/// expressions that fail on particular rows.
fn random_predicate(rng: &mut rand::rngs::StdRng, depth: u32) -> String {
    use rand::Rng;
    const DISTRICTS: [&str; 8] = [
        "31.71.01", "31.71.02", "31.71.03", "31.71.04", "31.71.05", "31.71.06", "31.71.07",
        "31.71.08",
    ];
    if depth > 0 && rng.random_bool(0.4) {
        let a = random_predicate(rng, depth - 1);
        let b = random_predicate(rng, depth - 1);
        return match rng.random_range(0..3) {
            0 => format!("({a} AND {b})"),
            1 => format!("({a} OR {b})"),
            _ => format!("NOT ({a})"),
        };
    }
    let d = DISTRICTS[rng.random_range(0..DISTRICTS.len())];
    let year = rng.random_range(1950..2020);
    let hex = "0123456789abcdef";
    let h = rng.random_range(0..16);
    let c = &hex[h..h + 1];
    match rng.random_range(0..12) {
        0 => format!("kecamatan_kode = '{d}'"),
        1 => format!("kecamatan_kode <> '{d}'"),
        2 => format!("kecamatan_kode IN ('{d}', '31.71.02')"),
        3 => format!("tanggal_lahir > {year}"),
        4 => format!("tanggal_lahir BETWEEN {year} AND {}", year + 10),
        5 => format!("nik < '{c}'"),
        6 => format!("nik LIKE '{c}%'"),
        7 => format!(
            "jenis_kelamin = '{}'",
            if rng.random_bool(0.5) { "L" } else { "P" }
        ),
        8 => "status_kawin IN ('KAWIN', 'CERAI MATI')".to_string(),
        9 => format!("1 / (CASE WHEN kecamatan_kode = '{d}' THEN 0 ELSE 1 END) = 1"),
        10 => "length(nama) = 3 AND nama IS NOT NULL".to_string(),
        _ => format!("tanggal_lahir % 7 = {}", year % 7),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_equal_a_masked_filtered_copy_of_the_data() {
    use rand::{Rng, SeedableRng};
    let server = policed().await;
    let kota = server.connect(KOTA).await;
    let oracle = masked_copy_in_postgres().await;
    let seed: u64 = std::env::var("TAUTAN_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    println!("policy differential seed: {seed} (TAUTAN_TEST_SEED={seed} repeats it)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let shapes = [
        "SELECT count(*) FROM {t} WHERE {p}",
        "SELECT count(DISTINCT nik), min(nik), max(nik) FROM {t} WHERE {p}",
        "SELECT kecamatan_kode, count(*), min(tanggal_lahir) FROM {t} WHERE {p} GROUP BY 1",
        "SELECT jenis_kelamin, max(nik) FROM {t} WHERE {p} GROUP BY 1",
        "SELECT nik, tanggal_lahir, nama FROM {t} WHERE {p} ORDER BY nik LIMIT 7",
        "SELECT tanggal_lahir, count(*) FROM {t} WHERE {p} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5",
    ];
    let mut checked = 0;
    let mut differ = Vec::new();
    for _ in 0..150 {
        let shape = shapes[rng.random_range(0..shapes.len())];
        let predicate = random_predicate(&mut rng, 2);
        let ours = shape
            .replace("{t}", "kependudukan.public.penduduk")
            .replace("{p}", &predicate);
        let theirs = shape
            .replace("{t}", "policy_oracle")
            .replace("{p}", &predicate);
        let got = rows_as_text(&kota, &ours).await;
        let want = rows_as_text(&oracle, &theirs).await;
        // A division by zero can only be raised by a visible row: the
        // districts whose rows divide by zero in the predicate.
        let dividing: Vec<&str> = predicate
            .split("CASE WHEN kecamatan_kode = '")
            .skip(1)
            .filter_map(|rest| rest.get(..8))
            .collect();
        let visible_divides = dividing.iter().any(|d| VISIBLE.contains(d));
        let same = match (&got, &want) {
            (Ok(a), Ok(b)) => a == b,
            // Both fail: the same answer as far as the user can tell.
            (Err(_), Err(_)) => true,
            // tautan fails where PostgreSQL, evaluating in another order,
            // did not: legitimate only if a visible row divides by zero.
            (Err(_), Ok(_)) => visible_divides,
            // PostgreSQL fails where DataFusion skipped the division.
            (Ok(_), Err(e)) => e.contains("division by zero"),
        };
        if !same {
            differ.push(format!("{ours}\n  tautan: {got:?}\n  oracle: {want:?}"));
        }
        checked += 1;
    }
    println!(
        "policy differential: {checked} queries, {} differ",
        differ.len()
    );
    assert!(
        differ.is_empty(),
        "{} of {checked} differ (seed {seed}):\n{}",
        differ.len(),
        differ.join("\n")
    );
}

/// Rows as sorted lines of text (NULL as `NULL`), or the error.
async fn rows_as_text(client: &tokio_postgres::Client, sql: &str) -> Result<Vec<String>, String> {
    let messages = client.simple_query(sql).await.map_err(|e| message(&e))?;
    let mut lines: Vec<String> = messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            _ => None,
        })
        .collect();
    lines.sort();
    Ok(lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tautan_check_plans_every_policed_table_for_its_users() {
    let shipped = policed().await;
    assert_eq!(shipped.engine.check_policies().await, Vec::<String>::new());
    // A filter on a column the table lacks; a year mask on a text column.
    let text = format!(
        "{}\n[[grants]]\nrole = \"analis_kota\"\ntables = [\"kepegawaian.kepegawaian.pegawai\"]\n\
         row_filter = \"tidak_ada = 1\"\n\n\
         [[grants]]\nrole = \"analis_kota\"\ntables = [\"ref.kecamatan\"]\nmasks = {{ nama = \"year\" }}\n",
        config_text("")
    )
    .replace(
        "[[grants]]\nrole = \"analis_kota\"\ntables = [\"ref.*\"]\n",
        "",
    );
    let bad = start_config(&text).await;
    let problems = bad.engine.check_policies().await;
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("kepegawaian.kepegawaian.pegawai") && p.contains("tidak_ada")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("ref.kecamatan") && p.contains("year")),
        "{problems:?}"
    );
}

/// Signed agreements in a folder of their own, with test keys declared in
/// the config; returns the config text.
fn agreements_config(dir: &std::path::Path, producer: &[u8; 32], custodian: &[u8; 32]) -> String {
    let hex = |seed: &[u8; 32]| {
        tautan::audit::keys::key_hex(&ed25519_dalek::SigningKey::from_bytes(seed).verifying_key())
    };
    let repo = repo();
    let demo_key = |name: &str| format!("\"{}/keys/demo/{name}.pem.pub\"", repo.display());
    let text = config_text("")
        .replace(
            &format!("agreements_dir = \"{}/agreements\"", repo.display()),
            &format!("agreements_dir = \"{}\"", dir.display()),
        )
        .replace(&demo_key("custodian"), &format!("\"{}\"", hex(custodian)))
        .replace(&demo_key("kependudukan"), &format!("\"{}\"", hex(producer)))
        .replace(&demo_key("kesehatan"), &format!("\"{}\"", hex(producer)))
        .replace(
            "databases = [\"kepegawaian\"]",
            &format!(
                "databases = [\"kepegawaian\"]\npublic_key = \"{}\"",
                hex(producer)
            ),
        );
    assert!(text.contains(&format!("agreements_dir = \"{}\"", dir.display())));
    assert_eq!(text.matches(&hex(producer)).count(), 3, "links changed");
    text
}

fn agreement(
    id: &str,
    producer: &str,
    table: &str,
    until: &str,
) -> tautan::policy::agreement::AgreementFile {
    tautan::policy::agreement::AgreementFile::parse(&format!(
        "id = \"{id}\"\nproducer = \"{producer}\"\nuser = \"analis_kota\"\ntables = [\"{table}\"]\n\
         purpose = \"uji\"\nvalid_from = \"2020-01-01\"\nvalid_until = \"{until}\"\n\
         row_filter = \"true\"\n"
    ))
    .expect("agreement")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_agreements_signed_by_both_and_in_force_grant_and_the_others_say_why() {
    use ed25519_dalek::SigningKey;
    let (producer_seed, custodian_seed) = ([7u8; 32], [8u8; 32]);
    let producer = SigningKey::from_bytes(&producer_seed);
    let custodian = SigningKey::from_bytes(&custodian_seed);
    let dir = temp_dir("agreements");
    let write = |name: &str, a: &tautan::policy::agreement::AgreementFile| {
        std::fs::write(dir.join(name), a.to_toml().expect("toml")).expect("write");
    };
    // In force.
    let mut valid = agreement(
        "PKS-1",
        "kependudukan",
        "kependudukan.public.penduduk_per_kecamatan",
        "2099-12-31",
    );
    valid.terms.columns = Some(vec!["kecamatan_kode".into(), "jumlah".into()]);
    valid.sign("kependudukan", &producer);
    valid.sign("custodian", &custodian);
    write("1.toml", &valid);
    // Expired.
    let mut expired = agreement(
        "PKS-2",
        "kependudukan",
        "kependudukan.public.penduduk",
        "2021-06-30",
    );
    expired.sign("kependudukan", &producer);
    expired.sign("custodian", &custodian);
    write("2.toml", &expired);
    // Tampered after signing: the row filter widened.
    let mut tampered = agreement(
        "PKS-3",
        "kesehatan",
        "kesehatan.kesehatan.kunjungan",
        "2099-12-31",
    );
    tampered.terms.row_filter = Some("kecamatan_kode = '31.71.01'".into());
    tampered.sign("kesehatan", &producer);
    tampered.sign("custodian", &custodian);
    let text = tampered
        .to_toml()
        .expect("toml")
        .replace("kecamatan_kode = '31.71.01'", "true");
    std::fs::write(dir.join("3.toml"), text).expect("write");
    // Signed by the custodian only.
    let mut unsigned = agreement(
        "PKS-4",
        "kepegawaian",
        "kepegawaian.kepegawaian.pegawai",
        "2099-12-31",
    );
    unsigned.sign("custodian", &custodian);
    write("4.toml", &unsigned);
    // Not an agreement at all.
    std::fs::write(dir.join("5.toml"), "id = \"PKS-5\"\nsecret = 1\n").expect("write");

    let server = start_config(&agreements_config(&dir, &producer_seed, &custodian_seed)).await;
    let kota = server.connect(KOTA).await;
    let n: i64 = kota
        .query_one(
            "SELECT count(*) FROM kependudukan.public.penduduk_per_kecamatan",
            &[],
        )
        .await
        .expect("the agreement in force grants")
        .get(0);
    assert!(n > 0);
    // A column the agreement leaves out: denied, naming the agreement.
    let e = kota
        .query(
            "SELECT jenis_kelamin FROM kependudukan.public.penduduk_per_kecamatan",
            &[],
        )
        .await
        .expect_err("column outside the agreement");
    assert_eq!(sqlstate(&e), "42501", "{e}");
    assert!(message(&e).contains("agreement PKS-1"), "{}", message(&e));
    // The expired agreement: denied, naming it and the day it ended.
    let e = kota
        .query("SELECT * FROM kependudukan.public.penduduk", &[])
        .await
        .expect_err("expired");
    assert_eq!(sqlstate(&e), "42501", "{e}");
    assert!(
        message(&e).contains("PKS-2") && message(&e).contains("expired on 2021-06-30"),
        "{}",
        message(&e)
    );
    // Tampered and unsigned: nothing granted, said why.
    for (sql, wants) in [
        (
            "SELECT count(*) FROM kesehatan.kesehatan.kunjungan",
            "PKS-3 tampered",
        ),
        (
            "SELECT count(*) FROM kepegawaian.kepegawaian.pegawai",
            "PKS-4 unsigned",
        ),
    ] {
        let e = kota.query(sql, &[]).await.expect_err(sql);
        assert_eq!(sqlstate(&e), "42501", "{sql}: {e}");
        assert!(message(&e).contains(wants), "{sql}: {}", message(&e));
    }
    // system.agreements: the user's own, each with its standing.
    let rows: Vec<(String, String)> = kota
        .query(
            "SELECT id, status FROM system.agreements ORDER BY file",
            &[],
        )
        .await
        .expect("system.agreements")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("PKS-1".to_string(), "valid".to_string()),
            ("PKS-2".to_string(), "expired".to_string()),
            ("PKS-3".to_string(), "tampered".to_string()),
            ("PKS-4".to_string(), "unsigned".to_string()),
        ]
    );
    // Another user sees none of them; the custodian sees all, the broken
    // file too.
    let dinkes = server.connect(DINKES).await;
    let n: i64 = dinkes
        .query_one("SELECT count(*) FROM system.agreements", &[])
        .await
        .expect("dinkes")
        .get(0);
    assert_eq!(n, 0);
    let admin = server.connect(WALIDATA).await;
    let status: String = admin
        .query_one(
            "SELECT status FROM system.agreements WHERE file = '5.toml'",
            &[],
        )
        .await
        .expect("custodian")
        .get(0);
    assert_eq!(status, "invalid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agreement_commands_make_sign_and_verify_a_file() {
    let dir = temp_dir("agreement-cli");
    let run = |args: &[&str]| {
        let out = tautan_cmd()
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("tautan");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    for who in ["dukcapil", "walidata"] {
        let (code, out) = run(&["keygen", "--out", &format!("{who}.pem")]);
        assert_eq!(code, Some(0), "{out}");
    }
    let pubhex = |who: &str| {
        let key = tautan::audit::keys::read_verifying_key(&dir.join(format!("{who}.pem.pub")))
            .expect("public key");
        tautan::audit::keys::key_hex(&key)
    };
    std::fs::write(
        dir.join("federation.toml"),
        format!(
            "[links.kependudukan]\nkind = \"files\"\npath = \".\"\npublic_key = \"{}\"\n\n\
             [policy]\ncustodian_public_key = \"walidata.pem.pub\"\nagreements_dir = \".\"\n",
            pubhex("dukcapil")
        ),
    )
    .expect("config");
    let (code, text) = run(&[
        "agreement",
        "new",
        "--id",
        "PKS-9",
        "--producer",
        "kependudukan",
        "--user",
        "analis_kota",
        "--table",
        "kependudukan.public.penduduk",
        "--mask",
        "nik=pseudonym",
        "--purpose",
        "uji",
        "--from",
        "2020-01-01",
        "--until",
        "2099-12-31",
    ]);
    assert_eq!(code, Some(0), "{text}");
    std::fs::write(dir.join("pks-9.toml"), &text).expect("agreement");
    // Unsigned, then half signed, then in force.
    let (code, out) = run(&["agreement", "verify", "pks-9.toml"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("unsigned"), "{out}");
    let (code, out) = run(&[
        "agreement",
        "sign",
        "pks-9.toml",
        "--as",
        "kependudukan",
        "--key",
        "dukcapil.pem",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run(&["agreement", "verify", "pks-9.toml"]);
    assert_eq!(code, Some(1), "{out}");
    let (code, out) = run(&[
        "agreement",
        "sign",
        "pks-9.toml",
        "--as",
        "custodian",
        "--key",
        "walidata.pem",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run(&["agreement", "verify", "pks-9.toml"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("valid"), "{out}");
    // Someone else's signature is refused outright.
    let (code, out) = run(&[
        "agreement",
        "sign",
        "pks-9.toml",
        "--as",
        "kesehatan",
        "--key",
        "dukcapil.pem",
    ]);
    assert_ne!(code, Some(0), "{out}");
    // Any edit after signing: tampered.
    let signed = std::fs::read_to_string(dir.join("pks-9.toml")).expect("signed");
    std::fs::write(dir.join("pks-9.toml"), signed.replace("pseudonym", "null")).expect("edit");
    let (code, out) = run(&["agreement", "verify", "pks-9.toml"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("tampered"), "{out}");
    let (code, out) = run(&["agreement", "list"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("PKS-9") && out.contains("tampered"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_are_browsable_and_masks_can_follow_them() {
    // dinsos may read the population table with every `pribadi` column
    // nulled, by label rather than by column name.
    let text = format!(
        "{}\n[[grants]]\nrole = \"dinsos\"\ntables = [\"kependudukan.public.penduduk\"]\n\
         mask_labels = {{ pribadi = \"null\" }}\n",
        config_text("")
    );
    let server = start_config(&text).await;
    let dinsos = server.connect(("dinsos", "dinsos-demo")).await;
    let columns = |client: tokio_postgres::Client| async move {
        client
            .query(
                "SELECT \"column\", labels, mask, description FROM system.columns \
                 WHERE \"table\" = 'penduduk' ORDER BY \"column\"",
                &[],
            )
            .await
            .expect("system.columns")
            .iter()
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    r.get::<_, Option<String>>(1),
                    r.get::<_, Option<String>>(2),
                    r.get::<_, Option<String>>(3),
                )
            })
            .collect::<Vec<_>>()
    };
    let seen = columns(dinsos).await;
    let nik = seen.iter().find(|c| c.0 == "nik").expect("nik");
    assert_eq!(nik.1.as_deref(), Some("pribadi"));
    assert_eq!(nik.2.as_deref(), Some("null"));
    assert!(
        nik.3.as_deref().unwrap_or("").contains("[label: pribadi]"),
        "{nik:?}"
    );
    let kode = seen.iter().find(|c| c.0 == "kecamatan_kode").expect("kode");
    assert_eq!((kode.1.as_deref(), kode.2.as_deref()), (None, None));
    let dinsos = server.connect(("dinsos", "dinsos-demo")).await;
    let row = dinsos
        .query_one(
            "SELECT count(*), count(nik), count(nama), count(kecamatan_kode) \
             FROM kependudukan.public.penduduk",
            &[],
        )
        .await
        .expect("nulled by label");
    let counts: Vec<i64> = (0..4).map(|i| row.get(i)).collect();
    assert!(counts[0] > 0);
    assert_eq!(&counts[1..], &[0, 0, counts[0]]);
    // The table's own label, and which policy applies, in system.tables.
    let (labels, policy): (Option<String>, Option<String>) = dinsos
        .query_one(
            "SELECT labels, policy FROM system.tables WHERE \"table\" = 'penduduk'",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .expect("system.tables");
    assert_eq!(labels.as_deref(), Some("terbatas"));
    assert!(policy.unwrap_or_default().contains("role dinsos"));
    // The analyst under the agreement: masks by column name, labels shown.
    let kota = server.connect(KOTA).await;
    let seen = columns(kota).await;
    let nama = seen.iter().find(|c| c.0 == "nama").expect("nama");
    assert_eq!(
        (nama.1.as_deref(), nama.2.as_deref()),
        (Some("pribadi"), Some("redact"))
    );
    // A label the custodian did not define is a config error.
    let bad = config_text("").replace(
        "\"public.penduduk\" = \"terbatas\"",
        "\"public.penduduk\" = \"sangat_rahasia\"",
    );
    let e = tautan::config::FederationConfig::parse(&bad, std::path::Path::new("x.toml"))
        .expect_err("unknown label");
    assert!(e.to_string().contains("unknown label"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_links_carry_labels_and_masks_follow_them() {
    // The shipped config labels the Dinsos file's `nik` as `pribadi`; here
    // dinsos reads its own file with `pribadi` columns cut to their last 4
    // characters.
    let base = config_text("");
    let granted = "role = \"dinsos\"\ntables = [\"dinsos.*\", \"ref.*\"]";
    assert_eq!(base.matches(granted).count(), 1, "the dinsos grant changed");
    let text = base.replace(
        granted,
        "role = \"dinsos\"\ntables = [\"ref.*\"]\n\n[[grants]]\nrole = \"dinsos\"\n\
         tables = [\"dinsos.*\"]\nmask_labels = { pribadi = \"partial:4\" }",
    );
    let server = start_config(&text).await;
    let walidata = server.connect(("walidata", "walidata-demo")).await;
    let dinsos = server.connect(("dinsos", "dinsos-demo")).await;
    for (client, mask) in [(&walidata, None), (&dinsos, Some("partial:4"))] {
        let row = client
            .query_one(
                "SELECT labels, mask, description FROM system.columns \
                 WHERE catalog = 'dinsos' AND \"table\" = 'penerima_bansos' AND \"column\" = 'nik'",
                &[],
            )
            .await
            .expect("system.columns");
        assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("pribadi"));
        assert_eq!(row.get::<_, Option<String>>(1).as_deref(), mask);
        let description: Option<String> = row.get(2);
        assert!(
            description.unwrap_or_default().contains("[label: pribadi]"),
            "the label is part of the description clients read"
        );
    }
    // The file's NIK column is read as a number; the mask yields text.
    let full = walidata
        .query(
            "SELECT CAST(nik AS text), nilai FROM dinsos.public.penerima_bansos",
            &[],
        )
        .await
        .expect("walidata reads the file");
    let masked = dinsos
        .query(
            "SELECT nik, nilai FROM dinsos.public.penerima_bansos ORDER BY nik, nilai",
            &[],
        )
        .await
        .expect("dinsos reads the file masked");
    assert!(!full.is_empty());
    assert_eq!(full.len(), masked.len());
    let mut expected: Vec<(String, i64)> = full
        .iter()
        .map(|r| {
            let nik: String = r.get(0);
            let tail = &nik[nik.len() - 4..];
            (
                format!("{}{tail}", "*".repeat(nik.len() - 4)),
                r.get::<_, i64>(1),
            )
        })
        .collect();
    expected.sort();
    let seen: Vec<(String, i64)> = masked.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(seen, expected);
    // A filter on the masked column compares the masked value.
    let one: String = full[0].get(0);
    let n: i64 = dinsos
        .query_one(
            &format!("SELECT count(*) FROM dinsos.public.penerima_bansos WHERE nik = '{one}'"),
            &[],
        )
        .await
        .expect("filter")
        .get(0);
    assert_eq!(n, 0, "the clear NIK matches nothing the masked user sees");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_policy_reaches_open_sessions_and_a_broken_one_keeps_the_last() {
    let dir = temp_dir("policy-reload");
    let agreements = dir.join("agreements");
    std::fs::create_dir_all(&agreements).expect("dir");
    for f in ["PKS-2026-017.toml", "PKS-2026-018.toml"] {
        std::fs::copy(repo().join("agreements").join(f), agreements.join(f)).expect("copy");
    }
    let text = pull_config(&dir.join("data"), 2, "").replace(
        &format!("agreements_dir = \"{}/agreements\"", repo().display()),
        &format!("agreements_dir = \"{}\"", agreements.display()),
    );
    assert!(text.contains(&agreements.display().to_string()));
    let path = dir.join("federation.toml");
    std::fs::write(&path, &text).expect("config");
    let engine = tautan::engine::Engine::from_file(&path)
        .await
        .expect("engine");
    let _watch = engine.spawn_policy_reload(std::time::Duration::from_millis(100));
    let server = serve_engine(engine.clone()).await;
    let kota = server.connect(KOTA).await;
    let count = || async {
        kota.query_one("SELECT count(*) FROM kependudukan.public.penduduk", &[])
            .await
            .map(|r| r.get::<_, i64>(0))
    };
    let version = || async {
        kota.query_one("SELECT version FROM system.policy", &[])
            .await
            .expect("system.policy")
            .get::<_, i64>(0)
    };
    let two_districts = count().await.expect("two districts");
    assert_eq!(version().await, 1);

    // The custodian narrows the analyst's districts: picked up by the
    // watcher, and by the open session at its next statement.
    let engine_ref = server.engine.clone();
    let wait_for = move |want: i64| {
        let engine = engine_ref.clone();
        async move {
            for _ in 0..100 {
                if engine_version(&engine) >= want {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!("policy version {want} never came");
        }
    };
    std::fs::write(
        &path,
        text.replace(
            "wilayah = [\"31.71.01\", \"31.71.02\"]",
            "wilayah = [\"31.71.01\"]",
        ),
    )
    .expect("narrowed");
    wait_for(2).await;
    let one_district = count().await.expect("one district");
    assert!(
        one_district > 0 && one_district < two_districts,
        "{one_district} of {two_districts}"
    );
    assert_eq!(version().await, 2);

    // A broken config: the last good policy stays, the session goes on.
    std::fs::write(&path, "[server\nthis is not toml").expect("broken");
    assert!(server.engine.reload_policy().is_err());
    assert_eq!(count().await.expect("still served"), one_district);
    assert_eq!(version().await, 2);

    // The agreement withdrawn (its file removed): the table is gone for
    // the analyst, without a reconnect.
    std::fs::write(
        &path,
        text.replace(
            "wilayah = [\"31.71.01\", \"31.71.02\"]",
            "wilayah = [\"31.71.01\"]",
        ),
    )
    .expect("config again");
    std::fs::remove_file(agreements.join("PKS-2026-017.toml")).expect("withdrawn");
    let before = engine_version(&server.engine);
    wait_for(before + 1).await;
    let e = count().await.expect_err("withdrawn");
    assert_eq!(sqlstate(&e), "42P01", "{e}");
}

fn engine_version(engine: &tautan::engine::Engine) -> i64 {
    engine.grants().version().number as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_query_and_describe_see_only_the_policed_table() {
    let secrets = secrets().await;
    let dir = temp_dir("policy-export");
    let config = dir.join("federation.toml");
    std::fs::write(&config, pull_config(&dir.join("data"), 2, "")).expect("config");
    // `tautan export` and `tautan query` as the analyst.
    let csv = dir.join("penduduk.csv");
    let out = tautan_cmd()
        .arg("-c")
        .arg(&config)
        .args(["export", "--user", "analis_kota", "-o"])
        .arg(&csv)
        .arg("SELECT nik, nama, tanggal_lahir, kecamatan_kode FROM kependudukan.public.penduduk")
        .output()
        .expect("export");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&csv).expect("csv");
    assert_nothing_hidden(&secrets, "tautan export", &text);
    assert_eq!(text.lines().count() as i64, secrets.visible_rows + 1);
    let out = tautan_cmd()
        .arg("-c")
        .arg(&config)
        .args([
            "query",
            "--user",
            "analis_kota",
            "SELECT nik, nama, kecamatan_kode FROM kependudukan.public.penduduk ORDER BY nik LIMIT 20",
        ])
        .output()
        .expect("query");
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{shown}");
    assert_nothing_hidden(&secrets, "tautan query", &shown);
    assert!(shown.contains("***"), "{shown}");

    // Describe (extended protocol): the masked types.
    let server = policed().await;
    let kota = server.connect(KOTA).await;
    let statement = kota
        .prepare(
            "SELECT nik, nama, tanggal_lahir, kecamatan_kode FROM kependudukan.public.penduduk",
        )
        .await
        .expect("describe");
    let types: Vec<String> = statement
        .columns()
        .iter()
        .map(|c| c.type_().name().to_string())
        .collect();
    assert_eq!(types, ["text", "text", "int4", "varchar"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_holds_only_what_its_owner_sees_and_readers_get_their_own_policy() {
    use tautan::export::NoProgress;
    let secrets = secrets().await;
    let dir = temp_dir("policy-pull");
    let extra = "\n[[grants]]\nrole = \"pemilik\"\ntables = [\"kependudukan.public.penduduk\"]\n\
        row_filter = \"kecamatan_kode = '31.71.03'\"\nmasks = { nik = \"pseudonym\" }\n\n\
        [[grants]]\nrole = \"analis_kesehatan\"\ntables = [\"mat.penduduk_kota\"]\n\
        masks = { nama = \"null\" }\n\n\
        [pulls.penduduk_kota]\nsql = \"SELECT nik, nama, kecamatan_kode FROM kependudukan.public.penduduk\"\n\
        owner = \"pemilik\"\nreaders = [\"analis_kesehatan\", \"walidata\"]\n";
    let server = start_config(&pull_config(&dir, 2, extra)).await;
    let report = tautan::pulls::run::run_pull(&server.engine, "penduduk_kota", &NoProgress)
        .await
        .expect("pull");
    let pg = pg_admin("kependudukan").await;
    let owners_rows: i64 = pg
        .query_one(
            "SELECT count(*) FROM penduduk WHERE kecamatan_kode = '31.71.03'",
            &[],
        )
        .await
        .expect("oracle")
        .get(0);
    assert_eq!(report.fetched as i64, owners_rows);
    // The custodian, a reader: the owner's rows, pseudonymized in the file.
    let admin = server.connect(WALIDATA).await;
    let all = shown(
        &admin,
        "SELECT nik, nama, kecamatan_kode FROM mat.penduduk_kota",
    )
    .await
    .expect("custodian reads the snapshot");
    assert_eq!(all.lines().count() as i64, owners_rows);
    assert!(!all.contains("31.71.01"));
    for nik in &secrets.niks {
        assert!(!all.contains(nik.as_str()), "a real NIK in the snapshot");
    }
    // Another reader, under a mask of its own on the snapshot.
    let dinkes = server.connect(DINKES).await;
    let row = dinkes
        .query_one(
            "SELECT count(*), count(nama), count(nik) FROM mat.penduduk_kota",
            &[],
        )
        .await
        .expect("reader with a policy");
    let counts: Vec<i64> = (0..3).map(|i| row.get(i)).collect();
    assert_eq!(counts, [owners_rows, 0, owners_rows]);
}

/// A policed table joined with another table of its link is sent to the
/// link as one statement with the row filter in it, when nothing of the
/// user's in that statement can leak; otherwise it is read through its
/// policy as before. Either way the answer is the answer over the
/// filtered rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policed_table_joins_at_its_link_under_its_row_filter_when_nothing_can_leak() {
    let grants = "[[grants]]\nrole = \"analis_kota\"\ntables = [\"uji_pg.public.angka\"]\n\
                  row_filter = \"grup < 50\"\nmasks = { label = \"redact\" }\n\n\
                  [[grants]]\nrole = \"analis_kota\"\ntables = [\"uji_pg.public.beda\"]\n";
    let server = start_config(&config_text(grants)).await;
    let kota = server.connect(KOTA).await;
    let source = pg_admin("tautan_uji").await;
    let oracle = |sql: String| {
        let source = &source;
        async move { rows_as_text(source, &sql).await.expect("oracle") }
    };
    // The source holding only the rows the filter lets through.
    let filtered = "(SELECT * FROM angka WHERE grup < 50)";
    let cases = [
        // A self-join: both sides are under the filter.
        "SELECT a.grup, count(*) AS n, max(b.id) AS m FROM {a} a JOIN {a} b ON a.id = b.id + 1 \
         WHERE a.grup BETWEEN 40 AND 60 AND a.id < b.id + 5 GROUP BY a.grup",
        // With a table under no filter, and a column compared with a column.
        "SELECT count(*) AS n, min(a.id) AS lo FROM {a} a JOIN {b} b ON a.id = b.id \
         WHERE a.grup >= b.i4",
        // An aggregate over the filtered rows, filtered on its result.
        "SELECT t.grup, count(*) AS n FROM {a} t GROUP BY t.grup HAVING count(*) > 1999",
        // A predicate that fails on a hidden row (grup 77) sent to the
        // source would fail the query: it must stay above the policy.
        "SELECT count(*) AS n FROM {a} a JOIN {a} b ON a.id = b.id WHERE 1 / (a.grup - 77) = 0",
        "SELECT count(*) AS n FROM {a} a JOIN {b} b ON a.id = b.id \
         WHERE CAST(a.label AS varchar) <> 'x' OR 10 / (a.grup - 77) = 0",
    ];
    for case in cases {
        let mine = rows_as_text(
            &kota,
            &case
                .replace("{a}", "uji_pg.public.angka")
                .replace("{b}", "uji_pg.public.beda"),
        )
        .await
        .unwrap_or_else(|e| panic!("{case}: {e}"));
        let wanted = oracle(case.replace("{a}", filtered).replace("{b}", "beda")).await;
        assert!(!wanted.is_empty(), "{case}");
        assert_eq!(mine, wanted, "{case}");
    }

    let explain = |sql: &str| {
        let kota = &kota;
        let sql = format!("EXPLAIN {sql}");
        async move {
            shown(kota, &sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        }
    };
    // The join is one statement at the link, with the row filter in it,
    // and the plan names the policy.
    let plan = explain(
        "SELECT a.grup, count(*) FROM uji_pg.public.angka a JOIN uji_pg.public.angka b \
         ON a.id = b.id WHERE a.grup BETWEEN 40 AND 60 AND a.grup <= b.grup GROUP BY a.grup",
    )
    .await;
    let physical: Vec<&str> = plan
        .lines()
        .skip_while(|l| !l.contains("physical_plan"))
        .collect();
    let policy = physical
        .iter()
        .position(|l| l.contains("PolicyExec") && l.contains("row filter sent with the sub-plan"))
        .unwrap_or_else(|| panic!("no policy node:\n{plan}"));
    let sent: Vec<&&str> = physical
        .iter()
        .filter(|l| l.contains("angka") && l.to_uppercase().contains("SELECT"))
        .collect();
    assert_eq!(sent.len(), 1, "one statement for the join:\n{plan}");
    let statement = sent[0].to_uppercase();
    assert!(
        statement.contains("JOIN") && statement.matches("< 50").count() >= 2,
        "the join with the row filter on both sides:\n{plan}"
    );
    assert!(
        physical.iter().position(|l| l == sent[0]) > Some(policy),
        "{plan}"
    );
    // At the source: the groups of the filtered rows, not the rows.
    let groups = kota
        .query(
            "SELECT gabung_a.grup, count(*) FROM uji_pg.public.angka gabung_a \
             JOIN uji_pg.public.angka gabung_b ON gabung_a.id = gabung_b.id \
             WHERE gabung_a.grup BETWEEN 40 AND 48 GROUP BY gabung_a.grup",
            &[],
        )
        .await
        .expect("join");
    assert_eq!(groups.len(), 9);
    let at_source = pg_statements("gabung_a").await;
    assert!(
        !at_source.is_empty()
            && at_source
                .iter()
                .all(|(q, rows)| q.contains("JOIN") && *rows % 9 == 0),
        "{at_source:?}"
    );

    // Not sent whole: a predicate that can fail, and a masked column.
    for sql in [
        "SELECT count(*) FROM uji_pg.public.angka a JOIN uji_pg.public.angka b ON a.id = b.id \
         WHERE 1 / (a.grup - 77) = 0",
        "SELECT a.label, b.t FROM uji_pg.public.angka a JOIN uji_pg.public.beda b ON a.id = b.id",
    ] {
        let plan = explain(sql).await;
        assert!(
            !plan.contains("row filter sent with the sub-plan") && plan.contains("PolicyExec"),
            "{sql}:\n{plan}"
        );
    }
    let labels = rows_as_text(
        &kota,
        "SELECT a.label FROM uji_pg.public.angka a JOIN uji_pg.public.beda b ON a.id = b.id",
    )
    .await
    .expect("masked join");
    assert!(
        !labels.is_empty() && labels.iter().all(|l| !l.contains("label-")),
        "{labels:?}"
    );
    // EXPLAIN ANALYZE would count rows at the source: refused as for any
    // policed table.
    let e = kota
        .simple_query(
            "EXPLAIN ANALYZE SELECT count(*) FROM uji_pg.public.angka a \
             JOIN uji_pg.public.angka b ON a.id = b.id",
        )
        .await
        .expect_err("EXPLAIN ANALYZE");
    assert_eq!(sqlstate(&e), "42501");
}
