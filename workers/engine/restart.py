"""Restart policies as Docker has them: no, on-failure[:N], always, unless-stopped.

The shim applies them on its own host, so they keep working while the agent,
Redis or the control plane is down. Back-off doubles from 100 ms up to a
minute, and starts over once a run has lasted 10 s.
"""

from dataclasses import dataclass

NAMES = ("no", "on-failure", "always", "unless-stopped")
FIRST_DELAY, MAX_DELAY, RESET_AFTER = 0.1, 60.0, 10.0


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class RestartPolicy:
    name: str = "no"
    maximum: int = 0  # on-failure's retry limit; 0 = unlimited

    @classmethod
    def parse(cls, text: str | dict | None) -> "RestartPolicy":
        if isinstance(text, dict):
            text = f"{text.get('Name') or 'no'}:{text.get('MaximumRetryCount') or 0}"
        name, _, count = (text or "no").partition(":")
        if name not in NAMES:
            raise PolicyError(f"invalid restart policy {text!r}: use one of {', '.join(NAMES)}")
        if count and (name != "on-failure" or not count.isdecimal()) and count != "0":
            raise PolicyError(f"invalid restart policy {text!r}: only on-failure takes "
                              "a retry count (on-failure:N)")
        return cls(name, int(count or 0))

    def __str__(self) -> str:
        return f"{self.name}:{self.maximum}" if self.maximum else self.name

    def wants(self, exit_code: int, restarts: int) -> bool:
        if self.name in ("always", "unless-stopped"):
            return True
        if self.name == "on-failure":
            return exit_code != 0 and (not self.maximum or restarts < self.maximum)
        return False

    def brings_back_after_reboot(self, stopped_by_user: bool) -> bool:
        return self.name == "always" or (self.name == "unless-stopped" and not stopped_by_user)

    @staticmethod
    def delay(restarts: int, ran_for: float) -> float:
        if ran_for >= RESET_AFTER:
            return FIRST_DELAY
        return min(MAX_DELAY, FIRST_DELAY * (2 ** restarts))
