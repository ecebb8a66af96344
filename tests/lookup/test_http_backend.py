"""The HTTP adapter against a real local http.server: found, not found, slow, 500, malformed, down."""

from __future__ import annotations

import json
import time
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import ConfigError
from contract.errors import SchemaError
from contract.schema import parse_dataclass
from kiosk.dossier import (
    DossierNotFound,
    DossierState,
    DossierStatus,
    HttpDossierBackend,
    LookupConfig,
    LookupUnavailable,
    open_backend,
    parse_dossier_code,
)
from kiosk.error_screens import screen_key

from .conftest import ProvinceServer, Reply

CODE = parse_dossier_code("000.00.10.H12-260105-0007")
STATUS = {
    "code": "000.00.10.H12-260105-0007",
    "procedure_name": "Đăng ký kết hôn",
    "agency": "UBND phường Bến Thành, TP. Hồ Chí Minh",
    "received_on": "2026-01-05",
    "due_on": "2026-01-08",
    "status": "in_progress",
    "current_step": "Công chức tư pháp - hộ tịch đang thẩm định",
    "timeline": [
        {"date": "2026-01-06", "text": "Chuyển công chức tư pháp - hộ tịch"},
        {"date": "2026-01-05", "text": "Bộ phận Một cửa đã tiếp nhận hồ sơ"},
    ],
    "collect_at": "Quầy số 3, Bộ phận Một cửa",
    "fees": None,
}


def backend(server: ProvinceServer, **kwargs: object) -> HttpDossierBackend:
    # a generous time budget unless a test is about slowness (it passes its own): a busy machine (two
    # test workers on two cores) made the second look-up of test_failures_are_not_cached miss 0.5 s
    options: dict[str, object] = {"timeout_s": 5.0, "retries": 2, "cache_ttl_s": 0, "backoff_s": 0.01,
                                  "allow_insecure_http": True}  # a local test server
    options.update(kwargs)
    return HttpDossierBackend(server.base_url, **options)  # type: ignore[arg-type]


def test_found_maps_every_field(province: ProvinceServer) -> None:
    province.on(CODE.text, Reply(body=STATUS))
    status = backend(province, auth_header="Authorization: Bearer t0ken").lookup(CODE)
    assert status == DossierStatus(
        code=CODE,
        procedure_name="Đăng ký kết hôn",
        agency="UBND phường Bến Thành, TP. Hồ Chí Minh",
        received_on=date(2026, 1, 5),
        due_on=date(2026, 1, 8),
        status=DossierState.IN_PROGRESS,
        current_step="Công chức tư pháp - hộ tịch đang thẩm định",
        timeline=(
            (date(2026, 1, 5), "Bộ phận Một cửa đã tiếp nhận hồ sơ"),
            (date(2026, 1, 6), "Chuyển công chức tư pháp - hộ tịch"),
        ),
        collect_at="Quầy số 3, Bộ phận Một cửa",
        fees=None,
    )
    assert status.overdue_days(date(2026, 1, 11)) == 3
    assert status.overdue_days(date(2026, 1, 8)) == 0
    [request] = province.requests
    assert request.path == "/api/v1/dossiers/000.00.10.H12-260105-0007"
    assert request.headers["authorization"] == "Bearer t0ken"
    assert request.headers["accept"] == "application/json"


def test_custom_auth_header_and_wrapped_body(province: ProvinceServer) -> None:
    province.on(CODE.text, Reply(body={"dossier": STATUS}))
    backend(province, auth_header="X-Api-Key: abc123").lookup(CODE)
    assert province.requests[0].headers["x-api-key"] == "abc123"
    assert "authorization" not in province.requests[0].headers


def test_json_media_type_variants_are_accepted(province: ProvinceServer) -> None:
    province.on(CODE.text, Reply(body=STATUS, content_type="application/vnd.motcua+json; charset=utf-8"))
    assert backend(province).lookup(CODE).code == CODE


