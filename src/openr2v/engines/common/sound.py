"""The compositor's soundtrack: room tone, spoken dialogue, a music cue, the client's soundtrack.

Stages of ``build_soundtrack``:
1. a quiet room-tone bed, so an audio video is never digitally silent;
2. dialogue: each speaker gets a voice of its own (cast by label and seed): Piper's neural voice
   when installed (``media.tts.default_engine``), moved to the speaker's reference voice or to a
   cast pitch and formant shift (the first male speaker without a reference keeps it as it is),
   else an eSpeak NG voice, moved toward the reference voice likewise (``media.voice``); each
   line is spoken inside its planned window (``Line.start`` to ``Line.end``), faster when it
   would overrun, and never past the window or the video's end;
3. a synthesized music cue when the prompt names music or an instrument (not when the client sent
   a soundtrack: that is the music), ducked under speech;
4. the client's ``audio_url`` soundtrack, trimmed to the duration or padded with silence (the aggregator's docs);
5. the mix under a peak limiter.

Lip sync: every ``PlacedLine`` carries its phoneme timeline in absolute seconds of the video
(``phonemes``: ``media.visemes.Phoneme`` with start, end, IPA symbol and ``viseme`` class), measured
on the audio actually placed: after trimming eSpeak's padding, any faster re-synthesis and any
WORLD time compression, and cut where the window cuts the speech. ``Soundtrack.visemes`` maps each
speaker (every reference label, and the narrator when it speaks) to a ``VisemeTrack`` with one
entry per video frame: ``open``, ``width`` (0.5 neutral) and ``round`` in 0..1, the booleans
``closed`` (m, b, p: lips pressed) and ``teeth`` (f, v), and ``viseme`` (the class heard longest in
the frame). A face rig reads frame ``k`` of its speaker's track: ``track.open[k]`` etc.; a
speaker with nothing to say has a track at rest. ``Soundtrack.envelopes`` (loudness per frame)
stays for rigs that only open and shut. ``line_notes`` gives the timelines in the form render
notes keep (``notes["lines"]``), for both engines.

Reference audio policy: a reference's audio (its ``reference_voice``, else a video's own track) is
a *voice model* only; it is never played. The prompt decides what a character says, and the
character says it in that voice; replaying the raw track would put words in its mouth that the
prompt never gave it. ``reference_voice`` overrides the video's own audio (the wan2.7-r2v guide).
"""

from __future__ import annotations

import dataclasses
import functools
import random
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from openr2v.domain.prompt import Line, ShotPlan, plan_prompt
from openr2v.engines.base import RenderJob, ResolvedReference
from openr2v.engines.common.sources import file_digest
from openr2v.media.audio import decode_audio, fit_length, mix, room_tone
from openr2v.media.encode import AUDIO_RATE
from openr2v.media.kept import Kept
from openr2v.media.music import music_bed, music_kind
from openr2v.media.tts import Speech, Voice, default_engine, resample, synthesize_timed, trim_speech
from openr2v.media.visemes import Phoneme, VisemeTrack, retime, silent_track, viseme_track
from openr2v.media.voice import VoiceProfile, profile_from_file, transform

__all__ = ["PlacedLine", "Soundtrack", "build_soundtrack", "cast_targets", "cast_voices", "forget_takes", "line_notes",
           "plan_for", "room_bed"]

_T = TypeVar("_T")
_R = TypeVar("_R")

SPEECH_DBFS = -20.0  # RMS of voiced speech (dialogue level, with headroom for its peaks)
MUSIC_DBFS = -28.0
SOUNDTRACK_GAIN = 0.8
MUSIC_DUCK_DB = -10.0  # under speech
SOUNDTRACK_DUCK_DB = -6.0
MAX_FAST_WPM = 300  # eSpeak speeds up cleanly to about here; WORLD compresses the rest
MIN_WINDOW = 0.12  # seconds: a window shorter than this cannot hold a word
FEMALE_F0 = 165.0  # reference voices above this median F0 get a female base voice (less shifting)
NARRATOR = "narrator"  # the speaker of a line the prompt attributes to no reference
TAKES_KEPT = 32  # lines kept spoken per process: a 3 s take is 0.26 MB (22 kHz float32), a 15 s one 1.3 MB

