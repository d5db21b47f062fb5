"""Write the contract's MP4: H.264 yuv420p at an exact size, frame count and rate, AAC or silent.

Determinism is part of the contract (same job + seed = same bytes), so the encoder's thread
count is fixed rather than "auto" (x264's output depends on it), x264's mb-tree is off (see
below), and the MP4 muxer writes no creation time unless asked. Identical bytes hold for one
FFmpeg build (its version is in the file).
"""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

__all__ = ["AUDIO_RATE", "AudioTrack", "Mp4Writer", "fit_audio", "rgb_to_yuv420", "yuv420_planes"]

AUDIO_RATE = 48_000
_AAC_FRAME = 1024  # samples per AAC frame


def rgb_to_yuv420(rgb: np.ndarray) -> np.ndarray:
    """RGB (H x W x 3 uint8, even sides) to the writer's YUV 4:2:0 buffer: BT.709, limited range.

    The buffer is PyAV's ``yuv420p`` ndarray, shape (H * 3 // 2, W): the Y rows, then U, then V
    (see ``yuv420_planes``). Compositing in this form halves the bytes blended per frame and
    skips a colour conversion per frame.
    """
    return _yuv_frame(rgb).to_ndarray()


def _yuv_frame(rgb: np.ndarray) -> av.VideoFrame:
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return frame.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")


