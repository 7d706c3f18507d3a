"""Domain errors. Each carries the HTTP status OpenStack answers with; the API layer only
chooses the body shape (Keystone, Nova, Neutron, ...)."""

from __future__ import annotations


class KumoError(Exception):
    status = 500
    title = "Internal Server Error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(KumoError):
    status = 400
    title = "Bad Request"


class Unauthorized(KumoError):
    status = 401
    title = "Unauthorized"


class Forbidden(KumoError):
    status = 403
    title = "Forbidden"


class NotFound(KumoError):
    status = 404
    title = "Not Found"


class Conflict(KumoError):
    status = 409
    title = "Conflict"


class TooLarge(KumoError):
    status = 413
    title = "Request Entity Too Large"


class NotSupported(KumoError):
    """What the OpenStack API defines but the cloud's drivers cannot do (Nova: 501)."""

    status = 501
    title = "Not Implemented"
