"""Helpers of the resilience tests: a fake outside service on manual time."""

from __future__ import annotations

from ordercore.resilience import ManualTime


class Service:
    """A fake outside service: counts calls, fails or hangs on demand, takes time."""

    def __init__(self, time: ManualTime, name: str = "svc") -> None:
        self.time = time
        self.name = name
        self.calls = 0
        self.failures: list[BaseException] = []
        self.duration = 0.0

    def fail_next(self, *errors: BaseException) -> None:
        self.failures.extend(errors)

    async def work(self, value: str = "ok") -> str:
        self.calls += 1
        self.time.advance(self.duration)
        if self.failures:
            raise self.failures.pop(0)
        return f"{self.name}:{value}"
