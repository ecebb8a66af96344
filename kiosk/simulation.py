"""Simulate mode: every device is its simulator, driven from ``main.py sim ...`` over the app's
control socket (``sim.*`` commands).

The simulators sit at the lowest honest level: the virtual printer receives the real ESC/POS bytes,
the camera decodes real QR images with the real decoder, and the virtual ID card speaks APDUs to the
real pcscd through vpcd. One exception, written down in docs/simulators.md: "unplugging" the virtual
card reader hides it from the kiosk at the reader-service level, because vpcd's reader stays listed
by pcscd for as long as the driver is loaded.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.errors import DeviceError, MotcuaError
from common.ipc import ControlServer
from drivers.card.errors import ReaderMissingError
from kiosk.config import KioskConfig
from kiosk.errors import KioskError

if TYPE_CHECKING:
    from drivers.card import AccessKey, CardReaderService, IdentityRecord, TestPki, VirtualCard
    from kiosk.effects import Devices

log = logging.getLogger(__name__)

PROFILES_DIR = Path(__file__).resolve().parent.parent / "drivers" / "card" / "profiles"
#: the demo's test PKI, inside data_dir: its CSCA signs every demo card (``sim.citizen``)
DEMO_PKI = "test-pki"


class UnpluggableReader:
    """The card reader service with a switch a technician can flip in a demo ("pull the USB cable")."""

    def __init__(self, service: CardReaderService) -> None:
        self._service = service
        self.plugged = True

    def _check(self) -> None:
        if not self.plugged:
            raise ReaderMissingError("card reader not connected (simulated unplug)")

    def reader_present(self) -> bool:
        return self.plugged and self._service.reader_present()

    def card_present(self) -> bool:
        self._check()
        return self._service.card_present()

    def wait_for_card(self, timeout_s: float) -> bool:
        self._check()
        return self._service.wait_for_card(timeout_s)

    def read_identity(self, keys: Sequence[AccessKey], *, with_photo: bool = False) -> IdentityRecord:
        self._check()
        return self._service.read_identity(keys, with_photo=with_photo)

    def self_test(self) -> dict[str, Any]:
        self._check()
        return self._service.self_test()


def every_device_simulated(config: KioskConfig) -> bool:
    """What ``--simulate`` makes of a configuration: every printer, the scanner and the card reader
    (when enabled) on their simulators. Only then may the control socket carry ``sim.*`` commands: on a
    kiosk with one real device they would let a local client fake scans and card taps."""
    devices = config.devices
    printers = [devices.printer] + ([devices.receipt_printer] if devices.receipt_printer else [])
    return (
        all(p.backend == "simulator" for p in printers)
        and devices.scanner.backend == "simulator"
        and (not devices.card_reader.enabled or devices.card_reader.backend == "simulator")
    )


class SimulatedHardware:
    def __init__(self, config: KioskConfig) -> None:
        self.config = config
        self.work_dir = config.kiosk.data_dir / "sim"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.work_dir.glob("*.png"):  # card QR images of earlier demo citizens
            stale.unlink()
        self.devices: Devices | None = None
        self.card: VirtualCard | None = None
        self._card_lock = threading.Lock()
        self.reader: UnpluggableReader | None = None
        self._pki: TestPki | None = None

    def demo_pki(self) -> TestPki:
        """The test PKI that signs the demo cards (created on first use, then reused)."""
        if self._pki is None:
            from drivers.card import TestPki

            self._pki = TestPki.load_or_create(self.config.kiosk.data_dir / DEMO_PKI)
        return self._pki

    def trust_dir(self) -> Path | None:
        """The configured trust folder as the simulator reads it: a relative path lies in data_dir."""
        configured = self.config.devices.card_reader.trust_dir
        if configured is None or configured.is_absolute():
            return configured
        return self.config.kiosk.data_dir / configured

    def start_card_reader(self) -> None:
        """pcscd with vpcd must run before the reader service opens a PC/SC context; the trust folder
        must hold the test CSCA before the service reads it."""
        from drivers.card import ensure_pcscd

        ensure_pcscd()
        self._fill_trust_dir()

    def _fill_trust_dir(self) -> None:
        """Put the demo CSCA into a relative (data_dir) trust folder; an absolute one is the
        technician's and is left alone (demo cards then verify only if it holds the test CSCA)."""
        trust = self.trust_dir()
        configured = self.config.devices.card_reader.trust_dir
        if trust is None or configured is None or configured.is_absolute():
            return
        pki = self.demo_pki()
        if trust.resolve() != pki.trust_dir.resolve():
            from cryptography.hazmat.primitives.serialization import Encoding

            trust.mkdir(parents=True, exist_ok=True)
            (trust / "test-csca.pem").write_bytes(pki.csca_cert.public_bytes(Encoding.PEM))

    def attach(self, devices: Devices) -> None:
        self.devices = devices
        if devices.card is not None:
            devices.card.trust_dir = self.trust_dir()  # relative paths lie in data_dir (simulate mode)
            self.reader = UnpluggableReader(devices.card)
            devices.card = self.reader  # type: ignore[assignment]

    # -- the commands ------------------------------------------------------------------------------
    def register(self, control: ControlServer) -> None:
        """The ``sim.*`` commands, only when every device is simulated (security review)."""
        if not every_device_simulated(self.config):
            log.info("some devices are real: the control socket offers no sim.* commands")
            return
        control.register("sim.printer", self.printer)
        control.register("sim.scanner", self.scanner)
        control.register("sim.reader", self.reader_switch)
        control.register("sim.citizen", self.citizen)
        control.register("sim.status", lambda args: self.status())

    def _virtual_printer(self, role: str = "ticket") -> Any:
        if self.devices is None:
            raise DeviceError("no devices attached")
        printer = self.devices.receipt_printer if role == "receipt" else self.devices.printer
        simulator = getattr(printer, "simulator", None)
        if simulator is None:
            raise DeviceError(f"the {role} printer is not a virtual printer")
        return simulator

    def _virtual_scanner(self) -> Any:
        scanner = self.devices.scanner if self.devices else None
        if scanner is None or not hasattr(scanner, "show_image"):
            raise DeviceError("the scanner is not the simulated scanner")
        return scanner

    def printer(self, args: dict[str, Any]) -> dict[str, Any]:
        role = str(args.get("role", "ticket"))
        if role not in ("ticket", "receipt"):
            raise ValueError("role must be ticket or receipt")
        printer = self._virtual_printer(role)
        if "paper" in args:
            if args["paper"] not in ("ok", "near_end", "out"):
                raise ValueError("paper must be ok, near_end or out")
            printer.set_paper(args["paper"])
        if "cover_open" in args:
            printer.set_cover_open(bool(args["cover_open"]))
        if "online" in args:
            printer.set_online(bool(args["online"]))
        last = printer.last_png
        return {
            "status": str(printer.status),
            "last_png": str(last) if last else None,
            "printed": len(printer.printed),
        }

    def scanner(self, args: dict[str, Any]) -> dict[str, Any]:
        scanner = self._virtual_scanner()
        if "present" in args:
            scanner.set_present(bool(args["present"]))
        if "show" in args:
            scanner.show_image(Path(str(args["show"])))
        if "text" in args:
            scanner.type_text(str(args["text"]))
        if args.get("clear"):
            scanner.clear()  # nothing in front of the camera any more
        return {"present": scanner.present()}

    def reader_switch(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.reader is None:
            raise DeviceError("no simulated card reader")
        if "present" in args:
            self.reader.plugged = bool(args["present"])
        return {"present": self.reader.plugged}

    def citizen(self, args: dict[str, Any]) -> dict[str, Any]:
        """A citizen with an ID card: show its front QR to the camera and/or lay it on the reader."""
        from drivers.card import CardFaults, VirtualCard, load_profile

        with self._card_lock:
            if args.get("remove"):
                if self.card is not None:
                    self.card.remove()
                    self.card.close()
                    self.card = None
                # The citizen walks away with the card: its QR is no longer in front of the camera.
                self._virtual_scanner().clear()
                return {"card": "removed"}
            profile = load_profile(self._profile_path(str(args.get("profile", "adult"))))
            done: dict[str, Any] = {}
            if args.get("show_qr", True):
                image = self._qr_image(profile.qr_text)
                self._virtual_scanner().show_image(image)
                done["qr_shown"] = True
            if args.get("insert", True):
                if self.card is not None:
                    self.card.remove()
                    self.card.close()
                faults = CardFaults(**args.get("faults", {}))
                self.card = VirtualCard(profile, self.demo_pki(), faults)
                self.card.insert(port=self.config.devices.card_reader.vpcd_port)
                done["card"] = "inserted"
            return done

    @staticmethod
    def _profile_path(name: str) -> Path:
        path = Path(name)
        if path.exists():
            return path
        candidate = PROFILES_DIR / f"{name}.toml"
        if candidate.exists():
            return candidate
        known = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.toml")))
        raise KioskError(f"no card profile {name!r}; demo profiles: {known}")

    def _qr_image(self, text: str) -> Path:
        import segno

        # Fictional demo data only; the work dir is emptied at every start.
        with tempfile.NamedTemporaryFile(dir=self.work_dir, suffix=".png", delete=False) as handle:
            path = Path(handle.name)
        segno.make(text, error="m", encoding="utf-8").save(str(path), scale=6, border=4)
        return path

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        try:
            result["printer"] = self.printer({})
        except MotcuaError as exc:
            result["printer"] = {"error": exc.message}
        result["reader_plugged"] = self.reader.plugged if self.reader else None
        result["card_inserted"] = self.card is not None
        return result

    def close(self) -> None:
        with self._card_lock:
            if self.card is not None:
                self.card.close()
                self.card = None
