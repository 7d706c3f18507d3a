"""What the dashboard needs to know about the deployment, kept on the application."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from kumo.config import Config


@dataclass(frozen=True)
class WebSettings:
    """Derived once from the configuration when the dashboard is installed."""

    public_url: str  # base URL of the in-process API calls (the APIs build links from it)
    secure_cookies: bool  # an https public URL: cookies never travel over plain http
    pages: frozenset[str]  # the paths of the pages served (the navigation links those)

    @classmethod
    def from_config(cls, config: Config, pages: frozenset[str]) -> WebSettings:
        return cls(
            public_url=config.public_url,
            secure_cookies=config.public_url.startswith("https://"),
            pages=pages,
        )


def settings(request: Request) -> WebSettings:
    """The dashboard's settings (kumo.web.site.install put them on the application)."""
    found: WebSettings = request.app.state.kumo_web
    return found