def yuv420_planes(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views (Y, U, V) into a contiguous (H * 3 // 2, W) buffer; U and V are (H / 2, W / 2)."""
    height, width = buf.shape[0] * 2 // 3, buf.shape[1]
    chroma = buf[height:].reshape(-1)
    quarter = height * width // 4
    return (buf[:height], chroma[:quarter].reshape(height // 2, width // 2),
            chroma[quarter:].reshape(height // 2, width // 2))


class Mp4Writer:
    """Encode ``frames`` RGB frames (H x W x 3 uint8) to ``path``; call ``write`` exactly ``frames`` times.

    ``audio`` (float32, shape (channels, samples), 48 kHz, 1 or 2 channels) is fitted to the
    video's duration and muxed as AAC stereo, interleaved with the video as frames arrive.
    Without ``audio`` the file has no audio stream at all.
    """

    def __init__(self, path: Path, width: int, height: int, frames: int, *, fps: int = 30,
                 audio: np.ndarray | None = None, preset: str = "veryfast", crf: int = 23,
                 threads: int = 2, audio_bitrate: int = 128_000) -> None:
        if width % 2 or height % 2 or width < 2 or height < 2:
            raise ValueError(f"yuv420p needs even dimensions, got {width}x{height}")
        if frames < 1:
            raise ValueError("an MP4 needs at least one frame")
        self.path, self.width, self.height, self.frames, self.fps = path, width, height, frames, fps
        self._written = 0
        self._container = av.open(str(path), mode="w", format="mp4",
                                  options={"movflags": "+faststart"})
        self._video = self._container.add_stream(
            "libx264", rate=fps,
            options={"preset": preset, "crf": str(crf), "threads": str(threads), "g": str(2 * fps),
                     # x264's macroblock-tree rate control reads uninitialised memory on some content
                     # (the bytes then change with the heap's history, found with MALLOC_PERTURB_).
                     "x264-params": "mbtree=0"})
        self._video.width, self._video.height, self._video.pix_fmt = width, height, "yuv420p"
        # Kept apart from the stream's: the MP4 muxer swaps the stream time base (e.g. 1/15360) once the
        # header is written, and frames stamped with that would collapse onto pts 0.
        self._video_tb = Fraction(1, fps)
        self._video.time_base = self._video_tb
        # HD material is BT.709; tagging it keeps players from guessing BT.601 and shifting hues.
        cc = self._video.codec_context
        cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range = 1, 1, 1, 1
        self._audio = (AudioTrack(self._container, fit_audio(audio, frames * AUDIO_RATE // fps), audio_bitrate)
                       if audio is not None else None)

    @property
    def has_audio(self) -> bool:
        return self._audio is not None

    def write(self, rgb: np.ndarray) -> None:
        """Encode the next frame (H x W x 3 uint8, RGB)."""
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise ValueError(f"frame must be {self.height}x{self.width}x3 uint8, got {rgb.shape} {rgb.dtype}")
        self._encode(_yuv_frame(rgb))

    def write_yuv420(self, buf: np.ndarray) -> None:
        """Encode the next frame given as a (H * 3 // 2, W) buffer (see ``rgb_to_yuv420``)."""
        if buf.shape != (self.height * 3 // 2, self.width) or buf.dtype != np.uint8:
            raise ValueError(f"frame must be {self.height * 3 // 2}x{self.width} uint8, got {buf.shape} {buf.dtype}")
        self._encode(_frame_of(np.ascontiguousarray(buf)))

    def _encode(self, frame: av.VideoFrame) -> None:
        if self._written >= self.frames:
            raise ValueError(f"all {self.frames} frames are already written")
        frame.pts = self._written
        frame.time_base = self._video_tb
        self._container.mux(self._video.encode(frame))
        self._written += 1
        if self._audio is not None:
            self._audio.feed(self._written * AUDIO_RATE // self.fps)

    def close(self) -> None:
        """Flush encoders and finish the file; raises if fewer frames than promised were written."""
        if self._container is None:
            return
        try:
            if self._written != self.frames:
                raise ValueError(f"{self._written} of {self.frames} frames were written")
            self._container.mux(self._video.encode(None))
            if self._audio is not None:
                self._audio.finish()
        finally:
            if self._audio is not None:
                self._audio.close(stop=True)
            self._container.close()
            self._container = None  # type: ignore[assignment]

    def abort(self) -> None:
        """Close without the frame-count check and delete the partial file."""
        if self._container is not None:
            if self._audio is not None:
                self._audio.close(stop=True)
            try:
                self._container.close()
            except (av.FFmpegError, OSError, ValueError):
                pass  # the file is being thrown away; a broken trailer doesn't matter
            self._container = None  # type: ignore[assignment]
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _frame_of(buf: np.ndarray) -> av.VideoFrame:
    """A yuv420p frame that refers to ``buf`` (no copy: x264 copies its input before ``encode`` returns)."""
    try:
        return av.VideoFrame.from_numpy_buffer(buf, format="yuv420p")
    except ValueError:  # a PyAV too old to wrap yuv420p: a copy
        return av.VideoFrame.from_ndarray(buf, format="yuv420p")


class AudioTrack:
    """AAC stereo at 48 kHz of ``samples`` in ``container``, muxed as the video reaches each point (so the two
    interleave) in whole AAC frames.

    The encoding runs ahead in a thread of its own (FFmpeg's AAC encoder costs ~0.3 s of a 10 s video's
    encode, which was on the video's path); the packets are muxed by the caller in the order, and at the
    points, the encoder gave them, so the bytes are those of encoding in step with the video. Add the track
    last: it writes the container's header (which opens the encoders and reads their settings) before its
    thread starts encoding."""

    def __init__(self, container: av.container.OutputContainer, samples: np.ndarray, bitrate: int) -> None:
        self._container = container
        self._samples = samples
        self._pos = 0
        self._tb = Fraction(1, AUDIO_RATE)
        self._stream = container.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        self._stream.bit_rate = bitrate
        self._stream.time_base = self._tb
        self._encoded: list[list[av.Packet]] = []  # per AAC frame (the last: the flush), the packets it gave
        self._ready = threading.Condition()
        self._error: BaseException | None = None
        self._stopped = False
        container.start_encoding()
        self._thread = threading.Thread(target=self._encode_all, name="openr2v-aac", daemon=True)
        self._thread.start()

    def _encode_all(self) -> None:
        try:
            total = self._samples.shape[1]
            for pos in range(0, total, _AAC_FRAME):
                if self._stopped:
                    raise RuntimeError("the audio track was closed before it was encoded")
                n = min(_AAC_FRAME, total - pos)
                chunk = np.ascontiguousarray(self._samples[:, pos:pos + n])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                frame.sample_rate = AUDIO_RATE
                frame.pts = pos
                frame.time_base = self._tb
                self._publish(self._stream.encode(frame))
            self._publish(self._stream.encode(None))
        except BaseException as exc:  # handed to the muxing thread
            with self._ready:
                self._error = exc
                self._ready.notify_all()

    def _publish(self, packets: list[av.Packet]) -> None:
        with self._ready:
            self._encoded.append(packets)
            self._ready.notify_all()

    def _take(self, index: int) -> list[av.Packet]:
        with self._ready:
            while len(self._encoded) <= index and self._error is None:
                self._ready.wait()
            if self._error is not None:
                raise self._error
            packets = self._encoded[index]
            self._encoded[index] = []
            return packets

    def feed(self, upto: int, *, final: bool = False) -> None:
        """Mux audio up to sample ``upto`` in whole AAC frames (a short tail only when ``final``)."""
        total = self._samples.shape[1]
        while self._pos < min(upto, total):
            n = min(_AAC_FRAME, total - self._pos)
            if self._pos + n > upto and not final:
                break
            self._container.mux(self._take(self._pos // _AAC_FRAME))
            self._pos += n

    def finish(self) -> None:
        self.feed(self._samples.shape[1], final=True)
        self._container.mux(self._take(-(-self._samples.shape[1] // _AAC_FRAME)))
        self.close()

    def close(self, *, stop: bool = False) -> None:
        """Wait for the encoding thread (the container may not be closed under it); ``stop``: it encodes no more."""
        self._stopped = self._stopped or stop
        self._thread.join()


def fit_audio(audio: np.ndarray, n: int) -> np.ndarray:
    """Stereo float32 of exactly ``n`` samples: mono is duplicated, the tail trimmed or zero-padded."""
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[0] not in (1, 2):
        raise ValueError(f"audio must be (channels, samples) with 1 or 2 channels, got {a.shape}")
    if a.shape[0] == 1:
        a = np.repeat(a, 2, axis=0)
    out = np.zeros((2, n), dtype=np.float32)
    m = min(n, a.shape[1])
    out[:, :m] = np.clip(a[:, :m], -1.0, 1.0)
    return out
