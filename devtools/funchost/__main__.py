"""Command line: `python -m devtools.funchost --app-dir DIR --host 127.0.0.1 --port 7071`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from . import logs
from .host import Host, HostOptions


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.funchost", description=__doc__)
    parser.add_argument("--app-dir", default=".", help="folder with function_app.py and host.json")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--settings", help="local.settings.json (default: APP_DIR/local.settings.json)")
    parser.add_argument("--log-file", help="also write log lines to this file")
    parser.add_argument("--no-timers", action="store_true", help="do not fire timer schedules (admin API still can)")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds running invocations get on shutdown")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    app_dir = Path(args.app_dir).resolve()
    logs.configure(Path(args.log_file) if args.log_file else None)
    options = HostOptions(
        app_dir=app_dir,
        host=args.host,
        port=args.port,
        settings_path=Path(args.settings) if args.settings else app_dir / "local.settings.json",
        timers_enabled=not args.no_timers,
        grace_seconds=args.grace,
    )
    return asyncio.run(Host(options).run())


if __name__ == "__main__":
    sys.exit(main())
