//! Whole sub-plans sent to one link: same answers with pushdown on and off,
//! the statements each source actually received, EXPLAIN naming each
//! link's SQL, and names and literals quoted by each dialect.

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::common::*;

/// Every row of `sql` as text; sorted unless the query orders its result
/// (the order of unordered results is free to differ between plans; every
/// ordered query here orders by a unique key).
async fn rows(client: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    let mut out = Vec::new();
    for m in client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
    {
        if let SimpleQueryMessage::Row(r) = m {
            out.push(
                (0..r.len())
                    .map(|i| r.get(i).map(str::to_string))
                    .collect::<Vec<_>>(),
            );
        }
    }
    if !sql.contains("ORDER BY") || sql.contains("OVER (") {
        out.sort();
    }
    out
}

async fn set_pushdown(client: &Client, on: bool) {
    let v = if on { "on" } else { "off" };
    client
        .simple_query(&format!("SET tautan.pushdown = {v}"))
        .await
        .expect("SET tautan.pushdown");
}

/// The physical plan of `sql`, as one string.
async fn explain(client: &Client, sql: &str) -> String {
    rows(client, &format!("EXPLAIN {sql}"))
        .await
        .into_iter()
        .flatten()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n")
}

/// The line of an EXPLAIN that shows what `link` receives (its federated
/// sub-plan); fails the test when there is none.
fn sent_to<'a>(plan: &'a str, link: &str) -> &'a str {
    plan.lines()
        .find(|l| l.contains(&format!("name={link} ")))
        .unwrap_or_else(|| panic!("no {link} sub-plan in:\n{plan}"))
}

