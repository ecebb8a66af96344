"""What personal data from an ID card looks like, so that it never leaves the kiosk by accident.

One place for the rules every exit shares (docs/privacy.md):

- **keys** (``personal_key``): a payload key that names personal data, in any spelling: ``full_name``,
  ``fullName``, ``FULL-NAME``, Vietnamese ``ho_ten``, ``họ_tên``, ``ngaySinh``, ``so_cccd``, ``dia_chi``...
  A key is cut into words (snake, kebab, camel case; diacritics folded) and refused when a run of its
  words spells a denied name.
- **values** (``personal_value_reason``): a CCCD (12 digits) or old CMND (9 digits) number, an MRZ,
  a card's front QR (``079123456789|123456789|Nguyễn Văn An|01011990|...``), a date that could be a
  birth date next to a name-shaped run of words, or a value of the current citizen session's
  identity (``SESSION_VALUES``, registered by ``kiosk.session`` and removed when it is wiped).
- **text** (``scrub_text``, ``scrub_bytes``): logs lose every such value; a line shaped like a card's
  QR is dropped whole.
- **tracebacks** (``safe_traceback``): where an error happened (types, files, lines), never its
  message, which may quote a scan, a card or a back end.

Standard library only: the app, the agent and the journal (in both processes) use it.
"""

from __future__ import annotations

import functools
import logging
import logging.handlers
import os
import re
import threading
import traceback
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

# -- keys -----------------------------------------------------------------------------------------------

#: a key is refused when a run of its words, joined, is one of these (lowercase, no diacritics)
PERSONAL_KEY_WORDS = frozenset(
    {
        # English
        "name", "fullname", "firstname", "lastname", "surname", "givenname", "givennames", "middlename",
        "citizenname", "holdername", "fathername", "mothername", "spousename", "idnumber", "idno",
        "oldidnumber", "documentnumber", "docnumber", "documentno", "nationalid", "nationalidnumber",
        "personalnumber", "personalid", "citizenid", "identitynumber", "identitycard", "passport",
        "passportnumber", "birthdate", "dateofbirth", "dob", "birthday", "birthplace", "placeofbirth",
        "photo", "face", "faceimage", "portrait", "fingerprint", "mrz", "placeoforigin",
        "placeofresidence", "residence", "address", "homeaddress", "phone", "phonenumber", "mobile",
        "email", "identifyingmarks", "ethnicity", "religion", "sex", "gender", "cardaccessnumber",
        "dg1", "dg2", "dg11", "dg13",
        # Vietnamese (as written on the card and in one-stop systems)
        "cccd", "cmnd", "socccd", "socmnd", "socancuoc", "cancuoc", "cancuoccongdan", "sodinhdanh",
        "madinhdanh", "sodinhdanhcanhan", "hoten", "hovaten", "tencongdan", "ngaysinh", "namsinh",
        "noisinh", "diachi", "quequan", "noithuongtru", "thuongtru", "noicutru", "noiohientai",
        "sodienthoai", "dienthoai", "gioitinh", "dantoc", "tongiao", "quoctich", "hochieu", "sohochieu",
        "anhchandung", "chandung", "dacdiemnhandang", "hotencha", "hotenme", "tencha", "tenme",
        "vochong", "hotenvochong",
    }
)
#: longest key looked at, in words (a key is short; this bounds the runs tried)
_MAX_KEY_WORDS = 8


def _fold(text: str) -> str:
    """Lowercase ASCII letters and digits: diacritics removed, đ -> d."""
    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def key_words(key: str) -> list[str]:
    """``fullName`` -> [full, name]; ``họ_tên`` -> [ho, ten]; ``IDNumber`` -> [id, number]."""
    text = _fold(str(key))
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", text)
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    return [word for word in re.split(r"[^A-Za-z0-9]+", text.lower()) if word]


def personal_key(key: object) -> bool:
    """Whether ``key`` names personal data (``fullName``, ``ho_ten``, ``dob``, ``cccd``...)."""
    return _personal_key(str(key)[:200])


