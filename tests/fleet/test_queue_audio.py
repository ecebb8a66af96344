"""The hall's announcements are real audio made offline: espeak-ng's Vietnamese voice, or the center's
own clips (replaceable files), after a chime; checked with sox (length, not silence)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from fleet.queue.audio import (
    Announcer,
    Voice,
    announcement_words,
    counter_words,
    sentence,
    write_default_clips,
)


def sox_stat(path: Path) -> dict[str, float]:
    out = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, text=True, check=True).stderr
    values = {}
    for line in out.splitlines():
        name, _, value = line.partition(":")
        if re.fullmatch(r"\s*-?[\d.]+(e-?\d+)?\s*", value):
            values[name.strip()] = float(value)
    return values


def segment_rms(path: Path, start: float, length: float) -> float:
    out = subprocess.run(
        ["sox", str(path), "-n", "trim", str(start), str(length), "stat"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    return float(re.search(r"RMS\s+amplitude:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def test_the_words_of_an_announcement() -> None:
    assert sentence("B012", "3") == "Mời số bê, không một hai, đến quầy số ba"
    assert counter_words("15") == ["muoi", "lam"] and counter_words("21") == [
        "digit_2",
        "muoi_chuc",
        "mot_cuoi",
    ]
    assert counter_words("10") == ["muoi"] and counter_words("3A") == ["digit_3", "letter_a"]
    assert announcement_words("A805", "12") == [
        "moi_so",
        "letter_a",
        "digit_8",
        "digit_0",
        "digit_5",
        "den_quay_so",
        "muoi",
        "digit_2",
    ]


def test_espeak_announcement_is_a_chime_then_speech(tmp_path: Path) -> None:
    announcer = Announcer(tmp_path / "cache", Voice("espeak"))
    path = announcer.announcement("B012", "3")
    assert path.read_bytes()[:4] == b"RIFF"
    stat = sox_stat(path)
    assert 3.0 < stat["Length (seconds)"] < 9.0, stat
    assert stat["RMS     amplitude"] > 0.05  # not silence
    assert segment_rms(path, 0.0, 0.2) > 0.1  # the chime first
    assert segment_rms(path, 1.2, 1.5) > 0.02  # then words
    assert announcer.announcement("B012", "3") == path  # cached: a recall is the same file, spoken again
    other = announcer.announcement("B013", "3")
    assert other != path and other.read_bytes() != path.read_bytes()


def test_the_centers_clips_are_used_and_replaceable(tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    written = write_default_clips(clips)
    assert len(written) == len(list(clips.glob("*.wav"))) >= 40
    announcer = Announcer(tmp_path / "cache", Voice("clips", clips))
    first = announcer.announcement("C007", "2")
    before = sox_stat(first)
    assert before["RMS     amplitude"] > 0.05 and 2.0 < before["Length (seconds)"] < 9.0
    # the center records its own "đến quầy số" (here a 1.5 s tone stands for the recording)
    subprocess.run(
        [
            "sox",
            "-n",
            "-r",
            "44100",
            "-c",
            "2",
            str(clips / "den_quay_so.wav"),
            "synth",
            "1.5",
            "sine",
            "440",
            "vol",
            "0.4",
        ],
        check=True,
    )
    replaced = announcer.announcement("C007", "2")
    assert replaced != first  # a new recording makes new announcements
    after = sox_stat(replaced)
    assert after["Length (seconds)"] != before["Length (seconds)"]
    (clips / "digit_7.wav").unlink()  # a clip the center did not record is spoken by espeak-ng
    assert sox_stat(announcer.announcement("C007", "2"))["RMS     amplitude"] > 0.05