const AGREE: &[&str] = &[
    // PostgreSQL: aggregates, HAVING, ORDER BY + LIMIT, DISTINCT, joins,
    // IN / EXISTS subqueries, string keys.
    "SELECT grup, count(*), sum(nilai), min(id), max(id), avg(id) FROM uji_pg.public.angka GROUP BY grup HAVING count(*) > 1000",
    // An aggregate on top of what is sent, its group column first.
    "SELECT label, sum(grup) FROM uji_pg.public.angka WHERE id < 100 GROUP BY label ORDER BY label",
    "SELECT grup, sum(id) FROM uji_pg.public.angka GROUP BY grup",
    "SELECT grup, sum(nilai) AS s FROM uji_pg.public.angka GROUP BY grup ORDER BY s DESC, grup LIMIT 5",
    // TPC-H Q1's shape: nested arithmetic inside aggregates, ordered by a string.
    "SELECT label, sum(nilai * (1 - grup)) AS a, sum(nilai * (1 - grup) * (1 + id)) AS b, avg(nilai), count(*) FROM uji_pg.public.angka WHERE id < 500 GROUP BY label ORDER BY label",
    "SELECT id, nilai FROM uji_pg.public.angka ORDER BY nilai DESC, id LIMIT 7",
    // Ordered by columns that are not selected (the unparser's derived
    // table named its columns wrongly before).
    "SELECT label FROM uji_pg.public.angka ORDER BY id LIMIT 3",
    "SELECT label FROM uji_pg.public.angka ORDER BY id DESC LIMIT 3 OFFSET 2",
    "SELECT label, grup FROM uji_pg.public.angka WHERE grup = 5 ORDER BY nilai DESC, id LIMIT 4",
    "SELECT label FROM uji_my.tautan_uji.angka ORDER BY id LIMIT 3",
    // A self-join grouped by both sides' columns of one name.
    "SELECT a.id AS x, b.id AS y, count(*) AS n FROM uji_pg.public.angka a JOIN uji_pg.public.angka b ON a.grup = b.grup WHERE a.id <= 200 AND b.id <= 200 GROUP BY a.id, b.id",
    "SELECT count(*) FROM (SELECT a.id AS x, b.id AS y FROM uji_pg.public.angka a JOIN uji_pg.public.angka b ON a.grup = b.grup WHERE a.id <= 300 AND b.id <= 300 GROUP BY a.id, b.id) t",
    // A repeated condition (common-subexpression elimination puts a
    // projection under the filter).
    "SELECT id FROM uji_pg.public.angka WHERE (grup * 2 = 10 OR grup * 2 = 10) AND id < 2000 ORDER BY id",
    // LIMIT with OFFSET: the unparser once wrote LIMIT skip+fetch.
    "SELECT id, label FROM uji_pg.public.angka ORDER BY id DESC LIMIT 3 OFFSET 2",
    "SELECT grup, count(*) FROM uji_pg.public.angka GROUP BY grup ORDER BY grup LIMIT 3 OFFSET 2",
    "SELECT id FROM uji_pg.public.angka WHERE id < 20 ORDER BY id OFFSET 15",
    "SELECT DISTINCT grup % 7 FROM uji_pg.public.angka",
    "SELECT a.grup, d.\"Kode Wilayah\", count(*) FROM uji_pg.public.angka a JOIN uji_pg.\"Skema Campuran\".\"Data Penting\" d ON a.grup = d.\"NilaiBesar\" GROUP BY 1, 2",
    "SELECT count(*) FROM uji_pg.public.angka WHERE grup IN (SELECT \"NilaiBesar\" FROM uji_pg.\"Skema Campuran\".\"Data Penting\" WHERE \"quote\"\"d\" = 'a')",
    // TPC-H Q12's join: the filtered side is a projection under the join.
    "SELECT d.\"quote\"\"d\", count(*) FROM uji_pg.\"Skema Campuran\".\"Data Penting\" d JOIN uji_pg.public.angka a ON a.grup = d.\"NilaiBesar\" WHERE a.id > a.grup AND a.label IN ('label-110', 'label-220') AND a.id < 3000 GROUP BY 1",
    "SELECT a.id FROM uji_pg.public.angka a WHERE EXISTS (SELECT 1 FROM uji_pg.\"Skema Campuran\".\"Data Penting\" d WHERE d.\"NilaiBesar\" = a.id)",
    "SELECT a.id FROM uji_pg.public.angka a WHERE a.id < 50 AND NOT EXISTS (SELECT 1 FROM uji_pg.\"Skema Campuran\".\"Data Penting\" d WHERE d.\"NilaiBesar\" = a.id)",
    "SELECT label, count(*) FROM uji_pg.public.angka WHERE id < 1000 GROUP BY label ORDER BY label LIMIT 3",
    // A grouped aggregate under a join (TPC-H Q17's shape): a derived table.
    "SELECT count(*) FROM uji_pg.public.angka a JOIN (SELECT grup, avg(nilai) AS rata FROM uji_pg.public.angka WHERE id < 20000 GROUP BY grup) g ON a.grup = g.grup WHERE a.nilai < g.rata",
    // The same over a near-unique key: kept in DataFusion (wide aggregate).
    "SELECT count(*) FROM uji_pg.public.angka a JOIN (SELECT id, max(nilai) AS m FROM uji_pg.public.angka GROUP BY id) g ON a.id = g.id WHERE a.nilai = g.m",
    // TPC-H Q12's shape: a join, CASE over strings inside sums, column
    // comparisons, grouped and ordered by a string.
    "SELECT d.\"quote\"\"d\", sum(CASE WHEN d.\"Kode Wilayah\" = 'it''s' OR d.\"Kode Wilayah\" = '31.71' THEN 1 ELSE 0 END) AS hi, sum(CASE WHEN d.\"Kode Wilayah\" <> 'it''s' AND d.\"Kode Wilayah\" <> '31.71' THEN 1 ELSE 0 END) AS lo FROM uji_pg.public.angka a, uji_pg.\"Skema Campuran\".\"Data Penting\" d WHERE a.grup = d.\"NilaiBesar\" AND a.grup < a.id AND a.id < 5000 GROUP BY d.\"quote\"\"d\" ORDER BY d.\"quote\"\"d\"",
    "SELECT max(label), min(label) FROM uji_pg.public.angka",
    "SELECT id, row_number() OVER (PARTITION BY grup ORDER BY id) FROM uji_pg.public.angka WHERE id < 300",
    "SELECT grup, count(*) FROM uji_pg.public.angka WHERE label LIKE 'label-1%' GROUP BY grup",
    // MariaDB: string keys compare by collation there ('a' = 'A'), so
    // they must stay in DataFusion; numeric ones may go.
    "SELECT grup, count(*), min(id), max(id), sum(id) FROM uji_my.tautan_uji.angka GROUP BY grup",
    "SELECT \"back`tick\", count(*) FROM uji_my.tautan_uji.\"Data Penting\" GROUP BY 1",
    "SELECT DISTINCT \"back`tick\" FROM uji_my.tautan_uji.\"Data Penting\"",
    "SELECT count(*) FROM uji_my.tautan_uji.\"Data Penting\" d JOIN uji_my.tautan_uji.\"Data Penting\" e ON d.\"back`tick\" = e.\"back`tick\"",
    "SELECT count(*) FROM uji_my.tautan_uji.angka a JOIN uji_my.tautan_uji.\"Data Penting\" d ON a.id = d.\"NilaiBesar\"",
    "SELECT grup, count(*) FROM uji_my.tautan_uji.angka WHERE id / 7 = 3 GROUP BY grup",
    "SELECT max(label) FROM uji_my.tautan_uji.angka",
    // Across links: each side's aggregate goes to its own link.
    "SELECT p.grup, p.n, m.n FROM (SELECT grup, count(*) AS n FROM uji_pg.public.angka GROUP BY grup) p JOIN (SELECT grup, count(*) AS n FROM uji_my.tautan_uji.angka GROUP BY grup) m ON p.grup = m.grup",
];