@functools.lru_cache(maxsize=4096)
def _personal_key(key: str) -> bool:
    words = key_words(key)[:_MAX_KEY_WORDS]
    for start in range(len(words)):
        for end in range(start + 1, len(words) + 1):
            if "".join(words[start:end]) in PERSONAL_KEY_WORDS:
                return True
    return False


# -- values ---------------------------------------------------------------------------------------------

#: CCCD personal number (12 digits) or old CMND (9 digits), not part of a longer number
ID_NUMBER = re.compile(r"(?<!\d)(?:\d{12}|\d{9})(?!\d)")
#: an MRZ line or part of one (TD1 lines are 30 characters of A-Z 0-9 <)
MRZ = re.compile(r"[A-Z0-9<]{30,}|[A-Z]{2,}<<[A-Z<]{2,}|(?<![A-Z])I[A-Z<]VNM[A-Z0-9<]{5,}")
#: the front QR of a CCCD: ID12|oldID9|name|ddmmyyyy|sex|residence|ddmmyyyy
CCCD_QR = re.compile(r"(?<!\d)\d{12}\|\d{0,9}\|[^|\n]*\|\d{8}\|")
#: a dossier receipt code ``<agency>-YYMMDD-NNNN``: it leads to a person; the agency part does not
DOSSIER_CODE = re.compile(r"(?<![\w.])([0-9A-Za-z][0-9A-Za-z.]*)-(\d{6})-(\d{4,7})(?!\d)")
_VN_DATE = re.compile(r"(?<!\d)(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?!\d)")
_DDMMYYYY = re.compile(r"(?<!\d)(\d{2})(\d{2})(\d{4})(?!\d)")
#: a bare date, not a time stamp (2026-11-23 11:02:03 and 2026-11-23T11:02 are when, not who)
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?![\dT]| \d{2}:)")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
#: family names of most Vietnamese citizens (folded): an ASCII-only name run starting with one counts
SURNAMES = frozenset(
    {
        "nguyen", "tran", "le", "pham", "hoang", "huynh", "phan", "vu", "vo", "dang", "bui", "do", "ho",
        "ngo", "duong", "ly", "dinh", "doan", "trinh", "truong", "lam", "mai", "cao", "ha", "luu", "to",
        "ta", "luong", "chu", "quach", "thai", "kieu", "tang", "lai", "vuong", "trieu", "khuc", "la",
    }
)


def _valid_date(day: int, month: int, year: int) -> date | None:
    if not 1900 <= year <= 2100:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _is_name_word(word: str) -> bool:
    if len(word) < 2:
        return False
    first, rest = word[0], word[1:]
    return first.isupper() and (rest.islower() or rest.isupper() or not rest)


def _has_diacritic(word: str) -> bool:
    return any(not ("a" <= c.lower() <= "z") for c in word)


def name_runs(text: str) -> Iterator[tuple[int, int]]:
    """Spans of name-shaped runs: 2-7 capitalised words in a row, one of them Vietnamese (diacritics)
    or the first a common family name (``Nguyễn Văn An``, ``TRAN THI BICH NGOC``, ``Hà Nội``)."""
    words = list(_WORD.finditer(text))
    index = 0
    while index < len(words):
        run = [words[index]]
        if not _is_name_word(words[index].group()):
            index += 1
            continue
        while index + len(run) < len(words) and len(run) < 7:
            nxt = words[index + len(run)]
            gap = text[run[-1].end() : nxt.start()]
            if not _is_name_word(nxt.group()) or gap not in (" ", "  ", "\t"):
                break
            run.append(nxt)
        if len(run) >= 2 and (
            any(_has_diacritic(w.group()) for w in run) or _fold(run[0].group()).lower() in SURNAMES
        ):
            yield run[0].start(), run[-1].end()
        index += len(run)


def _birth_dates(text: str, today: date) -> Iterator[tuple[int, int]]:
    """Spans of dates that could be a birth date: Vietnamese dd/mm/yyyy and ddmmyyyy (as on the card
    and its QR) always; ISO dates when they lie more than a year back (today's date is a ticket's day)."""
    for match in _VN_DATE.finditer(text):
        if _valid_date(int(match[1]), int(match[2]), int(match[3])):
            yield match.span()
    for match in _DDMMYYYY.finditer(text):
        if _valid_date(int(match[1]), int(match[2]), int(match[3])):
            yield match.span()
    for match in _ISO_DATE.finditer(text):
        found = _valid_date(int(match[3]), int(match[2]), int(match[1]))
        if found is not None and found < today - timedelta(days=366):
            yield match.span()


