"""Email normalisation and the password rule, with messages an artist can act on."""

from __future__ import annotations

import re

from gateway.lib.errors import Unprocessable

__all__ = ["check_password", "normalise_email"]

MAX_EMAIL_CHARS = 254
MAX_LOCAL_PART_CHARS = 64
MIN_DISTINCT_PASSWORD_CHARS = 4
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


class InvalidEmail(Unprocessable):
    code = "invalid_email"


class WeakPassword(Unprocessable):
    code = "weak_password"


def normalise_email(raw: str) -> str:
    """Trimmed and lower-cased; the shape of an address (local@domain.tld), bounded lengths."""
    email = raw.strip().lower()
    if len(email) > MAX_EMAIL_CHARS:
        raise InvalidEmail(f"The email is longer than {MAX_EMAIL_CHARS} characters")
    if not _EMAIL.match(email) or ".." in email:
        raise InvalidEmail("The email is not a valid address (expected name@example.com)")
    if len(email.split("@", 1)[0]) > MAX_LOCAL_PART_CHARS:
        raise InvalidEmail(f"The part before @ is longer than {MAX_LOCAL_PART_CHARS} characters")
    return email


def check_password(password: str, *, email: str, min_length: int) -> None:
    """Length first (what matters most), then two sanity rules against trivial choices."""
    if len(password) < min_length:
        raise WeakPassword(f"The password must be at least {min_length} characters long")
    if len(set(password)) < MIN_DISTINCT_PASSWORD_CHARS:
        raise WeakPassword(f"The password must use at least {MIN_DISTINCT_PASSWORD_CHARS} different characters")
    lowered = password.strip().lower()
    if lowered in (email, email.split("@", 1)[0]):
        raise WeakPassword("The password must not be the email address")
