#!/usr/bin/env bash
# Audit log benchmark: appends/s through the real appender (fsync group
# commit) with 1, 8 and 64 concurrent appenders, `tautan audit verify` time
# and `tautan report` time and peak memory over a log of --records records
# (default 1,000,000; records shaped as the engine writes them).
#
#   bash benches/audit.sh                       # debug binary of $CARGO_TARGET_DIR (or ./target)
#   TAUTAN_BIN=/path/to/tautan bash benches/audit.sh --records 200000
#
# The binary is copied first (a shared target dir may be rebuilt meanwhile).
# Work files go to $AUDIT_BENCH_DIR (default ~/.cache/tautan-bench/audit) and
# are removed at the end; 1 M records take about 600 MB.
set -euo pipefail
records=1000000
while [ $# -gt 0 ]; do
  case "$1" in
    --records) records="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
src_bin="${TAUTAN_BIN:-${CARGO_TARGET_DIR:-target}/debug/tautan}"
if [ -z "${TAUTAN_BIN:-}" ]; then
  cargo build --bin tautan >&2
fi
work="${AUDIT_BENCH_DIR:-$HOME/.cache/tautan-bench/audit}"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
bin="$work/tautan"
cp "$src_bin" "$bin"
"$bin" keygen --out "$work/custodian.pem" >/dev/null

echo "| appenders | appends | seconds | appends/s |"
echo "|---:|---:|---:|---:|"
for c in 1 8 64; do
  case $c in 1) n=10000 ;; 8) n=50000 ;; *) n=200000 ;; esac
  rm -rf "$work/log" "$work/external.json"
  stats=$("$bin" audit load --dir "$work/log" --key "$work/custodian.pem" \
    --count "$n" --concurrency "$c" --external "$work/external.json" 2>/dev/null | tail -1)
  python3 -c 'import json,sys; s=json.loads(sys.argv[1]); print("| %d | %d | %.2f | %.0f |" % (s["concurrency"], s["appends"], s["secs"], s["per_sec"]))' "$stats"
done

rm -rf "$work/log" "$work/external.json"
start=$(date +%s.%N)
"$bin" audit load --dir "$work/log" --key "$work/custodian.pem" --count "$records" \
  --concurrency 64 --external "$work/external.json" >/dev/null 2>&1
end=$(date +%s.%N)
size=$(du -sm "$work/log" | cut -f1)
echo
echo "log of $records records ($size MiB) written in $(python3 -c "print('%.1f' % ($end - $start))") s"
timer=()
if [ -x /usr/bin/time ]; then timer=(/usr/bin/time -f "audit verify: max RSS %M KiB" -o "$work/rss"); fi
start=$(date +%s.%N)
"${timer[@]}" "$bin" audit verify --dir "$work/log" --key "$work/custodian.pem.pub" --external "$work/external.json" | grep -E "^(OK|TAMPERED)"
end=$(date +%s.%N)
[ -f "$work/rss" ] && cat "$work/rss"
python3 -c "import sys; t=float(sys.argv[1]); n=int(sys.argv[2]); print('audit verify: %.1f s for %d records (%.1f s per million, %.0f records/s)' % (t, n, t*1e6/n, n/t))" "$(python3 -c "print($end - $start)")" "$records"

today=$(date -u +%F)
# Twice: the HTML alone (tautan's own memory: GNU time reports the largest
# of the process and its children, and the PDF is printed by a Chromium the
# report starts), then with the PDF.
for pdf in --no-pdf ""; do
  what="tautan report${pdf:+ $pdf}"
  timer=()
  if [ -x /usr/bin/time ]; then timer=(/usr/bin/time -f "$what: max RSS %M KiB" -o "$work/rss-report"); fi
  start=$(date +%s.%N)
  "${timer[@]}" "$bin" report --dir "$work/log" --from "$(date -u -d '-1 day' +%F)" --to "$today" -o "$work/report.html" $pdf >/dev/null
  end=$(date +%s.%N)
  [ -f "$work/rss-report" ] && cat "$work/rss-report"
  python3 -c "import sys; t=float(sys.argv[1]); n=int(sys.argv[2]); print('%s: %.1f s for %d records (%.1f s per million)' % (sys.argv[3], t, n, t*1e6/n))" "$(python3 -c "print($end - $start)")" "$records" "$what"
done