class SensitiveValues:
    """Values of the current citizen session (name, its words, birth date): what a process must never
    write out while the session lasts. Thread-safe; counted, so two holders of one value both release."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._phrases: Counter[str] = Counter()
        self._words: Counter[str] = Counter()
        self._pattern: re.Pattern[str] | None = None

    @staticmethod
    def _split(values: Iterable[str]) -> tuple[list[str], list[str]]:
        phrases: list[str] = []
        words: list[str] = []
        for value in values:
            value = unicodedata.normalize("NFC", value).strip()
            if len(value) < 2:
                continue
            phrases.append(value.casefold())
            parts = _WORD.findall(value)
            if len(parts) > 1:
                words.extend(part for part in parts if len(part) >= 2)
        return phrases, words

    def add(self, values: Iterable[str]) -> None:
        phrases, words = self._split(values)
        with self._lock:
            self._phrases.update(phrases)
            self._words.update(words)
            self._pattern = None

    def discard(self, values: Iterable[str]) -> None:
        phrases, words = self._split(values)
        with self._lock:
            self._phrases.subtract(phrases)
            self._words.subtract(words)
            self._phrases = +self._phrases
            self._words = +self._words
            self._pattern = None

    def clear(self) -> None:
        with self._lock:
            self._phrases.clear()
            self._words.clear()
            self._pattern = None

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._phrases)

    def _compiled(self) -> re.Pattern[str] | None:
        """One pattern: the phrases in any case; the words of a name as written or in capitals, as
        whole words (``An`` is a name, ``an error`` is not)."""
        with self._lock:
            if self._pattern is None and (self._phrases or self._words):
                phrases = sorted(self._phrases, key=len, reverse=True)
                words = sorted({form for w in self._words for form in (w, w.upper())}, key=len, reverse=True)
                alternatives = [f"(?i:{re.escape(p)})" for p in phrases]
                alternatives += [rf"(?<!\w){re.escape(w)}(?!\w)" for w in words]
                self._pattern = re.compile("|".join(alternatives))
            return self._pattern

    def search(self, text: str) -> bool:
        pattern = self._compiled()
        return pattern is not None and pattern.search(unicodedata.normalize("NFC", text)) is not None

    def redact(self, text: str, replacement: str = "[redacted]") -> str:
        pattern = self._compiled()
        if pattern is None:
            return text
        return pattern.sub(replacement, unicodedata.normalize("NFC", text))


#: the current citizen session's identity in this process (``kiosk.session`` adds and removes)
SESSION_VALUES = SensitiveValues()


def personal_value_reason(text: str, *, today: date | None = None) -> str | None:
    """Why ``text`` looks like personal data (for an error message, never quoting it), or None."""
    if SESSION_VALUES and SESSION_VALUES.search(text):
        return "a value of the current citizen's identity"
    if len(text) < 8:  # shorter than any number, MRZ, code or date below
        return None
    if "<" not in text and not any(c.isdigit() for c in text):
        return None  # every shape below has digits, except an MRZ's name line (which has "<")
    if ID_NUMBER.search(text):
        return "a CCCD/CMND-shaped number"
    if MRZ.search(text):
        return "an MRZ-shaped text"
    if DOSSIER_CODE.search(text):
        return "a dossier code (it leads to a person)"
    if any(True for _ in _birth_dates(text, today or date.today())) and any(True for _ in name_runs(text)):
        return "a date next to a name"
    return None


def find_personal_data(value: Any, path: str = "payload", *, values: bool = True) -> str | None:
    """The first place in ``value`` (nested dicts and lists) whose key names personal data or, with
    ``values``, whose string (or 9/12-digit integer) looks like it: ``"payload.card.fullName: a key
    that names personal data"``. Never quotes the value."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}"
            if personal_key(key):
                return f"{where}: a key that names personal data"
            found = find_personal_data(item, where, values=values)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = find_personal_data(item, f"{path}[{index}]", values=values)
            if found is not None:
                return found
    elif values and isinstance(value, str):
        reason = personal_value_reason(value)
        if reason is not None:
            return f"{path}: {reason}"
    elif values and type(value) is int and ID_NUMBER.fullmatch(str(value)):
        return f"{path}: a CCCD/CMND-shaped number"
    return None


