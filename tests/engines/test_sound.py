"""The compositor's sound: dialogue in its windows and in its speakers' voices, soundtrack rule, music cue."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import pyworld

from openr2v.domain.prompt import ShotPlan
from openr2v.domain.request import GenerationRequest
from openr2v.engines.base import RenderJob, ResolvedReference
from openr2v.engines.common import sound as sound_module
from openr2v.engines.common.sound import (
    Soundtrack,
    build_soundtrack,
    cast_voices,
    forget_takes,
    line_notes,
    plan_for,
    room_bed,
    speak_ahead,
)
from openr2v.engines.compositor import CompositorEngine
from openr2v.media import music as music_module
from openr2v.media import piper_voice
from openr2v.media.audio import decode_audio, rms_dbfs, room_tone
from openr2v.media.probe import probe
from openr2v.media.visemes import retime
from openr2v.media.voice import VoiceProfile
from tests import mediagen
from tests.speech_timing import timing_faults

RATE = 48_000
DIALOGUE = ("character1 says to character2: 'I'll rely on you tomorrow morning!' "
            "character2 replies: 'You can count on me!'")
# The same two lines with a silent shot between them, so "outside the windows" is more than a sliver.
TIMED_DIALOGUE = ("Shot 1 [0-2s]: character1 says to character2: 'I'll rely on you tomorrow morning!' "
                  "Shot 2 [2-3s]: character2 smiles. Shot 3 [3-5s]: character2 replies: 'You can count on me!'")


def resolved(label: str, path: Path, voice: Path | None = None) -> ResolvedReference:
    info = probe(path)
    return ResolvedReference(label=label, kind=info.kind, path=path, info=info, voice_path=voice,
                             voice_info=probe(voice) if voice else None)


def make_job(workdir: Path, refs: list[ResolvedReference], prompt: str, model: str = "wan2.6-r2v",
             **kw: object) -> RenderJob:
    workdir.mkdir(parents=True, exist_ok=True)
    values: dict[str, object] = dict(task_id="t", request=GenerationRequest(model=model, prompt=prompt),
                                     references=refs, width=640, height=360, duration=5, fps=30, audio=True,
                                     watermark=False, seed=7, workdir=workdir)
    values.update(kw)
    return RenderJob(**values)  # type: ignore[arg-type]


def sound_of(job: RenderJob) -> tuple[Soundtrack, ShotPlan]:
    plan = plan_for(job)
    return build_soundtrack(job, plan, {}), plan


def band_power(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Power in 300-3400 Hz (speech; the room tone's 1/f^1.5 rumble has little there) per 21 ms frame.

    A short-time spectrum, not one brick-wall filter over the clip: that would ring loud speech into
    the quiet parts around it. Returns each frame's centre time and power.
    """
    size, hop = 1024, 256
    starts = np.arange(0, x.size - size, hop)
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), size)[starts] * np.hanning(size)
    spec = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    f = np.fft.rfftfreq(size, 1 / RATE)
    return (starts + size / 2) / RATE, spec[:, (f >= 300) & (f <= 3400)].sum(axis=1)


def band_db(x: np.ndarray, a: float = 0.0, b: float = 1e9, *, skip: list[tuple[float, float]] = ()) -> float:
    """Mean speech-band power (dB, arbitrary reference) of the frames in [a, b] outside ``skip``."""
    t, p = band_power(x)
    keep = (t >= a) & (t <= b)
    for lo, hi in skip:
        keep &= (t < lo) | (t > hi)
    return float(10 * np.log10(p[keep].mean()))


def level(x: np.ndarray, a: float, b: float) -> float:
    return rms_dbfs(x[int(a * RATE):int(b * RATE)])


def median_f0(x: np.ndarray) -> float:
    x16 = x[::3].astype(np.float64)  # band-limited speech: plain decimation to 16 kHz is fine here
    f0, _ = pyworld.harvest(x16, 16_000, f0_floor=60, f0_ceil=500)
    return float(np.median(f0[f0 > 0]))


# -- end to end: the acceptance checks on a rendered MP4 ----------------------------------------


