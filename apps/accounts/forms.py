"""The browser login form: password, the throttle's answer, and the TOTP second factor."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from apps.accounts import throttle, totp


class LoginForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Your username and password did not match.",
    }
    otp = forms.CharField(
        required=False,
        max_length=12,
        label="Authenticator code",
        help_text="only if you turned on a second factor",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def clean(self):
        username = self.cleaned_data.get("username")
        ip = throttle.client_ip(self.request)
        wait = throttle.retry_after(username, ip)
        if wait:
            raise ValidationError(
                f"Too many failed logins. Try again in {wait} seconds.", code="throttled"
            )
        cleaned = super().clean()
        user = self.get_user()
        code = self.cleaned_data.get("otp") or ""
        if user is not None and totp.has_totp(user) and not totp.verify(user, code):
            throttle.failed(username, ip)
            self.user_cache = None
            raise ValidationError("Enter the current code from your authenticator app.", code="otp")
        # Only a complete login (password and, when on, the code) clears the name's count.
        throttle.succeeded(username, ip)
        return cleaned
