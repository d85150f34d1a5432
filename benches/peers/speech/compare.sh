#!/usr/bin/env bash
# One run, same machine, same files: cohort's speech eval beside faster-whisper (same CTranslate2
# weights, greedy with temperature fallback, float32, 2 threads on each side; the peer's OpenMP
# threads wait passively, its faster setting on a shared machine), interleaved: each
# set is run REPEATS times, alternating which side goes first, so that load from other processes
# falls on both sides alike. Prints WER, term recall and the median real-time factors and ratio.
# usage: [ONLY="real-en clinical-en-tiny"] compare.sh "EVAL_COMMAND" FW_MODELS_DIR CLINICAL_DIR OUT_DIR [REPEATS]
#   ONLY: the sets to run (default all: real-en real-fr clinical-en-tiny clinical-fr)
#   EVAL_COMMAND: "target/release/examples/speech_bench eval" or "cohort speech eval"
#   FW_MODELS_DIR/{tiny.en,base}: the wheels' model folders (base: model.bin = part1 + part2)
set -euo pipefail
read -r -a EVAL <<< "$1"; FW=$2; CLIN=$3; OUT=$4; REPEATS=${5:-3}
THREADS=${THREADS:-2}
PY="${COHORT_SPEECH_PEER:-$HOME/.cache/cohort-speech-peer}/bin/python"
HERE=$(cd "$(dirname "$0")" && pwd)
REAL="${COHORT_SHARED_DATA:-$HERE/../../../../shared/data}/asr-samples/manifest.tsv"
mkdir -p "$OUT"
cohort() { # name rep model lang manifest vocab
  RAYON_NUM_THREADS=$THREADS "${EVAL[@]}" "$5" --model "$3" --lang "$4" --vocab "$6" --out "$OUT/$1.cohort.$2.jsonl" > "$OUT/$1.cohort.$2.json" 2> "$OUT/$1.cohort.$2.log"
}
peer() { # name rep model lang manifest [--prompt]
  OMP_WAIT_POLICY=PASSIVE "$PY" "$HERE/run_faster_whisper.py" "$FW/$3" "$5" --lang "$4" --threads "$THREADS" ${6:-} --out "$OUT/$1.fw.$2.jsonl" > "$OUT/$1.fw.$2.json" 2> "$OUT/$1.fw.$2.log"
}
SETS=(
  "real-en tiny.en en $REAL"
  "real-fr base fr $REAL"
  "clinical-en-tiny tiny.en en $CLIN/manifest.tsv"
  "clinical-fr base fr $CLIN/manifest.tsv"
)
for rep in $(seq 1 "$REPEATS"); do
  for set in "${SETS[@]}"; do
    read -r name model lang manifest <<< "$set"
    [[ " ${ONLY:-$name} " == *" $name "* ]] || continue
    if (( rep % 2 )); then
      cohort "$name" "$rep" "$model" "$lang" "$manifest" none; peer "$name" "$rep" "$model" "$lang" "$manifest"
    else
      peer "$name" "$rep" "$model" "$lang" "$manifest"; cohort "$name" "$rep" "$model" "$lang" "$manifest" none
    fi
  done
done
# The record's vocabulary: as a prompt on both sides (faster-whisper's initial_prompt, the same
# words), then cohort's full use of it (prompt, continuation bonus, spelling correction and the
# check of sound-alike words on the audio), and silence/noise.
for v in prompt full; do
  flag=; [[ $v == prompt ]] && flag=--prompt
  if [[ " ${ONLY:-clinical-en-tiny} " == *" clinical-en-tiny "* ]]; then
    cohort "clinical-en-tiny-$v" 1 tiny.en en "$CLIN/manifest.tsv" "$v"
    [[ -n $flag ]] && peer "clinical-en-tiny-$v" 1 tiny.en en "$CLIN/manifest.tsv" $flag
  fi
  if [[ " ${ONLY:-clinical-fr} " == *" clinical-fr "* ]]; then
    cohort "clinical-fr-$v" 1 base fr "$CLIN/manifest.tsv" "$v"
    [[ -n $flag ]] && peer "clinical-fr-$v" 1 base fr "$CLIN/manifest.tsv" $flag
  fi
done
cohort empty 1 tiny.en en "$CLIN/empty.tsv" none
peer empty 1 tiny.en en "$CLIN/empty.tsv"
"$PY" "$HERE/summarize.py" "$OUT"
