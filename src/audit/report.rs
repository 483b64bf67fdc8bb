//! The custodian's yearly exchange report (Pergub 6/2020 art. 17), built
//! from the audit log: [`summarize`] streams the segments once, keeping
//! only aggregates (by month, producer × data user, dataset, link, pull) and
//! the intents still waiting for their completion; [`render_html`] writes a
//! self-contained HTML page (inline SVG charts, no script), in Indonesian
//! or English, ending with the signed checkpoint that covers the period so
//! the report can be checked against the log (`tautan audit verify`).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use chrono::{NaiveDate, NaiveDateTime};
use serde_json::Value;

use super::checkpoint::{read_checkpoints, Checkpoint};
use super::record::{Kind, Record, Seq};
use super::segment::{list_segments, Line, LineReader};
use super::{AuditError, Result};

/// The report's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Bahasa Indonesia (the default).
    Id,
    /// English.
    En,
}

/// Statements, rows and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Volume {
    /// Statements (intents in the period).
    pub statements: u64,
    /// Rows returned.
    pub rows: u64,
    /// Arrow bytes returned.
    pub bytes: u64,
}

impl Volume {
    fn add(&mut self, rows: u64, bytes: u64) {
        self.rows += rows;
        self.bytes += bytes;
    }
}

/// A pull's runs in the period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullRuns {
    /// Runs (intents).
    pub runs: u64,
    /// Runs that ended with an error.
    pub failed: u64,
    /// When the last successful run ended.
    pub last_ok: Option<String>,
}

/// Everything the report shows, computed from the log.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// First day of the period.
    pub from: Option<NaiveDate>,
    /// Last day of the period (inclusive).
    pub to: Option<NaiveDate>,
    /// Records in the period.
    pub records: u64,
    /// All statements in the period.
    pub total: Volume,
    /// Statements that ended with an error.
    pub failed: u64,
    /// Statements without a completion (running when the server stopped).
    pub unfinished: u64,
    /// Logins and refused logins.
    pub logins: u64,
    /// Refused logins.
    pub failed_logins: u64,
    /// Statements refused before they ran, by reason.
    pub denials: BTreeMap<String, u64>,
    /// By month (`YYYY-MM`).
    pub by_month: BTreeMap<String, Volume>,
    /// By month, producer (the link, or `walidata` for the custodian's own
    /// tables) and data user.
    pub exchanges: BTreeMap<(String, String, String), Volume>,
    /// Statements per dataset (`link.schema.table`).
    pub datasets: BTreeMap<String, u64>,
    /// Per link: seconds up and seconds observed while tautan ran.
    pub availability: BTreeMap<String, (f64, f64)>,
    /// Per pull.
    pub pulls: BTreeMap<String, PullRuns>,
    /// The first signed checkpoint at or after the period's last record.
    pub checkpoint: Option<Checkpoint>,
    /// The period's last record.
    pub last_seq: Option<Seq>,
}

/// Per link: seconds up and seconds observed.
type Availability = BTreeMap<String, (f64, f64)>;

/// An intent waiting for its completion.
struct Pending {
    month: String,
    user: String,
    producers: Vec<String>,
    pull: Option<String>,
}

/// Where availability is being counted.
#[derive(Default)]
struct Clock {
    /// tautan running since (seconds since the epoch), per its startup.
    running_since: Option<f64>,
    /// Each link: up or not, and since when.
    links: BTreeMap<String, (bool, f64)>,
}

fn epoch_seconds(ts: &str) -> Option<f64> {
    let t = NaiveDateTime::parse_from_str(ts.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    Some(t.and_utc().timestamp_micros() as f64 / 1e6)
}

fn day_start(d: NaiveDate) -> f64 {
    d.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp() as f64)
        .unwrap_or(0.0)
}