_MALE = ("en-us+m3", "en-us+m1", "en-us+m7", "en-us+m2", "en+m3", "en-us+m4", "en-us+m6")
_FEMALE = ("en-us+f3", "en-us+f1", "en-us+f2", "en-us+f4", "en-us+f5")
_PITCHES = (38, 50, 62, 44, 56, 32, 68)
# Piper's one voice (joe, median F0 about 107 Hz) recast: (median F0 Hz, formant factor); None keeps it.
_PIPER_MALE: tuple[tuple[float, float] | None, ...] = (None, (128.0, 0.97), (94.0, 1.03), (140.0, 1.0))
_PIPER_FEMALE: tuple[tuple[float, float] | None, ...] = ((205.0, 1.15), (225.0, 1.18), (190.0, 1.12), (240.0, 1.2))


@dataclass
class PlacedLine:
    label: str  # the speaker (a reference label, or "narrator")
    start: float  # seconds, where the speech actually sits after any compression
    end: float
    text: str
    phonemes: list[Phoneme] = field(default_factory=list)  # absolute seconds, as placed


@dataclass
class Soundtrack:
    samples: np.ndarray  # (2, duration * 48000) float32
    sources: list[str]  # what was mixed, for the task's notes
    envelopes: dict[str, np.ndarray] = field(default_factory=dict)  # label -> 0..1 speech loudness per frame
    lines: list[PlacedLine] = field(default_factory=list)
    visemes: dict[str, VisemeTrack] = field(default_factory=dict)  # label -> mouth per frame


def line_notes(lines: list[PlacedLine]) -> list[dict]:
    """The placed lines for a render's notes: speaker, start, end and ``[start, end, ipa, viseme]`` phonemes."""
    return [{"speaker": p.label, "start": p.start, "end": p.end, "phonemes": [ph.as_list() for ph in p.phonemes]}
            for p in lines]


def plan_for(job: RenderJob) -> ShotPlan:
    """The job's shot plan (recorded at submit, maybe rewritten by prompt extension), else planned now."""
    if job.plan:
        return ShotPlan.from_dict(job.plan)
    req = job.request
    return plan_prompt(req.prompt, [r.label for r in job.references], job.duration, req.shot_type, job.seed)


def cast_voices(speakers: list[str], profiles: dict[str, VoiceProfile | None], seed: int,
                engine: str = "espeak") -> dict[str, Voice]:
    """One distinct voice per speaker, deterministic for (speakers, seed).

    eSpeak: a speaker with a reference voice gets a base voice of the matching register (so it is
    shifted less); the others alternate male and female so that neighbours in a dialogue sound
    different. Variants are dealt from seeded, shuffled pools without repeats; pitches likewise.
    Piper: everyone speaks with its one voice at a seeded pace; ``cast_targets`` makes them differ.
    """
    rng = random.Random(f"voices:{seed}")
    if engine == "piper":
        return {label: Voice(name="joe", engine="piper", rate=rng.randint(158, 176)) for label in speakers}
    pools = {"m": list(_MALE), "f": list(_FEMALE)}
    for pool in pools.values():
        rng.shuffle(pool)
    pitches = list(_PITCHES)
    rng.shuffle(pitches)
    nxt = "m" if rng.random() < 0.5 else "f"
    voices: dict[str, Voice] = {}
    for i, label in enumerate(speakers):
        profile = profiles.get(label)
        if profile is not None:
            sex = "f" if profile.median_f0 >= FEMALE_F0 else "m"
        else:
            sex, nxt = nxt, ("f" if nxt == "m" else "m")
        pool = pools[sex] or pools["f" if sex == "m" else "m"] or [f"en-us+{sex}3"]
        name = pool.pop(0)
        voices[label] = Voice(name=name, pitch=pitches[i % len(pitches)], rate=rng.randint(158, 176))
    return voices


