import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Timestamp;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

/**
 * pgJDBC against a running tautan: java -cp .:postgresql.jar JdbcCheck PORT
 *
 * Prints each check as it passes; the first failure prints what was expected
 * and exits 1. Expected values come from sql/kesehatan.mysql.sql and the
 * demo logins in federation.toml (see ../expected.py for the formulas).
 */
public class JdbcCheck {
    static final String HOST = "127.0.0.1";
    static final String DATABASE = "tautan";
    static final String SCHEMA = "kesehatan.kesehatan";
    // sql/kesehatan.mysql.sql: INSERT INTO puskesmas VALUES ...
    static final Map<String, String> PUSKESMAS = new LinkedHashMap<>();
    static {
        PUSKESMAS.put("P3171010101", "Puskesmas Gambir");
        PUSKESMAS.put("P3171020101", "Puskesmas Sawah Besar");
        PUSKESMAS.put("P3171030101", "Puskesmas Kemayoran");
        PUSKESMAS.put("P3171040101", "Puskesmas Senen");
        PUSKESMAS.put("P3171050101", "Puskesmas Cempaka Putih");
        PUSKESMAS.put("P3171060101", "Puskesmas Menteng");
        PUSKESMAS.put("P3171070101", "Puskesmas Tanah Abang");
        PUSKESMAS.put("P3171080101", "Puskesmas Johar Baru");
    }
    // sql/kesehatan.mysql.sql: seq_1_to_30000
    static final int KUNJUNGAN_ROWS = 30000;
    // Every pair computed (a bare count(*) of a cross join is answered from row counts),
    // little memory held: only the visits side is buffered.
    static final String SLOW_QUERY = "SELECT sum(a.id * b.x) FROM kesehatan.kesehatan.kunjungan a "
            + "CROSS JOIN generate_series(1, 100000) b(x)";
    static final int CANCEL_BOUND_MS = 15_000;

    static int port;
    static int checks = 0;

    /** waktu of kunjungan id i: TIMESTAMP '2024-01-01 07:00:00' + INTERVAL (seq * 17) MINUTE */
    static LocalDateTime waktu(long i) {
        return LocalDateTime.of(2024, 1, 1, 7, 0).plusMinutes(17 * i);
    }

    /** biaya of kunjungan id i: ROUND(15000 + (seq * 7919) % 485000, -2) as decimal(12,2) */
    static BigDecimal biaya(long i) {
        long raw = 15000 + (i * 7919) % 485000;
        return BigDecimal.valueOf((raw + 50) / 100 * 100).setScale(2);
    }