#[tokio::test]
async fn answers_are_the_same_with_pushdown_on_and_off() {
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    for sql in AGREE {
        set_pushdown(&client, false).await;
        let off = rows(&client, sql).await;
        set_pushdown(&client, true).await;
        let on = rows(&client, sql).await;
        assert!(!off.is_empty(), "no rows: {sql}");
        assert_eq!(on, off, "pushdown changed the answer of {sql}");
    }
    // The collation checks above are only meaningful if the twins exist.
    let twins = rows(
        &client,
        "SELECT \"back`tick\", count(*) FROM uji_my.tautan_uji.\"Data Penting\" GROUP BY 1",
    )
    .await;
    assert_eq!(twins.len(), 4, "{twins:?}");
}

#[tokio::test]
async fn postgresql_receives_joins_and_aggregates_as_one_statement() {
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    let alias = format!("hitung_{}", std::process::id());
    let sql = format!(
        "SELECT a.grup, count(*) AS {alias} FROM uji_pg.public.angka a \
         JOIN uji_pg.\"Skema Campuran\".\"Data Penting\" d ON a.grup = d.\"NilaiBesar\" \
         WHERE a.id > 100 GROUP BY a.grup"
    );
    let got = rows(&client, &sql).await;
    // grup 10, 20, 30 and 40 exist in both.
    assert_eq!(got.len(), 4, "{got:?}");
    let seen = pg_statements(&alias).await;
    let (text, returned) = seen
        .iter()
        .find(|(q, _)| q.contains("JOIN") && q.contains("GROUP BY"))
        .unwrap_or_else(|| panic!("join and aggregate not sent as one statement: {seen:?}"));
    assert!(
        text.contains("\"Skema Campuran\".\"Data Penting\""),
        "{text}"
    );
    // Only the four groups crossed the wire, not 200,000 rows.
    assert_eq!(*returned, 4, "{text}");

    // ORDER BY + LIMIT on a number goes too; on a string it stays here
    // (string order follows the source's collation).
    let alias2 = format!("urut_{}", std::process::id());
    rows(
        &client,
        &format!("SELECT id AS {alias2} FROM uji_pg.public.angka ORDER BY nilai DESC, id LIMIT 3"),
    )
    .await;
    let seen = pg_statements(&alias2).await;
    assert!(
        seen.iter()
            .any(|(q, n)| q.contains("ORDER BY") && q.contains("LIMIT") && *n == 3),
        "top-N not pushed: {seen:?}"
    );
}

#[tokio::test]
async fn mariadb_receives_numeric_aggregates_but_not_collation_sensitive_ones() {
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    let mut admin = my_admin().await;
    my_log_on(&mut admin).await;
    let alias = format!("jumlah_{}", std::process::id());
    let got = rows(
        &client,
        &format!(
            "SELECT d.\"NilaiBesar\", count(d.\"back`tick\") AS {alias} FROM uji_my.tautan_uji.\"Data Penting\" d \
             JOIN uji_my.tautan_uji.angka a ON a.id = d.\"NilaiBesar\" GROUP BY 1"
        ),
    )
    .await;
    assert_eq!(got.len(), 4, "{got:?}");
    let seen = my_log(&mut admin, &alias).await;
    let sql = seen
        .iter()
        .find(|s| s.contains("GROUP BY"))
        .unwrap_or_else(|| panic!("aggregate not sent: {seen:?}"));
    assert!(sql.contains("`Data Penting`"), "{sql}");
    assert!(sql.contains("`back``tick`"), "{sql}");
    assert!(sql.contains("JOIN"), "{sql}");

    // Grouping by a string: MariaDB would merge 'a' and 'A'.
    let alias = format!("kelompok_{}", std::process::id());
    rows(
        &client,
        &format!("SELECT \"back`tick\" AS {alias}, count(*) FROM uji_my.tautan_uji.\"Data Penting\" GROUP BY 1"),
    )
    .await;
    let seen = my_log(&mut admin, "FROM `tautan_uji`.`Data Penting`").await;
    assert!(!seen.is_empty());
    assert!(
        !seen.iter().any(|s| s.contains("GROUP BY `back``tick`")
            || (s.contains(&alias) && s.contains("GROUP BY"))),
        "a collation-sensitive GROUP BY was sent: {seen:?}"
    );
}

