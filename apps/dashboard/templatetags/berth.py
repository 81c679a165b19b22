"""Small display filters for the dashboard's templates."""

from django import template

register = template.Library()


@register.filter
def short_digest(value) -> str:
    text = str(value or "")
    return text.split(":", 1)[-1][:12]


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.simple_tag(takes_context=True)
def team_slugs(context) -> str:
    """Space-separated slugs of the teams whose events this page may subscribe to."""
    from apps.dashboard.access import visible_teams

    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return ""
    return " ".join(visible_teams(request.user).values_list("slug", flat=True))