def cast_targets(speakers: list[str], profiles: dict[str, VoiceProfile | None], seed: int) -> dict[str, VoiceProfile]:
    """Piper: a cast voice (F0 and formant shift) for each speaker without a reference voice.

    Sexes alternate from a seeded start, as in ``cast_voices``; shifts are dealt from the pools in
    order, so the first male keeps Piper's voice untouched (the best-sounding) when he comes first.
    A speaker missing from the result speaks as Piper does.
    """
    rng = random.Random(f"targets:{seed}")
    pools = {"m": list(_PIPER_MALE), "f": list(_PIPER_FEMALE)}
    nxt = "m" if rng.random() < 0.5 else "f"
    targets: dict[str, VoiceProfile] = {}
    for label in speakers:
        if profiles.get(label) is not None:
            continue
        sex, nxt = nxt, ("f" if nxt == "m" else "m")
        pool = pools[sex] or pools["f" if sex == "m" else "m"]
        shift = pool.pop(0) if pool else (120.0 + 15 * len(targets), 1.0)
        if shift is not None:
            targets[label] = VoiceProfile(median_f0=shift[0], envelope=None, formant=shift[1])
    return targets


def _voice_source(ref: ResolvedReference) -> tuple[str, VoiceProfile | None] | None:
    """Which audio models ``ref``'s voice: its reference_voice, else a video's own track."""
    if ref.voice_path is not None:
        return "reference_voice", _profile(ref.voice_path)
    if ref.kind == "video" and ref.info.has_audio:
        return "its video's audio", _profile(ref.path)
    return None


def _profile(path: Path) -> VoiceProfile | None:
    """The voice in ``path``'s audio, kept by the file's bytes: a job seen again (a CI suite's references, stored anew
    for each task) is not analysed again (~0.1 s for a voice clip, before the first frame)."""
    return _profiles.get(file_digest(path), lambda: profile_from_file(path))


def _two_at_a_time(work: Callable[[_T], _R], items: list[_T]) -> list[_R]:
    """``work`` on every item, two at a time: Piper's network runs on one core a call, so a dialogue's lines take
    half the wall time (eSpeak NG's calls queue on its lock, Praat's on its own)."""
    if len(items) < 2:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="openr2v-tts") as pool:
        return list(pool.map(work, items))


@functools.lru_cache(maxsize=TAKES_KEPT)
def _take(text: str, voice: Voice) -> Speech:
    """``text`` spoken in ``voice``, kept: a server hears the same lines again (a CI suite's prompts, a scene
    rendered again with another framing or size), and the neural voice is most of a soundtrack's time. Speech is
    deterministic, so a kept take is the one that would be spoken again; its samples are read-only, shared."""
    speech = synthesize_timed(text, voice)
    speech.samples.setflags(write=False)
    return speech


def forget_takes() -> None:
    """Drop the kept takes, fitted lines and voice profiles: the next lines are spoken and fitted afresh, the next
    voices analysed (a benchmark of new lines, a test counting calls)."""
    _take.cache_clear()
    _fitted.clear()
    _profiles.clear()


def _first_takes(lines: list[tuple[str, Voice]]) -> dict[tuple[str, Voice], Speech]:
    """Every line spoken once at its voice's own pace."""
    todo = list(dict.fromkeys(lines))
    return dict(zip(todo, _two_at_a_time(lambda line: _take(*line), todo), strict=True))


def _window(ln: Line, busy_until: int, duration: float, n: int) -> tuple[int, int]:
    """Where a line may be spoken (samples): from its start, or after the line before it ends, to its end."""
    start = max(int(round(max(0.0, ln.start) * AUDIO_RATE)), busy_until)
    return start, min(int(round(min(ln.end, duration) * AUDIO_RATE)), n)


