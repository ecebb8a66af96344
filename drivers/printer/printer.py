"""TicketPrinter: check status, send one ticket's bytes, check status again, report or raise.

A print that raises did not happen as far as the caller is concerned: the number is not counted as
issued (reprint or void it). Status changes are reported to ``on_status`` so the app can journal
device events (paper out / near end) for the fleet; :func:`device_event` maps them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from common.errors import DeviceError

from . import commands as cmd
from .errors import PrinterError, failure
from .model import DocumentContent, PrinterConfig, PrinterStatus, PrintReport, TicketContent
from .simulator import SimulatorTransport, VirtualPrinter
from .transport import Transport, open_transport

log = logging.getLogger(__name__)
StatusListener = Callable[[PrinterStatus | None, PrinterStatus], None]


class TicketPrinter:
    """One configured printer (by role); thread-safe, so a health check may run beside a print."""

    def __init__(
        self,
        config: PrinterConfig,
        transport: Transport,
        *,
        simulator: VirtualPrinter | None = None,
        on_status: StatusListener | None = None,
    ) -> None:
        self.config = config
        self.simulator = simulator
        self.on_status = on_status
        self.last_status: PrinterStatus | None = None
        self._transport = transport
        self._lock = threading.RLock()

    # --- status ---------------------------------------------------------------------------------------
    def status(self) -> PrinterStatus:
        """DLE EOT 1, 2, 4 in one write; silence within ``status_timeout`` means offline."""
        with self._lock:
            try:
                answer = self._query()
            except DeviceError as exc:
                # The wire broke (printer power-cycled, network printer rebooted): connect once more.
                log.info("%s printer: %s; reconnecting", self.config.role, exc.message)
                try:
                    self._transport.reopen()
                    answer = self._query()
                except DeviceError as again:
                    log.warning("%s printer unreachable: %s", self.config.role, again.message)
                    answer = b""
            status = cmd.parse_status(answer)
            self._note(status)
            return status

    def _query(self) -> bytes:
        stale = self._transport.drain()
        if stale:
            # Some Epson models answer real-time commands found inside raster data (bytes 10 04 n).
            log.debug("%s: dropped %d stale status bytes", self.config.role, len(stale))
        self._transport.write(cmd.STATUS_QUERY)
        return self._transport.read(3, self.config.status_timeout)

    def _note(self, status: PrinterStatus) -> None:
        old, self.last_status = self.last_status, status
        if old == status or self.on_status is None:
            return
        try:
            self.on_status(old, status)
        except Exception:  # a listener's bug must not stop the citizen's ticket
            log.exception("printer status listener failed")

    # --- printing -------------------------------------------------------------------------------------
    def render(self, content: TicketContent | DocumentContent) -> bytes:
        """The exact bytes :meth:`print_ticket` / :meth:`print_document` would send."""
        from .encode import native_program, raster_program
        from .layout import RasterLayout, document_elements, ticket_elements

        elements = (
            ticket_elements(content) if isinstance(content, TicketContent) else document_elements(content)
        )
        if self.config.mode == "native":
            return native_program(elements, self.config)
        layout = RasterLayout(self.config.width_dots, self.config.qr_module_dots)
        return raster_program(layout.blocks(elements), self.config)

    def check_ready(self) -> PrinterStatus:
        """The status, or the typed failure (paper out, cover open, offline) when it cannot print now.

        A caller that must decide before printing (the kiosk takes a number only when the printer can
        print it) asks this, then prints with ``checked=True``: one status query before, one after.
        """
        status = self.status()
        if status.problem:
            raise failure(status, "before", self._device())
        return status

    def print_ticket(self, content: TicketContent, *, checked: bool = False) -> PrintReport:
        return self._print(content, checked)

    def print_document(self, content: DocumentContent, *, checked: bool = False) -> PrintReport:
        return self._print(content, checked)

    def print_raw(self, program: bytes) -> PrintReport:
        """Send a prepared program with the same checks (technician test pages, benchmarks)."""
        return self._send(program, time.perf_counter(), checked=False)

    def _print(self, content: TicketContent | DocumentContent, checked: bool) -> PrintReport:
        started = time.perf_counter()
        return self._send(self.render(content), started, checked)

    def _device(self) -> str:
        return f"{self.config.role} printer ({self.config.describe()})"

    def _send(self, program: bytes, started: float, checked: bool) -> PrintReport:
        """Write ``program``; ``checked``: the caller asked ``check_ready`` just before (no second query)."""
        device = self._device()
        with self._lock:
            if not checked:
                self.check_ready()
            printed_before = len(self.simulator.printed) if self.simulator else 0
            self._transport.write(program)
            after = self.status()
            if after.problem:
                raise failure(after, "after", device)
            png: Path | None = None
            if self.simulator is not None:
                if len(self.simulator.printed) <= printed_before:
                    raise PrinterError(f"{device}: the ticket did not come out (torn or not cut)")
                png = self.simulator.last_png
        return PrintReport(len(program), time.perf_counter() - started, after, png)

    def close(self) -> None:
        with self._lock:
            self._transport.close()

    def __enter__(self) -> TicketPrinter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_printer(config: PrinterConfig, *, on_status: StatusListener | None = None) -> TicketPrinter:
    """Open the configured backend. A real printer that cannot be opened raises
    PrinterUnavailableError naming it; there is never a silent fall back to the simulator.
    """
    if config.backend == "simulator":
        sim = VirtualPrinter(
            Path(config.output_dir),
            width_dots=config.width_dots,
            line_baud=config.line_baud,
            units_per_dot=config.feed_units_per_dot,
            name=config.role,
            keep_last=config.output_keep_last,
            keep_s=config.output_keep_s,
        )
        return TicketPrinter(config, SimulatorTransport(sim), simulator=sim, on_status=on_status)
    return TicketPrinter(config, open_transport(config), on_status=on_status)


def open_printers(
    configs: Sequence[PrinterConfig], *, on_status: StatusListener | None = None
) -> dict[str, TicketPrinter]:
    """Several printers of one kiosk by role ("ticket", "receipt"); one role once."""
    out: dict[str, TicketPrinter] = {}
    try:
        for config in configs:
            if config.role in out:
                raise PrinterError(f"two printers configured for role {config.role!r}")
            out[config.role] = open_printer(config, on_status=on_status)
    except Exception:
        for printer in out.values():
            printer.close()
        raise
    return out
