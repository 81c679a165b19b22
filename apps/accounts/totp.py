"""TOTP second factor: enrol, confirm, verify at login, disable.

Enrolling creates an unconfirmed device and returns its secret once (as an
``otpauth://`` URI for authenticator apps); only a confirmed device is asked for
at login, so a user cannot lock themselves out by enrolling and walking away.
API tokens are not affected: a token is its own credential.
"""

from __future__ import annotations

import time

import pyotp
from django.db import transaction

from apps.accounts.models import TotpDevice
from apps.audit import record
from berth.crypto import decrypt_text, encrypt_text
from berth.errors import Conflict, InvalidInput

ISSUER = "Berth"
STEP = 30
VALID_WINDOW = 1  # one step either side: clocks drift


def has_totp(user) -> bool:
    return TotpDevice.objects.filter(user=user, confirmed=True).exists()


@transaction.atomic
def enrol(user) -> str:
    """Start (or restart) enrolment; returns the provisioning URI with the secret."""
    if has_totp(user):
        raise Conflict("a second factor is already on; disable it first to enrol a new one")
    secret = pyotp.random_base32()
    TotpDevice.objects.update_or_create(
        user=user,
        defaults={"secret_encrypted": encrypt_text(secret), "confirmed": False, "last_step": 0},
    )
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)


@transaction.atomic
def confirm(user, code) -> None:
    device = TotpDevice.objects.select_for_update().filter(user=user).first()
    if device is None:
        raise InvalidInput("enrol first: there is no second factor to confirm", field="code")
    if device.confirmed:
        raise Conflict("the second factor is already confirmed")
    if not _accept(device, code):
        raise InvalidInput("wrong or expired code", field="code")
    TotpDevice.objects.filter(pk=device.pk).update(confirmed=True)
    record("account.totp_on", user, object_type="user")


@transaction.atomic
def disable(user, code) -> None:
    device = TotpDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
    if device is None:
        raise Conflict("no second factor is on")
    if not _accept(device, code):
        raise InvalidInput("wrong or expired code", field="code")
    device.delete()
    record("account.totp_off", user, object_type="user")


@transaction.atomic
def verify(user, code) -> bool:
    """True when ``code`` is a fresh, valid code of the user's confirmed device."""
    device = TotpDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
    return device is not None and _accept(device, code)


def _accept(device: TotpDevice, code) -> bool:
    """Check the code and use up its time step (compare-and-set on ``last_step``)."""
    if not isinstance(code, str) or not code.strip().isdigit():
        return False
    totp = pyotp.TOTP(decrypt_text(device.secret_encrypted))
    now = time.time()
    for offset in range(-VALID_WINDOW, VALID_WINDOW + 1):
        at = now + offset * STEP
        step = int(at // STEP)
        if step > device.last_step and totp.verify(code.strip(), for_time=at, valid_window=0):
            used = TotpDevice.objects.filter(pk=device.pk, last_step__lt=step)
            if used.update(last_step=step):
                device.last_step = step
                return True
    return False