/// Reads the log in `dir` once and aggregates the records of the days
/// `from..=to` (UTC). Memory: the aggregates and the open intents only.
pub fn summarize(dir: &Path, from: NaiveDate, to: NaiveDate) -> Result<Summary> {
    let (lo, hi) = (
        from.format("%Y-%m-%d").to_string(),
        to.format("%Y-%m-%d").to_string(),
    );
    let (t0, t1) = (day_start(from), day_start(to) + 86_400.0);
    let in_period = |ts: &str| {
        ts.get(..10)
            .is_some_and(|d| d >= lo.as_str() && d <= hi.as_str())
    };
    let mut s = Summary {
        from: Some(from),
        to: Some(to),
        ..Summary::default()
    };
    let mut pending: HashMap<Seq, Pending> = HashMap::new();
    let mut clock = Clock::default();
    // Adds the time `link` spent in its state from its mark to `until`,
    // clipped to the period.
    let settle =
        |avail: &mut BTreeMap<String, (f64, f64)>, link: &str, up: bool, since: f64, until: f64| {
            let (a, b) = (since.max(t0), until.min(t1));
            if b > a {
                let e = avail.entry(link.to_string()).or_insert((0.0, 0.0));
                e.1 += b - a;
                if up {
                    e.0 += b - a;
                }
            }
        };
    let mut last_ts = 0.0;
    for segment in list_segments(dir)? {
        let mut reader = LineReader::open(&segment.path)?;
        while let Some(line) = reader.next_line()? {
            let Line::Full { bytes, .. } = line else {
                continue;
            };
            let Ok(r) = Record::parse(bytes) else {
                continue;
            };
            let now = epoch_seconds(&r.ts).unwrap_or(last_ts);
            last_ts = now;
            let f = &r.fields;
            let text = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let inside = in_period(&r.ts);
            if inside {
                s.records += 1;
                s.last_seq = Some(r.seq);
            }
            match r.kind {
                Kind::Intent if inside => {
                    let month = r.ts[..7].to_string();
                    let user = text("user");
                    let mut producers: Vec<String> = Vec::new();
                    for read in f
                        .get("reads")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let Some(table) = read.get("table").and_then(Value::as_str) else {
                            continue;
                        };
                        *s.datasets.entry(table.to_string()).or_default() += 1;
                        let first = table.split('.').next().unwrap_or(table);
                        let producer = match first {
                            "ref" | "mat" | "system" | "public" => "walidata",
                            link => link,
                        };
                        if !producers.iter().any(|p| p == producer) {
                            producers.push(producer.to_string());
                        }
                    }
                    if producers.is_empty() {
                        producers.push("walidata".into());
                    }
                    s.total.statements += 1;
                    s.by_month.entry(month.clone()).or_default().statements += 1;
                    for p in &producers {
                        s.exchanges
                            .entry((month.clone(), p.clone(), user.clone()))
                            .or_default()
                            .statements += 1;
                    }
                    let pull = text("door").strip_prefix("pull:").map(str::to_string);
                    if let Some(p) = &pull {
                        s.pulls.entry(p.clone()).or_default().runs += 1;
                    }
                    pending.insert(
                        r.seq,
                        Pending {
                            month,
                            user,
                            producers,
                            pull,
                        },
                    );
                }
                Kind::Completion => {
                    let Some(p) = f
                        .get("intent")
                        .and_then(Value::as_u64)
                        .and_then(|i| pending.remove(&i))
                    else {
                        continue;
                    };
                    let rows = f.get("rows").and_then(Value::as_u64).unwrap_or(0);
                    let bytes = f.get("bytes").and_then(Value::as_u64).unwrap_or(0);
                    let ok = text("sqlstate") == "00000";
                    s.total.add(rows, bytes);
                    s.by_month
                        .entry(p.month.clone())
                        .or_default()
                        .add(rows, bytes);
                    for producer in &p.producers {
                        s.exchanges
                            .entry((p.month.clone(), producer.clone(), p.user.clone()))
                            .or_default()
                            .add(rows, bytes);
                    }
                    if !ok {
                        s.failed += 1;
                    }
                    if let Some(pull) = p.pull {
                        let e = s.pulls.entry(pull).or_default();
                        if ok {
                            e.last_ok = Some(r.ts.clone());
                        } else {
                            e.failed += 1;
                        }
                    }
                }
                Kind::Denied if inside => {
                    let mut reason = text("reason");
                    if reason.len() > 160 {
                        let cut = (0..=160)
                            .rev()
                            .find(|&i| reason.is_char_boundary(i))
                            .unwrap_or(0);
                        reason.truncate(cut);
                        reason.push('…');
                    }
                    *s.denials.entry(reason).or_default() += 1;
                }
                Kind::Login if inside => s.logins += 1,
                Kind::LoginFailed if inside => {
                    s.logins += 1;
                    s.failed_logins += 1;
                }
                Kind::Startup => {
                    close_clock(&mut clock, now, &mut s.availability, &settle);
                    clock.running_since = Some(now);
                    if let Some(links) = f.get("links").and_then(Value::as_object) {
                        for (name, status) in links {
                            clock
                                .links
                                .insert(name.clone(), (status.as_str() == Some("up"), now));
                        }
                    }
                }
                Kind::Link => {
                    let link = text("link");
                    let up = text("status") == "up";
                    if let Some((was, since)) = clock.links.get(&link).copied() {
                        settle(&mut s.availability, &link, was, since, now);
                    }
                    clock.links.insert(link, (up, now));
                }
                Kind::Shutdown => close_clock(&mut clock, now, &mut s.availability, &settle),
                _ => {}
            }
        }
    }
    close_clock(&mut clock, last_ts, &mut s.availability, &settle);
    s.unfinished = pending.len() as u64;
    if let Some(last) = s.last_seq {
        s.checkpoint = read_checkpoints(dir)?
            .into_iter()
            .filter_map(|(_, c)| c.ok())
            .find(|c| c.seq >= last);
    }
    Ok(s)
}

