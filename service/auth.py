"""The bearer token check guarding every /v1 endpoint when the catalog has a token.

The comparison is constant-time (hmac.compare_digest) so response timing does not
reveal how much of a guessed token was right. /healthz stays open for probes, and
/docs and /openapi.json stay open too: they describe the API, hold no data, and
Swagger UI needs them to offer its Authorize button.
"""

import hmac

from fastapi import HTTPException, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.settings import TOKEN_ENV

bearer_scheme = HTTPBearer(auto_error=False, description=f"The catalog's token, the server's {TOKEN_ENV}.")


def token_checker(token: str):
    """A FastAPI dependency that answers 401 unless the request carries `Authorization: Bearer <token>`."""
    expected = token.encode()

    def require_token(credentials: HTTPAuthorizationCredentials | None = Security(bearer_scheme)) -> None:
        presented = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(presented, expected):
            raise HTTPException(status_code=401, headers={"WWW-Authenticate": "Bearer"},
                                detail=f"missing or wrong bearer token: send Authorization: Bearer <{TOKEN_ENV}>")

    return require_token
