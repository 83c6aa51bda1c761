"""Process-wide logging: JSON or text lines on stderr, level from LOG_LEVEL."""

from __future__ import annotations

import json
import logging
import time

from services.common.config import Env

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with any `extra=` fields included."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure_logging(env: Env | None = None, *, service: str = "") -> None:
    """Configure the root logger from LOG_LEVEL and LOG_FORMAT (json|text)."""
    env = env or Env()
    level_name = env.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error"))
    fmt = env.choice("LOG_FORMAT", "text", ("json", "text"))
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        prefix = f"{service} " if service else ""
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {prefix}%(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level_name.upper())
    # aiohttp's access log is noisy at info; keep it at warning unless debugging.
    logging.getLogger("aiohttp.access").setLevel(
        logging.DEBUG if level_name == "debug" else logging.WARNING
    )