/// Ends the current run of tautan at `now`: every link's time is added.
fn close_clock(
    clock: &mut Clock,
    now: f64,
    avail: &mut Availability,
    settle: &dyn Fn(&mut Availability, &str, bool, f64, f64),
) {
    if clock.running_since.take().is_some() {
        for (link, (up, since)) in std::mem::take(&mut clock.links) {
            settle(avail, &link, up, since, now);
        }
    }
}

/// An agreement as the report lists it.
#[derive(Debug, Clone)]
pub struct AgreementRow {
    /// Its id.
    pub id: String,
    /// The producer's link.
    pub producer: String,
    /// The data user (user or role).
    pub user: String,
    /// Last day in force.
    pub valid_until: String,
    /// Where it stands today (`valid`, `expired`, ...).
    pub status: String,
}

struct Words {
    title: &'static str,
    period: &'static str,
    generated: &'static str,
    summary: &'static str,
    statements: &'static str,
    rows: &'static str,
    bytes: &'static str,
    failed: &'static str,
    unfinished: &'static str,
    logins: &'static str,
    failed_logins: &'static str,
    denials: &'static str,
    per_month: &'static str,
    month: &'static str,
    exchanges: &'static str,
    producer: &'static str,
    data_user: &'static str,
    datasets: &'static str,
    dataset: &'static str,
    availability: &'static str,
    link: &'static str,
    up: &'static str,
    observed: &'static str,
    pulls: &'static str,
    pull: &'static str,
    runs: &'static str,
    last_ok: &'static str,
    agreements: &'static str,
    agreement: &'static str,
    valid_until: &'static str,
    status: &'static str,
    expiring: &'static str,
    reason: &'static str,
    count: &'static str,
    checkpoint: &'static str,
    checkpoint_note: &'static str,
    no_checkpoint: &'static str,
    none: &'static str,
}

