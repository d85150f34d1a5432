#!/usr/bin/env bash
# Makes crates/node/tests/data/dictation.flac, the dictation the node's speech
# tests transcribe: a clinician's short dictation about the test patient
# (canary surname, medications and an allergy that the test puts in the
# patient's record), spoken by espeak-ng (Debian) and stored as 16 kHz mono FLAC
# by sox. Synthetic speech: no licence beyond this repository's.
set -euo pipefail
cd "$(dirname "$0")/.."
out=crates/node/tests/data/dictation.flac
text="Dictation for mister Quixleyvander, seen today for hypertension and type two diabetes. \
He takes lisinopril ten milligrams daily and metformin five hundred milligrams twice a day. \
Known allergy to penicillin. Continue lisinopril and review in three months."
tmp=$(mktemp --suffix .wav)
trap 'rm -f "$tmp"' EXIT
espeak-ng -v en-us -s 150 -w "$tmp" "$text"
sox "$tmp" -r 16000 -c 1 -b 16 "$out"
echo "$out: $(soxi -D "$out") s"
