#!/usr/bin/env bash
# The faster-whisper peer (CTranslate2) and the audio tools of the synthetic clinical set.
# Usage: benches/peers/speech/setup.sh  -> venv in ~/.cache/cohort-speech-peer
set -euo pipefail
VENV="${COHORT_SPEECH_PEER:-$HOME/.cache/cohort-speech-peer}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet "faster-whisper==1.2.1"
if ! command -v espeak-ng >/dev/null || ! command -v sox >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y espeak-ng sox >/dev/null; else echo "install espeak-ng and sox" >&2; exit 1; fi
fi
echo "$VENV"
