#!/usr/bin/env bash
# Seed corpora of the fuzz targets, from the fixtures the tests use:
# deid_dicom from the ultrasound DICOM files ($COHORT_SHARED_DATA/dicom-us, which
# scripts/test.sh assembles from PyPI; small files whole, every file's first 4 and 16 KiB),
# deid_text from the notes of crates/deid/tests/data/text (each note up to 4 KiB),
# cstore_receiver from a storescu session recorded on its way to dcmtk's storescp, the others
# from small hand-made messages (fuzz/seeds.py).
set -euo pipefail
cd "$(dirname "$0")"
data="${COHORT_SHARED_DATA:-$HOME/.cache/cohort-test-tools/data}/dicom-us"
mkdir -p corpus/deid_dicom corpus/deid_text
for f in "$data"/*.dcm; do
    name=$(basename "$f" .dcm)
    [ "$(stat -Lc %s "$f")" -le 65536 ] && cp -L "$f" "corpus/deid_dicom/$name"
    head -c 4096 "$f" > "corpus/deid_dicom/$name-4k"
    head -c 16384 "$f" > "corpus/deid_dicom/$name-16k"
done
python3 - <<'PY'
import glob, json, os
n = 0
for path in sorted(glob.glob("../crates/deid/tests/data/text/*.jsonl")):
    for line in open(path, encoding="utf-8"):
        text = json.loads(line).get("note_text") or json.loads(line).get("text") or ""
        if text:
            with open(f"corpus/deid_text/{os.path.basename(path)}-{n}", "w", encoding="utf-8") as out:
                out.write(text[:4096])
            n += 1
print(n, "text seeds")
PY
echo "$(ls corpus/deid_dicom | wc -l) DICOM seeds"
python3 seeds.py "$data"