#[tokio::test]
async fn explain_shows_the_sql_each_link_receives() {
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    let plan = explain(
        &client,
        "SELECT p.grup, p.n, m.n FROM (SELECT grup, count(*) AS n FROM uji_pg.public.angka GROUP BY grup) p \
         JOIN (SELECT grup, count(*) AS n FROM uji_my.tautan_uji.angka GROUP BY grup) m ON p.grup = m.grup",
    )
    .await;
    let pg = sent_to(&plan, "uji_pg");
    assert!(
        pg.contains("GROUP BY \"angka\".\"grup\"") || pg.contains("GROUP BY"),
        "{pg}"
    );
    assert!(pg.contains("FROM \"public\".\"angka\""), "{pg}");
    let my = sent_to(&plan, "uji_my");
    assert!(my.contains("FROM `tautan_uji`.`angka`"), "{my}");
    assert!(my.contains("GROUP BY"), "{my}");

    // Off: plain scans, each with its own SQL.
    set_pushdown(&client, false).await;
    let plan = explain(
        &client,
        "SELECT grup, count(*) FROM uji_pg.public.angka GROUP BY grup",
    )
    .await;
    assert!(!plan.contains("name=uji_pg"), "{plan}");
    assert!(plan.contains("RemoteScanExec: link=uji_pg"), "{plan}");
    assert!(
        plan.contains("sql=SELECT \"grup\" FROM \"public\".\"angka\""),
        "{plan}"
    );
}

