"""Audio plumbing: WAV headers, content sniffing, and ffmpeg/ffprobe runs.

Engines hand back 16-bit PCM WAV. Everything that needs a codec (Ogg/Opus,
probing uploads) runs ffmpeg or ffprobe as an asyncio subprocess with a
timeout, so the event loop never blocks on audio work.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from personae.plugins.voice.errors import VoiceEngineError, VoiceTimeout, VoiceUnavailable

AudioFormat = Literal["wav", "ogg"]
CONTENT_TYPES: dict[str, str] = {"wav": "audio/wav", "ogg": "audio/ogg; codecs=opus"}


@dataclass(frozen=True, slots=True)
class WavInfo:
    """The PCM inside a WAV file."""

    sample_rate: int
    channels: int
    sample_width: int
    """Bytes per sample (2 for 16-bit)."""
    pcm: bytes

    @property
    def duration(self) -> float:
        frame = self.channels * self.sample_width
        return len(self.pcm) / frame / self.sample_rate if frame and self.sample_rate else 0.0


def parse_wav(data: bytes) -> WavInfo:
    """Read a PCM WAV, tolerating the placeholder sizes a streaming writer leaves
    (espeak-ng ``--stdout`` writes 0x7fffffff): the data runs to the end."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a WAV file")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise ValueError("WAV fmt chunk is truncated")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise ValueError("WAV data comes before its format")
            tag, channels, rate, bits = fmt
            if tag not in (1, 0xFFFE) or bits % 8:
                raise ValueError("only PCM WAV is supported")
            end = min(len(data), body + size)
            width = bits // 8
            frame = channels * width
            pcm = data[body:end]
            pcm = pcm[: len(pcm) - len(pcm) % frame] if frame else b""
            return WavInfo(rate, channels, width, pcm)
        pos = body + size + (size & 1)
    raise ValueError("WAV file has no data chunk")


def wav_bytes(pcm: bytes, sample_rate: int, channels: int = 1, sample_width: int = 2) -> bytes:
    """A canonical 44-byte-header PCM WAV around ``pcm``."""
    block = channels * sample_width
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(pcm),
        b"WAVE",
        b"fmt ",
        16,
        1,
        channels,
        sample_rate,
        sample_rate * block,
        block,
        sample_width * 8,
        b"data",
        len(pcm),
    )
    return header + pcm


def normalize_wav(data: bytes) -> bytes:
    """The same audio with correct header sizes (players and ffmpeg need them)."""
    info = parse_wav(data)
    return wav_bytes(info.pcm, info.sample_rate, info.channels, info.sample_width)


def wav_duration(data: bytes) -> float:
    return parse_wav(data).duration


def concat_wav(parts: list[bytes]) -> bytes:
    """Join WAVs of one format into one WAV."""
    if not parts:
        raise ValueError("nothing to join")
    infos = [parse_wav(p) for p in parts]
    first = infos[0]
    for info in infos[1:]:
        if (info.sample_rate, info.channels, info.sample_width) != (
            first.sample_rate,
            first.channels,
            first.sample_width,
        ):
            raise ValueError("cannot join WAVs of different formats")
    return wav_bytes(
        b"".join(i.pcm for i in infos), first.sample_rate, first.channels, first.sample_width
    )


_ACCEPT_TYPES: dict[str, AudioFormat] = {
    "audio/wav": "wav",
    "audio/wave": "wav",
    "audio/x-wav": "wav",
    "audio/vnd.wave": "wav",
    "audio/ogg": "ogg",
    "audio/opus": "ogg",
    "audio/*": "wav",
    "*/*": "wav",
}


def format_for_accept(accept: str | None) -> AudioFormat | None:
    """The audio format to answer an HTTP ``Accept`` header with: ``"wav"`` or
    ``"ogg"`` (Ogg/Opus), the acceptable one with the highest ``q`` (the first
    listed on a tie; WAV for ``audio/*``, ``*/*`` or no header). None when the
    header accepts neither (answer 406)."""
    if not accept or not accept.strip():
        return "wav"
    best: tuple[float, int, AudioFormat] | None = None
    for position, item in enumerate(accept.split(",")):
        media, *params = (part.strip() for part in item.split(";"))
        fmt = _ACCEPT_TYPES.get(media.lower())
        if fmt is None:
            continue
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        if best is None or quality > best[0]:
            best = (quality, position, fmt)
    return None if best is None else best[2]


# -- content sniffing -----------------------------------------------------------------

SAMPLE_TYPES: dict[str, tuple[str, str]] = {
    # kind: (content type, file extension)
    "wav": ("audio/wav", "wav"),
    "mp3": ("audio/mpeg", "mp3"),
    "ogg": ("audio/ogg", "ogg"),
    "flac": ("audio/flac", "flac"),
    "m4a": ("audio/mp4", "m4a"),
}
_M4A_BRANDS = {b"M4A ", b"M4B ", b"mp42", b"mp41", b"isom", b"iso2", b"dash", b"MSNV"}
_FFPROBE_FORMATS = {
    "wav": {"wav"},
    "mp3": {"mp3"},
    "ogg": {"ogg"},
    "flac": {"flac"},
    "m4a": {"mov", "mp4", "m4a", "3gp", "3g2", "mj2"},
}


