"""`make serve`: run the shard catalog with uvicorn.

    python -m service --host 127.0.0.1 --port 8000 --shards shards

Bad settings (missing folder, bad port, a non-loopback host without a token) stop it
before any socket is bound, with one line on stderr naming the fix. Once the socket
is bound it prints which address it listens on and whether a bearer token is required.
The catalog's own log lines (a manifest it leaves out, a file it cannot read) go to
stderr beside uvicorn's.
"""

import argparse
import logging
import os
import sys

import uvicorn

from generator.arguments import OneLineParser
from service.app import create_app
from service.settings import TOKEN_ENV, ServerSettings, SettingsError

PROG = "python -m service"


def port_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port {text!r} is not a number: use 1-65535, e.g. 8000") from None


def build_parser() -> argparse.ArgumentParser:
    defaults = ServerSettings()
    parser = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=defaults.host,
                        help=f"address to listen on (default {defaults.host}); any non-loopback address needs {TOKEN_ENV}")
    parser.add_argument("--port", type=port_number, default=defaults.port, help=f"TCP port (default {defaults.port})")
    parser.add_argument("--shards", default=defaults.shards_dir, help=f"shard folder (default {defaults.shards_dir}/)")
    parser.add_argument("--no-access-log", action="store_true", help="do not log one line per request")
    return parser


class AnnouncingServer(uvicorn.Server):
    """A uvicorn server that prints `line` once its socket is bound (a failed bind exits before)."""

    def __init__(self, config: uvicorn.Config, line: str):
        super().__init__(config)
        self.line = line

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started:
            print(self.line, flush=True)


def main(argv=None, environ=os.environ) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = ServerSettings.from_environment(args.host, args.port, args.shards, not args.no_access_log,
                                                   environ).validate()
    except SettingsError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:  %(name)s: %(message)s")
    app = create_app(settings.shards_dir, settings.token)
    found = len(app.state.catalog.datasets())
    print(f"catalog of {app.state.catalog.root}: {found} finished dataset(s), rescanned on every request", flush=True)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, access_log=settings.access_log)
    server = AnnouncingServer(config, f"{settings.listening_line()}; API docs at /docs")
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
