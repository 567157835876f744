"""The harness floor: the same scheduler and tasks as a real client, but fetch sends nothing."""

from __future__ import annotations

from typing import Any

from common import Adapter, main


class Null(Adapter):
    name = "null"

    async def new_session(self, scope: str = "session") -> Any:
        return None

    async def fetch(self, session: Any, url: str) -> tuple[int, str, int]:
        return 200, self.http, 0


if __name__ == "__main__":
    main(Null)
