"""Domain errors. Each carries the HTTP status OpenStack answers with; the API layer only
chooses the body shape (Keystone, Nova, Neutron, ...)."""

from __future__ import annotations


class KumoError(Exception):
    status = 500
    title = "Internal Server Error"

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # The error's name where an API names it (Neutron's NeutronError "type", such as
        # NetworkNotFound or IpAddressGenerationFailure); other APIs ignore it.
        self.kind = kind


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


class PreconditionFailed(KumoError):
    """A conditional change (Neutron's ``If-Match: revision_number=N``) found another
    revision."""

    status = 412
    title = "Precondition Failed"


class TooLarge(KumoError):
    status = 413
    title = "Request Entity Too Large"


class NotSupported(KumoError):
    """What the OpenStack API defines but the cloud's drivers cannot do (Nova: 501)."""

    status = 501
    title = "Not Implemented"
