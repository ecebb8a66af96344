"""Offline speech for the kiosk: espeak-ng's Vietnamese voice, played through sox's ``play``.

The driver only turns a text into sound; which text is said, and that it never holds personal data,
is the app's decision (``kiosk/voice.py``). Both programs are Debian packages (``scripts/setup.sh``);
nothing goes to the network.
"""

from __future__ import annotations

import io
import logging
import math
import shutil
import struct
import subprocess
import threading
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field

from common.errors import DeviceError

log = logging.getLogger(__name__)

RATE_HZ = 22050  # espeak-ng's output rate; the chime uses the same


class VoiceError(DeviceError):
    """The speech synthesizer or the sound output failed."""

    code = "voice"


@dataclass(frozen=True)
class VoiceConfig:
    #: espeak-ng voice: vi (northern), vi-vn-x-central, vi-vn-x-south
    voice: str = "vi"
    #: words per minute; slower than espeak's 175 for elderly listeners
    words_per_minute: int = 140
    #: the command that plays a WAV from standard input
    player: Sequence[str] = field(default=("play", "-q", "-t", "wav", "-"))
    timeout_s: float = 20.0


class Speaker:
    """Says one thing at a time: a new prompt stops the one still playing (a new screen is up)."""

    def __init__(self, config: VoiceConfig | None = None) -> None:
        self.config = config or VoiceConfig()
        self._lock = threading.Lock()
        self._playing: subprocess.Popen[bytes] | None = None
        #: how many sounds were handed to the player (technician screen, tests)
        self.played = 0

    def synthesize(self, text: str, language: str = "vi") -> bytes:
        """The WAV espeak-ng makes of ``text`` (offline), or VoiceError."""
        binary = shutil.which("espeak-ng")
        if binary is None:
            raise VoiceError("espeak-ng is not installed (apt-get install espeak-ng)")
        voice = self.config.voice if language == "vi" else "en"
        try:
            result = subprocess.run(
                [binary, "-v", voice, "-s", str(self.config.words_per_minute), "--stdout", "--", text],
                capture_output=True,
                timeout=self.config.timeout_s,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise VoiceError(f"espeak-ng failed: {type(exc).__name__}") from exc
        if result.returncode != 0 or not result.stdout.startswith(b"RIFF"):
            raise VoiceError(f"espeak-ng exited {result.returncode} without audio")
        return result.stdout

    def say(self, text: str, language: str = "vi") -> None:
        self.play(self.synthesize(text, language))

    def chime(self) -> None:
        """Two rising tones: the card is read, take it back."""
        self.play(chime_wav())

    def play(self, wav_bytes: bytes) -> None:
        """Hand ``wav_bytes`` to the player without waiting for the end (stops what still plays)."""
        self.stop()
        try:
            process = subprocess.Popen(
                list(self.config.player),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            raise VoiceError(f"sound player {self.config.player[0]!r} failed: {exc.strerror}") from exc
        with self._lock:
            self._playing = process
            self.played += 1
        try:
            assert process.stdin is not None
            process.stdin.write(wav_bytes)
            process.stdin.close()
        except OSError as exc:  # the player died at once (no sound device): say so, never crash
            raise VoiceError(f"sound player stopped: {exc.strerror}") from exc

    def stop(self) -> None:
        with self._lock:
            process, self._playing = self._playing, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(2)
            except subprocess.TimeoutExpired:
                process.kill()


def chime_wav(duration_s: float = 0.5) -> bytes:
    """A short two-tone chime as a 16-bit mono WAV (made here: no sound file to ship)."""
    frames = bytearray()
    count = int(RATE_HZ * duration_s)
    for i in range(count):
        tone = 660.0 if i < count // 2 else 880.0
        fade = min(1.0, (count - i) / (RATE_HZ * 0.05))
        sample = 0.5 * fade * math.sin(2 * math.pi * tone * i / RATE_HZ)
        frames += struct.pack("<h", int(sample * 32767))
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE_HZ)
        wav.writeframes(bytes(frames))
    return out.getvalue()


def rms(wav_bytes: bytes) -> tuple[float, float]:
    """(seconds, RMS level 0..1) of a 16-bit WAV: what a check of "not silence" reads."""
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        if wav.getsampwidth() != 2:
            raise VoiceError("expected 16-bit audio")
        raw = wav.readframes(wav.getnframes())
        # espeak-ng streams: its header claims the largest size, so count what is really there
        seconds = len(raw) / 2 / wav.getframerate()
    samples = struct.unpack(f"<{len(raw) // 2}h", raw[: len(raw) // 2 * 2])
    if not samples:
        return seconds, 0.0
    return seconds, math.sqrt(sum(s * s for s in samples) / len(samples)) / 32768.0
