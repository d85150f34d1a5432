#!/bin/sh
# Text de-identification benchmark: `cohort deid text` beside Microsoft Presidio (spaCy sm models) on
# the same notes, in the same run: character-level quality (the official textdeid_score.py, plus
# `cohort deid text eval` per label for both tools) and throughput (analysis time, single thread).
#
# usage: benches/peers/presidio/run.sh [SHARED_DATA_DIR] [OUT_DIR]
#   COHORT=path/to/cohort (default: $CARGO_TARGET_DIR/release/cohort), SCORER=textdeid_score.py
set -e
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
DATA="${1:-$ROOT/../shared/data}"
OUT="${2:-$(mktemp -d)}"
COHORT="${COHORT:-${CARGO_TARGET_DIR:-$ROOT/target}/release/cohort}"
SCORER="${SCORER:-$DATA/../eval/textdeid_score.py}"
PY="$("$HERE/setup.sh")"
PHILTER="$("$PY" -c 'import sys; print(sys.prefix)')/philter"
if [ ! -d "$PHILTER/philter_lite" ]; then
  "$PY" -m pip download -q --no-deps philter-lite==0.6.0 -d "$PHILTER" >&2
  (cd "$PHILTER" && "$PY" -m zipfile -e philter_lite-0.6.0-py3-none-any.whl .)
fi
python3 "$HERE/make_gold.py" "$DATA" "$PHILTER" "$OUT" --synthea 300 --codiesp 100 --synthetic 200 >&2
echo "set,lang,tool,notes,chars,seconds,chars_per_s,recall_chars,recall_name_id_chars,precision_chars"
for set in eds-fr-train:fr eds-fr-dev:fr synthetic-fr:fr letters-fr:fr synthea-en:en synthetic-en:en nursing-en:en i2b2-en:en codiesp-en:en; do
  name=${set%%:*}; lang=${set##*:}
  # cohort: tags, no context (Presidio gets none either); the command times itself, word-list loading
  # excluded as Presidio's model loading is
  seconds=$("$COHORT" deid text --lang "$lang" --tags "$OUT/$name.jsonl" "$OUT/$name.cohort.jsonl" 2>&1 | sed -n 's/.* in \([0-9.]*\) s (word lists.*/\1/p')
  "$COHORT" deid text eval --lang "$lang" --no-context "$OUT/$name.jsonl" --write-predictions "$OUT/$name.cohort.pred.jsonl" > "$OUT/$name.cohort.eval.txt"
  chars=$(python3 -c "import json,sys; print(sum(len(json.loads(l)['note_text']) for l in open(sys.argv[1])))" "$OUT/$name.jsonl")
  notes=$(wc -l < "$OUT/$name.jsonl")
  score=$(python3 "$SCORER" "$OUT/$name.jsonl" "$OUT/$name.cohort.pred.jsonl")
  python3 -c "import json,sys; s=json.loads(sys.argv[1]); t=float(sys.argv[3]); print(f\"$name,$lang,cohort,{sys.argv[2]},{sys.argv[4]},{t:.3f},{int(sys.argv[4])/t:.0f},{s['recall_chars']},{s['recall_name_id_chars']},{s['precision_chars']}\")" "$score" "$notes" "$seconds" "$chars"
  timing=$("$PY" "$HERE/presidio_deid.py" --lang "$lang" "$OUT/$name.jsonl" "$OUT/$name.presidio.pred.jsonl")
  "$COHORT" deid text eval --lang "$lang" "$OUT/$name.jsonl" --predictions "$OUT/$name.presidio.pred.jsonl" > "$OUT/$name.presidio.eval.txt"
  score=$(python3 "$SCORER" "$OUT/$name.jsonl" "$OUT/$name.presidio.pred.jsonl")
  python3 -c "import json,sys; s=json.loads(sys.argv[1]); t=json.loads(sys.argv[2]); print(f\"$name,$lang,presidio,{t['notes']},{t['chars']},{t['seconds']:.3f},{t['chars']/t['seconds']:.0f},{s['recall_chars']},{s['recall_name_id_chars']},{s['precision_chars']}\")" "$score" "$timing"
done
echo "per-label tables: $OUT/*.eval.txt" >&2
