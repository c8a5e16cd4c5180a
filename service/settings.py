"""The catalog server's settings, checked before anything binds a socket.

Every check turns bad input into one line that names the problem and the fix.
The catalog is open to anyone who can reach it, so by default it listens on
loopback only; on any other address it refuses to start without a bearer token.
"""

import ipaddress
import os
from dataclasses import dataclass

TOKEN_ENV = "NCAFORGE_CATALOG_TOKEN"
TOKEN_FILE_ENV = TOKEN_ENV + "_FILE"
"""Names a file holding the token instead (a Docker secret: /run/secrets/...), so it stays out of the environment."""
MIN_TOKEN_LENGTH = 16  # a guessable token on a network-facing catalog is no protection


class SettingsError(ValueError):
    """A setting is invalid; the message says how to fix it."""


def token_from_environment(environ=os.environ) -> str | None:
    """The catalog token: TOKEN_ENV, else the content of the file TOKEN_FILE_ENV names, else None."""
    token = environ.get(TOKEN_ENV, "").strip()
    if token or not environ.get(TOKEN_FILE_ENV):
        return token or None
    try:
        with open(environ[TOKEN_FILE_ENV], encoding="utf-8") as f:
            token = f.read().strip()
    except OSError as error:
        raise SettingsError(f"{TOKEN_FILE_ENV}={environ[TOKEN_FILE_ENV]} cannot be read ({error.strerror}): "
                            f"point it at the file holding the catalog token, or set {TOKEN_ENV}") from None
    if not token:
        raise SettingsError(f"{TOKEN_FILE_ENV}={environ[TOKEN_FILE_ENV]} is empty: write the catalog token into it "
                            f"(e.g. openssl rand -hex 32)")
    return token


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach: 127.0.0.0/8, ::1 and 'localhost'."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to any interface


@dataclass(frozen=True)
class ServerSettings:
    """How one catalog server runs."""

    host: str = "127.0.0.1"
    """Address to listen on. Loopback by default; any other address requires a token."""
    port: int = 8000
    """TCP port to listen on, 1-65535."""
    shards_dir: str = "shards"
    """Folder holding one sub-folder per dataset (SHARDS/<dataset-id>/); only read, never written."""
    token: str | None = None
    """Bearer token every /v1 request must present; read from the environment (token_from_environment).
    Required on a non-loopback host; when set on loopback it is enforced there too."""
    access_log: bool = True
    """Log one line per request (off in the load benchmark, where logging would be measured)."""

    @classmethod
    def from_environment(cls, host: str, port: int, shards_dir: str, access_log: bool = True,
                         environ=os.environ) -> "ServerSettings":
        return cls(host=host, port=port, shards_dir=shards_dir, token=token_from_environment(environ),
                   access_log=access_log)

    @property
    def requires_token(self) -> bool:
        return self.token is not None

    def validate(self) -> "ServerSettings":
        if not 1 <= self.port <= 65535:
            raise SettingsError(f"port {self.port} is out of range: use a port in 1-65535, e.g. 8000")
        if not os.path.isdir(self.shards_dir):
            raise SettingsError(f"shard folder {self.shards_dir!r} does not exist: make a dataset with "
                                f"python -m generator.pipeline --out {self.shards_dir}, or pass --shards FOLDER")
        if not os.access(self.shards_dir, os.R_OK | os.X_OK):
            raise SettingsError(f"shard folder {self.shards_dir!r} cannot be read: fix its permissions")
        if not is_loopback(self.host) and self.token is None:
            raise SettingsError(f"host {self.host} is reachable from other machines, so the catalog needs a bearer "
                                f"token: set {TOKEN_ENV} to a secret of {MIN_TOKEN_LENGTH}+ characters, "
                                f"or listen on 127.0.0.1")
        if self.token is not None and len(self.token) < MIN_TOKEN_LENGTH:
            raise SettingsError(f"{TOKEN_ENV} has {len(self.token)} characters: use a random secret of "
                                f"{MIN_TOKEN_LENGTH}+, e.g. from python -c 'import secrets; print(secrets.token_urlsafe())'")
        return self

    def listening_line(self) -> str:
        address = f"[{self.host}]" if ":" in self.host else self.host
        if self.requires_token:
            return f"listening on {address}:{self.port}, bearer token required ({TOKEN_ENV})"
        return f"listening on {address}:{self.port}, no token required (loopback only)"
