//! Read-only by construction: the engine refuses every write (25006), and
//! the sessions it opens on the sources are read-only themselves.

use crate::common::*;

#[tokio::test]
async fn every_kind_of_write_is_refused_and_sources_are_unchanged() {
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    let pg = pg_admin("tautan_uji").await;
    let before: i64 = pg
        .query_one("SELECT count(*) FROM angka", &[])
        .await
        .expect("count")
        .get(0);
    for sql in [
        "INSERT INTO uji_pg.public.angka VALUES (0, 0, 0, 'x')",
        "UPDATE uji_pg.public.angka SET label = 'x'",
        "DELETE FROM uji_pg.public.angka",
        "DELETE FROM uji_my.tautan_uji.angka",
        "MERGE INTO uji_pg.public.angka a USING uji_pg.public.angka b ON a.id = b.id WHEN MATCHED THEN DELETE",
        "CREATE TABLE uji_pg.public.baru (a int)",
        "DROP TABLE uji_pg.public.angka",
        "ALTER TABLE uji_pg.public.angka ADD COLUMN z int",
        "TRUNCATE uji_pg.public.angka",
        "COPY uji_pg.public.angka FROM STDIN",
        "CALL uji_pg.public.prosedur()",
        "SET ROLE postgres",
        "SELECT * INTO baru FROM uji_pg.public.angka",
        "SELECT * FROM uji_pg.public.angka FOR UPDATE",
        "WITH d AS (DELETE FROM uji_pg.public.angka RETURNING *) SELECT count(*) FROM d",
        "GRANT SELECT ON uji_pg.public.angka TO dinsos",
        "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/tmp/x.csv'",
        "COPY (SELECT 1) TO '/tmp/tautan-should-not-exist.csv'",
        "SET default_transaction_read_only = off",
    ] {
        let e = client.simple_query(sql).await.expect_err(&format!("{sql} was accepted"));
        assert_eq!(sqlstate(&e), "25006", "{sql}: {e}");
    }
    let after: i64 = pg
        .query_one("SELECT count(*) FROM angka", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(before, after);
    let cols: i64 = pg
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'angka'",
            &[],
        )
        .await
        .expect("columns")
        .get(0);
    assert_eq!(cols, 4, "no column was added");
    assert!(!std::path::Path::new("/tmp/tautan-should-not-exist.csv").exists());
    use mysql_async::prelude::Queryable;
    let mut my = my_admin().await;
    let n: Option<i64> = my
        .query_first("SELECT count(*) FROM tautan_uji.angka")
        .await
        .expect("count");
    assert_eq!(n, Some(50_000));
}

#[tokio::test]
async fn source_sessions_are_read_only() {
    let server = start().await;
    for name in ["uji_pg", "uji_my", "kependudukan", "kesehatan"] {
        let link = server.engine.registry.link(name).expect("link");
        let report = link.remote().expect("remote").probe().await.expect("probe");
        assert!(report.read_only, "{name} session is not read-only");
    }
}
