"""Microversions: ``MAJOR.MINOR`` request versions, as OpenStack services negotiate them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache, total_ordering

_PATTERN = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


class VersionError(Exception):
    """The requested version is malformed (400) or outside the served range (406)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@total_ordering
@dataclass(frozen=True)
class APIVersion:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> APIVersion:
        match = _PATTERN.match(text.strip())
        if match is None:
            raise VersionError(
                f"API version string {text} format is not valid. It should be "
                "in format: X.Y or the word latest.",
                400,
            )
        return cls(int(match.group(1)), int(match.group(2)))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, APIVersion):
            return NotImplemented
        return (self.major, self.minor) < (other.major, other.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def at_least(self, text: str) -> bool:
        """``version.at_least("2.19")``: called per field per server in big listings, so
        the literal is parsed once and compared as a tuple."""
        return (self.major, self.minor) >= _literal(text)


@lru_cache(maxsize=256)
def _literal(text: str) -> tuple[int, int]:
    version = APIVersion.parse(text)
    return version.major, version.minor


def negotiate(requested: str | None, minimum: APIVersion, maximum: APIVersion) -> APIVersion:
    """The version to serve: the minimum when none is asked, the maximum for ``latest``."""
    if requested is None or not requested.strip():
        return minimum
    if requested.strip().lower() == "latest":
        return maximum
    version = APIVersion.parse(requested)
    if not minimum <= version <= maximum:
        raise VersionError(
            f"Version {version} is not supported by the API. Minimum is "
            f"{minimum} and maximum is {maximum}.",
            406,
        )
    return version


def from_headers(headers: dict[str, str], service: str, legacy_header: str | None) -> str | None:
    """The requested version string: ``OpenStack-API-Version: <service> X.Y`` wins over a
    service's legacy header (Nova's ``X-OpenStack-Nova-API-Version``)."""
    for value in headers.get("openstack-api-version", "").split(","):
        parts = value.strip().split()
        if len(parts) == 2 and parts[0].lower() == service:
            return parts[1]
    if legacy_header:
        return headers.get(legacy_header.lower())
    return None
