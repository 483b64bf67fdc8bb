//! Grants are checked on names before planning: invisible tables look
//! missing (42P01), ungranted columns are denied (42501), and a denied
//! statement sends nothing to any source.

use crate::common::*;

#[tokio::test]
async fn invisible_tables_look_exactly_like_missing_ones() {
    let server = start().await;
    let client = server.connect(DINKES).await;
    let hidden = client
        .simple_query("SELECT * FROM kepegawaian.kepegawaian.pegawai")
        .await
        .expect_err("denied");
    let missing = client
        .simple_query("SELECT * FROM kepegawaian.kepegawaian.tidak_ada")
        .await
        .expect_err("missing");
    assert_eq!(sqlstate(&hidden), "42P01");
    assert_eq!(sqlstate(&missing), "42P01");
    let msg = |e: &tokio_postgres::Error| {
        e.as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_default()
    };
    assert_eq!(
        msg(&hidden).replace("kepegawaian.kepegawaian.pegawai", "X"),
        msg(&missing).replace("kepegawaian.kepegawaian.tidak_ada", "X")
    );
}

#[tokio::test]
async fn ungranted_columns_are_denied_granted_ones_read() {
    let server = start().await;
    let client = server.connect(DINKES).await;
    for sql in [
        "SELECT nik FROM kependudukan.public.penduduk",
        "SELECT count(*) FROM kependudukan.public.penduduk WHERE nama = 'Budi'",
        // Sent whole to the link (an aggregate): still checked.
        "SELECT jenis_kelamin, count(DISTINCT nik) FROM kependudukan.public.penduduk GROUP BY 1",
        "SELECT p.kecamatan_kode, max(p.nama) FROM kependudukan.public.penduduk p JOIN kependudukan.public.penduduk q ON p.kecamatan_kode = q.kecamatan_kode GROUP BY 1",
    ] {
        let e = client.simple_query(sql).await.expect_err(sql);
        assert_eq!(sqlstate(&e), "42501", "{sql}");
    }
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM kependudukan.public.penduduk WHERE jenis_kelamin = 'P'",
            &[],
        )
        .await
        .expect("granted columns")
        .get(0);
    assert_eq!(n, 10_000);
    // The table has the granted columns only: `*` is those.
    let row = client
        .query_one("SELECT * FROM kependudukan.public.penduduk LIMIT 1", &[])
        .await
        .expect("SELECT * reads the granted columns");
    let names: Vec<&str> = row.columns().iter().map(|c| c.name()).collect();
    assert_eq!(
        names,
        [
            "jenis_kelamin",
            "tanggal_lahir",
            "kecamatan_kode",
            "status_kawin"
        ]
    );
}

#[tokio::test]
async fn denied_statements_never_reach_a_source() {
    let server = start().await;
    let client = server.connect(DINKES).await;
    let mut admin = my_admin().await;
    my_log_on(&mut admin).await;
    let marker = format!("MARK{}", std::process::id());
    let denied = [
        format!("SELECT * FROM kesehatan.kesehatan.kunjungan WHERE diagnosa_icd10 = '{marker}' UNION ALL SELECT * FROM kesehatan.kesehatan.kunjungan k JOIN kepegawaian.kepegawaian.pegawai p ON p.nama = k.nik"),
        format!("WITH x AS (SELECT nik FROM kesehatan.kesehatan.kunjungan WHERE diagnosa_icd10 = '{marker}') SELECT * FROM x WHERE nik IN (SELECT nip FROM kepegawaian.kepegawaian.pegawai)"),
        format!("SELECT (SELECT max(nip) FROM kepegawaian.kepegawaian.pegawai), nik FROM kesehatan.kesehatan.kunjungan WHERE diagnosa_icd10 = '{marker}'"),
        format!("SELECT k.nik, p.nik FROM kesehatan.kesehatan.kunjungan k JOIN kependudukan.public.penduduk p ON p.nik = k.nik WHERE k.diagnosa_icd10 = '{marker}'"),
    ];
    for sql in &denied {
        let e = client.simple_query(sql).await.expect_err("denied");
        assert!(
            matches!(sqlstate(&e).as_str(), "42P01" | "42501"),
            "{sql}: {e}"
        );
    }
    assert!(
        my_log(&mut admin, &marker).await.is_empty(),
        "a denied query reached MariaDB"
    );
    // The same filter on an allowed query does reach it: the check above can fail.
    client
        .simple_query(&format!(
            "SELECT nik FROM kesehatan.kesehatan.kunjungan WHERE diagnosa_icd10 = '{marker}'"
        ))
        .await
        .expect("allowed");
    assert!(
        !my_log(&mut admin, &marker).await.is_empty(),
        "general log is not recording"
    );
}

#[tokio::test]
async fn listings_show_only_what_the_user_may_read() {
    let server = start().await;
    let client = server.connect(DINKES).await;
    let rows = client
        .query(
            "SELECT catalog || '.' || schema || '.' || \"table\" FROM system.tables ORDER BY 1",
            &[],
        )
        .await
        .expect("system.tables");
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        names,
        vec![
            "kependudukan.public.penduduk",
            "kependudukan.public.penduduk_per_kecamatan",
            "kesehatan.kesehatan.kunjungan",
            "kesehatan.kesehatan.puskesmas",
            "tautan.ref.kecamatan",
            "tautan.ref.opd",
        ]
    );
    let rows = client
        .query(
            "SELECT DISTINCT table_catalog FROM information_schema.tables ORDER BY 1",
            &[],
        )
        .await
        .expect("information_schema");
    let catalogs: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert!(
        !catalogs.contains(&"kepegawaian".to_string()),
        "{catalogs:?}"
    );
    assert!(!catalogs.contains(&"uji_pg".to_string()), "{catalogs:?}");
    let links: Vec<String> = client
        .query("SELECT name FROM system.links ORDER BY 1", &[])
        .await
        .expect("system.links")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(links, vec!["kependudukan", "kesehatan"]);
}

/// DataFusion's table functions (`generate_series`, `range`) read no data:
/// they need no grant, and calling one lets nothing else past the check.
#[tokio::test]
async fn table_functions_need_no_grant_and_open_nothing() {
    let server = start().await;
    let client = server.connect(DINKES).await;
    let n: i64 = client
        .query_one("SELECT count(*) FROM generate_series(1, 10) g(x)", &[])
        .await
        .expect("generate_series for a user with few grants")
        .get(0);
    assert_eq!(n, 10);
    client
        .simple_query("EXPLAIN SELECT * FROM range(3)")
        .await
        .expect("EXPLAIN of a table function");
    // Beside a table the user may not read, the table is still checked.
    let e = client
        .simple_query("SELECT * FROM generate_series(1, 2) g, kepegawaian.kepegawaian.pegawai")
        .await
        .expect_err("denied table beside a table function");
    assert_eq!(sqlstate(&e), "42P01");
    // A table function's name used as a plain table is a missing table,
    // also when the same statement calls it.
    for sql in [
        "SELECT * FROM generate_series",
        "SELECT * FROM generate_series(1, 2) a, generate_series b",
    ] {
        let e = client.simple_query(sql).await.expect_err(sql);
        assert_eq!(sqlstate(&e), "42P01", "{sql}");
    }
}
