"""No Celery tasks: nothing in this app happens outside a request.

Kept so every app has the same layout; Celery's autodiscovery imports it.
"""
