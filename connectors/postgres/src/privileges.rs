//! What a link's PostgreSQL account can do beyond reading.
//!
//! A db link should log in with an account that can only `SELECT` the
//! tables it exposes (README: "A least-privilege account"). Read-only
//! sessions stop most writes, but not all: PostgreSQL creates large
//! objects even inside a `READ ONLY` transaction, a member of
//! `pg_signal_backend` can end other sessions, and a member of
//! `pg_read_all_data`/`pg_monitor` reads beyond the link's schemas. Each
//! finding is one sentence for `tautan check`.

use tokio_postgres::Client;

/// Roles whose membership gives more than reading the link's tables.
const POWERFUL_ROLES: &[&str] = &[
    "pg_signal_backend",
    "pg_read_all_data",
    "pg_write_all_data",
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
    "pg_monitor",
    "pg_read_all_stats",
    "pg_checkpoint",
    "pg_create_subscription",
    "pg_use_reserved_connections",
];

/// Functions that write large objects (allowed in READ ONLY transactions).
const LARGE_OBJECT_WRITERS: &[&str] = &[
    "lo_create(oid)",
    "lo_creat(integer)",
    "lo_from_bytea(oid, bytea)",
    "lo_import(text)",
    "lo_import(text, oid)",
];

/// One sentence per thing the session's account can do beyond reading.
pub async fn excess(client: &Client) -> Result<Vec<String>, tokio_postgres::Error> {
    let mut out = Vec::new();
    let role = client
        .query_one(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls \
             FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await?;
    for (i, what) in [
        "is a superuser",
        "can create roles (CREATEROLE)",
        "can create databases (CREATEDB)",
        "can start replication (REPLICATION)",
        "bypasses row-level security (BYPASSRLS)",
    ]
    .iter()
    .enumerate()
    {
        if role.try_get::<_, bool>(i)? {
            out.push(format!("the account {what}"));
        }
    }
    let roles: Vec<String> = POWERFUL_ROLES.iter().map(|r| r.to_string()).collect();
    for row in client
        .query(
            "SELECT rolname::text FROM pg_roles \
             WHERE rolname = ANY($1) AND pg_has_role(current_user, oid, 'MEMBER') ORDER BY 1",
            &[&roles],
        )
        .await?
    {
        let name: String = row.try_get(0)?;
        out.push(format!("the account is a member of {name}"));
    }
    let functions: Vec<String> = LARGE_OBJECT_WRITERS.iter().map(|f| f.to_string()).collect();
    let writers: Vec<String> = client
        .query(
            "SELECT f FROM unnest($1::text[]) f \
             WHERE to_regprocedure(f) IS NOT NULL \
               AND has_function_privilege(to_regprocedure(f), 'EXECUTE')",
            &[&functions],
        )
        .await?
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<_, _>>()?;
    if !writers.is_empty() {
        out.push(format!(
            "the account can write large objects, which PostgreSQL allows even in READ ONLY \
             transactions ({}; REVOKE EXECUTE ... FROM PUBLIC)",
            writers.join(", ")
        ));
    }
    let tables = client
        .query_one(
            "SELECT count(*) FILTER (WHERE has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')), \
                    count(*) FILTER (WHERE pg_has_role(current_user, c.relowner, 'USAGE')) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg_toast%'",
            &[],
        )
        .await?;
    let (writable, owned): (i64, i64) = (tables.try_get(0)?, tables.try_get(1)?);
    if writable > 0 {
        out.push(format!(
            "the account may INSERT, UPDATE, DELETE or TRUNCATE {writable} table(s)"
        ));
    }
    if owned > 0 {
        out.push(format!("the account owns {owned} table(s) or view(s)"));
    }
    let create: Vec<String> = client
        .query(
            "SELECT current_database()::text WHERE has_database_privilege(current_database(), 'CREATE') \
             UNION ALL \
             SELECT 'schema ' || nspname FROM pg_namespace \
             WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg_%' \
               AND has_schema_privilege(oid, 'CREATE')",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<_, _>>()?;
    if !create.is_empty() {
        out.push(format!(
            "the account can create objects in {}",
            create.join(", ")
        ));
    }
    Ok(out)
}