# Lines fitted before (voice, target and window -> samples and phonemes), and voices profiled before (by the
# digest of their file): the last TAKES_KEPT, like the takes.
_fitted: Kept[tuple[np.ndarray, tuple[Phoneme, ...]]] = Kept(TAKES_KEPT)
_profiles: Kept[VoiceProfile | None] = Kept(TAKES_KEPT)


def _speak(text: str, voice: Voice, profile: VoiceProfile | None, window: float,
           take: Speech | None = None) -> tuple[np.ndarray, list[Phoneme]]:
    """``text`` in ``voice`` moved to ``profile``, at most ``window`` seconds long: mono float32 at 48 kHz
    (read-only), and its phonemes in seconds from its first sample. ``take``: ``text`` already spoken in ``voice``.

    Kept like the takes: moving a take to its target voice and window is the rest of a line's time (~40 ms a
    line), on the way to a render's first frame. A 3 s line is 0.58 MB."""
    key = (text, voice, None if profile is None else profile.key, window)
    samples, phonemes = _fitted.get(key, lambda: _fit(text, voice, profile, window, take))
    return samples, list(phonemes)


def _fit(text: str, voice: Voice, profile: VoiceProfile | None, window: float,
         take: Speech | None) -> tuple[np.ndarray, tuple[Phoneme, ...]]:
    speech = trim_speech(take if take is not None else _take(text, voice))
    if speech.samples.size == 0:
        return _read_only(np.zeros(0, np.float32)), ()
    need = speech.seconds
    if need > window:
        # Faster delivery first: the engine re-times phonemes naturally; Praat then squeezes what is left.
        faster = dataclasses.replace(voice, rate=min(MAX_FAST_WPM, int(voice.rate * need / window * 1.05) + 1))
        speech = trim_speech(_take(text, faster))
        need = speech.seconds
    scale = min(1.0, window / need * 0.99) if need > 0 else 1.0
    x = speech.samples
    if profile is not None or scale < 1.0:
        x = transform(x, speech.rate, target=profile, time_scale=scale)
    y = resample(x, speech.rate, AUDIO_RATE)[: int(window * AUDIO_RATE)]  # the guard: never past the window
    # ``transform`` re-times uniformly (round(len * scale) samples), so the phonemes scale with it.
    stretch = x.size / speech.samples.size
    return _read_only(_level(y)), tuple(retime(speech.phonemes, scale=stretch, limit=y.size / AUDIO_RATE))


def _read_only(x: np.ndarray) -> np.ndarray:
    x.setflags(write=False)
    return x


