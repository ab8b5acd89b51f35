"""Planner login: bcrypt-hashed password, throttled failures, and the resident/planner role check.

The resident page is public. Pages that change data require the ``planner`` role whenever a deployment
configures a login; with none configured the app runs in open demo mode and every session is the local planner.

Configuration (the first source that holds a hash wins):

- Streamlit secrets, passed in by the UI as a mapping: ``planner_password_hash`` and optionally ``planner_user``;
- the environment: ``LTCI_PLANNER_PASSWORD_HASH`` and optionally ``LTCI_PLANNER_USER`` (default user ``planner``).

Only a salted bcrypt hash is ever configured or kept; make one with ``python -m workspace.auth hash`` (reads the
password from stdin). Failed logins are throttled per user name with an exponentially growing lock-out, tracked
in this process (a Streamlit server is one process, so every session shares it).

Write methods of :mod:`workspace.store` take an :class:`Actor` and call :func:`require_planner`, so a resident
session cannot reach a planner action even if a page forgets its own check.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import bcrypt

PASSWORD_HASH_ENV = "LTCI_PLANNER_PASSWORD_HASH"
USER_ENV = "LTCI_PLANNER_USER"
SECRET_HASH_KEY = "planner_password_hash"
SECRET_USER_KEY = "planner_user"
DEFAULT_PLANNER_USER = "planner"

#: Session roles. Residents read; planners change data.
ROLES: tuple[str, ...] = ("resident", "planner")

#: bcrypt only looks at the first 72 bytes; longer passwords are refused instead of silently truncated.
_BCRYPT_MAX_BYTES = 72


@dataclass(frozen=True)
class Actor:
    """Who performs an action: the user name recorded in the audit log and the session's role."""

    user: str = "local"
    role: str = "planner"

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; use one of {', '.join(ROLES)}")
        if not isinstance(self.user, str) or not self.user.strip():
            raise ValueError("an actor needs a non-empty user name (use 'local' when there is no login)")


#: The actor of open demo mode and of scripts: the local planner.
LOCAL_PLANNER = Actor("local", "planner")
#: A public, read-only session.
RESIDENT = Actor("resident", "resident")


@dataclass(frozen=True)
class PlannerCredentials:
    """The configured planner login: a user name and a bcrypt hash (never the password)."""

    user: str
    password_hash: bytes
    source: str


@dataclass(frozen=True)
class LoginResult:
    """Outcome of :func:`check_login`. ``actor`` is set only on success; ``retry_after`` is in seconds."""

    ok: bool
    actor: Actor | None
    retry_after: float
    message: str


def hash_password(password: str, *, rounds: int = 12) -> str:
    """Return a salted bcrypt hash of ``password`` to put in secrets or the environment.

    Parameters
    ----------
    password : str
        The planner password; 8 to 72 UTF-8 bytes.
    rounds : int
        bcrypt cost factor (log2 of the iterations); 12 takes a few hundred ms, which is the point.
    """
    encoded = _encode_password(password)
    if len(password) < 8:
        raise ValueError("a planner password needs at least 8 characters")
    return bcrypt.hashpw(encoded, bcrypt.gensalt(rounds=rounds)).decode("ascii")


def _encode_password(password: str) -> bytes:
    if not isinstance(password, str):
        raise TypeError("the password must be a str")
    encoded = password.encode("utf-8")
    if len(encoded) > _BCRYPT_MAX_BYTES:
        raise ValueError(f"a planner password may have at most {_BCRYPT_MAX_BYTES} UTF-8 bytes (bcrypt's limit)")
    return encoded


def planner_credentials(*, secrets: Mapping | None = None,
                        environ: Mapping[str, str] | None = None) -> PlannerCredentials | None:
    """Read the configured planner login, or ``None`` in open demo mode.

    Raises ``ValueError`` naming the setting when a configured hash is not a bcrypt hash (for example a
    plain-text password pasted by mistake), because silently falling back to demo mode would open the app.
    """
    environ = os.environ if environ is None else environ
    sources = []
    if secrets is not None:
        sources.append(("secrets", secrets.get(SECRET_HASH_KEY), secrets.get(SECRET_USER_KEY), SECRET_HASH_KEY))
    sources.append(("environment", environ.get(PASSWORD_HASH_ENV), environ.get(USER_ENV), PASSWORD_HASH_ENV))
    for source, hashed, user, setting in sources:
        if hashed is None or not str(hashed).strip():
            continue
        hashed = str(hashed).strip().encode("ascii", errors="replace")
        if not (hashed.startswith((b"$2a$", b"$2b$", b"$2y$")) and len(hashed) == 60):
            raise ValueError(
                f"{setting} ({source}) is not a bcrypt hash; never store the password itself. "
                "Generate a hash with: python -m workspace.auth hash")
        return PlannerCredentials(user=str(user).strip() if user else DEFAULT_PLANNER_USER,
                                  password_hash=hashed, source=source)
    return None