    static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError("FAILED: " + what);
        }
        checks++;
        System.out.println("ok: " + what);
    }

    static Connection connect(String user, String password) throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", user);
        p.setProperty("password", password);
        p.setProperty("sslmode", "disable");
        p.setProperty("prepareThreshold", "5");
        p.setProperty("connectTimeout", "10");
        p.setProperty("ApplicationName", "tautan-jdbc-check");
        return DriverManager.getConnection("jdbc:postgresql://" + HOST + ":" + port + "/" + DATABASE, p);
    }

    static List<String> column(ResultSet rs, String name) throws SQLException {
        List<String> out = new ArrayList<>();
        try (rs) {
            while (rs.next()) {
                out.add(rs.getString(name));
            }
        }
        return out;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: java JdbcCheck PORT");
            System.exit(2);
        }
        port = Integer.parseInt(args[0]);
        // A watchdog: a hung server must fail the check, not the CI job.
        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(300_000);
                System.err.println("FAILED: JdbcCheck still running after 300 s");
                Runtime.getRuntime().halt(1);
            } catch (InterruptedException e) {
                // done
            }
        });
        watchdog.setDaemon(true);
        watchdog.start();
        try {
            run();
        } catch (Throwable t) {
            System.err.println(t instanceof AssertionError ? t.getMessage() : "FAILED with an exception:");
            t.printStackTrace();
            System.exit(1);
        }
        System.out.println("JdbcCheck: all " + checks + " checks passed");
        System.exit(0);
    }

    static void run() throws Exception {
        try (Connection conn = connect("walidata", "walidata-demo")) {
            metadata(conn);
            catalogFidelity(conn);
            preparedStatements(conn);
            fetchSize(conn);
            check(conn.isValid(5), "isValid(5)");
            queryTimeout(conn);
            readOnly(conn);
        }
        restricted();
        wrongPassword();
    }

    static void metadata(Connection conn) throws SQLException {
        DatabaseMetaData md = conn.getMetaData();
        check(md.getDatabaseProductVersion().startsWith("16"),
                "getDatabaseProductVersion() is 16.x: " + md.getDatabaseProductVersion());

        List<String> schemas = column(md.getSchemas(), "TABLE_SCHEM");
        check(schemas.contains(SCHEMA), "getSchemas() contains " + SCHEMA + ": " + schemas);
        check(schemas.contains("ref"), "getSchemas() contains ref");

        // types null: every relation kind; a server that lists the primary
        // keys' indexes (pg_class relkind 'i') returns them as TABLE_TYPE INDEX.
        List<String> tables = new ArrayList<>();
        List<String> all = new ArrayList<>();
        try (ResultSet rs = md.getTables(null, SCHEMA, "%", null)) {
            while (rs.next()) {
                all.add(rs.getString("TABLE_NAME") + ":" + rs.getString("TABLE_TYPE"));
                if ("TABLE".equals(rs.getString("TABLE_TYPE"))) {
                    tables.add(rs.getString("TABLE_NAME"));
                }
            }
        }
        check(tables.equals(Arrays.asList("kunjungan", "puskesmas")),
                "getTables(null, '" + SCHEMA + "', '%', null) tables = [kunjungan, puskesmas]: " + all);
        tables = column(md.getTables(null, SCHEMA, "%", new String[] {"TABLE", "VIEW"}), "TABLE_NAME");
        check(tables.equals(Arrays.asList("kunjungan", "puskesmas")),
                "getTables(null, '" + SCHEMA + "', '%', {TABLE, VIEW}) = [kunjungan, puskesmas]: " + tables);

        List<String> names = new ArrayList<>();
        List<String> types = new ArrayList<>();
        try (ResultSet rs = md.getColumns(null, SCHEMA, "puskesmas", "%")) {
            while (rs.next()) {
                names.add(rs.getString("COLUMN_NAME"));
                types.add(rs.getString("TYPE_NAME"));
            }
        }
        check(names.equals(Arrays.asList("kode", "nama", "kecamatan_kode")),
                "getColumns(puskesmas) names = [kode, nama, kecamatan_kode]: " + names);
        // MariaDB varchar columns are Arrow Utf8, presented as PostgreSQL text.
        check(types.equals(Arrays.asList("text", "text", "text")),
                "getColumns(puskesmas) TYPE_NAME all text: " + types);

        List<String> pk = column(md.getPrimaryKeys(null, SCHEMA, "puskesmas"), "COLUMN_NAME");
        check(pk.equals(Arrays.asList("kode")), "getPrimaryKeys(puskesmas) = [kode]: " + pk);
    }

    // tests/clients/run.sh adds the link uji_pg (sql/uji.pg.sql): table beda
    // has a column of every PostgreSQL type tautan maps.
    static final String UJI = "uji_pg.public";

    static void catalogFidelity(Connection conn) throws SQLException {
        DatabaseMetaData md = conn.getMetaData();
        List<String> typeNames = column(md.getTypeInfo(), "TYPE_NAME");
        check(typeNames.containsAll(Arrays.asList("int4", "numeric", "text", "uuid", "interval", "jsonb")),
                "getTypeInfo() lists int4, numeric, text, uuid, interval, jsonb (" + typeNames.size() + " types)");

        check(column(md.getImportedKeys(null, UJI, "beda"), "FKCOLUMN_NAME").isEmpty(),
                "getImportedKeys(beda) is empty");
        check(column(md.getExportedKeys(null, UJI, "beda"), "FKCOLUMN_NAME").isEmpty(),
                "getExportedKeys(beda) is empty");

        List<String> index = new ArrayList<>();
        try (ResultSet rs = md.getIndexInfo(null, UJI, "beda", false, false)) {
            while (rs.next()) {
                index.add(rs.getString("INDEX_NAME") + ":" + rs.getString("COLUMN_NAME") + ":"
                        + (rs.getBoolean("NON_UNIQUE") ? "non-unique" : "unique"));
            }
        }
        check(index.equals(Arrays.asList("beda_pkey:id:unique")),
                "getIndexInfo(beda) = [beda_pkey:id:unique]: " + index);

        List<String> privileges = new ArrayList<>();
        try (ResultSet rs = md.getTablePrivileges(null, UJI, "beda")) {
            while (rs.next()) {
                privileges.add(rs.getString("TABLE_NAME") + ":" + rs.getString("GRANTEE") + ":"
                        + rs.getString("PRIVILEGE"));
            }
        }
        check(privileges.equals(Arrays.asList("beda:walidata:SELECT")),
                "getTablePrivileges(beda) = [beda:walidata:SELECT]: " + privileges);

        Map<String, String> columns = new LinkedHashMap<>();
        try (ResultSet rs = md.getColumns(null, UJI, "beda", "%")) {
            while (rs.next()) {
                columns.put(rs.getString("COLUMN_NAME"), rs.getString("TYPE_NAME") + "("
                        + rs.getInt("COLUMN_SIZE") + "," + rs.getInt("DECIMAL_DIGITS") + ")");
            }
        }
        check(columns.size() == 19, "getColumns(beda) has 19 columns: " + columns);
        check("numeric(12,3)".equals(columns.get("n")), "getColumns(beda) n numeric(12,3): " + columns.get("n"));
        check("varchar(10,0)".equals(columns.get("vc")), "getColumns(beda) vc varchar(10): " + columns.get("vc"));
        check("bpchar(4,0)".equals(columns.get("ch")), "getColumns(beda) ch bpchar(4): " + columns.get("ch"));
        check(columns.get("u").startsWith("uuid(") && columns.get("iv").startsWith("interval(")
                        && columns.get("tstz").startsWith("timestamptz("),
                "getColumns(beda) u uuid, iv interval, tstz timestamptz: " + columns);

        // getObject on every column, in text (simple statement) and binary
        // (a server-prepared statement past prepareThreshold) results.
        String sql = "SELECT * FROM " + UJI + ".beda ORDER BY id";
        int textRows = 0;
        try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            int n = rs.getMetaData().getColumnCount();
            while (rs.next()) {
                for (int i = 1; i <= n; i++) {
                    rs.getObject(i);
                    rs.getString(i);
                }
                textRows++;
            }
        }
        check(textRows > 0, "getObject on every column of beda (text): " + textRows + " rows");
        try (PreparedStatement ps = conn.prepareStatement(sql)) {
            for (int round = 0; round < 7; round++) {
                int rows = 0;
                try (ResultSet rs = ps.executeQuery()) {
                    int n = rs.getMetaData().getColumnCount();
                    while (rs.next()) {
                        for (int i = 1; i <= n; i++) {
                            rs.getObject(i);
                        }
                        rows++;
                    }
                }
                if (rows != textRows) {
                    check(false, "prepared beda round " + round + ": " + rows + " rows");
                }
            }
        }
        check(true, "getObject on every column of beda (binary, 7 prepared rounds)");

        // A second connection reuses the table's oid read by the first.
        long oid;
        try (PreparedStatement ps = conn.prepareStatement(
                "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON c.relnamespace = n.oid "
                        + "WHERE n.nspname = ? AND c.relname = 'beda'")) {
            ps.setString(1, UJI);
            try (ResultSet rs = ps.executeQuery()) {
                check(rs.next(), "pg_class has beda");
                oid = rs.getLong(1);
            }
        }
        try (Connection other = connect("walidata", "walidata-demo");
             PreparedStatement ps = other.prepareStatement(
                "SELECT attname FROM pg_catalog.pg_attribute WHERE attrelid = ? AND attnum > 0 ORDER BY attnum")) {
            ps.setLong(1, oid);
            List<String> names = column(ps.executeQuery(), "attname");
            check(names.size() == 19 && names.get(0).equals("id"),
                    "a second connection reads beda's columns by the first's oid: " + names);
        }
    }

    static void preparedStatements(Connection conn) throws SQLException {
        // 10 executions: past prepareThreshold=5 pgJDBC switches to a named
        // server-side statement and binary results for the types it can.
        List<String> kodes = new ArrayList<>(PUSKESMAS.keySet());
        try (PreparedStatement ps = conn.prepareStatement(
                "SELECT nama FROM kesehatan.kesehatan.puskesmas WHERE kode = ?")) {
            for (int i = 0; i < 10; i++) {
                String kode = kodes.get(i % kodes.size());
                ps.setString(1, kode);
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.next() && PUSKESMAS.get(kode).equals(rs.getString(1)) && !rs.next(),
                            "prepared execution " + (i + 1) + ": " + kode + " -> " + PUSKESMAS.get(kode));
                }
            }
            check(ps.unwrap(org.postgresql.PGStatement.class).isUseServerPrepare(),
                    "the statement is server-prepared after 10 executions");
        }
        try (PreparedStatement ps = conn.prepareStatement(
                "SELECT id, waktu, biaya, rawat_inap FROM kesehatan.kesehatan.kunjungan WHERE id = ?")) {
            // 23: the first in-patient visit (seq % 23 = 0)
            for (long want : new long[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 23}) {
                ps.setLong(1, want);
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.next(), "kunjungan id " + want + " found");
                    Timestamp w = rs.getTimestamp("waktu");
                    BigDecimal b = rs.getBigDecimal("biaya");
                    boolean ri = rs.getBoolean("rawat_inap");
                    check(rs.getLong("id") == want
                                    && w.toLocalDateTime().equals(waktu(want))
                                    && b.compareTo(biaya(want)) == 0
                                    && ri == (want % 23 == 0),
                            "kunjungan id " + want + ": waktu " + w + " (want " + waktu(want) + "), biaya " + b
                                    + " (want " + biaya(want) + "), rawat_inap " + ri);
                    check(!rs.next(), "one row for id " + want);
                }
            }
        }
    }

    static void fetchSize(Connection conn) throws SQLException {
        conn.setAutoCommit(false);
        try (Statement st = conn.createStatement()) {
            st.setFetchSize(1000); // a portal read 1000 rows at a time
            int n = 0;
            try (ResultSet rs = st.executeQuery("SELECT id, kecamatan_kode FROM kesehatan.kesehatan.kunjungan")) {
                while (rs.next()) {
                    n++;
                }
            }
            check(n == KUNJUNGAN_ROWS, "setFetchSize(1000) over kunjungan: " + n + " rows (want " + KUNJUNGAN_ROWS + ")");
            conn.commit();
        } finally {
            conn.setAutoCommit(true);
        }
    }

    static void queryTimeout(Connection conn) throws SQLException {
        long started = System.currentTimeMillis();
        SQLException error = null;
        try (Statement st = conn.createStatement()) {
            st.setQueryTimeout(1);
            try (ResultSet rs = st.executeQuery(SLOW_QUERY)) {
                rs.next();
            }
        } catch (SQLException e) {
            error = e;
        }
        long elapsed = System.currentTimeMillis() - started;
        check(error != null, "setQueryTimeout(1) on the cross join raised an SQLException");
        check("57014".equals(error.getSQLState()), "SQLState 57014: " + error.getSQLState() + " " + error.getMessage());
        check(elapsed < CANCEL_BOUND_MS, "query cancelled after " + elapsed + " ms (bound " + CANCEL_BOUND_MS + ")");
        try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT count(*) FROM ref.kecamatan")) {
            check(rs.next() && rs.getLong(1) == 8, "connection usable after the cancel");
        }
    }

    static void readOnly(Connection conn) throws SQLException {
        try (Statement st = conn.createStatement()) {
            st.executeUpdate("DELETE FROM kesehatan.kesehatan.kunjungan");
            check(false, "DELETE refused");
        } catch (SQLException e) {
            check("25006".equals(e.getSQLState()), "DELETE refused with 25006: " + e.getSQLState());
        }
    }

    static void restricted() throws SQLException {
        try (Connection conn = connect("dinsos", "dinsos-demo")) {
            DatabaseMetaData md = conn.getMetaData();
            List<String> tables = column(md.getTables(null, SCHEMA, "%", null), "TABLE_NAME");
            check(tables.isEmpty(), "dinsos: getTables on " + SCHEMA + " is empty: " + tables);
            List<String> schemas = column(md.getSchemas(), "TABLE_SCHEM");
            check(!schemas.contains(SCHEMA) && !schemas.contains("kependudukan.public") && schemas.contains("dinsos.public"),
                    "dinsos: getSchemas() has dinsos.public, not kesehatan/kependudukan: " + schemas);
            List<String> own = column(md.getTables(null, "dinsos.public", "%", null), "TABLE_NAME");
            check(own.equals(Arrays.asList("penerima_bansos")), "dinsos: getTables on dinsos.public: " + own);
        }
    }

    static void wrongPassword() {
        try {
            connect("walidata", "not-the-password").close();
            check(false, "login with a wrong password refused");
        } catch (SQLException e) {
            check("28P01".equals(e.getSQLState()), "wrong password: SQLState 28P01: " + e.getSQLState());
        }
    }
}