def _level(y: np.ndarray) -> np.ndarray:
    """Voiced parts at SPEECH_DBFS RMS, with 5 ms fades so a cut never clicks."""
    if y.size == 0:
        return y
    hop = AUDIO_RATE // 100
    frames = y[: y.size // hop * hop].reshape(-1, hop) if y.size >= hop else y[None, :]
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    active = rms[rms >= rms.max() * 0.1]
    level = float(np.sqrt(np.mean(active**2))) if active.size else 0.0
    if level <= 0:
        return y
    out = y * np.float32(10 ** (SPEECH_DBFS / 20) / level)
    fade = min(out.size // 2, AUDIO_RATE // 200)
    if fade:
        ramp = np.linspace(0, 1, fade, dtype=np.float32)
        out[:fade] *= ramp
        out[-fade:] *= ramp[::-1]
    return out.astype(np.float32)


def _envelope(track: np.ndarray, frames: int, fps: int) -> np.ndarray:
    """Speech loudness per video frame, 0..1, with a short release so a mouth does not snap shut."""
    edges = np.round(np.arange(frames + 1) * AUDIO_RATE / fps).astype(int)
    sq = np.concatenate([[0.0], np.cumsum(track.astype(np.float64) ** 2)])
    edges = np.minimum(edges, track.size)
    width = np.maximum(1, np.diff(edges))
    rms = np.sqrt((sq[edges[1:]] - sq[edges[:-1]]) / width)
    raw = np.clip(rms / 10 ** ((SPEECH_DBFS + 4) / 20), 0.0, 1.0)
    env = np.empty(frames, dtype=np.float32)
    prev = 0.0
    for k in range(frames):
        prev = max(float(raw[k]), prev * 0.55)
        env[k] = prev
    env[env < 0.02] = 0.0
    return env


def _duck_gain(activity: np.ndarray, n: int, fps: int, duck_db: float) -> np.ndarray:
    """Per-sample gain: ``duck_db`` while anyone speaks, with ~0.1 s of anticipation and hold."""
    if activity.size == 0:
        return np.ones(n, np.float32)
    padded = np.pad(activity, 3, mode="edge")
    held = np.lib.stride_tricks.sliding_window_view(padded, 7).max(axis=1)
    gain_frames = 1.0 - (1.0 - 10 ** (duck_db / 20)) * np.clip(held * 2, 0, 1)
    centres = (np.arange(activity.size) + 0.5) * AUDIO_RATE / fps
    return np.interp(np.arange(n), centres, gain_frames).astype(np.float32)


def _music_windows(plan: ShotPlan, duration: float) -> list[tuple[float, float]]:
    """Where the cue plays: the shots that name music in a shot-by-shot plan, else the whole video."""
    if plan.mode in ("timed", "storyboard") and not music_kind(plan.style):
        shots = [(s.start, s.end) for s in plan.shots if music_kind(s.text)]
        if shots and len(shots) < len(plan.shots):
            return shots
    return [(0.0, duration)]


def _window_mask(windows: list[tuple[float, float]], n: int) -> np.ndarray:
    mask = np.zeros(n, np.float32)
    ramp = int(0.3 * AUDIO_RATE)
    for a, b in windows:
        i, j = max(0, int(a * AUDIO_RATE) - ramp // 2), min(n, int(b * AUDIO_RATE) + ramp // 2)
        if j <= i:
            continue
        seg = np.ones(j - i, np.float32)
        r = min(ramp, (j - i) // 2)
        if r:
            seg[:r] = np.linspace(0, 1, r)
            seg[-r:] = np.linspace(1, 0, r)
        mask[i:j] = np.maximum(mask[i:j], seg)
    return mask


@dataclass
class SpeakerCast:
    """Who speaks in a plan and with which voice: each speaker's reference voice (when it has one), the
    engine's voice, and Piper's cast F0 and formant target."""

    speakers: list[str]
    origins: dict[str, str]
    profiles: dict[str, VoiceProfile | None]
    voices: dict[str, Voice]
    targets: dict[str, VoiceProfile]


@dataclass
class SpokenAhead:
    """A plan's lines spoken before the soundtrack is built (``speak_ahead``), with the cast they were spoken for:
    each line's take, and each line as placed in its planned window (speaker, text and window in samples ->
    ``_speak``'s samples and phonemes), which the soundtrack uses when the window turns out the same."""

    cast: SpeakerCast
    takes: dict[tuple[str, Voice], Speech]
    placed: dict[tuple[str, str, int], tuple[np.ndarray, list[Phoneme]]] = field(default_factory=dict)


def _cast_speakers(job: RenderJob, plan: ShotPlan, ahead: SpokenAhead | None = None) -> SpeakerCast:
    speakers: list[str] = []
    for ln in plan.lines:
        label = ln.speaker or NARRATOR
        if label not in speakers and ln.text.strip():
            speakers.append(label)
    if ahead is not None and ahead.cast.speakers == speakers:
        return ahead.cast
    refs = {r.label: r for r in job.references}
    origins: dict[str, str] = {}
    profiles: dict[str, VoiceProfile | None] = {}
    for label in speakers:
        found = _voice_source(refs[label]) if label in refs else None
        if found is not None and found[1] is not None:
            origins[label], profiles[label] = found
    engine = default_engine()
    return SpeakerCast(speakers, origins, profiles, cast_voices(speakers, profiles, job.seed, engine),
                       cast_targets(speakers, profiles, job.seed) if engine == "piper" else {})


def _lines(plan: ShotPlan, voices: dict[str, Voice]) -> list[tuple[str, Voice]]:
    return [(ln.text, voices[ln.speaker or NARRATOR]) for ln in plan.lines if ln.text.strip()]


def speak_ahead(job: RenderJob) -> SpokenAhead:
    """The lines of the job's plan spoken (the soundtrack's slowest part), so that an engine can do it while it
    looks at the references. Should the engine's casting change who says a line, the soundtrack speaks that
    line again in the right voice."""
    plan = plan_for(job)
    cast = _cast_speakers(job, plan)
    n = job.duration * AUDIO_RATE
    todo = []
    for ln in plan.lines:
        label = ln.speaker or NARRATOR
        start, stop = _window(ln, 0, float(job.duration), n)  # as placed when no line before it overruns
        if ln.text.strip() and stop - start >= MIN_WINDOW * AUDIO_RATE:
            todo.append((label, ln.text, stop - start))

    takes: dict[tuple[str, Voice], Future[Speech]] = {}
    lock = threading.Lock()

    def speak(item: tuple[str, str, int]) -> tuple[np.ndarray, list[Phoneme]]:
        # The line moved to its voice and fitted to its window right after it is spoken: the voice matching
        # (Praat) runs beside the other line's speech instead of after both. A line said again in the same
        # voice (in another window) is spoken once.
        label, text, window = item
        key = (text, cast.voices[label])
        with lock:
            mine = key not in takes
            future = takes.setdefault(key, Future())
        if mine:
            try:
                future.set_result(_take(*key))
            except BaseException as exc:  # the other worker may be waiting for this take
                future.set_exception(exc)
        take = future.result()
        target = cast.profiles.get(label) or cast.targets.get(label)
        return _speak(text, cast.voices[label], target, window / AUDIO_RATE, take)

    unique = list(dict.fromkeys(todo))
    done = _two_at_a_time(speak, unique)
    return SpokenAhead(cast, {key: future.result() for key, future in takes.items()},
                       dict(zip(unique, done, strict=True)))


def room_bed(job: RenderJob) -> np.ndarray:
    """The soundtrack's room tone (stage 1), which an engine may make ahead while it waits for something else (the
    speech). The music cue's bed is made then too, when the prompt names music: it is kept for the soundtrack."""
    kind = _music_cue(job)
    if kind is not None:
        music_bed(kind, float(job.duration), seed=job.seed, level_dbfs=MUSIC_DBFS)
    return room_tone(job.duration, seed=job.seed)


def _music_cue(job: RenderJob) -> str | None:
    """The instrument of the job's music cue: None without music words, or when the client's soundtrack is the music."""
    return music_kind(job.request.prompt) if job.soundtrack is None else None


def build_soundtrack(job: RenderJob, plan: ShotPlan, loop_seconds: dict[str, float],
                     ahead: SpokenAhead | None = None, bed: np.ndarray | None = None) -> Soundtrack:
    """The mix for ``job`` (which wants audio), following ``plan``'s dialogue; ``ahead``: lines already spoken;
    ``bed``: the room tone already made (``room_bed``).

    ``loop_seconds`` (video label -> picture loop) is part of the engine's interface; no reference
    audio is replayed under the policy above, so nothing needs to loop with a picture here.
    """
    duration = float(job.duration)
    n = job.duration * AUDIO_RATE
    frames = job.duration * job.fps
    tracks: list[np.ndarray] = [room_bed(job) if bed is None else bed]
    gains: list[float] = [1.0]
    sources = ["room tone"]

    # 2. Dialogue.
    casting = _cast_speakers(job, plan, ahead)
    speakers, origins, profiles, voices, cast = (casting.speakers, casting.origins, casting.profiles,
                                                 casting.voices, casting.targets)
    per_speaker = {label: np.zeros(n, np.float32) for label in speakers}
    placed: list[PlacedLine] = []
    busy_until = 0
    takes = dict(ahead.takes) if ahead is not None else {}
    takes.update(_first_takes([line for line in _lines(plan, voices) if line not in takes]))
    # Lines already placed ahead count only when spoken by this very cast.
    ready = ahead.placed if ahead is not None and casting is ahead.cast else {}
    for ln in sorted(plan.lines, key=lambda ln: ln.start):
        label = ln.speaker or NARRATOR
        start, stop = _window(ln, busy_until, duration, n)
        if not ln.text.strip() or (stop - start) < MIN_WINDOW * AUDIO_RATE:
            continue
        target = profiles.get(label) or cast.get(label)
        key = (label, ln.text, stop - start)
        speech, phonemes = ready[key] if key in ready else _speak(ln.text, voices[label], target,
                                                                  (stop - start) / AUDIO_RATE,
                                                                  takes.get((ln.text, voices[label])))
        if speech.size == 0:
            continue
        per_speaker[label][start:start + speech.size] += speech
        busy_until = start + speech.size
        placed.append(PlacedLine(label=label, start=round(start / AUDIO_RATE, 3),
                                 end=round(busy_until / AUDIO_RATE, 3), text=ln.text,
                                 phonemes=retime(phonemes, offset=start / AUDIO_RATE)))
    spoken = [label for label in speakers if any(p.label == label for p in placed)]
    for label in spoken:
        tracks.append(per_speaker[label][None, :])
        gains.append(1.0)
        how = (f"voice from {origins[label]}" if label in origins
               else f"piper {voices[label].name} at {cast[label].median_f0:.0f} Hz" if label in cast
               else f"piper {voices[label].name}" if voices[label].engine == "piper" else voices[label].name)
        sources.append(f"{label} speech ({how})")
    spoken_env = {label: _envelope(per_speaker[label], frames, job.fps) for label in spoken}
    envelopes = {r.label: spoken_env.get(r.label, np.zeros(frames, np.float32)) for r in job.references}
    envelopes.update({k: v for k, v in spoken_env.items() if k != NARRATOR})
    visemes = {label: silent_track(frames, job.fps) for label in envelopes}
    visemes.update({label: viseme_track([ph for p in placed if p.label == label for ph in p.phonemes], frames, job.fps)
                    for label in spoken})
    activity = np.max(np.stack(list(spoken_env.values())), axis=0) if spoken_env else np.zeros(frames)

    # 3. Music cue (the client's soundtrack, when there is one, is the music).
    kind = _music_cue(job)
    if kind is not None:
        bed = music_bed(kind, duration, seed=job.seed, level_dbfs=MUSIC_DBFS)
        bed *= _window_mask(_music_windows(plan, duration), n) * _duck_gain(activity, n, job.fps, MUSIC_DUCK_DB)
        tracks.append(bed)
        gains.append(1.0)
        sources.append("music cue (" + ("plucked strings" if kind == "pluck" else "soft pad") + ")")

    # 4. The client's soundtrack: trimmed or padded with silence to the duration.
    if job.soundtrack is not None:
        track = fit_length(decode_audio(job.soundtrack, max_seconds=duration), n)
        tracks.append(track * _duck_gain(activity, n, job.fps, SOUNDTRACK_DUCK_DB))
        gains.append(SOUNDTRACK_GAIN)
        sources.append("soundtrack")

    # 5. Mix.
    return Soundtrack(samples=mix(tracks, gains, n=n), sources=sources, envelopes=envelopes, lines=placed,
                      visemes=visemes)
