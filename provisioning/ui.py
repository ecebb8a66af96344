"""What the technician reads: every step says what it does, and when it fails what to do, in Vietnamese
and English; long work shows a progress bar; ``--json`` prints one JSON document instead (scripts).

Texts live in ``TEXTS`` (step keys) and ``HINTS`` (what to do, by error code or refusal reason); a test
checks that every key the provisioning code uses has both languages.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

#: step key -> (Vietnamese, English)
TEXTS: dict[str, tuple[str, str]] = {
    # center-init
    "center.settings": ("Ghi cấu hình trung tâm", "Writing the center's settings"),
    "center.pki": (
        "Tạo CA gốc (khóa mã hóa bằng mật khẩu) và CA cấp phát",
        "Creating the root CA (key encrypted with the passphrase) and the issuing CA",
    ),
    "center.certificates": (
        "Cấp chứng thư cho broker, cổng đăng ký và các dịch vụ",
        "Issuing certificates for the broker, the enrollment endpoint and the services",
    ),
    "center.store": (
        "Chuẩn bị cơ sở dữ liệu giám sát và đăng ký trung tâm",
        "Preparing the fleet store and registering the center",
    ),
    "center.broker": (
        "Sinh cấu hình Mosquitto, ACL và danh sách kiosk",
        "Generating the Mosquitto configuration, the ACL and the kiosk registry",
    ),
    "center.units": (
        "Sinh các unit systemd (broker, cấp phát, giám sát, cấp số)",
        "Generating the systemd units (broker, provisioning, fleet, allocator)",
    ),
    # province
    "province.pki": (
        "Tạo CA của tỉnh, chứng thư cho broker tỉnh và các tiến trình giám sát",
        "Creating the province's CA, the province broker's and the fleet workers' certificates",
    ),
    "province.bridge": (
        "Cấp chứng thư cầu nối cho trung tâm, ghi đoạn cấu hình cầu nối và khối ACL",
        "Issuing the center's bridge certificate, writing its bridge section and ACL block",
    ),
    "province.revoke": (
        "Thu hồi chứng thư cầu nối của trung tâm (danh sách thu hồi của tỉnh)",
        "Revoking the center's bridge certificate (the province's CRL)",
    ),
    "province.cut": (
        "Tải lại broker tỉnh và cắt kết nối cầu nối đang mở (chiếm phiên MQTT của nó)",
        "Reloading the province broker and cutting the bridge's open connection (taking its session over)",
    ),
    "province.crl": (
        "Ký lại danh sách thu hồi chứng thư của tỉnh khi sắp hết hạn",
        "Signing the province's CRL again when it nears its end",
    ),
    # token
    "token.create": ("Tạo mã đăng ký dùng một lần", "Creating a one-time enrollment code"),
    # kiosk side
    "detect.readers": ("Tìm đầu đọc thẻ PC/SC", "Looking for PC/SC card readers"),
    "detect.serial": (
        "Tìm cổng nối tiếp (máy quét, máy in)",
        "Looking for serial ports (scanners, printers)",
    ),
    "detect.usb": ("Tìm máy in USB", "Looking for USB printers"),
    "detect.cameras": ("Tìm camera", "Looking for cameras"),
    "detect.network": (
        "Thử máy in mạng theo địa chỉ đã cho",
        "Trying the network printers at the given addresses",
    ),
    "enroll.code": ("Đọc mã đăng ký", "Reading the enrollment code"),
    "enroll.scan": (
        "Quét mã QR đăng ký bằng máy quét của kiosk",
        "Scan the enrollment QR code with the kiosk's scanner",
    ),
    "enroll.pin": (
        "Kiểm tra CA của trung tâm theo dấu vân tay trong mã",
        "Checking the center's CA against the code's fingerprint",
    ),
    "enroll.key": (
        "Tạo khóa riêng trên kiosk và yêu cầu chứng thư (CSR)",
        "Making the key on this kiosk and the request (CSR)",
    ),
    "enroll.request": ("Gửi yêu cầu đăng ký đến trung tâm", "Sending the enrollment request to the center"),
    "enroll.pending": ("Chờ trung tâm duyệt kiosk này", "Waiting for the center to approve this kiosk"),
    "enroll.install": (
        "Cài chứng thư và ghi cấu hình kiosk",
        "Installing the certificate and writing the kiosk's configuration",
    ),
    "enroll.check": ("Kiểm tra cấu hình kiosk", "Checking the kiosk's configuration"),
    "enroll.start": ("Khởi động kiosk và agent", "Starting the kiosk and its agent"),
    "enroll.online": (
        "Chờ kiosk trực tuyến trên trung tâm",
        "Waiting for the kiosk to be online at the center",
    ),
    "selftest.devices": ("Hỏi trạng thái thiết bị", "Asking the devices' state"),
    "selftest.printer": (
        "In phiếu thử và đọc lại trạng thái máy in",
        "Printing a test ticket and reading the printer status back",
    ),
    "selftest.card": ("Đọc thẻ thử (đặt thẻ lên đầu đọc)", "Reading a test card (lay it on the reader)"),
    "selftest.scanner": (
        "Quét mã QR trên phiếu thử bằng máy quét của kiosk",
        "Scanning the test ticket's QR code with the kiosk's scanner",
    ),
    "selftest.touch": ("Chạm vào màn hình", "Touch the screen"),
    "selftest.report": ("Gửi báo cáo tự kiểm tra về trung tâm", "Sending the self-test report to the center"),
    "reset.flush": ("Gửi nốt các sự kiện chưa gửi", "Sending the events not sent yet"),
    "reset.wipe": (
        "Xóa khóa, sự kiện, nhật ký, phiếu in và dữ liệu",
        "Wiping keys, events, logs, printed tickets and data",
    ),
    "reset.scan": ("Quét lại thư mục dữ liệu", "Scanning the data folder again"),
    "revoke.apply": ("Thu hồi: ACL, CRL, đóng kết nối", "Revoking: ACL, CRL, closing the connection"),
}

#: error code or refusal reason -> what to do (Vietnamese, English)
HINTS: dict[str, tuple[str, str]] = {
    "token_unknown": (
        "Kiểm tra mã đã quét/nhập; tạo mã mới trên trang Đăng ký kiosk.",
        "Check the scanned/typed code; make a new one on the dashboard's Enrollment page.",
    ),
    "token_used": (
        "Mã chỉ dùng một lần: tạo mã mới trên trang Đăng ký kiosk.",
        "A code works once: make a new one on the dashboard's Enrollment page.",
    ),
    "token_expired": (
        "Mã đã hết hạn: tạo mã mới (mặc định 24 giờ).",
        "The code expired: make a new one (24 h by default).",
    ),
    "token_wrong_center": (
        "Mã thuộc trung tâm khác: dùng mã của trung tâm này.",
        "The code is another center's: use one of this center.",
    ),
    "nonce_unknown": (
        "Chạy lại lệnh đăng ký (mã thử thách hết hạn sau 10 phút).",
        "Run the enrollment again (the challenge expires after 10 minutes).",
    ),
    "replayed": (
        "Yêu cầu này đã được gửi: chạy lại lệnh đăng ký để tạo yêu cầu mới.",
        "This request was sent before: run the enrollment again for a new one.",
    ),
    "csr_invalid": (
        "Cài lại phần mềm kiosk rồi chạy lại; báo kỹ thuật nếu lặp lại.",
        "Reinstall the kiosk software and retry; report it if it happens again.",
    ),
    "proof_failed": ("Chạy lại lệnh đăng ký.", "Run the enrollment again."),
    "key_reused": (
        "Khóa này đã dùng: xóa thư mục danh tính (provision reset) rồi đăng ký lại.",
        "This key was used before: wipe the identity (provision reset) and enroll again.",
    ),
    "not_allowlisted": (
        "Thêm số serial máy vào danh sách cho phép trên trang Đăng ký kiosk.",
        "Add the machine's serial to the allowlist on the dashboard's Enrollment page.",
    ),
    "rejected": (
        "Trung tâm đã từ chối kiosk này: liên hệ quản lý trung tâm.",
        "The center rejected this kiosk: ask the center's manager.",
    ),
    "center_unknown": (
        "Kiểm tra mã trung tâm trong mã đăng ký.",
        "Check the center id in the enrollment code.",
    ),
    "kiosk_revoked": (
        "Kiosk đã bị thu hồi: cần mã thay thế (replace).",
        "The kiosk was revoked: a replacement code is needed.",
    ),
    "unknown_request": ("Chạy lại lệnh đăng ký từ đầu.", "Run the enrollment again from the start."),
    "wrong_ca": (
        "Mã không khớp CA của máy chủ: KHÔNG tiếp tục; kiểm tra địa chỉ và mã với trung tâm.",
        "The server's CA does not match the code: do NOT go on; check the address and code with the center.",
    ),
    "network": (
        "Kiểm tra mạng và địa chỉ trung tâm; dịch vụ motcua-provision có chạy không?",
        "Check the network and the center's address; is motcua-provision running?",
    ),
    "bridge_cut": (
        "Chứng thư đã bị thu hồi nhưng có thể cầu nối vẫn đang nối: kiểm tra broker tỉnh "
        "(systemctl status motcua-province-broker), chạy lệnh với quyền root và đúng --broker, rồi chạy "
        "lại bridge-revoke (chỉ cắt lại kết nối); hoặc khởi động lại broker tỉnh.",
        "The certificate is revoked but the bridge may still be connected: check the province broker "
        "(systemctl status motcua-province-broker), run as root with the right --broker, then run "
        "bridge-revoke again (it only cuts again); or restart the province broker.",
    ),
    "config": (
        "Sửa giá trị được nêu trong thông báo rồi chạy lại.",
        "Fix the value the message names and run again.",
    ),
    "conflict": (
        "Tệp hoặc đối tượng đã tồn tại: dùng thư mục khác hoặc xem thông báo.",
        "The file or object exists already: use another folder, or read the message.",
    ),
    "app_down": (
        "Khởi động kiosk (systemctl start motcua-kiosk) rồi chạy lại.",
        "Start the kiosk app (systemctl start motcua-kiosk) and run again.",
    ),
    "unsent_events": (
        "Chờ agent gửi xong (kiểm tra mạng), hoặc thêm --drop-unsent nếu chấp nhận mất sự kiện.",
        "Wait for the agent to send them (check the network), or add --drop-unsent to accept losing them.",
    ),
    "printer": (
        "Kiểm tra giấy, nắp và cáp máy in; xem trạng thái ở bước trên.",
        "Check the printer's paper, cover and cable; see the state above.",
    ),
    "card": (
        "Đặt thẻ thử lên đầu đọc và giữ yên; kiểm tra cáp đầu đọc và dịch vụ pcscd.",
        "Lay the test card on the reader and keep it still; check the reader's cable and pcscd.",
    ),
    "scanner": (
        "Đưa mã QR của phiếu thử trước máy quét, cách 10-20 cm.",
        "Hold the test ticket's QR code 10-20 cm in front of the scanner.",
    ),
    "touch": (
        "Chạm vào màn hình trong thời gian chờ; kiểm tra cáp cảm ứng.",
        "Touch the screen within the time; check the touch cable.",
    ),
    "error": (
        "Xem thông báo; chạy lại với -v để có thêm chi tiết.",
        "Read the message; run again with -v for details.",
    ),
}


def text(key: str) -> tuple[str, str]:
    return TEXTS.get(key, (key, key))


def hint(code: str) -> tuple[str, str]:
    return HINTS.get(code, HINTS["error"])


@dataclass
class Report:
    """Steps done so far, for ``--json`` and for the error message."""

    command: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)


class StepFailed(Exception):
    """A step failed in a way the technician can act on (the message and the code of the hint)."""

    def __init__(self, message: str, code: str = "error") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Console:
    """Prints steps as ``[2/5] Vietnamese — English ... ok (0.3 s)``; in JSON mode prints nothing until
    ``finish``. Progress bars redraw one line on a terminal and print a line per 10 % otherwise."""

    def __init__(
        self,
        command: str,
        *,
        as_json: bool = False,
        out: TextIO | None = None,
        total: int = 0,
        language: str = "both",
    ) -> None:
        self.report = Report(command)
        self.as_json = as_json
        self.out = out or sys.stderr
        self.total = total
        self.language = language
        self._index = 0

    def say(self, key: str) -> str:
        vi, en = text(key)
        return {"vi": vi, "en": en}.get(self.language, f"{vi} — {en}")

    def line(self, message: str) -> None:
        if not self.as_json:
            print(message, file=self.out, flush=True)

    @contextmanager
    def step(self, key: str, detail: str = "") -> Iterator[dict[str, Any]]:
        self._index += 1
        prefix = f"[{self._index}/{self.total}] " if self.total else "• "
        self.line(f"{prefix}{self.say(key)}{(' ' + detail) if detail else ''} …")
        record: dict[str, Any] = {"step": key, "ok": False}
        started = time.monotonic()
        try:
            yield record
        except BaseException as exc:
            record["duration_s"] = round(time.monotonic() - started, 3)
            record["error"] = getattr(exc, "message", str(exc))
            self.report.steps.append(record)
            raise
        record["ok"] = record.get("ok_override", True)
        record.pop("ok_override", None)
        record["duration_s"] = round(time.monotonic() - started, 3)
        self.report.steps.append(record)
        note = record.get("note", "")
        self.line(
            f"    {'ok' if record['ok'] else 'KHÔNG ĐẠT / FAILED'}"
            f"{(': ' + str(note)) if note else ''} ({record['duration_s']:.1f} s)"
        )

    def progress(self, done: float, total: float, label: str = "") -> None:
        """A bar for long work (waiting for an approval, the broker, a flush)."""
        if self.as_json or total <= 0:
            return
        ratio = max(0.0, min(1.0, done / total))
        width = 30
        bar = "█" * int(ratio * width) + "░" * (width - int(ratio * width))
        text_line = f"    [{bar}] {ratio * 100:3.0f} % {label}"
        if self.out.isatty():
            print("\r" + text_line, end="", file=self.out, flush=True)
            if ratio >= 1:
                print(file=self.out, flush=True)
        else:
            bucket = int(ratio * 10)
            if bucket != getattr(self, "_bucket", -1):
                self._bucket = bucket
                print(text_line, file=self.out, flush=True)

    def fail(self, message: str, code: str) -> None:
        vi, en = hint(code)
        self.report.result.update(ok=False, error=message, code=code, what_to_do={"vi": vi, "en": en})
        if not self.as_json:
            print(f"LỖI / ERROR: {message}", file=self.out, flush=True)
            print(f"  → Cách xử lý: {vi}", file=self.out)
            print(f"  → What to do: {en}", file=self.out, flush=True)

    def finish(self, **result: Any) -> None:
        self.report.result.setdefault("ok", True)
        self.report.result.update(result)
        if self.as_json:
            print(
                json.dumps(
                    {"command": self.report.command, "steps": self.report.steps, **self.report.result},
                    ensure_ascii=False,
                    indent=1,
                    default=str,
                ),
                flush=True,
            )
