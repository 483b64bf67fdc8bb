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

/// A session someone changed (read-write, no timeout, another time zone,
/// backslash escapes) is back to what tautan made it at the next checkout,
/// on the same connection: pooled sessions are kept *and* reset.
#[tokio::test]
async fn pooled_source_sessions_are_reset_on_every_checkout() {
    use mysql_async::prelude::Queryable;
    use std::time::Duration;
    let pg = tautan_postgres::PostgresLink::new(
        "reset_pg",
        tautan_postgres::PostgresConfig {
            host: "127.0.0.1".into(),
            port: 5432,
            database: "tautan_uji".into(),
            user: "tautan_ro".into(),
            password: Some("tautan-ro".into()),
            schemas: vec![],
            pool_size: 1,
            connect_timeout: Duration::from_secs(5),
            limits: Default::default(),
        },
    )
    .expect("link");
    let settings = "SELECT pg_backend_pid(), current_setting('default_transaction_read_only'), \
                    current_setting('TimeZone'), current_setting('standard_conforming_strings'), \
                    current_setting('statement_timeout')";
    let session = pg.checkout().await.expect("checkout");
    let before = session.query_one(settings, &[]).await.expect("settings");
    session
        .batch_execute(
            "SET default_transaction_read_only = off; SET TimeZone = 'Asia/Jakarta'; \
             SET standard_conforming_strings = off; SET statement_timeout = 1",
        )
        .await
        .expect("poison");
    drop(session);
    let session = pg.checkout().await.expect("checkout");
    let after = session.query_one(settings, &[]).await.expect("settings");
    assert_eq!(
        before.get::<_, i32>(0),
        after.get::<_, i32>(0),
        "same connection"
    );
    for i in 1..5 {
        assert_eq!(
            before.get::<_, String>(i),
            after.get::<_, String>(i),
            "setting {i}"
        );
    }
    assert_eq!(after.get::<_, String>(1), "on");
    assert_eq!(after.get::<_, String>(3), "on");

    let my = tautan_mysql::MySqlLink::new(
        "reset_my",
        tautan_mysql::MySqlConfig {
            host: "127.0.0.1".into(),
            port: 3306,
            user: "tautan_ro".into(),
            password: Some("tautan-ro".into()),
            databases: vec![],
            pool_size: 1,
            connect_timeout: Duration::from_secs(5),
            limits: Default::default(),
        },
    )
    .expect("link");
    let settings = "SELECT CONNECTION_ID(), @@tx_read_only, @@time_zone, \
                    FIND_IN_SET('NO_BACKSLASH_ESCAPES', @@sql_mode) > 0";
    let mut session = my.checkout().await.expect("checkout");
    let before: Option<(u64, i64, String, i64)> =
        session.query_first(settings).await.expect("settings");
    session
        .query_drop(
            "SET SESSION TRANSACTION READ WRITE; SET time_zone = '+07:00'; SET SESSION sql_mode = ''",
        )
        .await
        .expect("poison");
    drop(session);
    let mut session = my.checkout().await.expect("checkout");
    let after: Option<(u64, i64, String, i64)> =
        session.query_first(settings).await.expect("settings");
    let (before, after) = (before.expect("row"), after.expect("row"));
    assert_eq!(before.0, after.0, "same connection");
    assert_eq!(after, before);
    assert_eq!((after.1, after.2.as_str(), after.3), (1, "+00:00", 1));
}

/// Scans reuse MariaDB connections: many queries, few logins.
#[tokio::test]
async fn mariadb_connections_are_reused_across_queries() {
    use mysql_async::prelude::Queryable;
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    let mut admin = my_admin().await;
    let logins = |row: Option<(String, u64)>| row.map(|(_, n)| n).unwrap_or_default();
    // Warm up: the pool opens its connections.
    for _ in 0..3 {
        client
            .query(
                "SELECT count(*) FROM uji_my.tautan_uji.angka WHERE id < 10",
                &[],
            )
            .await
            .expect("query");
    }
    let before = logins(
        admin
            .query_first("SHOW GLOBAL STATUS LIKE 'Connections'")
            .await
            .expect("status"),
    );
    for i in 0..40 {
        client
            .query(
                &format!("SELECT id FROM uji_my.tautan_uji.angka WHERE id = {i}"),
                &[],
            )
            .await
            .expect("query");
    }
    let after = logins(
        admin
            .query_first("SHOW GLOBAL STATUS LIKE 'Connections'")
            .await
            .expect("status"),
    );
    // Other tests may log in meanwhile; 40 scans must not each log in.
    assert!(
        after - before < 20,
        "{} logins for 40 scans",
        after - before
    );
}
