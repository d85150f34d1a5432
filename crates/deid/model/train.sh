#!/bin/sh
# Retrain the shipped PHI taggers (crates/deid/model/phi_tagger_{fr,en}.safetensors) from the
# tuning halves of the gold sets of crates/deid/tests/data/text, plus, for English, CodiEsp
# training cases (no PHI: the rules' dates and places kept as gold, their names dropped) as
# negatives and the sentence templates of PyPI `presidio-evaluator` 0.3.2 (MIT; names, cities
# and streets in everyday sentences, filled by templates_gold.py) for names without a cue. Held out for reporting: EDS-Pseudo dev (lines 81-166 of eds-fr.jsonl), the `report`
# files, i2b2 and the CodiEsp dev cases of codiesp-en.jsonl.
#
# usage: crates/deid/model/train.sh [SHARED_DATA_DIR]   (COHORT=path/to/cohort)
set -e
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
DATA="${1:-$ROOT/../shared/data}"
COHORT="${COHORT:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/cohort}"
GOLD="$ROOT/crates/deid/tests/data/text"
TMP="$(mktemp -d)"
head -n 80 "$GOLD/eds-fr.jsonl" > "$TMP/eds-train.jsonl"
python3 - "$DATA/codiesp/train/text_files_en" "$TMP/codiesp-in.jsonl" <<'PY'
import json, os, sys
folder, out = sys.argv[1], sys.argv[2]
with open(out, "w") as o:
    for name in sorted(os.listdir(folder))[:300]:
        text = open(os.path.join(folder, name), encoding="utf-8").read()
        o.write(json.dumps({"note_id": name, "note_text": text}) + "\n")
PY
"$COHORT" deid text --lang en --tags --tagger none "$TMP/codiesp-in.jsonl" "$TMP/codiesp-out.jsonl"
python3 - "$TMP/codiesp-in.jsonl" "$TMP/codiesp-out.jsonl" "$TMP/codiesp-negatives.jsonl" <<'PY'
import json, sys
notes = [json.loads(l) for l in open(sys.argv[1])]
redacted = [json.loads(l) for l in open(sys.argv[2])]
with open(sys.argv[3], "w") as o:
    for note, out in zip(notes, redacted):
        kept = [e for e in out["entities"] if e["label"] != "NAME"]
        o.write(json.dumps({**note, "entities": kept}) + "\n")
PY
python3 -m pip download -q --no-deps "presidio-evaluator==0.3.2" -d "$TMP"
python3 -m zipfile -e "$TMP"/presidio_evaluator-0.3.2-py3-none-any.whl "$TMP/pe"
TEXT="$ROOT/crates/deid/data/text"
python3 "$HERE/templates_gold.py" "$TMP/pe/presidio_evaluator/data_generator/raw_data/templates.txt" \
  "$TEXT/surrogate-first-en.txt.gz" "$TEXT/surrogate-last-en.txt.gz" "$TMP/templates-en.jsonl"
"$COHORT" deid text train --lang fr --out "$HERE/phi_tagger_fr.safetensors" \
  "$TMP/eds-train.jsonl" "$GOLD/synthetic-letters-fr-tune.jsonl" "$GOLD/synthetic-fr.jsonl"
"$COHORT" deid text train --lang en --out "$HERE/phi_tagger_en.safetensors" \
  "$GOLD/synthetic-nursing-en-tune.jsonl" "$GOLD/synthetic-en.jsonl" "$GOLD/synthea-en.jsonl" \
  "$TMP/codiesp-negatives.jsonl" "$TMP/templates-en.jsonl"
rm -r "$TMP"
