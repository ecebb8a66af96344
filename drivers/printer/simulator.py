"""The virtual printer: takes the real ESC/POS bytes, answers DLE EOT from a modelled state, and draws
each ticket (cut to cut) into a PNG, so demos, technicians and tests see what paper would show.

It interprets what this package and python-escpos send (text, GS v 0, GS ( k QR, ESC J, cuts, code
pages); anything else is skipped and listed in ``unknown`` so a test can insist on an empty list.
Reachable in-process (:class:`SimulatorTransport`) or over TCP like a network printer on port 9100.

Its PNGs show what the paper shows, a citizen's name included, so they are kept only as long as
asked: the last ``keep_last`` and none older than ``keep_s`` seconds (``prune``, also at start and
after every ticket), files 0600 in a 0700 folder; ``wipe_outputs`` deletes given ones at once (the
kiosk does it for a ticket with a name when the citizen's session ends). ``printed`` and ``torn``
stay the history of file names; a file pruned or wiped is gone from disk.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import TYPE_CHECKING

from . import commands as cmd
from .encode import decode_native
from .layout import qr_image
from .model import PAPER_STATES, Paper, PrinterStatus

if TYPE_CHECKING:
    from PIL.Image import Image

log = logging.getLogger(__name__)

#: ESC t n -> Python codec, as on an Epson TM-T20II (python-escpos capabilities: 52 = CP1258)
DEFAULT_CODEPAGES = {0: "cp437", 16: "cp1252", 52: "cp1258"}
_CHUNK = 64  # bytes processed per step while modelling a serial line, so state can change mid-print


class _NeedMore(Exception):
    """The buffer ends inside a command; wait for more bytes."""


class VirtualPrinter:
    """A thermal receipt printer in software, with the states a kiosk must cope with."""

    def __init__(
        self,
        output_dir: str | Path,
        *,
        width_dots: int = 576,
        line_baud: int = 0,
        units_per_dot: int = 1,
        codepages: dict[int, str] | None = None,
        name: str = "ticket",
        keep_last: int = 0,
        keep_s: float = 0.0,
    ) -> None:
        """``keep_last``/``keep_s``: how many rendered tickets to keep and for how long (0: no bound)."""
        self.output_dir = Path(output_dir)
        self.width = width_dots
        self.line_baud = line_baud
        self.units_per_dot = units_per_dot
        self.codepages = dict(DEFAULT_CODEPAGES if codepages is None else codepages)
        self.name = name
        self.printed: list[Path] = []
        self.torn: list[Path] = []
        self.unknown: list[bytes] = []
        #: every command interpreted, by name ("ESC a", "GS v 0", "LF", "text"...): what a program did
        self.commands_seen: Counter[str] = Counter()
        #: how often it was asked for its status (DLE EOT 1 starts each of the printer's status queries)
        self.status_queries = 0
        self.text_lines: list[str] = []
        self.bytes_received = 0
        self._lock = threading.RLock()
        self._paper: Paper = "ok"
        self._cover_open = False
        self._online = True
        self._paper_left: int | None = None
        self._buffer = bytearray()
        self._rows: list[bytearray] = []
        self._job_torn = False
        self.keep_last = keep_last
        self.keep_s = keep_s
        # continue numbering after a restart instead of overwriting earlier tickets
        earlier = sorted(self.output_dir.glob(f"{name}-[0-9][0-9][0-9][0-9]*.png"))
        taken = [int(p.name[len(name) + 1 :][:4]) for p in earlier]
        self._seq = itertools.count(max(taken, default=0) + 1)
        #: every output in order (printed and torn), for ``outputs_since``
        self._history: list[Path] = []
        #: files on disk this printer answers for: (written at, path), oldest first
        self._on_disk: list[tuple[float, Path]] = []
        for path in earlier:
            try:
                self._on_disk.append((path.stat().st_mtime, path))
            except OSError:
                continue
        self._on_disk.sort()
        self.prune()
        self._qr_module = 3
        self._qr_ecc = "L"
        self._qr_data = b""
        self._server: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._init_modes()

    # --- state a technician or a test flips -----------------------------------------------------------
    def set_paper(self, state: Paper) -> None:
        if state not in PAPER_STATES:
            raise ValueError(f"paper state {state!r} not in {PAPER_STATES}")
        with self._lock:
            self._paper = state
            if state != "out":
                self._paper_left = None

    def set_cover_open(self, is_open: bool) -> None:
        with self._lock:
            self._cover_open = is_open

    def set_online(self, online: bool) -> None:
        """False models a printer switched off or unplugged: no status answer, nothing printed."""
        with self._lock:
            self._online = online

    def run_out_after(self, dots: int) -> None:
        """The roll ends after ``dots`` more rows of paper (to tear a ticket mid-print)."""
        with self._lock:
            self._paper_left = dots

    @property
    def status(self) -> PrinterStatus:
        with self._lock:
            return PrinterStatus(online=self._online, paper=self._paper, cover_open=self._cover_open)

    @property
    def last_png(self) -> Path | None:
        with self._lock:
            return self.printed[-1] if self.printed else None

    # --- the wire -------------------------------------------------------------------------------------
    def receive(self, data: bytes) -> bytes:
        """Take bytes as they come off the line; returns the printer's answers (real-time status)."""
        if not self.line_baud:
            return self._receive_now(data)
        answers = bytearray()
        for start in range(0, len(data), _CHUNK):
            chunk = data[start : start + _CHUNK]
            time.sleep(len(chunk) * 10 / self.line_baud)  # 8N1: ten bits per byte
            answers += self._receive_now(chunk)
        return bytes(answers)

    def _receive_now(self, data: bytes) -> bytes:
        with self._lock:
            if not self._online:
                return b""
            self.bytes_received += len(data)
            self._buffer += data
            answers = bytearray()
            pos = 0
            while pos < len(self._buffer):
                try:
                    pos = self._step(pos, answers)
                except _NeedMore:
                    break
            del self._buffer[:pos]
            return bytes(answers)

    # --- interpreter ----------------------------------------------------------------------------------
    def _init_modes(self) -> None:
        self._align = 0
        self._codepage = 0
        self._size = (1, 1)
        self._bold = False
        self._line_spacing = 30
        self._line = bytearray()

    def _need(self, pos: int, count: int) -> bytes:
        if pos + count > len(self._buffer):
            raise _NeedMore
        return bytes(self._buffer[pos : pos + count])

    def _step(self, pos: int, answers: bytearray) -> int:
        b = self._buffer[pos]
        if b == 0x10:
            head = self._need(pos, 3)
            if head[1] == 0x04:
                self.commands_seen["DLE EOT"] += 1
                self.status_queries += head[2] == 1
                answers += self._status_byte(head[2])
                return pos + 3
            self._unknown(head)
            return pos + 3
        if b == 0x1B:
            return self._esc(pos)
        if b == 0x1D:
            return self._gs(pos)
        if b == 0x0A:
            self.commands_seen["LF"] += 1
            self._print_line()
            return pos + 1
        if b < 0x20:
            if b != 0x0D:
                self._unknown(bytes((b,)))
            else:
                self.commands_seen["CR"] += 1
            return pos + 1
        self.commands_seen["text"] += 1
        self._line.append(b)
        return pos + 1

    def _esc(self, pos: int) -> int:
        op = self._need(pos, 2)[1]
        if op == ord("@"):
            self.commands_seen["ESC @"] += 1
            self._init_modes()
            return pos + 2
        if op == ord("2"):
            self.commands_seen["ESC 2"] += 1
            self._line_spacing = 30
            return pos + 2
        arg = self._need(pos, 3)[2]
        if op in b"aJdtE3!-MGVr":
            self.commands_seen[f"ESC {chr(op)}"] += 1
        if op == ord("a"):
            self._align = arg % 48 if arg >= 48 else arg
        elif op == ord("J"):
            self._print_line(only_if_pending=True)
            self._feed(arg // self.units_per_dot)
        elif op == ord("d"):
            self._print_line()
            self._feed(max(0, arg - 1) * self._line_spacing)
        elif op == ord("t"):
            self._codepage = arg
        elif op == ord("E"):
            self._bold = bool(arg & 1)
        elif op == ord("3"):
            self._line_spacing = arg
        elif op in b"!-MGVr":
            pass  # print mode, underline, font, double strike: not drawn by the model
        else:
            self._unknown(bytes((0x1B, op, arg)))
        return pos + 3

    def _gs(self, pos: int) -> int:
        op = self._need(pos, 2)[1]
        if op == ord("v"):
            self.commands_seen["GS v 0"] += 1
            head = self._need(pos, 8)
            width_bytes = head[4] | head[5] << 8
            height = head[6] | head[7] << 8
            data = self._need(pos + 8, width_bytes * height)
            scale = 2 if head[3] % 48 == 3 else 1
            self._raster(width_bytes, height, data, scale)
            return pos + 8 + width_bytes * height
        if op == ord("("):
            head = self._need(pos, 5)
            size = head[3] | head[4] << 8
            body = self._need(pos + 5, size)
            if head[2] == ord("k"):
                self.commands_seen["GS ( k"] += 1
                self._qr_command(body)
            else:
                self._unknown(head)
            return pos + 5 + size
        if op == ord("V"):
            mode = self._need(pos, 3)[2]
            length = 4 if mode in (65, 66) else 3
            self._need(pos, length)
            self.commands_seen["GS V"] += 1
            self._cut()
            return pos + length
        if op in b"LWP":
            self._need(pos, 4)
            self.commands_seen[f"GS {chr(op)}"] += 1
            return pos + 4
        arg = self._need(pos, 3)[2]
        if op in b"!Bbhwf|H":
            self.commands_seen[f"GS {chr(op)}"] += 1
        if op == ord("!"):
            self._size = ((arg >> 4 & 7) + 1, (arg & 7) + 1)
        elif op not in b"Bbhwf|H":
            self._unknown(bytes((0x1D, op, arg)))
        return pos + 3

    def _unknown(self, command: bytes) -> None:
        if len(self.unknown) < 1000:  # a long-running demo printer must not grow without bound
            self.unknown.append(command)

    def _status_byte(self, n: int) -> bytes:
        answer = cmd.encode_status(self.status)
        return {1: answer[0:1], 2: answer[1:2], 4: answer[2:3]}.get(n, b"\x12")

    # --- paper ----------------------------------------------------------------------------------------
    def _can_print(self) -> bool:
        return self._paper != "out" and not self._cover_open

    def _add_rows(self, rows: list[bytearray]) -> None:
        for row in rows:
            if not self._can_print():
                self._job_torn = True
                return
            self._rows.append(row)
            if self._paper_left is not None:
                self._paper_left -= 1
                if self._paper_left <= 0:
                    self._paper = "out"

    def _feed(self, dots: int) -> None:
        stride = self.width // 8
        self._add_rows([bytearray(stride) for _ in range(dots)])

    def _place(self, width_dots: int) -> int:
        """Left edge of an object ``width_dots`` wide under the current justification (ESC a)."""
        if self._align == 1:
            return max(0, (self.width - width_dots) // 2)
        if self._align == 2:
            return max(0, self.width - width_dots)
        return 0

    def _blit(self, image: Image) -> None:
        """Put a PIL "1" image (0 = ink) on the paper at the current justification."""
        x0 = self._place(image.width)
        from PIL import Image as PILImage

        canvas = PILImage.new("1", (self.width, image.height), 1)
        canvas.paste(image, (x0, 0))
        raw = canvas.tobytes()
        stride = self.width // 8
        self._add_rows([bytearray(v ^ 0xFF for v in raw[i : i + stride]) for i in range(0, len(raw), stride)])

    def _raster(self, width_bytes: int, height: int, data: bytes, scale: int) -> None:
        from PIL import Image as PILImage

        self._print_line(only_if_pending=True)
        image = PILImage.frombytes("1", (width_bytes * 8, height), bytes(v ^ 0xFF for v in data))
        if scale != 1:
            image = image.resize((image.width * scale, image.height * scale), PILImage.Resampling.NEAREST)
        if image.width > self.width:
            image = image.crop((0, 0, self.width, image.height))  # beyond the head: not printed
        self._blit(image)

    def _qr_command(self, body: bytes) -> None:
        """GS ( k for QR codes. What a printer cannot act on (a body too short, a value out of range, more
        data than a QR symbol holds) is ignored and recorded in ``unknown``, as a printer ignores it."""
        fn = body[1] if len(body) >= 2 else None
        arg = body[2] if len(body) >= 3 else None
        if fn is None or body[0] != 49:
            self._unknown(b"\x1d(k" + body[:2])
        elif fn in (67, 69, 80) and not _qr_argument_ok(fn, arg):
            self._unknown(b"\x1d(k" + body[:3])
        elif fn == 67:
            self._qr_module = body[2]
        elif fn == 69:
            self._qr_ecc = "LMQH"[body[2] - 48]
        elif fn == 80:
            self._qr_data = body[3:]
        elif fn == 81:
            self._print_line(only_if_pending=True)
            if self._qr_data:
                try:
                    symbol = qr_image(self._qr_data, self._qr_module, self._qr_ecc)
                except ValueError:  # segno.DataOverflowError: no QR version holds the data
                    self._unknown(b"\x1d(k" + body[:2])
                    return
                self._blit(symbol)
        # other functions (65: the model, 82: read back the size) do not change what is drawn

    def _print_line(self, *, only_if_pending: bool = False) -> None:
        """LF: draw the buffered text in the printer's own font (native mode), then advance."""
        if only_if_pending and not self._line:
            return
        encoding = self.codepages.get(self._codepage, "cp437")
        text = decode_native(bytes(self._line), encoding)
        self._line.clear()
        wmul, hmul = self._size
        self.text_lines.append(text)
        if text:
            self._blit(_render_text(text, wmul, hmul, self._bold))
            self._feed(max(0, self._line_spacing - 24 * hmul))
        else:
            self._feed(self._line_spacing)

    def _cut(self) -> None:
        """End of a ticket: save it; a ticket the paper end or cover interrupted goes to ``torn``."""
        self._print_line(only_if_pending=True)
        rows, torn = self._rows, self._job_torn
        self._rows, self._job_torn = [], False
        if not rows and not torn:
            return
        self.output_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        seq = next(self._seq)
        path = self.output_dir / f"{self.name}-{seq:04d}{'-torn' if torn else ''}.png"
        if rows:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                self._image_of(rows).save(handle, format="PNG")
            self._on_disk.append((time.time(), path))
        (self.torn if torn else self.printed).append(path)
        self._history.append(path)
        self.prune()

    # --- retention ------------------------------------------------------------------------------------
    def output_mark(self) -> int:
        """A mark for ``outputs_since``: how many tickets (printed or torn) came out so far."""
        with self._lock:
            return len(self._history)

    def outputs_since(self, mark: int) -> list[Path]:
        with self._lock:
            return list(self._history[mark:])

    def wipe_outputs(self, paths: list[Path]) -> None:
        """Delete these renderings now (a ticket with a citizen's name, at the end of the visit)."""
        with self._lock:
            doomed = set(paths)
            self._on_disk = [(at, p) for at, p in self._on_disk if p not in doomed]
        for path in paths:
            path.unlink(missing_ok=True)

    def prune(self) -> int:
        """Delete renderings beyond ``keep_last`` or older than ``keep_s``; returns how many went."""
        with self._lock:
            doomed: list[Path] = []
            if self.keep_s > 0:
                cutoff = time.time() - self.keep_s
                while self._on_disk and self._on_disk[0][0] < cutoff:
                    doomed.append(self._on_disk.pop(0)[1])
            if self.keep_last > 0:
                while len(self._on_disk) > self.keep_last:
                    doomed.append(self._on_disk.pop(0)[1])
        for path in doomed:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                log.error("virtual printer: cannot delete %s: %s", path.name, exc)
        return len(doomed)

    def _image_of(self, rows: list[bytearray]) -> Image:
        from PIL import Image as PILImage

        raw = b"".join(bytes(v ^ 0xFF for v in row) for row in rows)
        return PILImage.frombytes("1", (self.width, len(rows)), raw)

    # --- TCP 9100 -------------------------------------------------------------------------------------
    def serve_tcp(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen like a network printer (raw port 9100; 0 = any free port); returns the bound address."""
        server = socket.create_server((host, port))
        server.settimeout(0.2)
        self._server = server
        thread = threading.Thread(target=self._accept_loop, name=f"vprinter-{self.name}", daemon=True)
        thread.start()
        self._threads.append(thread)
        bound = server.getsockname()
        return bound[0], bound[1]

    def _accept_loop(self) -> None:
        server = self._server
        while server is not None and self._server is server:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            thread = threading.Thread(target=self._serve_conn, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve_conn(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(0.2)
            while self._server is not None:
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                answer = self.receive(data)
                if answer:
                    try:
                        conn.sendall(answer)
                    except OSError:
                        return

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for thread in self._threads:
            thread.join(timeout=2)
        self._threads.clear()


def _render_text(text: str, wmul: int, hmul: int, bold: bool) -> Image:
    """A line in the model's "font A" (12x24 cells), magnified like GS !."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    from . import fonts

    font = fonts.load("bold" if bold else "regular", 17)
    cell = PILImage.new("1", (12 * len(text), 24), 1)
    draw = ImageDraw.Draw(cell)
    for i, ch in enumerate(text):
        length = font.getlength(ch)
        draw.text((i * 12 + (12 - length) / 2, 19), ch, font=font, fill=0, anchor="ls")
    if (wmul, hmul) != (1, 1):
        cell = cell.resize((cell.width * wmul, 24 * hmul), PILImage.Resampling.NEAREST)
    return cell


class SimulatorTransport:
    """In-process wire to a :class:`VirtualPrinter`: answers queue up until read, like a serial line."""

    def __init__(self, printer: VirtualPrinter) -> None:
        self.printer = printer
        self._answers: deque[int] = deque()
        self._cond = threading.Condition()

    def write(self, data: bytes) -> None:
        answer = self.printer.receive(data)
        if answer:
            with self._cond:
                self._answers.extend(answer)
                self._cond.notify_all()

    def read(self, count: int, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._answers) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return bytes(self._answers.popleft() for _ in range(min(count, len(self._answers))))

    def drain(self) -> bytes:
        with self._cond:
            stale = bytes(self._answers)
            self._answers.clear()
            return stale

    def reopen(self) -> None:
        """Nothing to reconnect: the in-process wire cannot break."""

    def close(self) -> None:
        """Nothing to release: the virtual printer outlives its wires."""


def _qr_argument_ok(fn: int, arg: int | None) -> bool:
    """The range a printer accepts for GS ( k's module size (67), error level (69) and stored data (80)."""
    if arg is None:
        return False
    return {67: 1 <= arg <= 16, 69: 48 <= arg <= 51}.get(fn, True)