def sniff_audio(data: bytes) -> str | None:
    """The audio kind (``wav``, ``mp3``, ``ogg``, ``flac``, ``m4a``) the first bytes
    show, whatever the file is called; None when they show none of these."""
    head = data[:16]
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"ID3":
        return "mp3"
    if len(head) >= 3 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        version, layer, bitrate = (head[1] >> 3) & 3, (head[1] >> 1) & 3, head[2] >> 4
        if version != 1 and layer != 0 and bitrate not in (0, 15):
            return "mp3"
    if head[4:8] == b"ftyp" and head[8:12] in _M4A_BRANDS:
        return "m4a"
    return None


def describe_content(data: bytes) -> str:
    """A short human name for what a non-audio upload looks like."""
    head = data[:16]
    known = (
        (b"\x89PNG", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"%PDF", "a PDF document"),
        (b"PK\x03\x04", "a ZIP archive"),
        (b"\x7fELF", "a program"),
        (b"MZ", "a program"),
    )
    for magic, name in known:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF":
        return "a RIFF file that is not WAV audio"
    if head[4:8] == b"ftyp":
        return "an MP4 file that is not M4A audio"
    try:
        data[:512].decode("utf-8")
    except UnicodeDecodeError:
        return "binary data of an unknown kind"
    return "text"


def ffprobe_matches(kind: str, format_name: str) -> bool:
    return bool(_FFPROBE_FORMATS.get(kind, set()) & set(format_name.split(",")))


# -- subprocesses ---------------------------------------------------------------------


async def run_process(
    args: list[str], *, input: bytes | None = None, timeout: float, what: str
) -> tuple[int, bytes, bytes]:
    """Run a program off the event loop; kill it when ``timeout`` passes.

    Returns ``(exit code, stdout, stderr)``. Raises :class:`VoiceUnavailable` when
    the program is not installed and :class:`VoiceTimeout` on timeout."""
    try:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        raise VoiceUnavailable(
            f"{args[0]} is not installed; install it (Debian: apt-get install "
            f"{_PACKAGES.get(Path(args[0]).name, Path(args[0]).name)})."
        ) from None
    try:
        async with asyncio.timeout(timeout):
            stdout, stderr = await process.communicate(input)
    except TimeoutError:
        raise VoiceTimeout(f"{what} took longer than {timeout:g} s and was stopped.") from None
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, stdout, stderr


_PACKAGES = {"ffmpeg": "ffmpeg", "ffprobe": "ffmpeg", "espeak-ng": "espeak-ng"}


async def wav_to_ogg(wav: bytes, *, ffmpeg: str = "ffmpeg", timeout: float = 30.0) -> bytes:
    """Encode a WAV as Ogg/Opus (48 kHz, mono, speech-tuned) with ffmpeg."""
    code, out, err = await run_process(
        [
            ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
            "-f", "wav", "-i", "pipe:0",
            "-ar", "48000", "-c:a", "libopus", "-b:a", "32k", "-application", "voip",
            "-f", "ogg", "pipe:1",
        ],
        input=normalize_wav(wav),
        timeout=timeout,
        what="Converting speech to Ogg/Opus",
    )  # fmt: skip
    if code != 0 or not out.startswith(b"OggS"):
        message = err.decode("utf-8", "replace").strip()[-300:]
        raise VoiceEngineError(f"ffmpeg could not encode Ogg/Opus: {message or f'exit {code}'}")
    return out


async def convert(wav: bytes, fmt: AudioFormat, *, ffmpeg: str, timeout: float) -> bytes:
    """``wav`` in the asked format."""
    if fmt == "wav":
        return normalize_wav(wav)
    if fmt == "ogg":
        return await wav_to_ogg(wav, ffmpeg=ffmpeg, timeout=timeout)
    raise ValueError(f"unknown audio format {fmt!r}; use 'wav' or 'ogg'")


@dataclass(frozen=True, slots=True)
class ProbeResult:
    format_name: str
    duration: float
    audio_streams: int
    video_streams: int


async def probe(path: Path, *, ffprobe: str = "ffprobe", timeout: float = 30.0) -> ProbeResult:
    """What ffprobe reads in a media file. Raises :class:`ValueError` when it
    cannot read it at all."""
    code, out, err = await run_process(
        [
            ffprobe, "-v", "error", "-print_format", "json",
            "-show_entries",
            "format=format_name,duration:stream=codec_type:stream_disposition=attached_pic",
            str(path),
        ],
        timeout=timeout,
        what="Reading the audio file",
    )  # fmt: skip
    if code != 0:
        raise ValueError(err.decode("utf-8", "replace").strip()[-300:] or f"ffprobe exit {code}")
    try:
        document = json.loads(out)
        fmt = document.get("format") or {}
        streams = document.get("streams") or []
        duration = float(fmt.get("duration") or 0.0)
    except (ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"unreadable ffprobe output: {exc}") from None
    audio = sum(1 for s in streams if s.get("codec_type") == "audio")
    video = sum(
        1
        for s in streams
        if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    )
    return ProbeResult(str(fmt.get("format_name") or ""), duration, audio, video)