@pytest.fixture(scope="module")
def dialogue_render(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, ShotPlan]:
    """A 2-line dialogue between two video references whose voices are 120 Hz and 220 Hz."""
    refs = [resolved("character1", media_dir / "person1.mp4"), resolved("character2", media_dir / "person2.mp4")]
    job = make_job(tmp_path_factory.mktemp("dialogue"), refs, TIMED_DIALOGUE, width=1280, height=720)
    result = CompositorEngine(preset="ultrafast").render(job, lambda p: None, lambda: False)
    assert result.has_audio
    assert result.notes["audio_sources"] == ["room tone", "character1 speech (voice from its video's audio)",
                                             "character2 speech (voice from its video's audio)"]
    return decode_audio(result.path, channels=1)[0], plan_for(job)


def test_speech_sits_inside_the_dialogue_windows(dialogue_render: tuple[np.ndarray, ShotPlan]) -> None:
    audio, plan = dialogue_render
    windows = [(ln.start, ln.end) for ln in plan.lines]
    assert len(windows) == 2 and windows[0][1] <= 2.0 and windows[1][0] >= 3.0
    room = band_db(room_tone(5, seed=7)[0])  # what the bed alone puts in the speech band
    margin = 0.03  # the AAC frame (21 ms) and the analysis frame spread an edge a little
    quiet = band_db(audio, 0.0, 4.95, skip=[(a - margin, b + margin) for a, b in windows])
    print(f"speech band: room tone {room:.1f} dB, outside the windows {quiet:.1f} dB, inside "
          + ", ".join(f"{band_db(audio, a, b):.1f}" for a, b in windows) + " dB")
    assert quiet < room + 3  # outside: the room tone, and no speech
    for a, b in windows:
        assert band_db(audio, a, b) > room + 25  # inside: speech well above it
    assert rms_dbfs(audio[int(2.1 * RATE):int(2.9 * RATE)]) > -60  # the room tone is there between the lines


def test_speakers_keep_the_pitch_order_of_their_references(dialogue_render: tuple[np.ndarray, ShotPlan]) -> None:
    audio, plan = dialogue_render
    first, second = plan.lines
    f1 = median_f0(audio[int(first.start * RATE):int(first.end * RATE)])
    f2 = median_f0(audio[int(second.start * RATE):int(second.end * RATE)])
    print(f"rendered median F0: character1 {f1:.1f} Hz (reference 120), character2 {f2:.1f} Hz (reference 220)")
    assert f1 < f2
    assert f1 == pytest.approx(120, rel=0.12) and f2 == pytest.approx(220, rel=0.12)


# -- build_soundtrack directly ------------------------------------------------------------------


def test_reference_voice_overrides_the_videos_own_audio(media_dir: Path, tmp_path: Path) -> None:
    refs = [resolved("Video 1", media_dir / "person1.mp4", voice=media_dir / "voice.wav"),  # 120 Hz video, 180 Hz voice
            resolved("Image 1", media_dir / "face.webp", voice=media_dir / "voice.mp3")]  # 140 Hz voice
    job = make_job(tmp_path, refs, "Video 1 says, \"Why did you still come?\" Image 1 replies, \"Let's talk.\"",
                   model="wan2.7-r2v")
    sound, _ = sound_of(job)
    assert sound.sources == ["room tone", "Video 1 speech (voice from reference_voice)",
                             "Image 1 speech (voice from reference_voice)"]
    video1, image1 = sound.lines
    f_video = median_f0(sound.samples[0, int(video1.start * RATE):int(video1.end * RATE)])
    f_image = median_f0(sound.samples[0, int(image1.start * RATE):int(image1.end * RATE)])
    assert f_video == pytest.approx(180, rel=0.1) and f_image == pytest.approx(140, rel=0.1)


def test_long_lines_are_compressed_into_their_windows(media_dir: Path, tmp_path: Path) -> None:
    long = "This is a rather long sentence that cannot possibly be said in the short time it has been given here."
    prompt = (f"Shot 1 [0-1s]: character1 says: '{long}' Shot 2 [1-2s]: character1 waves. "
              f"Shot 3 [2-3s]: character2 replies: '{long}'")
    refs = [resolved("character1", media_dir / "person1.mp4"), resolved("character2", media_dir / "object.png")]
    sound, plan = sound_of(make_job(tmp_path, refs, prompt, duration=3))
    assert sound.samples.shape == (2, 3 * RATE) and sound.samples.dtype == np.float32
    assert [pl.label for pl in sound.lines] == ["character1", "character2"]
    for placed, line in zip(sound.lines, plan.lines, strict=True):
        assert line.start - 1e-3 <= placed.start < placed.end <= line.end + 1e-3
        assert placed.end - placed.start > 0.5 * (line.end - line.start)  # compressed, not cut to nothing
    x = sound.samples[0]
    assert band_db(x, plan.lines[0].end + 0.03, 1.95) < band_db(x, 0.2, 0.8) - 25  # nothing spilled into shot 2
    assert plan.lines[-1].end <= 3.0 and sound.lines[-1].end <= 3.0  # nor past the video's end


