"""The hall's announcements, made offline on the center's server: "Mời số B012 đến quầy số 3".

Two voices, both without any network:
- ``espeak``: the sentence spoken by espeak-ng's Vietnamese voice (``-v vi``);
- ``clips``: the center's own recordings, one WAV per word in a folder it can replace file by file
  (``CLIP_WORDS``: "mời số", "đến quầy số", the letters, the digits, the words of numbers). A missing
  clip is made once with espeak-ng, so a center may record only some words. ``write_default_clips``
  fills a folder to start from.

Every announcement is a chime, then the words, as one mono 16-bit WAV (sox), cached on disk by its
text: a recall of the same number at the same counter is the same file, spoken again by the display.
Files are written to a temporary name and renamed, so several web processes may share the folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from common.errors import ConfigError, MotcuaError

log = logging.getLogger(__name__)

RATE = 22050
VOICE = "vi"
SPEED_WPM = 140
LETTERS = {
    "A": "a",
    "B": "bê",
    "C": "xê",
    "D": "dê",
    "E": "e",
    "F": "ép",
    "G": "giê",
    "H": "hát",
    "I": "i",
    "J": "gi",
    "K": "ca",
    "L": "e lờ",
    "M": "em mờ",
    "N": "en nờ",
    "O": "o",
    "P": "pê",
    "Q": "quy",
    "R": "e rờ",
    "S": "ét xì",
    "T": "tê",
    "U": "u",
    "V": "vê",
    "W": "vê kép",
    "X": "ích xì",
    "Y": "i dài",
    "Z": "dét",
}
DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
#: every clip a center may record: file name (without .wav) -> what it says
CLIP_WORDS: dict[str, str] = {
    "moi_so": "Mời số",
    "den_quay_so": "đến quầy số",
    **{f"letter_{k.lower()}": v for k, v in LETTERS.items()},
    **{f"digit_{i}": w for i, w in enumerate(DIGITS)},
    "muoi": "mười",  # 10-19
    "muoi_chuc": "mươi",  # 20, 30...
    "mot_cuoi": "mốt",  # 21, 31...
    "lam": "lăm",  # 15, 25...
}


class AudioError(MotcuaError):
    code = "audio"


def counter_words(counter: str) -> list[str]:
    """A counter name as clip words: a number up to 99 the way it is said, else letter by letter."""
    if counter.isdigit() and 0 < int(counter) < 100:
        n = int(counter)
        tens, ones = divmod(n, 10)
        if tens == 0:
            return [f"digit_{ones}"]
        words = ["muoi"] if tens == 1 else [f"digit_{tens}", "muoi_chuc"]
        if ones == 1 and tens > 1:
            words.append("mot_cuoi")
        elif ones == 5:
            words.append("lam")
        elif ones:
            words.append(f"digit_{ones}")
        return words
    return [f"letter_{c.lower()}" if c.isalpha() else f"digit_{c}" for c in counter if c.isalnum()]


def announcement_words(number: str, counter: str) -> list[str]:
    """B012 at counter 3 -> moi_so letter_b digit_0 digit_1 digit_2 den_quay_so digit_3: the number is
    read letter and digit by digit (as it is printed), the counter as it is said."""
    words = ["moi_so"]
    for char in number:
        words.append(f"letter_{char.lower()}" if char.isalpha() else f"digit_{char}")
    words.append("den_quay_so")
    words.extend(counter_words(counter))
    unknown = [w for w in words if w not in CLIP_WORDS]
    if unknown:
        raise AudioError(f"cannot announce {number!r} at {counter!r}: no words for {unknown}")
    return words


def sentence(number: str, counter: str) -> str:
    """The text espeak-ng speaks (commas give the pauses a person makes)."""
    words = announcement_words(number, counter)
    spoken = [CLIP_WORDS[w] for w in words]
    head, number_part = spoken[0], spoken[1 : 1 + len(number)]
    rest = spoken[1 + len(number) :]
    return f"{head} {number_part[0]}, {' '.join(number_part[1:])}, {' '.join(rest)}"


def _run(args: list[str]) -> None:
    try:
        subprocess.run(args, check=True, capture_output=True, timeout=30)
    except FileNotFoundError as exc:
        raise ConfigError(f"{args[0]} is not installed (apt-get install espeak-ng sox)") from exc
    except subprocess.CalledProcessError as exc:
        raise AudioError(f"{args[0]} failed: {exc.stderr.decode(errors='replace')[-300:]}") from exc


def _speak(text: str, out: Path) -> None:
    raw = out.with_suffix(".raw.wav")
    _run(["espeak-ng", "-v", VOICE, "-s", str(SPEED_WPM), "-w", str(raw), text])
    _run(["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(out)])
    raw.unlink(missing_ok=True)


def _chime(out: Path) -> None:
    """Two soft tones (ding-dong) and a short silence before the words."""
    parts = out.parent / f".chime-{os.getpid()}-{threading.get_ident()}"
    parts.mkdir(exist_ok=True)
    try:
        fmt = ["-r", str(RATE), "-c", "1", "-b", "16"]
        _run(
            [
                "sox",
                "-n",
                *fmt,
                str(parts / "1.wav"),
                "synth",
                "0.22",
                "sine",
                "880",
                "fade",
                "q",
                "0.01",
                "0.22",
                "0.08",
                "vol",
                "0.5",
            ]
        )
        _run(
            [
                "sox",
                "-n",
                *fmt,
                str(parts / "2.wav"),
                "synth",
                "0.45",
                "sine",
                "660",
                "fade",
                "q",
                "0.01",
                "0.45",
                "0.3",
                "vol",
                "0.5",
            ]
        )
        _run(["sox", "-n", *fmt, str(parts / "3.wav"), "trim", "0", "0.25"])
        _run(["sox", str(parts / "1.wav"), str(parts / "2.wav"), str(parts / "3.wav"), str(out)])
    finally:
        shutil.rmtree(parts, ignore_errors=True)


def write_default_clips(folder: Path, *, overwrite: bool = False) -> list[Path]:
    """Every clip of ``CLIP_WORDS`` spoken by espeak-ng into ``folder`` (a start the center replaces
    with its own recordings, same names), plus ``chime.wav``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in CLIP_WORDS.items():
        target = folder / f"{name}.wav"
        if overwrite or not target.exists():
            _speak(text, target)
            written.append(target)
    chime = folder / "chime.wav"
    if overwrite or not chime.exists():
        _chime(chime)
        written.append(chime)
    return written


