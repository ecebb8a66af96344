"""Reports (``fleet.reports``): a month of a center and of a province built on SQLite and PostgreSQL,
written as XLSX and CSV and read back (openpyxl, csv); ``main.py fleet report`` as an operator runs
it; the web's ``/usage`` and ``/reports`` in-process: scope by any URL, roles, bad input."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from common.errors import NotFoundError
from contract.queue import QueueEvent
from fleet.queue.engine import Queue
from fleet.queue.province import store_event
from fleet.reports.build import Report, Target, build_report
from fleet.reports.write import to_csv, to_xlsx
from fleet.store import Scope, Store
from fleet.store.usage import Period
from tests.fleet import usage_data
from tests.fleet.conftest import FakeClock
from tests.fleet.queue_data import a_day_at_the_counters, officer
from tests.fleet.test_cli import fleet, last_line
from tests.fleet.usage_data import USAGE_OWN_LISTS, local, push_officials, seed, usage_foreign_requests
from tests.fleet.web import browser

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NOVEMBER = Period.month("2026-11", VN)
SHEETS = [
    "Tổng hợp",
    "Theo trung tâm",
    "Số thứ tự theo ngày",
    "Số thứ tự theo giờ",
    "Hàng đợi tại quầy",
    "Tra cứu và đọc thẻ",
    "Đánh giá",
    "Thiết bị",
    "Cảnh báo",
]


def summary_of(book: openpyxl.Workbook) -> dict[str, object]:
    rows = list(book["Tổng hợp"].iter_rows(values_only=True))
    assert rows[0] == ("Mục", "Giá trị")
    return {str(label): value for label, value in rows[1:]}


def xlsx_of(report: Report) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(to_xlsx(report)))


def test_a_centers_month_as_xlsx_and_csv(store: Store, clock: FakeClock) -> None:
    f, expected = seed(store, clock)
    push_officials(store, f.center, [("cb-017", "Võ Minh Tuấn")])  # the official the kiosks' ratings name
    report = build_report(store, Scope.everything(), Target("center", f.center), NOVEMBER, VN)
    assert report.filename("xlsx") == "bao-cao-hcm-ben-thanh-2026-11.xlsx"
    book = xlsx_of(report)
    assert book.sheetnames == SHEETS
    summary = summary_of(book)
    assert summary["Đơn vị"] == "Trung tâm Phục vụ hành chính công phường Bến Thành"
    assert summary["Kỳ báo cáo"] == "01/11/2026 – 30/11/2026"
    assert summary["Số thứ tự đã phát"] == expected.bt_issued
    assert summary["Số thứ tự bị hủy (không in được)"] == expected.bt_voided
    assert summary["Lượt đánh giá"] == expected.bt_ratings
    assert summary["Tỷ lệ hài lòng (%)"] == round(100 * expected.bt_satisfied / expected.bt_ratings, 1)
    assert summary["Số cảnh báo"] == 2
    assert summary["Tổng thời gian ngừng của kiosk và thiết bị (giờ)"] == 2.5
    by_day = list(book["Số thứ tự theo ngày"].iter_rows(values_only=True))
    assert by_day[0] == ("Ngày", "Trung tâm", "Mã lĩnh vực", "Lĩnh vực", "Đã phát", "Bị hủy")
    assert ("2026-11-23", report.title, "HOTICH", "Hộ tịch", 3, 1) in by_day
    assert all(row[0] != "2026-12-01" for row in by_day)
    devices = list(book["Thiết bị"].iter_rows(values_only=True))
    printer = next(r for r in devices if r[1] == "kiosk-bt-01" and r[3] == "Máy in phiếu")
    assert printer[4:] == (1, "2:00:00", 2.0, round(100 * (1 - 7200 / (30 * 86400)), 2))
    offline = next(r for r in devices if r[1] == "kiosk-bt-02" and r[3] == "Kết nối của kiosk")
    assert offline[5] == "0:30:00"
    ratings = list(book["Đánh giá"].iter_rows(values_only=True))
    assert ("Mức độ", "4/4 Rất hài lòng", 3, 3, 100, 100) in ratings
    assert ("Lý do chưa hài lòng", "Thời gian chờ đến lượt", 2, 0, 0, pytest.approx(16.7)) in ratings
    assert ("Quầy", "Quầy 2", 2, 2, 100, 100) in ratings
    assert ("Cán bộ", "Cán bộ 01 (canbo01.bt)", 1, 1, 100, 100) in ratings  # the account's name
    assert ("Cán bộ", "Võ Minh Tuấn (cb-017)", 1, 0, 0, 0) in ratings  # the pushed officials' name
    alarms = list(book["Cảnh báo"].iter_rows(values_only=True))
    assert alarms[1][2] == "02:00:00" and alarms[1][5] == "Máy in phiếu" and alarms[1][7] == "Nghiêm trọng"
    assert alarms[1][0].isoformat() == "2026-11-25T08:00:00"  # a real date-time, in Vietnam's time
    # CSV: the same sheets as sections, UTF-8 with a BOM
    text = to_csv(report).decode("utf-8")
    assert text.startswith("\ufeffBáo cáo,")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    sections = [row[0][2:] for row in rows if row and row[0].startswith("# ")]
    assert sections == SHEETS
    assert ["Số thứ tự đã phát", str(expected.bt_issued)] in rows
    assert next(r for r in rows if r[:1] == ["2026-11-25 08:00:00"])[:3] == [
        "2026-11-25 08:00:00",
        "2026-11-25 10:00:00",
        "02:00:00",
    ]


def test_card_results_are_said_in_words(store: Store, clock: FakeClock) -> None:
    """A card read's result is the kiosk's error name ("CardRemovedError"): the report says it in
    Vietnamese, in the XLSX and the CSV; a result no catalog knows (a newer kiosk's) as it came."""
    f, _ = seed(store, clock)  # 23/11: two reads "ok", one "CardRemovedError" (300 ms)
    usage_data.event(store, f.center, f.kiosk, "card_read", local(23, 9, 45), result="NewerKioskError",
                     duration_ms=50)
    report = build_report(store, Scope.everything(), Target("center", f.center), NOVEMBER, VN)
    rows = list(xlsx_of(report)["Tra cứu và đọc thẻ"].iter_rows(values_only=True))
    assert rows[0][:4] == ("Loại", "Trung tâm", "Kết quả", "Số lượt")
    cards = {row[2]: row for row in rows if row[0] == "Đọc thẻ Căn cước"}
    assert set(cards) == {"Đọc được", "Thẻ bị rút ra giữa chừng", "NewerKioskError"}
    assert cards["Thẻ bị rút ra giữa chừng"][3:] == (1, 300, 300)
    assert ("Tra cứu hồ sơ", report.title, "Không tìm thấy", 1, 20, 20) in rows
    lines = list(csv.reader(io.StringIO(to_csv(report).decode("utf-8-sig"))))
    removed = [r for r in lines if r[:3] == ["Đọc thẻ Căn cước", report.title, "Thẻ bị rút ra giữa chừng"]]
    assert len(removed) == 1 and removed[0][3] == "1"
    assert not any("CardRemovedError" in cell for row in lines for cell in row)


def test_a_provinces_report_and_what_a_scope_may_ask(store: Store, clock: FakeClock) -> None:
    f, expected = seed(store, clock)
    report = build_report(store, Scope.province(f.province), Target("province", f.province), NOVEMBER, VN)
    book = xlsx_of(report)
    summary = summary_of(book)
    assert summary["Đơn vị"] == "Các trung tâm của TP. Hồ Chí Minh"
    assert summary["Số thứ tự đã phát"] == expected.bt_issued + expected.tdm_issued  # never Hà Nội's
    centers = {row[0]: row for row in book["Theo trung tâm"].iter_rows(min_row=2, values_only=True)}
    assert set(centers) == {f.center, f.other_center}
    assert centers[f.other_center][3] == expected.tdm_issued
    assert summary["Số kiosk"] == 5
    # a center's manager: their center's report, never another's or the province's
    manager = Scope.center(f.center)
    assert build_report(store, manager, Target("center", f.center), NOVEMBER, VN).totals["issued"] == 7
    for target in (
        Target("center", f.other_center),
        Target("province", f.province),
        Target("center", f.far_center),
    ):
        with pytest.raises(NotFoundError):
            build_report(store, manager, target, NOVEMBER, VN)
    with pytest.raises(NotFoundError):
        build_report(store, Scope.province(f.province), Target("province", f.other_province), NOVEMBER, VN)
    # without ratings (a role without rating.view): no ratings sheet
    plain = build_report(store, manager, Target("center", f.center), NOVEMBER, VN, ratings=False)
    assert "ratings" not in [s.key for s in plain.sheets]


def test_a_center_without_the_queue_names_its_services_from_its_pushed_configuration(
    store: Store, clock: FakeClock
) -> None:
    """Thủ Dầu Một has no queue (no ``queue_services``): the report names its services from its
    center-wide push. Bến Thành's queue names win over its own push; a code only another center's push
    names stays a code."""
    f, _ = seed(store, clock)  # Thủ Dầu Một: one HOTICH at 9 h on each of 3-6 November
    tdm, bt = f.other_center, f.center
    usage_data.event(
        store, tdm, f.other_kiosk, "ticket_issued", local(7, 9), number="L001", service="LAODONG"
    )
    usage_data.push_services(store, tdm, [("HOTICH", "A", "Hộ tịch", "Civil status")])
    usage_data.push_services(
        store,
        bt,
        [("HOTICH", "A", "Tên đẩy xuống", "Pushed name"), ("LAODONG", "L", "Lao động (BT)", "Labour")],
    )
    report = build_report(store, Scope.center(tdm), Target("center", tdm), NOVEMBER, VN)
    book = xlsx_of(report)
    by_day = list(book["Số thứ tự theo ngày"].iter_rows(values_only=True))
    assert [r for r in by_day[1:] if r[2] == "HOTICH"] == [
        (f"2026-11-0{day}", report.title, "HOTICH", "Hộ tịch", 1, 0) for day in (3, 4, 5, 6)
    ]
    assert ("2026-11-07", report.title, "LAODONG", "LAODONG", 1, 0) in by_day
    by_hour = list(book["Số thứ tự theo giờ"].iter_rows(values_only=True))
    assert ("09:00", report.title, "HOTICH", "Hộ tịch", 4, 0) in by_hour
    lines = list(csv.reader(io.StringIO(to_csv(report).decode("utf-8-sig"))))
    assert ["2026-11-03", report.title, "HOTICH", "Hộ tịch", "1", "0"] in lines
    # the province: each center's rows with its own names
    province = build_report(store, Scope.province(f.province), Target("province", f.province), NOVEMBER, VN)
    titles = {c.id: c.name for c in province.centers}
    rows = list(xlsx_of(province)["Số thứ tự theo ngày"].iter_rows(values_only=True))
    named = {(r[1], r[2]): r[3] for r in rows[1:]}
    assert named[(titles[tdm], "HOTICH")] == "Hộ tịch" and named[(titles[bt], "HOTICH")] == "Hộ tịch"
    assert named[(titles[tdm], "LAODONG")] == "LAODONG"
    province_lines = list(csv.reader(io.StringIO(to_csv(province).decode("utf-8-sig"))))
    assert not any("Tên đẩy xuống" in cell or "(BT)" in cell for row in province_lines for cell in row)


QUEUE_HEADER = (
    "Nhóm",
    "Trung tâm",
    "Mã",
    "Tên",
    "Số lượt lấy số",
    "Số lượt gọi",
    "Đã phục vụ",
    "Vắng mặt",
    "Bỏ về",
    "Chuyển",
    "Gọi lại",
    "Chờ trung bình (phút)",
    "Chờ lâu nhất (phút)",
    "Chờ mục tiêu (phút)",
    "Chờ quá mức (%)",
    "Phục vụ trung bình (phút)",
    "Phục vụ lâu nhất (phút)",
)


def test_the_queue_in_a_centers_and_a_provinces_report(store: Store, clock: FakeClock) -> None:
    """Bến Thành runs its queue in this store: usage_data's A050 (24/11: waited 5, served 10 minutes at
    counter 2 by canbo01.bt) and queue_data's day at the counters (23/11). Thủ Dầu Một's queue came
    through the bridge (two steps), and this store sets it a target of 60 minutes."""
    f, _ = seed(store, clock)
    queue = Queue(store)
    queue.close(officer(store, "canbo01.bt"))  # A050's session, so that the officer opens counter 3
    clock.now = local(23, 12)
    a_day_at_the_counters(store, queue, clock)
    clock.now = local(1, 12, month=12)
    far = Queue(store)
    far.update_settings(f.other_center, target_wait_min=60)
    at, day = "2026-11-05T03:00:00+00:00", "2026-11-05"
    for event in (
        QueueEvent(f"{1:032x}", 1, "called", at, day, "A001", "HOTICH", counter="1", officer="canbo.tdm",
                   waited_s=45 * 60.0),
        QueueEvent(f"{2:032x}", 2, "done", at, day, "A001", "HOTICH", counter="1", officer="canbo.tdm",
                   served_s=6 * 60.0),
    ):
        assert store_event(store, f.other_center, event.to_payload(), clock.now) == ("stored", "")

    report = build_report(store, Scope.everything(), Target("center", f.center), NOVEMBER, VN)
    book = xlsx_of(report)
    rows = list(book["Hàng đợi tại quầy"].iter_rows(values_only=True))
    assert rows[0] == QUEUE_HEADER
    bt = report.title
    # CHUNGTHUC: B001 waited 50 (over 30), the transferred A003 25; served 5 and 10 minutes
    assert ("Lĩnh vực", bt, "CHUNGTHUC", "Chứng thực", 1, 2, 2, 0, 0, 0, 0, 37.5, 50, 30, 50, 7.5, 10) in rows
    # HOTICH: 5 of the day's 4 arrivals and A050; waits 5, 10, 12 and 5; A001 served 5, A003 3, A050 10
    assert ("Lĩnh vực", bt, "HOTICH", "Hộ tịch", 5, 4, 2, 1, 1, 1, 2, 8, 12, 30, 0, 6, 10) in rows
    assert ("Quầy", bt, "2", "Quầy số 2", 0, 1, 1, 0, 0, 0, 0, 5, 5, 30, 0, 10, 10) in rows
    officer_row = next(r for r in rows if r[0] == "Cán bộ" and r[2] == "canbo01.bt")
    assert officer_row[3:11] == ("Cán bộ 01", 0, 3, 3, 0, 0, 0, 0)  # B001, A003, A050
    assert officer_row[11:] == (pytest.approx(26.7), 50, 30, pytest.approx(33.3), pytest.approx(8.3), 10)
    assert [r[2:5] for r in rows if r[0] == "Giờ"] == [("8", "08:00–09:00", 5), ("9", "09:00–10:00", 1)]
    assert [r[2] for r in rows if r[0] == "Ngày"] == ["2026-11-23", "2026-11-24"]
    assert all(r[1] == bt for r in rows[1:])  # the center's report: never Thủ Dầu Một's bridged steps
    summary = summary_of(book)
    assert summary["Hàng đợi: số lượt lấy số"] == 6
    assert summary["Hàng đợi: đã phục vụ"] == 4
    assert (summary["Hàng đợi: vắng mặt"], summary["Hàng đợi: bỏ về"]) == (1, 1)
    assert summary["Hàng đợi: chuyển lĩnh vực hoặc quầy"] == 1
    assert summary["Hàng đợi: chờ trung bình (phút)"] == round((5 + 10 + 12 + 25 + 50 + 5) / 6, 1)
    assert summary["Hàng đợi: chờ lâu nhất (phút)"] == 50
    assert summary["Hàng đợi: chờ quá mức mục tiêu (%)"] == round(100 / 6, 1)
    assert summary["Hàng đợi: phục vụ trung bình (phút)"] == round((5 + 3 + 10 + 5 + 10) / 5, 1)
    # CSV: the same sheet as a section, the same headers
    lines = list(csv.reader(io.StringIO(to_csv(report).decode("utf-8-sig"))))
    start = lines.index(["# Hàng đợi tại quầy"])
    assert tuple(lines[start + 1]) == QUEUE_HEADER
    assert lines[start + 2 : start + 2 + len(rows) - 1] == [
        ["" if v is None else format(v, "g") if isinstance(v, float) else str(v) for v in r] for r in rows[1:]
    ]

    # the province: both centers, each against its own target (Thủ Dầu Một's 45 minutes < its 60)
    province = build_report(store, Scope.province(f.province), Target("province", f.province), NOVEMBER, VN)
    rows = list(xlsx_of(province)["Hàng đợi tại quầy"].iter_rows(values_only=True))
    tdm = next(c.name for c in province.centers if c.id == f.other_center)
    assert ("Cán bộ", tdm, "canbo.tdm", "canbo.tdm", 0, 1, 1, 0, 0, 0, 0, 45, 45, 60, 0, 6, 6) in rows
    assert ("Lĩnh vực", tdm, "HOTICH", "HOTICH", 0, 1, 1, 0, 0, 0, 0, 45, 45, 60, 0, 6, 6) in rows
    assert {r[1] for r in rows[1:]} == {bt, tdm}
    assert province.totals["queue_served"] == 5 and province.totals["queue_arrivals"] == 6
    assert province.totals["queue_wait_max_s"] == 50 * 60


def test_the_cli_writes_both_files_and_refuses_bad_input(
    sqlite_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    from fleet.store import open_store

    seeding = open_store(sqlite_url, clock=clock)
    f, expected = seed(seeding, clock)
    seeding.close()
    xlsx, text = tmp_path / "out" / "bt.xlsx", tmp_path / "bt.csv"
    done = fleet(
        "report",
        "--db",
        sqlite_url,
        "--center",
        f.center,
        "--month",
        "2026-11",
        "--xlsx",
        str(xlsx),
        "--csv",
        str(text),
    )
    assert done.returncode == 0, done.stderr
    assert f"{expected.bt_issued} numbers" in done.stdout and "satisfied 57.1 %" in done.stdout
    assert summary_of(openpyxl.load_workbook(xlsx))["Số thứ tự đã phát"] == expected.bt_issued
    assert "Số thứ tự đã phát,7" in text.read_text("utf-8-sig")
    assert not list(tmp_path.glob("**/*.part"))
    ranged = tmp_path / "range.xlsx"
    done = fleet(
        "report",
        "--db",
        sqlite_url,
        "--province",
        f.province,
        "--from",
        "2026-11-22",
        "--to",
        "2026-11-23",
        "--xlsx",
        str(ranged),
    )
    assert done.returncode == 0, done.stderr
    assert summary_of(openpyxl.load_workbook(ranged))["Số thứ tự đã phát"] == 6  # 22 and 23 November
    for args, code, words in (
        (["--center", f.center, "--month", "2026-13", "--xlsx", str(ranged)], 78, "YYYY-MM"),
        (
            ["--center", f.center, "--from", "2026-11-23", "--to", "2026-11-01", "--csv", str(text)],
            78,
            "before",
        ),
        (["--center", f.center, "--month", "2026-11"], 78, "--xlsx"),
        (["--center", "no-such-center", "--month", "2026-11", "--csv", str(text)], 66, "not found"),
        (
            ["--center", f.center, "--month", "2026-11", "--from", "2026-11-01", "--csv", str(text)],
            78,
            "not both",
        ),
    ):
        done = fleet("report", "--db", sqlite_url, *args)
        assert done.returncode == code, (args, done.returncode, done.stderr)
        assert words in last_line(done) and "Traceback" not in done.stderr


def test_pages_downloads_and_the_api_keep_to_the_scope(sqlite_url: str, clock: FakeClock) -> None:
    from fleet.store import open_store

    store = open_store(sqlite_url, clock=clock)
    f, expected = seed(store, clock)
    try:
        with browser(store, "quanly.bt") as manager:
            for _method, path, status in usage_foreign_requests(f):
                assert manager.client.get(path).status_code == status, path
            for path in USAGE_OWN_LISTS:
                text = manager.client.get(
                    path + ("&" if "?" in path else "?") + "from=2026-11-01&to=2026-11-30"
                ).text
                for foreign in (f.other_center, f.far_center, "Thủ Dầu Một", "Hoàn Kiếm"):
                    assert foreign not in text, f"{path} shows {foreign}"
            page = manager.client.get("/usage?from=2026-11-01&to=2026-11-30")
            assert page.status_code == 200 and "⟦" not in page.text
            assert 'id="sum-issued">7<' in page.text and "57.1 %" in page.text
            assert "canbo01.bt" in page.text  # a manager sees ratings per officer
            api = manager.client.get("/usage?from=2026-11-01&to=2026-11-30&format=json").json()
            assert api["tickets"]["issued"] == expected.bt_issued and api["center"] == f.center
            assert api["ratings"]["satisfied_percent"] == pytest.approx(400 / 7)
            download = manager.client.get(f"/reports/download?center={f.center}&month=2026-11&format=xlsx")
            assert download.status_code == 200
            assert (
                download.headers["content-disposition"]
                == 'attachment; filename="bao-cao-hcm-ben-thanh-2026-11.xlsx"'
            )
            assert summary_of(openpyxl.load_workbook(io.BytesIO(download.content)))["Lượt đánh giá"] == 7
            # bad input: a page in Vietnamese, no file, no traceback
            for query, words in (
                ("month=2026-13", "Tháng không hợp lệ"),
                ("from=2026-11-30&to=2026-11-01", "Ngày bắt đầu đang sau ngày kết thúc"),
                ("from=hôm-qua", "Ngày không hợp lệ"),
                ("month=2026-11&format=pdf", "XLSX hoặc CSV"),
            ):
                refused = manager.client.get(f"/reports/download?center={f.center}&{query}")
                assert refused.status_code == 400 and words in refused.text, query
                assert refused.headers["content-type"].startswith("text/html")
            assert "Tối đa" not in manager.client.get("/usage?from=2026-11-30&to=2026-11-01").text
            assert "Ngày bắt đầu đang sau" in manager.client.get("/usage?from=2026-11-30&to=2026-11-01").text
        with browser(store, "xem.bt") as viewer:  # a viewer: usage and reports, never the ratings of people
            page = viewer.client.get("/usage?from=2026-11-01&to=2026-11-30")
            assert page.status_code == 200 and "canbo01.bt" not in page.text and "cb-017" not in page.text
            assert "Chỉ quản lý trung tâm" in page.text
            book = openpyxl.load_workbook(
                io.BytesIO(
                    viewer.client.get(
                        f"/reports/download?center={f.center}&month=2026-11&format=xlsx"
                    ).content
                )
            )
            assert "Đánh giá" not in book.sheetnames and "Tổng hợp" in book.sheetnames
        with browser(store, "canbo.bt") as officer:  # officers: no usage pages at all
            assert officer.client.get("/usage").status_code == 403
            assert officer.client.get(f"/reports/download?center={f.center}&month=2026-11").status_code == 403
        with browser(store, "admin.hcm") as admin:  # the province: both centers, never Hà Nội
            page = admin.client.get("/usage?from=2026-11-01&to=2026-11-30")
            assert "Thủ Dầu Một" in page.text and "Hoàn Kiếm" not in page.text
            assert f'id="sum-issued">{expected.bt_issued + expected.tdm_issued}<' in page.text
            province = admin.client.get(
                f"/reports/download?center=province&province_id={f.province}&month=2026-11&format=csv"
            )
            assert province.status_code == 200 and "Các trung tâm của TP. Hồ Chí Minh" in province.text
            assert (
                admin.client.get(f"/reports/download?center={f.far_center}&month=2026-11").status_code == 404
            )
            english = admin.post("/language", {"lang": "en", "next": "/usage"})
            assert english.status_code == 303
            page = admin.client.get("/usage?from=2026-11-01&to=2026-11-30")
            assert "Queue numbers issued" in page.text and "⟦" not in page.text
    finally:
        store.close()