def test_soundtrack_is_trimmed_or_padded_to_the_duration(media_dir: Path, tmp_path: Path) -> None:
    refs = [resolved("character1", media_dir / "object.png")]
    short = make_job(tmp_path / "short", refs, "character1 waves.", soundtrack=media_dir / "voice.wav")  # 3 s
    sound, _ = sound_of(short)
    assert sound.sources == ["room tone", "soundtrack"]
    x = sound.samples[0]
    assert x.size == 5 * RATE
    assert level(x, 0.5, 2.9) > -30  # the clip plays for its 3 s...
    assert level(x, 3.1, 5.0) < -40  # ...then silence (the room-tone bed only)
    long_clip = mediagen.make_audio(tmp_path / "long.wav", 8.0, "wav", pitch_hz=200)
    sound, _ = sound_of(make_job(tmp_path / "long", refs, "character1 waves.", soundtrack=long_clip))
    assert sound.samples.shape == (2, 5 * RATE)  # the first 5 s of 8
    assert level(sound.samples[0], 4.5, 5.0) > -30


def test_audio_is_never_silent_and_reference_audio_is_never_replayed(media_dir: Path, tmp_path: Path) -> None:
    """No lines: only the room tone, even though character1's video has a (120 Hz) track of its own."""
    refs = [resolved("character1", media_dir / "person1.mp4"), resolved("character2", media_dir / "face.webp")]
    sound, _ = sound_of(make_job(tmp_path, refs, "character1 waves at character2."))
    assert sound.sources == ["room tone"] and sound.lines == []
    assert -55 < rms_dbfs(sound.samples) < -35
    assert band_db(sound.samples[0]) < band_db(room_tone(5, seed=7)[0]) + 1


@pytest.mark.parametrize(("prompt", "cue"), [
    ("character2 sits on a chair by the window, holding character3, and plays a soothing American country folk "
     "song next to character4.", "music cue (plucked strings)"),
    ("character1 drinks bubble tea while dancing spontaneously to the music.", "music cue (soft pad)"),
    ("character1 drinks bubble tea by the window.", None),
])
def test_music_cue_when_the_prompt_names_music(media_dir: Path, tmp_path: Path, prompt: str, cue: str | None) -> None:
    refs = [resolved(f"character{i}", media_dir / "object.png") for i in range(1, 5)]
    sound, _ = sound_of(make_job(tmp_path, refs, prompt))
    assert sound.sources == ["room tone"] + ([cue] if cue else [])
    loudness = level(sound.samples[0], 1.0, 4.0)
    assert (loudness > -36) if cue else (loudness < -40)


def test_music_cue_is_made_ahead_with_the_room_tone(media_dir: Path, tmp_path: Path) -> None:
    """An engine makes the room tone while the lines are spoken; the music cue's bed is made then too, and the
    soundtrack mixes that very bed."""
    refs = [resolved("character1", media_dir / "object.png")]
    job = make_job(tmp_path, refs, "character1 drinks bubble tea while dancing spontaneously to the music.", seed=31)
    fresh = build_soundtrack(job, plan_for(job), {})
    music_module._music_bed.cache_clear()
    bed = room_bed(job)
    assert music_module._music_bed.cache_info().misses == 1  # the cue, made
    assert np.array_equal(build_soundtrack(job, plan_for(job), {}, None, bed).samples, fresh.samples)
    assert music_module._music_bed.cache_info().misses == 1  # and mixed, not made again
    room_bed(make_job(tmp_path / "quiet", refs, "character1 drinks bubble tea by the window.", seed=31))
    assert music_module._music_bed.cache_info().currsize == 1  # no music words: no cue