def test_not_found_is_its_own_answer(province: ProvinceServer) -> None:
    province.on(CODE.text, Reply(status=404, body={"error": "not_found"}))
    with pytest.raises(DossierNotFound) as info:
        backend(province).lookup(CODE)
    assert screen_key(info.value) == "lookup.not_found"
    assert len(province.requests) == 1  # an answer, not retried


def test_bare_404_is_a_wrong_route_not_a_missing_dossier(province: ProvinceServer) -> None:
    adapter = HttpDossierBackend(f"http://127.0.0.1:{province.port}/wrong/prefix", retries=0,
                                 allow_insecure_http=True)
    with pytest.raises(LookupUnavailable, match=r"check lookup\.base_url"):
        adapter.lookup(CODE)


def test_500_then_ok_is_retried(province: ProvinceServer) -> None:
    province.on(CODE.text, Reply(status=500, body="boom", content_type="text/plain"), Reply(body=STATUS))
    assert backend(province).lookup(CODE).procedure_name == "Đăng ký kết hôn"
    assert len(province.requests) == 2


def test_500_forever_is_unavailable_after_all_retries(province: ProvinceServer) -> None:
    province.on(CODE.text, Reply(status=503, body="", content_type="text/plain"))
    with pytest.raises(LookupUnavailable, match="after 3 attempts: HTTP 503") as info:
        backend(province, retries=2).lookup(CODE)
    assert screen_key(info.value) == "lookup.unavailable"
    assert len(province.requests) == 3


def test_body_cut_short_is_retried(province: ProvinceServer) -> None:
    province.on(CODE.text, Reply(body=STATUS, truncate=True), Reply(body=STATUS))
    assert backend(province).lookup(CODE).code == CODE
    assert len(province.requests) == 2
    province.on(CODE.text, Reply(body=STATUS, truncate=True))
    with pytest.raises(LookupUnavailable, match="connection closed after"):
        backend(province, retries=1).lookup(CODE)


def test_trickling_server_is_cut_off_at_the_timeout(province: ProvinceServer) -> None:
    province.on(CODE.text, Reply(body=STATUS, drip_s=0.05))  # ~600 bytes: 3 s in all
    started = time.monotonic()
    with pytest.raises(LookupUnavailable, match="answer not complete within"):
        backend(province, timeout_s=0.4, retries=0).lookup(CODE)
    assert time.monotonic() - started < 0.6


def test_429_honours_retry_after(province: ProvinceServer) -> None:
    province.on(CODE.text, Reply(status=429, body="", headers={"Retry-After": "1"}), Reply(body=STATUS))
    started = time.monotonic()
    backend(province).lookup(CODE)
    assert time.monotonic() - started >= 0.95
    assert len(province.requests) == 2


def test_slow_server_is_unavailable_within_the_time_budget(province: ProvinceServer) -> None:
    province.on(CODE.text, Reply(body=STATUS, delay_s=1.5))
    adapter = backend(province, timeout_s=0.3, retries=1)
    started = time.monotonic()
    with pytest.raises(LookupUnavailable, match=r"no answer within 0\.3 s"):
        adapter.lookup(CODE)
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 1.2  # two attempts of 0.3 s plus a short backoff
    assert len(province.requests) == 2


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(body="{not json"), "unusable status"),
        (Reply(body=b"\xff\xfe garbage"), "unusable status"),
        (Reply(body=[1, 2, 3]), "unusable status"),
        (Reply(body={**STATUS, "status": "lost_in_space"}), "status: unknown value"),
        (Reply(body={**STATUS, "due_on": "08/01/2026"}), "due_on"),
        (Reply(body={k: v for k, v in STATUS.items() if k != "procedure_name"}), "procedure_name"),
        (Reply(body={**STATUS, "code": "000.00.10.H12-260105-0008"}), "another dossier code"),
        (Reply(body="<html>login</html>", content_type="text/html"), "text/html"),
        (Reply(status=401, body="", content_type="text/plain"), "HTTP 401"),
        (Reply(status=403, body="", content_type="text/plain"), "HTTP 403"),
    ],
)
def test_bad_answers_are_unavailable_and_not_retried(
    province: ProvinceServer, reply: Reply, message: str
) -> None:
    province.on(CODE.text, reply)
    with pytest.raises(LookupUnavailable, match=message):
        backend(province).lookup(CODE)
    assert len(province.requests) == 1