const ID: Words = Words {
    title: "Laporan Pertukaran Data",
    period: "Periode",
    generated: "Dibuat",
    summary: "Ringkasan",
    statements: "Permintaan data",
    rows: "Baris",
    bytes: "Byte",
    failed: "Permintaan gagal",
    unfinished: "Permintaan tanpa penyelesaian",
    logins: "Login",
    failed_logins: "Login ditolak",
    denials: "Permintaan ditolak",
    per_month: "Pertukaran per bulan",
    month: "Bulan",
    exchanges: "Pertukaran per produsen dan pengguna data",
    producer: "Produsen data",
    data_user: "Pengguna data",
    datasets: "Data yang paling sering digunakan",
    dataset: "Data",
    availability: "Ketersediaan tautan",
    link: "Tautan",
    up: "Tersedia",
    observed: "Waktu teramati",
    pulls: "Penarikan terjadwal",
    pull: "Penarikan",
    runs: "Dijalankan",
    last_ok: "Terakhir berhasil",
    agreements: "Perjanjian akses",
    agreement: "Perjanjian",
    valid_until: "Berlaku sampai",
    status: "Status",
    expiring: "berakhir dalam 90 hari",
    reason: "Alasan",
    count: "Jumlah",
    checkpoint: "Checkpoint bertanda tangan yang mencakup periode ini",
    checkpoint_note: "Periksa laporan ini terhadap log audit dengan `tautan audit verify`; catatan terakhir periode ini tercakup oleh checkpoint berikut.",
    no_checkpoint: "Belum ada checkpoint bertanda tangan yang mencakup akhir periode ini.",
    none: "tidak ada",
};

const EN: Words = Words {
    title: "Data Exchange Report",
    period: "Period",
    generated: "Generated",
    summary: "Summary",
    statements: "Data requests",
    rows: "Rows",
    bytes: "Bytes",
    failed: "Failed requests",
    unfinished: "Requests without a completion",
    logins: "Logins",
    failed_logins: "Refused logins",
    denials: "Refused requests",
    per_month: "Exchanges per month",
    month: "Month",
    exchanges: "Exchanges per producer and data user",
    producer: "Producer",
    data_user: "Data user",
    datasets: "Most used datasets",
    dataset: "Dataset",
    availability: "Link availability",
    link: "Link",
    up: "Available",
    observed: "Time observed",
    pulls: "Scheduled pulls",
    pull: "Pull",
    runs: "Runs",
    last_ok: "Last success",
    agreements: "Access agreements",
    agreement: "Agreement",
    valid_until: "Valid until",
    status: "Status",
    expiring: "expires within 90 days",
    reason: "Reason",
    count: "Count",
    checkpoint: "Signed checkpoint covering this period",
    checkpoint_note: "Check this report against the audit log with `tautan audit verify`; the period's last record is covered by this checkpoint.",
    no_checkpoint: "No signed checkpoint covers the end of this period yet.",
    none: "none",
};

/// HTML text.
fn esc(s: &str) -> String {
    crate::html::escape(s)
}