def test_music_cue_follows_its_shots_and_yields_to_a_soundtrack(media_dir: Path, tmp_path: Path) -> None:
    refs = [resolved("character1", media_dir / "object.png")]
    prompt = "Shot 1 [0-2s]: character1 sits down. Shot 2 [2-4s]: character1 plays the guitar. Shot 3 [4-5s]: a bow."
    sound, _ = sound_of(make_job(tmp_path / "a", refs, prompt))
    x = sound.samples[0]
    assert level(x, 2.3, 3.7) > level(x, 0.0, 1.5) + 15
    assert level(x, 2.3, 3.7) > level(x, 4.5, 5.0) + 15
    with_track, _ = sound_of(make_job(tmp_path / "b", refs, prompt, soundtrack=media_dir / "voice.wav"))
    assert with_track.sources == ["room tone", "soundtrack"]  # the client's soundtrack is the music


def test_envelopes_follow_each_speaker(media_dir: Path, tmp_path: Path) -> None:
    refs = [resolved("character1", media_dir / "person1.mp4"), resolved("character2", media_dir / "person2.mp4"),
            resolved("character3", media_dir / "object.png")]
    sound, _ = sound_of(make_job(tmp_path, refs, DIALOGUE))
    assert set(sound.envelopes) == {"character1", "character2", "character3"}
    frames = np.arange(5 * 30) / 30
    for label, env in sound.envelopes.items():
        assert env.shape == (150,) and env.dtype == np.float32 and 0 <= env.min() and env.max() <= 1
        mine = [pl for pl in sound.lines if pl.label == label]
        inside = np.zeros(150, bool)
        for pl in mine:
            inside |= (frames >= pl.start - 0.04) & (frames <= pl.end + 0.25)  # a short release after a line
        assert not env[~inside].any(), label
        if mine:
            assert env[inside].max() > 0.6 and (env[inside] > 0.1).mean() > 0.3, label
    assert not sound.envelopes["character3"].any()


def test_narrator_lines_and_determinism(media_dir: Path, tmp_path: Path) -> None:
    refs = [resolved("character1", media_dir / "object.png")]
    job = make_job(tmp_path, refs, "The camera pans over a field. A voice says: 'Welcome to the valley.'")
    a, _ = sound_of(job)
    b, _ = sound_of(job)
    assert [pl.label for pl in a.lines] == ["narrator"] and "narrator" not in a.envelopes
    assert np.array_equal(a.samples, b.samples)
    other, _ = sound_of(make_job(tmp_path, refs, job.request.prompt, seed=8))
    assert not np.array_equal(a.samples, other.samples)