def test_unreachable_is_unavailable(closed_port: int) -> None:
    adapter = HttpDossierBackend(f"http://127.0.0.1:{closed_port}/api", timeout_s=0.5, retries=2,
                                 backoff_s=0.01, allow_insecure_http=True)
    with pytest.raises(LookupUnavailable, match="cannot connect"):
        adapter.lookup(CODE)


def test_short_cache(province: ProvinceServer) -> None:
    now = [100.0]
    province.on(CODE.text, Reply(body=STATUS))
    adapter = backend(province, cache_ttl_s=30, clock=lambda: now[0])
    first = adapter.lookup(CODE)
    now[0] += 29
    assert adapter.lookup(CODE) is first
    assert len(province.requests) == 1
    now[0] += 2
    adapter.lookup(CODE)
    assert len(province.requests) == 2


def test_failures_are_not_cached(province: ProvinceServer) -> None:
    province.on(CODE.text, Reply(status=500, body="", content_type="text/plain"), Reply(body=STATUS))
    adapter = backend(province, retries=0, cache_ttl_s=30)
    with pytest.raises(LookupUnavailable):
        adapter.lookup(CODE)
    assert adapter.lookup(CODE).code == CODE


def test_config_opens_the_http_adapter(province: ProvinceServer) -> None:
    province.on(CODE.text, Reply(body=STATUS))
    config = parse_dataclass(
        LookupConfig, {"backend": "http", "base_url": province.base_url, "timeout_s": 1, "retries": 0,
                       "allow_insecure_http": True}
    )
    adapter = open_backend(config)
    assert isinstance(adapter, HttpDossierBackend)
    assert adapter.lookup(CODE).agency == STATUS["agency"]


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="base_url"):  # the adapter's own check of the URL
        parse_dataclass(LookupConfig, {"backend": "http"})
    with pytest.raises(SchemaError, match="timeout_s"):
        parse_dataclass(LookupConfig, {"timeout_s": 0})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)
#: Bodies that look like a status with some fields replaced by arbitrary JSON.
mutated_status = st.dictionaries(st.sampled_from(sorted(STATUS)), json_values, max_size=4).map(
    lambda changes: {**STATUS, **changes}
)


@settings(max_examples=100, deadline=None)
@given(body=st.one_of(json_values, mutated_status), status=st.sampled_from([200, 200, 200, 404, 500]))
def test_any_answer_is_a_status_or_one_of_the_two_honest_errors(body: object, status: int) -> None:
    server = _shared_server()
    server.on(CODE.text, Reply(status=status, body=json.dumps(body)))
    adapter = HttpDossierBackend(server.base_url, timeout_s=1, retries=0, cache_ttl_s=0,
                                 allow_insecure_http=True)
    try:
        result = adapter.lookup(CODE)
    except DossierNotFound:
        assert status == 404 and body == {"error": "not_found"}
    except LookupUnavailable:
        pass
    else:
        assert status == 200 and result.code == CODE
        assert DossierStatus.from_dict(result.to_dict()) == result


_SERVER: list[ProvinceServer] = []


def _shared_server() -> ProvinceServer:
    """One server for all hypothesis examples (function-scoped fixtures do not mix with @given)."""
    if not _SERVER:
        _SERVER.append(ProvinceServer())
    return _SERVER[0]


def teardown_module() -> None:
    for server in _SERVER:
        server.close()