#[tokio::test]
async fn large_postgresql_scans_run_in_page_ranges_on_one_snapshot() {
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    let sql = "SELECT id, nilai FROM uji_pg.public.angka";
    let plan = explain(&client, sql).await;
    assert!(plan.contains("parts=2"), "{plan}");
    assert!(plan.contains("ctid < '("), "{plan}");
    assert!(plan.contains("ctid >= '("), "{plan}");
    // Every row exactly once, whatever the number of parts (pushdown off:
    // DataFusion aggregates what the parts read).
    set_pushdown(&client, false).await;
    for parts in [1, 2, 3] {
        client
            .simple_query(&format!("SET tautan.scan_parts = {parts}"))
            .await
            .expect("SET tautan.scan_parts");
        let row = client
            .query_one(
                "SELECT count(*), count(DISTINCT id), sum(id) FROM (SELECT id, nilai FROM uji_pg.public.angka) t",
                &[],
            )
            .await
            .expect("scan");
        assert_eq!(row.get::<_, i64>(0), 200_000, "parts={parts}");
        assert_eq!(row.get::<_, i64>(1), 200_000, "parts={parts}");
    }
    // The parts imported one exported snapshot.
    let after = pg_statements("SET TRANSACTION SNAPSHOT").await;
    assert!(!after.is_empty(), "no snapshot imported");
    let exported = pg_statements("pg_export_snapshot").await;
    assert!(!exported.is_empty(), "no snapshot exported");
    // The exporting transaction ended once the parts had imported it (other
    // tests may be exporting right now: wait for them a little).
    let admin = pg_admin("tautan_uji").await;
    let mut idle = -1i64;
    for _ in 0..50 {
        idle = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = 'tautan_ro' \
                 AND state LIKE 'idle in transaction%' AND query LIKE '%pg_export_snapshot%'",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if idle == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(idle, 0, "a snapshot-exporting transaction was left open");
    // Bad values are refused.
    let e = client
        .simple_query("SET tautan.scan_parts = 0")
        .await
        .expect_err("0 parts");
    assert_eq!(sqlstate(&e), "22023");
}

#[tokio::test]
async fn names_and_literals_are_quoted_by_each_dialect() {
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    // Sent whole to PostgreSQL: quoted schema, table and columns (a space,
    // mixed case, an embedded double quote) and literals with a quote and
    // a backslash.
    let got = rows(
        &client,
        "SELECT d.\"Kode Wilayah\", d.\"quote\"\"d\", count(*) FROM uji_pg.\"Skema Campuran\".\"Data Penting\" d \
         JOIN uji_pg.public.angka a ON a.id = d.\"NilaiBesar\" \
         WHERE d.\"Kode Wilayah\" IN ('it''s', 'a\\b') GROUP BY 1, 2",
    )
    .await;
    assert_eq!(
        got,
        vec![
            vec![Some("a\\b".into()), Some("A".into()), Some("1".into())],
            vec![Some("it's".into()), Some("c".into()), Some("1".into())],
        ]
    );
    let seen = pg_statements("\"quote\"\"d\"").await;
    assert!(
        seen.iter()
            .any(|(q, _)| q.contains("JOIN") && q.contains("\"Skema Campuran\".\"Data Penting\"")),
        "{seen:?}"
    );
    // MariaDB: a backslash is an ordinary character in a literal (sessions
    // run with NO_BACKSLASH_ESCAPES).
    let got = rows(
        &client,
        "SELECT \"NilaiBesar\" FROM uji_my.tautan_uji.\"Data Penting\" WHERE \"Kode Wilayah\" = 'a\\b'",
    )
    .await;
    assert_eq!(got, vec![vec![Some("40".into())]]);
}

#[tokio::test]
async fn joins_over_derived_tables_are_sent_with_names_of_their_own() {
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    // TPC-H Q12's join: the filtered side, not aliased by the query,
    // reaches the join as a projection (the unparser's derived table).
    let alias = format!("turunan_{}", std::process::id());
    let sql = format!(
        "SELECT d.\"NilaiBesar\", count(*) AS {alias} FROM uji_pg.\"Skema Campuran\".\"Data Penting\" d \
         JOIN uji_pg.public.angka ON angka.grup = d.\"NilaiBesar\" \
         WHERE angka.id > angka.grup AND angka.label IN ('label-110', 'label-220') AND angka.id < 3000 GROUP BY 1"
    );
    let plan = explain(&client, &sql).await;
    let sent = sent_to(&plan, "uji_pg");
    assert!(
        sent.contains("JOIN") && sent.contains("tautan_d1"),
        "{sent}"
    );
    let got = rows(&client, &sql).await;
    set_pushdown(&client, false).await;
    assert_eq!(got, rows(&client, &sql).await, "{sql}");
    assert!(!got.is_empty(), "{sql}");
    let seen = pg_statements(&alias).await;
    assert!(
        seen.iter()
            .any(|(q, n)| q.contains("JOIN") && *n == got.len() as i64),
        "join not sent as one statement: {seen:?}"
    );
}

#[tokio::test]
async fn aggregates_with_a_group_per_few_rows_stay_in_datafusion() {
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    // `angka` is analyzed by its fixture: 200,000 rows, `id` unique,
    // `grup` with few values.
    let wide = explain(
        &client,
        "SELECT id, max(nilai) FROM uji_pg.public.angka GROUP BY id",
    )
    .await;
    assert!(!wide.contains("name=uji_pg"), "{wide}");
    assert!(wide.contains("RemoteScanExec: link=uji_pg"), "{wide}");
    let narrow = explain(
        &client,
        "SELECT grup, max(nilai) FROM uji_pg.public.angka GROUP BY grup",
    )
    .await;
    let sent = sent_to(&narrow, "uji_pg");
    assert!(sent.contains("GROUP BY"), "{sent}");
    // A HAVING above keeps only the groups it selects (TPC-H Q18): sent.
    let filtered = explain(
        &client,
        "SELECT id FROM uji_pg.public.angka GROUP BY id HAVING max(nilai) > 10",
    )
    .await;
    assert!(filtered.contains("name=uji_pg"), "{filtered}");
}

#[tokio::test]
async fn from_lists_across_links_are_joined_not_crossed() {
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    // TPC-H q02's shape: two tables of one link and one of another in a
    // FROM list, and a scalar subquery. DataFusion turns the FROM list into
    // joins over two optimizer passes; sub-plan pushdown must not leave
    // the two MariaDB tables as a cross join in between.
    let sql = "SELECT m.id, a.nilai FROM uji_my.tautan_uji.angka m, uji_my.tautan_uji.\"Data Penting\" d, uji_pg.public.angka a \
               WHERE m.id = a.id AND d.\"NilaiBesar\" = a.grup AND m.id < 5000 \
               AND a.nilai = (SELECT min(a2.nilai) FROM uji_pg.public.angka a2 WHERE a2.id = m.id)";
    let plan = explain(&client, sql).await;
    assert!(!plan.contains("Cross Join"), "{plan}");
    assert!(!plan.contains("CrossJoinExec"), "{plan}");
    let on = rows(&client, sql).await;
    set_pushdown(&client, false).await;
    assert_eq!(on, rows(&client, sql).await, "{sql}");
    assert!(!on.is_empty(), "{sql}");
}
