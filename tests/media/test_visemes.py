"""Phoneme timing from eSpeak NG and the visemes it drives: times match the audio, m/b/p close the lips."""

from __future__ import annotations

import numpy as np
import pytest

from openr2v.media.tts import NATIVE_RATE, Voice, synthesize_native, synthesize_timed, trim_speech
from openr2v.media.visemes import POSES, Phoneme, retime, viseme_of, viseme_track
from tests.speech_timing import timing_faults

TEXT = "Maybe you will bring me apples, Bob? Fine. Wow, it is sweet."


@pytest.mark.parametrize("voice", ["en-us+m3", "en-us+f2"])
def test_phoneme_times_match_the_speech_energy(voice: str) -> None:
    speech = synthesize_timed(TEXT, Voice(voice))
    assert speech.rate == NATIVE_RATE and np.array_equal(speech.samples, synthesize_native(TEXT, Voice(voice)))
    phonemes = speech.phonemes
    assert phonemes[0].start < 0.03 and phonemes[-1].end == pytest.approx(speech.seconds)
    assert all(a.end == pytest.approx(b.start) for a, b in zip(phonemes, phonemes[1:], strict=False))
    assert sum(p.viseme == "rest" for p in phonemes) >= 3  # the clause breaks after "apples", "Bob?", "Fine."
    assert timing_faults(speech.samples, speech.rate, phonemes) == []
    # Trimming moves the timeline with the audio.
    trimmed = trim_speech(speech)
    assert timing_faults(trimmed.samples, trimmed.rate, trimmed.phonemes) == []


def test_a_shifted_timeline_is_caught() -> None:
    """The check itself can fail: the same timeline 80 ms late contradicts the audio."""
    speech = synthesize_timed(TEXT)
    late = retime(speech.phonemes, offset=0.08)
    assert timing_faults(speech.samples, speech.rate, late)


def test_same_input_same_timeline() -> None:
    a, b = synthesize_timed(TEXT, Voice("en-us+f3")), synthesize_timed(TEXT, Voice("en-us+f3"))
    assert np.array_equal(a.samples, b.samples) and a.phonemes == b.phonemes


def test_lip_closures_map_to_closed() -> None:
    speech = synthesize_timed("Bob made a map for Pam.")
    closing = [p for p in speech.phonemes if p.symbol in ("m", "b", "p")]
    assert [p.symbol for p in closing] == ["b", "b", "m", "m", "p", "p", "m"]
    assert all(p.viseme == "closed" for p in closing)
    assert {viseme_of(s) for s in ("m", "b", "p", "ˈm")} == {"closed"}
    assert viseme_of("f") == viseme_of("v") == "teeth"
    assert {viseme_of(s) for s in ("uː", "oʊ", "w", "ʊ", "ɔɪ")} == {"round"}
    assert {viseme_of(s) for s in ("iː", "ɪ", "eɪ", "ɛ")} == {"wide"}
    assert {viseme_of(s) for s in ("æ", "ɑː", "aɪ", "aʊ", "ʌ")} == {"open"}
    assert viseme_of("") == "rest" and viseme_of("ə") == "mid" and viseme_of("s") == "consonant"


def test_viseme_track_per_frame() -> None:
    timeline = [Phoneme(0.10, 0.14, "b"), Phoneme(0.14, 0.40, "ɑː"), Phoneme(0.40, 0.45, "p"),
                Phoneme(0.45, 0.60, ""), Phoneme(0.60, 0.75, "uː"), Phoneme(0.75, 0.85, "f"), Phoneme(0.85, 1.0, "iː")]
    track = viseme_track(timeline, 36, 30)
    assert len(track) == 36 and track.open.dtype == np.float32 and track.closed.dtype == bool
    assert track.viseme[0] == "rest" and track.open[0] == 0 and not track.closed[0]
    assert track.closed[3] and track.open[3] == 0  # "b" at 0.10-0.14 s: frame 3 (0.100-0.133 s)
    assert track.closed[12] or track.closed[13]  # "p" at 0.40-0.45 s
    assert track.open[6] == pytest.approx(POSES["open"].open) and track.viseme[6] == "open"
    assert track.round[20] == pytest.approx(1.0) and track.width[20] < 0.3  # "uː"
    assert track.teeth[23] or track.teeth[24]  # "f" at 0.75-0.85 s
    assert track.width[28] == pytest.approx(1.0)  # "iː"
    assert track.viseme[34] == "rest" and np.all((track.open >= 0) & (track.open <= 1))


def test_piper_phoneme_times_match_the_speech_energy() -> None:
    """Piper's own durations (256-sample hops) against its audio; its vocoder spreads an edge by up to a hop."""
    from openr2v.media import piper_voice

    if not piper_voice.available():
        pytest.skip("Piper or its voice is not installed (the `voices` extra)")
    voice = Voice("joe", engine="piper")
    speech = synthesize_timed(TEXT, voice)
    assert speech.rate == NATIVE_RATE and speech.phonemes[-1].end == pytest.approx(speech.seconds)
    assert timing_faults(speech.samples, speech.rate, speech.phonemes, margin=0.012, loud_db=-30) == []
    assert timing_faults(speech.samples, speech.rate, retime(speech.phonemes, offset=0.06), margin=0.012,
                         loud_db=-30)
    again = synthesize_timed(TEXT, voice)
    assert np.array_equal(speech.samples, again.samples) and speech.phonemes == again.phonemes
    bob = synthesize_timed("Bob made a map for Pam.", voice)
    assert [p.symbol for p in bob.phonemes if p.viseme == "closed"] == ["b", "b", "m", "m", "p", "p", "m"]
    faster = synthesize_timed(TEXT, Voice("joe", engine="piper", rate=250))
    assert faster.seconds < 0.8 * speech.seconds


def test_engine_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    from openr2v.media import piper_voice
    from openr2v.media.tts import TTSError, default_engine

    monkeypatch.setenv("OPENR2V_TTS", "espeak")
    assert default_engine() == "espeak"
    monkeypatch.delenv("OPENR2V_TTS")
    assert default_engine() == ("piper" if piper_voice.available() else "espeak")
    with pytest.raises(TTSError, match="no speech engine"):
        synthesize_timed("hello", Voice(engine="festival"))