def test_lines_spoken_ahead_give_the_same_soundtrack_even_when_the_casting_changes(
        media_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    refs = [resolved("character1", media_dir / "object.png"), resolved("character2", media_dir / "object.png")]
    job = make_job(tmp_path, refs, "character1 says to character2: 'Good morning.' character2 answers: 'Hello.'")
    plan = plan_for(job)
    fresh = build_soundtrack(job, plan, {})
    ahead = speak_ahead(job)
    assert len(ahead.takes) == 2 and len(ahead.placed) == 2
    # Both lines were moved to their voices and fitted to their windows ahead: the soundtrack only mixes them.
    calls: list[str] = []
    speak = sound_module._speak
    monkeypatch.setattr(sound_module, "_speak", lambda text, *a, **k: calls.append(text) or speak(text, *a, **k))
    assert np.array_equal(build_soundtrack(job, plan, {}, ahead).samples, fresh.samples)
    assert calls == []
    # The room tone made ahead (while the speech is made) is the one the soundtrack would make.
    assert np.array_equal(build_soundtrack(job, plan, {}, ahead, room_bed(job)).samples, fresh.samples)
    # The engine's casting gave the second line to the first speaker: that line is spoken again in its voice.
    recast = ShotPlan.from_dict(plan.as_dict())
    recast.lines[1].speaker = "character1"
    again = build_soundtrack(job, recast, {}, ahead)
    assert np.array_equal(again.samples, build_soundtrack(job, recast, {}).samples)
    assert [pl.label for pl in again.lines] == ["character1", "character1"]
    # A line whose window moved (the line before it ran over its own) is placed again, in the window it got.
    late = ShotPlan.from_dict(plan.as_dict())
    late.lines[0].end = late.lines[1].start + 0.4
    late.lines[0].text = "Good morning, my dear friend, and what a fine long morning it is."
    ahead_late = speak_ahead(dataclasses.replace(job, plan=late.as_dict()))
    reference = build_soundtrack(job, late, {}).samples
    calls.clear()
    placed = build_soundtrack(job, late, {}, ahead_late)
    assert np.array_equal(placed.samples, reference)
    assert placed.lines[1].start > late.lines[1].start and calls == ["Hello."]


def test_a_line_said_twice_ahead_is_spoken_once(media_dir: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    refs = [resolved("character1", media_dir / "object.png"), resolved("character2", media_dir / "object.png")]
    job = make_job(tmp_path, refs, "character1 says to character2: 'Again.' character2 answers: 'Hello.' "
                                   "character1 says: 'Again.'")
    plan = plan_for(job)
    assert [ln.text for ln in plan.lines].count("Again.") == 2
    spoken: list[str] = []
    synthesize = sound_module.synthesize_timed
    monkeypatch.setattr(sound_module, "synthesize_timed", lambda text, voice: spoken.append(text) or synthesize(
        text, voice))
    forget_takes()
    ahead = speak_ahead(job)
    assert sorted(spoken) == ["Again.", "Hello."]
    assert {text for _, text, _ in ahead.placed} == {"Again.", "Hello."}
    monkeypatch.setattr(sound_module, "synthesize_timed", synthesize)
    assert np.array_equal(build_soundtrack(job, plan, {}, ahead).samples, build_soundtrack(job, plan, {}).samples)


def test_lines_spoken_before_are_not_spoken_again(media_dir: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A job heard again (another seed, another framing) reuses its lines' takes and their fitting to the voice and
    window, and sounds the same."""
    refs = [resolved("character1", media_dir / "object.png"), resolved("character2", media_dir / "object.png")]
    prompt = "character1 says to character2: 'We kept this line.' character2 answers: 'So did I.'"
    job = make_job(tmp_path, refs, prompt)
    forget_takes()
    moved: list[int] = []
    move = sound_module.transform
    monkeypatch.setattr(sound_module, "transform", lambda x, *a, **k: moved.append(x.size) or move(x, *a, **k))
    first = build_soundtrack(job, plan_for(job), {}, speak_ahead(job))
    moves = len(moved)
    assert moves >= 1  # a line moved to its cast voice (Piper's targets)
    spoken: list[str] = []
    synthesize = sound_module.synthesize_timed
    monkeypatch.setattr(sound_module, "synthesize_timed", lambda text, voice: spoken.append(text) or synthesize(
        text, voice))
    again = build_soundtrack(job, plan_for(job), {}, speak_ahead(job))
    assert spoken == [] and len(moved) == moves
    assert np.array_equal(again.samples, first.samples)
    assert [pl.phonemes for pl in again.lines] == [pl.phonemes for pl in first.lines]
    assert all(not samples.flags.writeable for samples, _ in speak_ahead(job).placed.values())  # shared: read-only
    other = make_job(tmp_path / "other", refs, prompt + " character1 says: 'A new one.'")
    speak_ahead(other)
    assert spoken == ["A new one."]
    moves_before = len(moved)
    forget_takes()
    fresh = build_soundtrack(job, plan_for(job), {}, speak_ahead(job))
    assert sorted(spoken) == ["A new one.", "So did I.", "We kept this line."]
    assert len(moved) == moves_before + moves  # and moved again
    assert np.array_equal(fresh.samples, first.samples)


def test_a_reference_voice_heard_again_is_not_analysed_again(media_dir: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The same voice clip stored anew for another task (another path, the same bytes) keeps its profile; another
    clip is analysed."""
    forget_takes()
    analysed: list[str] = []
    analyse = sound_module.profile_from_file
    monkeypatch.setattr(sound_module, "profile_from_file", lambda path: analysed.append(path.name) or analyse(path))
    prompt = "character1 says: 'Is this still my voice?'"
    sounds = []
    for task, clip in (("a", "voice.wav"), ("b", "voice.wav"), ("c", "person2.mp4")):
        stored = tmp_path / task / f"stored-{clip}"
        stored.parent.mkdir(parents=True)
        stored.write_bytes((media_dir / clip).read_bytes())
        job = make_job(tmp_path / task, [resolved("character1", media_dir / "object.png", voice=stored)], prompt)
        sounds.append(build_soundtrack(job, plan_for(job), {}))
    assert analysed == ["stored-voice.wav", "stored-person2.mp4"]
    assert np.array_equal(sounds[0].samples, sounds[1].samples)
    assert sounds[0].sources[1] == "character1 speech (voice from reference_voice)"
    assert not np.array_equal(sounds[0].samples, sounds[2].samples)


def test_cast_voices_are_distinct_deterministic_and_fit_the_reference() -> None:
    speakers = [f"character{i}" for i in range(1, 6)]
    a = cast_voices(speakers, {}, seed=3)
    assert a == cast_voices(speakers, {}, seed=3)
    assert len({(v.name, v.pitch) for v in a.values()}) == 5
    assert len({v.name for v in a.values()}) == 5
    high = VoiceProfile(median_f0=230.0, envelope=np.zeros(96))
    low = VoiceProfile(median_f0=105.0, envelope=np.zeros(96))
    fitted = cast_voices(["x", "y"], {"x": high, "y": low}, seed=3)
    assert "+f" in fitted["x"].name and "+m" in fitted["y"].name


@pytest.mark.parametrize("engine", ["piper", "espeak"])
def test_placed_lines_carry_phoneme_timelines_that_match_the_audio(media_dir: Path, tmp_path: Path, engine: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """After voice matching (character1) and time compression (both lines) the timeline still fits the sound."""
    monkeypatch.setenv("OPENR2V_TTS", engine)
    line = "Maybe you will bring me apples, Bob? Fine, we will talk about it on the boat, my friend."
    prompt = (f"Shot 1 [0-2s]: character1 says: '{line}' Shot 2 [2-3s]: character1 waves. "
              f"Shot 3 [3-5s]: character2 replies: 'Pam made a map. Bob, be brave!'")
    refs = [resolved("character1", media_dir / "person1.mp4"), resolved("character2", media_dir / "object.png")]
    sound, _ = sound_of(make_job(tmp_path, refs, prompt))
    assert [pl.label for pl in sound.lines] == ["character1", "character2"]
    assert ("piper joe" in sound.sources[2]) == (engine == "piper" and piper_voice.available())
    x = sound.samples[0] - room_tone(5, seed=7)[0]  # the speech alone (the limiter has nothing to do here)
    for placed in sound.lines:
        ph = placed.phonemes
        assert placed.start - 1e-3 <= ph[0].start < placed.start + 0.05 and ph[-1].end <= placed.end + 1e-3
        window = x[int(placed.start * RATE):int(placed.end * RATE)]
        assert timing_faults(window, RATE, ph, t0=placed.start, margin=0.015) == [], placed.label
        assert timing_faults(window, RATE, retime(ph, offset=0.05), t0=placed.start, margin=0.015)  # the check bites
    # Per-frame mouths: closures where m/b/p sound, rest where nobody speaks.
    assert set(sound.visemes) == {"character1", "character2"}
    for label, track in sound.visemes.items():
        assert len(track) == 150 and track.fps == 30
        mine = [pl for pl in sound.lines if pl.label == label]
        for ph in (p for pl in mine for p in pl.phonemes if p.symbol in ("m", "b", "p")):
            assert track.closed[int(ph.start * 30):int(np.ceil(ph.end * 30))].any(), (label, ph)
        frames = np.arange(150) / 30
        talking = np.zeros(150, bool)
        for pl in mine:
            talking |= (frames >= pl.start - 1 / 30) & (frames <= pl.end)
        assert all(v == "rest" for v, t in zip(track.viseme, talking, strict=True) if not t)
        assert track.open[talking].max() == pytest.approx(1.0, abs=0.2)
        assert (track.round[talking].max() > 0.5) == (label == "character1")  # "you", "boat" against no o/u/w


def test_both_engines_record_phoneme_timelines_in_their_notes(media_dir: Path, tmp_path: Path) -> None:
    refs = [resolved("character1", media_dir / "person1.mp4")]
    job = make_job(tmp_path, refs, "character1 says: 'Bob made a map.'", duration=2, width=320, height=180,
                   audio=False)
    result = CompositorEngine(preset="ultrafast").render(job, lambda p: None, lambda: False)
    (line,) = result.notes["lines"]
    assert line["speaker"] == "character1" and line["start"] < line["end"]
    symbols = [p[2] for p in line["phonemes"]]
    assert [s for s in symbols if s in ("m", "b", "p")] == ["b", "b", "m", "m", "p"]
    for start, end, symbol, viseme in line["phonemes"]:
        assert line["start"] - 1e-3 <= start < end <= line["end"] + 1e-3
        assert viseme == ("closed" if symbol in ("m", "b", "p") else viseme)
    assert line["phonemes"] == line_notes(sound_of(job)[0].lines)[0]["phonemes"]  # deterministic