@dataclass(frozen=True)
class Voice:
    mode: str  # espeak | clips
    clips: Path | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("espeak", "clips"):
            raise ConfigError(f"announcement voice {self.mode!r}: espeak or clips")
        if self.mode == "clips" and (self.clips is None or not self.clips.is_dir()):
            raise ConfigError(f"announcement clips: {self.clips} is not a folder")


class Announcer:
    """Makes (once) and finds the WAV of an announcement; safe to call from many threads/processes."""

    def __init__(self, cache: Path, voice: Voice | None = None) -> None:
        self.cache = cache
        self.voice = voice or Voice("espeak")
        self.cache.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._making: dict[str, threading.Lock] = {}

    def _key(self, number: str, counter: str) -> str:
        stamp = ""
        if self.voice.mode == "clips" and self.voice.clips is not None:
            # a replaced clip makes new announcements (its size and time are part of the key)
            stats = [
                (p.name, p.stat().st_size, p.stat().st_mtime_ns)
                for p in sorted(self.voice.clips.glob("*.wav"))
            ]
            stamp = repr(stats)
        text = f"{self.voice.mode}|{SPEED_WPM}|{number}|{counter}|{stamp}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def chime(self) -> Path:
        if self.voice.mode == "clips" and self.voice.clips and (self.voice.clips / "chime.wav").exists():
            return self.voice.clips / "chime.wav"
        path = self.cache / "chime.wav"
        if not path.exists():
            with self._lock:
                if not path.exists():
                    tmp = self.cache / f".chime-{os.getpid()}.wav"
                    _chime(tmp)
                    os.replace(tmp, path)
        return path

    def announcement(self, number: str, counter: str) -> Path:
        """The WAV for "Mời số {number} đến quầy số {counter}" (made now if it is not cached)."""
        key = self._key(number, counter)
        path = self.cache / f"call-{key}.wav"
        if path.exists():
            return path
        with self._lock:
            lock = self._making.setdefault(key, threading.Lock())
        with lock:
            if not path.exists():
                self._make(number, counter, path)
        return path

    def _make(self, number: str, counter: str, path: Path) -> None:
        with tempfile.TemporaryDirectory(dir=self.cache, prefix=".make-") as work:
            folder = Path(work)
            words = announcement_words(number, counter)
            if self.voice.mode == "espeak":
                speech = [folder / "speech.wav"]
                _speak(sentence(number, counter), speech[0])
            else:
                assert self.voice.clips is not None
                speech = []
                gap = folder / "gap.wav"
                _run(["sox", "-n", "-r", str(RATE), "-c", "1", "-b", "16", str(gap), "trim", "0", "0.08"])
                for i, word in enumerate(words):
                    clip = self.voice.clips / f"{word}.wav"
                    if not clip.exists():  # not recorded by the center: spoken by espeak-ng
                        clip = folder / f"{word}.wav"
                        if not clip.exists():
                            _speak(CLIP_WORDS[word], clip)
                    same = folder / f"w{i}.wav"  # one format, whatever the recording's
                    # leading and trailing silence of a recording cut, so the words follow each other
                    _run(
                        [
                            "sox",
                            str(clip),
                            "-r",
                            str(RATE),
                            "-c",
                            "1",
                            "-b",
                            "16",
                            str(same),
                            "silence",
                            "1",
                            "0.02",
                            "0.5%",
                            "reverse",
                            "silence",
                            "1",
                            "0.02",
                            "0.5%",
                            "reverse",
                        ]
                    )
                    speech += [same, gap]
            tmp = folder / "out.wav"
            _run(["sox", str(self.chime()), *map(str, speech), str(tmp)])
            os.replace(tmp, path)
        log.info("announcement %s at counter %s: %s", number, counter, path.name)