/// A vertical bar chart (inline SVG) of `values` labelled `labels`.
fn bars(labels: &[String], values: &[f64], title: &str) -> String {
    let (w, h, pad) = (720.0, 220.0, 30.0);
    let max = values.iter().cloned().fold(0.0_f64, f64::max).max(1.0);
    let n = values.len().max(1) as f64;
    let slot = (w - 2.0 * pad) / n;
    let mut svg = format!(
        "<svg class=\"chart\" role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\">",
        esc(title)
    );
    for (i, (label, v)) in labels.iter().zip(values).enumerate() {
        let bh = (h - 2.0 * pad) * v / max;
        let bw = (slot * 0.7).min(48.0);
        let centre = pad + slot * (i as f64 + 0.5);
        let (x, y) = (centre - bw / 2.0, h - pad - bh);
        let _ = write!(
            svg,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\"><title>{}: {v}</title></rect>\
             <text x=\"{centre:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>\
             <text x=\"{centre:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{v}</text>",
            esc(label),
            h - pad + 14.0,
            esc(label),
            (y - 4.0).max(10.0),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The report as one HTML page. `generated` is the time it was made;
/// `agreements` are the config's, with their standing today.
pub fn render_html(
    s: &Summary,
    lang: Lang,
    generated: &str,
    agreements: &[AgreementRow],
) -> String {
    let t = match lang {
        Lang::Id => &ID,
        Lang::En => &EN,
    };
    let period = format!(
        "{} – {}",
        s.from.map(|d| d.to_string()).unwrap_or_default(),
        s.to.map(|d| d.to_string()).unwrap_or_default()
    );
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{} {}</title><style>{}</style></head><body>",
        if lang == Lang::Id { "id" } else { "en" },
        t.title,
        esc(&period),
        crate::html::STYLE
    );
    let _ = write!(
        h,
        "<h1>{}</h1><p>{}: <b id=\"period\">{}</b> · {}: {}</p>",
        t.title,
        t.period,
        esc(&period),
        t.generated,
        esc(generated)
    );
    // Summary.
    let denials: u64 = s.denials.values().sum();
    let _ = write!(h, "<h2>{}</h2><table>", t.summary);
    for (id, label, value) in [
        ("statements", t.statements, s.total.statements),
        ("rows", t.rows, s.total.rows),
        ("bytes", t.bytes, s.total.bytes),
        ("failed", t.failed, s.failed),
        ("unfinished", t.unfinished, s.unfinished),
        ("denials", t.denials, denials),
        ("logins", t.logins, s.logins),
        ("failed-logins", t.failed_logins, s.failed_logins),
    ] {
        let _ = write!(
            h,
            "<tr><th>{label}</th><td class=\"n\" id=\"total-{id}\">{value}</td></tr>"
        );
    }
    h.push_str("</table>");
    // Per month.
    let _ = write!(h, "<h2>{}</h2>", t.per_month);
    let months: Vec<String> = s.by_month.keys().cloned().collect();
    let counts: Vec<f64> = s.by_month.values().map(|v| v.statements as f64).collect();
    h.push_str(&bars(&months, &counts, t.per_month));
    let _ = write!(
        h,
        "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        t.month, t.statements, t.rows, t.bytes
    );
    for (m, v) in &s.by_month {
        let _ = write!(
            h,
            "<tr data-month=\"{0}\"><td>{0}</td><td class=\"n\">{1}</td><td class=\"n\">{2}</td><td class=\"n\">{3}</td></tr>",
            esc(m),
            v.statements,
            v.rows,
            v.bytes
        );
    }
    h.push_str("</table>");
    // Producer × data user.
    let _ = write!(
        h,
        "<h2>{}</h2><table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        t.exchanges, t.month, t.producer, t.data_user, t.statements, t.rows, t.bytes
    );
    for ((m, p, u), v) in &s.exchanges {
        let _ = write!(
            h,
            "<tr class=\"exchange\" data-producer=\"{1}\" data-user=\"{2}\"><td>{0}</td><td>{1}</td><td>{2}</td><td class=\"n\">{3}</td><td class=\"n\">{4}</td><td class=\"n\">{5}</td></tr>",
            esc(m),
            esc(p),
            esc(u),
            v.statements,
            v.rows,
            v.bytes
        );
    }
    h.push_str("</table>");
    // Denials.
    let _ = write!(h, "<h2>{}</h2>", t.denials);
    if s.denials.is_empty() {
        let _ = write!(h, "<p>{}</p>", t.none);
    } else {
        let mut reasons: Vec<(&String, &u64)> = s.denials.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let _ = write!(
            h,
            "<table><tr><th>{}</th><th>{}</th></tr>",
            t.reason, t.count
        );
        for (reason, n) in reasons.into_iter().take(30) {
            let _ = write!(
                h,
                "<tr class=\"denial\"><td>{}</td><td class=\"n\">{n}</td></tr>",
                esc(reason)
            );
        }
        h.push_str("</table>");
    }
    // Datasets.
    let mut used: Vec<(&String, &u64)> = s.datasets.iter().collect();
    used.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    used.truncate(15);
    let _ = write!(h, "<h2>{}</h2>", t.datasets);
    let names: Vec<String> = used
        .iter()
        .map(|(n, _)| n.rsplit('.').next().unwrap_or(n).to_string())
        .collect();
    let values: Vec<f64> = used.iter().map(|(_, c)| **c as f64).collect();
    h.push_str(&bars(&names, &values, t.datasets));
    let _ = write!(
        h,
        "<table><tr><th>{}</th><th>{}</th></tr>",
        t.dataset, t.statements
    );
    for (name, n) in &used {
        let _ = write!(
            h,
            "<tr class=\"dataset\" data-dataset=\"{0}\"><td>{0}</td><td class=\"n\">{n}</td></tr>",
            esc(name)
        );
    }
    h.push_str("</table>");
    // Availability.
    let _ = write!(
        h,
        "<h2>{}</h2><table><tr><th>{}</th><th>{}</th><th>{}</th></tr>",
        t.availability, t.link, t.up, t.observed
    );
    for (link, (up, observed)) in &s.availability {
        let pct = if *observed > 0.0 {
            100.0 * up / observed
        } else {
            0.0
        };
        let _ = write!(
            h,
            "<tr class=\"availability\" data-link=\"{0}\"><td>{0}</td><td class=\"n\">{pct:.2}%</td><td class=\"n\">{1:.0} s</td></tr>",
            esc(link),
            observed
        );
    }
    h.push_str("</table>");
    // Pulls.
    let _ = write!(
        h,
        "<h2>{}</h2><table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        t.pulls, t.pull, t.runs, t.failed, t.last_ok
    );
    for (name, p) in &s.pulls {
        let _ = write!(
            h,
            "<tr class=\"pull\" data-pull=\"{0}\"><td>{0}</td><td class=\"n\">{1}</td><td class=\"n\">{2}</td><td>{3}</td></tr>",
            esc(name),
            p.runs,
            p.failed,
            esc(p.last_ok.as_deref().unwrap_or(t.none))
        );
    }
    h.push_str("</table>");
    // Agreements.
    let soon = s.to.and_then(|d| d.checked_add_days(chrono::Days::new(90)));
    let _ = write!(
        h,
        "<h2>{}</h2><table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        t.agreements, t.agreement, t.producer, t.data_user, t.valid_until, t.status
    );
    for a in agreements {
        let expiring = NaiveDate::parse_from_str(&a.valid_until, "%Y-%m-%d")
            .ok()
            .zip(soon)
            .is_some_and(|(until, soon)| a.status == "valid" && until <= soon);
        let _ = write!(
            h,
            "<tr class=\"agreement\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>",
            esc(&a.id),
            esc(&a.producer),
            esc(&a.user),
            esc(&a.valid_until),
            esc(&a.status),
            if expiring { format!(" ({})", t.expiring) } else { String::new() }
        );
    }
    h.push_str("</table>");
    // The checkpoint.
    let _ = write!(h, "<h2>{}</h2>", t.checkpoint);
    match &s.checkpoint {
        Some(c) => {
            let _ = write!(
                h,
                "<p>{}</p><table id=\"checkpoint\"><tr><th>seq</th><td>{}</td></tr><tr><th>ts</th><td>{}</td></tr>\
                 <tr><th>head</th><td><code>{}</code></td></tr><tr><th>root</th><td><code>{}</code></td></tr>\
                 <tr><th>key</th><td><code>{}</code></td></tr><tr><th>sig</th><td><code>{}</code></td></tr></table>",
                esc(t.checkpoint_note),
                c.seq,
                esc(&c.ts),
                esc(&c.head),
                esc(&c.root),
                esc(&c.key),
                esc(&c.sig)
            );
        }
        None => {
            let _ = write!(h, "<p>{}</p>", t.no_checkpoint);
        }
    }
    h.push_str("</body></html>\n");
    h
}

/// Parses `YYYY-MM-DD`.
pub fn parse_day(s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|e| AuditError::Invalid(format!("`{s}` is not a date (YYYY-MM-DD): {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_users_typed_is_text_in_the_page_never_markup() {
        let mut s = Summary::default();
        s.denials.insert(
            "permission denied for column \"<script>alert(1)</script>\"".into(),
            2,
        );
        s.datasets
            .insert("kesehatan.x.<img src=x onerror=alert(1)>".into(), 1);
        s.exchanges.insert(
            ("2026-01".into(), "kesehatan".into(), "u\"><b>".into()),
            Volume::default(),
        );
        let html = render_html(&s, Lang::En, "now", &[]);
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("u\"><b>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }
}
