from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"

    def ready(self):
        # Registers the OpenAPI description of token auth as a side effect of import.
        from apps.accounts import schema  # noqa: F401
