//! File links answer what the file says: CSV values come back with their
//! own text (codes keep trailing and leading zeros, numbers with a point are
//! exact), whatever row a value is on. The oracle is the file itself,
//! generated from a seed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_postgres::types::Type;

use crate::common::*;

const ROWS: usize = 1500;

/// One generated CSV row, as the file writes it.
struct Row {
    id: usize,
    /// A region-style code with two decimals: `31.10` must not read `31.1`.
    kode: String,
    /// Numbers, some zero-padded (`0042`): text, or the padding is lost.
    nomor: String,
    /// Amounts with 0 to 3 decimals, up to 10^12: exact numerics.
    harga: String,
    /// Integers, except one word far past the first thousand rows.
    jumlah: String,
    /// Plain integers: a bigint.
    besar: String,
}

fn generate(seed: u64) -> Vec<Row> {
    let mut rng = StdRng::seed_from_u64(seed);
    (1..=ROWS)
        .map(|id| {
            let kode = if id == 1 {
                "31.10".to_string()
            } else {
                format!(
                    "{}.{:02}",
                    rng.random_range(11..95),
                    rng.random_range(0..100)
                )
            };
            let nomor = if id == 2 || rng.random_bool(0.1) {
                format!("{:04}", rng.random_range(0..1000))
            } else {
                rng.random_range(1000..100_000).to_string()
            };
            let scale = rng.random_range(0..=3);
            let units: i64 = rng.random_range(-1_000_000_000_000_000..1_000_000_000_000_000);
            let harga = decimal_text(units / 10_i64.pow(3 - scale), scale);
            let jumlah = if id == 1200 {
                "belum".to_string()
            } else {
                rng.random_range(0..500).to_string()
            };
            let besar = match id {
                3 => i64::MAX.to_string(),
                4 => i64::MIN.to_string(),
                _ => rng.random_range(-1_000_000..1_000_000).to_string(),
            };
            Row {
                id,
                kode,
                nomor,
                harga,
                jumlah,
                besar,
            }
        })
        .collect()
}

/// `units` with `scale` digits after the point, as a file would write it.
fn decimal_text(units: i64, scale: u32) -> String {
    if scale == 0 {
        return units.to_string();
    }
    let sign = if units < 0 { "-" } else { "" };
    let abs = units.unsigned_abs();
    let div = 10_u64.pow(scale);
    format!(
        "{sign}{}.{:0width$}",
        abs / div,
        abs % div,
        width = scale as usize
    )
}

/// A decimal's value in thousandths, whatever its written scale.
fn thousandths(text: &str) -> i128 {
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let fraction = format!("{fraction:0<3}");
    let whole: i128 = whole.parse().expect("whole part");
    let fraction: i128 = fraction.parse().expect("fraction");
    sign * (whole * 1000 + fraction)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_values_come_back_as_the_file_wrote_them() {
    let seed: u64 = std::env::var("TAUTAN_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let rows = generate(seed);
    let dir = temp_dir("csv-exact");
    let mut text = String::from("id,kode,nomor,harga,jumlah,besar\n");
    for r in &rows {
        text.push_str(&format!(
            "{},{},{},{},{},{}\n",
            r.id, r.kode, r.nomor, r.harga, r.jumlah, r.besar
        ));
    }
    std::fs::write(dir.join("angka.csv"), text).expect("write csv");
    // A spreadsheet's export: byte-order mark, semicolons, a comma as the
    // decimal mark (so text), a quoted semicolon.
    std::fs::write(
        dir.join("excel.csv"),
        "\u{feff}kode;nama;nilai\r\n31.10;\"Gambir; Pusat\";1,5\r\n32.01;Bogor;2\r\n",
    )
    .expect("write csv");
    // Times with zones: a timestamptz, not the naive UTC time.
    std::fs::write(
        dir.join("waktu.csv"),
        "id,waktu\n1,2024-01-01 10:00:00+07:00\n2,2024-01-01T03:30:00Z\n3,2024-06-01 12:30:00\n",
    )
    .expect("write csv");
    let server = start_with(&format!(
        "[links.berkas]\nkind = \"files\"\npath = \"{}\"\n",
        dir.display()
    ))
    .await;
    let client = server.connect(WALIDATA).await;

    // The types a client is told: code with two decimals an exact numeric,
    // padded numbers and a column with a word in it text, integers bigint.
    let select =
        "SELECT id, kode, nomor, harga, jumlah, besar FROM berkas.public.angka ORDER BY id";
    let statement = client.prepare(select).await.expect("prepare");
    let types: Vec<Type> = statement
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect();
    assert_eq!(
        types,
        [
            Type::INT8,
            Type::NUMERIC,
            Type::TEXT,
            Type::NUMERIC,
            Type::TEXT,
            Type::INT8
        ],
        "column types of the CSV (seed {seed})"
    );

    // Every value: exactly the file's text, or for amounts of mixed scale
    // exactly the file's number.
    let got = text_rows(&client, select).await.expect("read the CSV");
    assert_eq!(got.len(), ROWS);
    for (row, want) in got.iter().zip(&rows) {
        let cell = |i: usize| row[i].clone().unwrap_or_default();
        assert_eq!(cell(0), want.id.to_string());
        assert_eq!(cell(1), want.kode, "kode of row {} (seed {seed})", want.id);
        assert_eq!(
            cell(2),
            want.nomor,
            "nomor of row {} (seed {seed})",
            want.id
        );
        assert_eq!(
            thousandths(&cell(3)),
            thousandths(&want.harga),
            "harga of row {}: file {} tautan {} (seed {seed})",
            want.id,
            want.harga,
            cell(3)
        );
        assert_eq!(
            cell(4),
            want.jumlah,
            "jumlah of row {} (seed {seed})",
            want.id
        );
        assert_eq!(
            cell(5),
            want.besar,
            "besar of row {} (seed {seed})",
            want.id
        );
    }

    // Sums and filters over them are exact too.
    let total: i128 = rows.iter().map(|r| thousandths(&r.harga)).sum();
    let sum = text_rows(&client, "SELECT sum(harga) FROM berkas.public.angka")
        .await
        .expect("sum");
    assert_eq!(
        sum[0][0].as_deref().map(thousandths),
        Some(total),
        "sum(harga) (seed {seed})"
    );
    let want = rows.iter().filter(|r| r.kode == "31.10").count();
    let found = text_rows(
        &client,
        "SELECT count(*) FROM berkas.public.angka WHERE kode = '31.10'",
    )
    .await
    .expect("filter on a code");
    assert_eq!(
        found[0][0],
        Some(want.to_string()),
        "kode = '31.10' (seed {seed})"
    );

    let excel = text_rows(
        &client,
        "SELECT kode, nama, nilai FROM berkas.public.excel ORDER BY kode",
    )
    .await
    .expect("the spreadsheet export, by its column names");
    let some = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
    assert_eq!(
        excel,
        [
            some(&["31.10", "Gambir; Pusat", "1,5"]),
            some(&["32.01", "Bogor", "2"])
        ]
    );

    let times = text_rows(
        &client,
        "SET TimeZone = 'Asia/Jakarta'; SELECT waktu, pg_typeof(waktu) FROM berkas.public.waktu ORDER BY id",
    )
    .await
    .expect("times with zones");
    assert_eq!(
        times,
        [
            some(&["2024-01-01 10:00:00+07", "timestamp with time zone"]),
            some(&["2024-01-01 10:30:00+07", "timestamp with time zone"]),
            some(&["2024-06-01 19:30:00+07", "timestamp with time zone"]),
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