def login_configured(*, secrets: Mapping | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """``True`` when a planner login is configured; ``False`` means open demo mode."""
    return planner_credentials(secrets=secrets, environ=environ) is not None


class LoginThrottle:
    """Per-user exponential back-off after failed logins.

    After ``free_failures`` failures in a row, each further failure locks the user name out for
    ``base_delay * factor ** k`` seconds (k = 0, 1, 2 ...), capped at ``max_delay``. A success clears it.

    Parameters
    ----------
    clock : callable
        Returns the current time in seconds; inject a fake clock in tests.
    """

    def __init__(self, *, free_failures: int = 3, base_delay: float = 1.0, factor: float = 2.0,
                 max_delay: float = 900.0, clock: Callable[[], float] = time.monotonic):
        if free_failures < 0 or base_delay <= 0 or factor < 1 or max_delay < base_delay:
            raise ValueError("LoginThrottle needs free_failures >= 0, base_delay > 0, factor >= 1, "
                             "max_delay >= base_delay")
        self.free_failures = free_failures
        self.base_delay = base_delay
        self.factor = factor
        self.max_delay = max_delay
        self.clock = clock
        self._failures: dict[str, int] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(user: str) -> str:
        # Case and surrounding spaces must not give an attacker fresh attempts.
        return (user or "").strip().casefold()

    def retry_after(self, user: str) -> float:
        """Seconds until ``user`` may try again (0 when allowed now)."""
        with self._lock:
            return max(0.0, self._locked_until.get(self._key(user), 0.0) - self.clock())

    def failures(self, user: str) -> int:
        """Failed attempts in a row for ``user``."""
        with self._lock:
            return self._failures.get(self._key(user), 0)

    def record_failure(self, user: str) -> float:
        """Count a failure and return the lock-out it starts, in seconds."""
        key = self._key(user)
        with self._lock:
            count = self._failures.get(key, 0) + 1
            self._failures[key] = count
            excess = count - self.free_failures
            if excess <= 0:
                return 0.0
            delay = min(self.max_delay, self.base_delay * self.factor ** (excess - 1))
            self._locked_until[key] = self.clock() + delay
            return delay

    def record_success(self, user: str) -> None:
        """Clear the failures of ``user``."""
        key = self._key(user)
        with self._lock:
            self._failures.pop(key, None)
            self._locked_until.pop(key, None)


#: The process-wide throttle the app uses.
default_throttle = LoginThrottle()


def check_login(user: str, password: str, *, secrets: Mapping | None = None,
                environ: Mapping[str, str] | None = None, throttle: LoginThrottle | None = None) -> LoginResult:
    """Check a planner login against the configured bcrypt hash, with back-off on repeated failures.

    Returns a :class:`LoginResult`; on success its ``actor`` is the planner to pass to store write methods.
    While a user name is locked out, the password is not even checked, so guessing gains nothing.
    """
    throttle = default_throttle if throttle is None else throttle
    credentials = planner_credentials(secrets=secrets, environ=environ)
    if credentials is None:
        return LoginResult(False, None, 0.0, "no planner login is configured: the app runs in open demo mode")
    wait = throttle.retry_after(user)
    if wait > 0:
        return LoginResult(False, None, wait, f"too many failed logins; try again in {wait:.0f} s")
    try:
        password_ok = bcrypt.checkpw(_encode_password(password), credentials.password_hash)
    except (TypeError, ValueError):
        password_ok = False
    # Compare names only after the (slow) hash check, so both failure kinds take the same time.
    if password_ok and (user or "").strip() == credentials.user:
        throttle.record_success(user)
        return LoginResult(True, Actor(credentials.user, "planner"), 0.0, f"logged in as {credentials.user}")
    delay = throttle.record_failure(user)
    message = "wrong user name or password"
    if delay > 0:
        message += f"; try again in {delay:.0f} s"
    return LoginResult(False, None, delay, message)


def require_planner(session: Actor | str) -> None:
    """Raise ``PermissionError`` unless ``session`` (an :class:`Actor` or a role name) is a planner."""
    role = session.role if isinstance(session, Actor) else session
    if role != "planner":
        raise PermissionError("this action changes workspace data and needs a planner login; "
                              f"the current session is {role!r}")


def _main(argv: list[str]) -> int:
    if argv[:1] != ["hash"] or len(argv) != 1:
        print("usage: python -m workspace.auth hash   (reads the password from stdin, prints a bcrypt hash)",
              file=sys.stderr)
        return 2
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass("planner password: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        print(hash_password(password))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"put it in {PASSWORD_HASH_ENV} or Streamlit secrets as {SECRET_HASH_KEY}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