# -- text: logs -----------------------------------------------------------------------------------------

REDACTED_ID = "[redacted-id]"
REDACTED_MRZ = "[redacted-mrz]"
REDACTED_NAME = "[redacted-name]"
REDACTED_DATE = "[redacted-date]"
REDACTED_DOSSIER = r"\1-[redacted-dossier]"
REDACTED_QR_LINE = "[redacted: a line with an ID card's QR text]"


def _replace_spans(text: str, spans: Iterable[tuple[int, int]], replacement: str) -> str:
    out: list[str] = []
    last = 0
    for start, end in sorted(spans):
        if start < last:
            continue
        out.append(text[last:start])
        out.append(replacement)
        last = end
    out.append(text[last:])
    return "".join(out)


def scrub_line(line: str, *, today: date | None = None) -> str:
    """One line without anything shaped like personal data (a card's QR line goes whole)."""
    if CCCD_QR.search(line):
        return REDACTED_QR_LINE
    line = SESSION_VALUES.redact(line)
    line = ID_NUMBER.sub(REDACTED_ID, line)
    line = MRZ.sub(REDACTED_MRZ, line)
    line = DOSSIER_CODE.sub(REDACTED_DOSSIER, line)
    line = _replace_spans(line, _birth_dates(line, today or date.today()), REDACTED_DATE)
    return _replace_spans(line, name_runs(line), REDACTED_NAME)


def scrub_text(text: str, *, today: date | None = None) -> str:
    return "\n".join(scrub_line(line, today=today) for line in text.split("\n"))


def scrub_bytes(data: bytes) -> bytes:
    """Log bytes (UTF-8; undecodable bytes are replaced) without personal data."""
    return scrub_text(data.decode("utf-8", "replace")).encode("utf-8")


def safe_traceback(exc: BaseException) -> str:
    """Where ``exc`` happened and through which chain, without any exception's message (it may quote
    a scan, a card or a back end's text): ``KeyError (message withheld)`` and the frames."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    chain: list[BaseException] = []
    while current is not None and id(current) not in seen and len(chain) < 10:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    for index, item in enumerate(reversed(chain)):
        if index:
            parts.append("which led to:")
        parts.append("Traceback (most recent call last):")
        for frame in traceback.extract_tb(item.__traceback__):
            parts.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
        kind = type(item)
        parts.append(f"{kind.__module__}.{kind.__qualname__} (message withheld: it may hold citizen input)")
    return "\n".join(parts)


class ScrubbingFormatter(logging.Formatter):
    """A formatter whose output (message, traceback) has no personal data (``scrub_text``)."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub_text(super().format(record))


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Rotating log file created 0600 in a 0700 folder, whatever the process umask."""

    def _open(self) -> Any:
        path = Path(self.baseFilename)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        return os.fdopen(fd, self.mode.replace("w", "a"), encoding=self.encoding, errors=self.errors)


def private_log_handler(path: Path, *, max_bytes: int = 1 << 20, backups: int = 2) -> logging.Handler:
    """The handler of ``<data_dir>/logs/*.log``: private files, scrubbed lines."""
    handler = PrivateRotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    handler.setFormatter(ScrubbingFormatter(LOG_FORMAT))
    return handler


def scrub_all_handlers(logger: logging.Logger | None = None) -> None:
    """Give every handler of ``logger`` (root) a scrubbing formatter (stderr goes to the system journal,
    which stays on the kiosk's disk)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not isinstance(handler.formatter, ScrubbingFormatter):
            fmt = handler.formatter._fmt if handler.formatter is not None else LOG_FORMAT
            handler.setFormatter(ScrubbingFormatter(fmt))


def private_umask() -> int:
    """Files and folders this process creates are its user's alone (0600/0700); returns the old umask."""
    return os.umask(0o077)
