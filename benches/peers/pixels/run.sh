#!/bin/sh
# Pixel cleaning of the ultrasound fixtures beside the `deid` package's DicomCleaner and
# Presidio's DICOM image redactor, same files, same machine, one thread each: time per file,
# then the identifiers Tesseract still reads in each tool's output (ocr_leaks.py).
#
#   benches/peers/pixels/run.sh DICOM_DIR OUT [ROUNDS]     # COHORT=path/to/cohort
#
# The tools alternate for ROUNDS rounds (default 2); cohort runs as a whole process (its time
# includes starting up), the peers in one Python process each (loading excluded).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
in=$1
out=$2
rounds=${3:-2}
cohort=${COHORT:-cohort}
python=$("$here/setup.sh")
mkdir -p "$out"
head -c 32 /dev/urandom > "$out/key"
n=$(ls "$in"/*.dcm | wc -l)
for round in $(seq "$rounds"); do
  for tool in cohort deid presidio; do
    rm -rf "$out/$tool"
    if [ "$tool" = cohort ]; then
      start=$(date +%s.%N)
      RAYON_NUM_THREADS=1 "$cohort" deid dicom "$in" "$out/cohort" --jobs 1 --key-file "$out/key" \
        > "$out/cohort.log" 2>&1
      end=$(date +%s.%N)
      echo "round $round cohort: $(echo "($end - $start) * 1000 / $n" | bc -l | cut -c1-7) ms per file (whole process)"
    else
      "$python" "$here/peers.py" "$tool" "$in" "$out/$tool" > "$out/$tool.jsonl" 2> "$out/$tool.err"
      "$python" - "$out/$tool.jsonl" "$tool" "$round" <<'PY'
import json, sys
# (the deid package prints its progress on stdout too)
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
total = sum(r["seconds"] for r in rows)
failed = [r["file"] for r in rows if r["error"]]
print(f"round {sys.argv[3]} {sys.argv[2]}: {total * 1000 / len(rows):.1f} ms per file, "
      f"{len(failed)} failed: {', '.join(failed)}")
PY
    fi
  done
done
"$python" "$here/ocr_leaks.py" "$in" cohort="$out/cohort" deid="$out/deid" presidio="$out/presidio"
