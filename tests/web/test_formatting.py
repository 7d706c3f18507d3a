"""The templates' small helpers: ages, addresses, path segments."""

from __future__ import annotations

import datetime as dt

from kumo.web.apiclient import error_message, segment
from kumo.web.formatting import addresses, age

NOW = dt.datetime(2026, 12, 7, 12, 0, 0, tzinfo=dt.UTC)


def test_age_in_the_largest_whole_unit() -> None:
    assert age("2026-12-07T11:59:15Z", NOW) == "45s"
    assert age("2026-12-07T11:47:59Z", NOW) == "12m"
    assert age("2026-12-07T09:00:00+00:00", NOW) == "3h"
    assert age("2026-11-17T12:00:00", NOW) == "20d"  # naive means UTC
    assert age("2026-12-07T12:00:05Z", NOW) == "0s"  # a clock a little ahead
    assert age("", NOW) == "" and age("yesterday", NOW) == ""


def test_addresses_by_network_with_floating_ones_marked() -> None:
    shown = addresses(
        {
            "private": [
                {"addr": "10.0.0.5", "version": 4, "OS-EXT-IPS:type": "fixed"},
                {"addr": "172.24.4.9", "version": 4, "OS-EXT-IPS:type": "floating"},
            ],
            "b-net": [{"addr": "fd00::5", "version": 6}],
        }
    )
    assert shown == [("b-net", ["fd00::5"]), ("private", ["10.0.0.5", "172.24.4.9 (floating)"])]
    assert addresses(None) == [] and addresses({}) == []


def test_a_path_parameter_stays_one_segment() -> None:
    assert segment("6f1c-ab") == "6f1c-ab"
    assert segment("../../identity/v3/users") == "..%2F..%2Fidentity%2Fv3%2Fusers"
    assert segment("..") == "%2E%2E" and segment(".") == "%2E"
    assert segment("x?all_tenants=1") == "x%3Fall_tenants%3D1"


def test_error_message_reads_every_services_shape() -> None:
    assert error_message({"error": {"code": 401, "message": "no"}}, "f") == "no"
    assert error_message({"itemNotFound": {"code": 404, "message": "gone"}}, "f") == "gone"
    assert error_message({"NeutronError": {"type": "X", "message": "n", "detail": ""}}, "f") == "n"
    assert error_message({"code": "400 Bad Request", "message": "g"}, "f") == "g"
    assert error_message("not json", "Bad Request") == "Bad Request"
