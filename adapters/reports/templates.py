"""The Jinja2 environments the HTML pages are rendered with (reports, subject access, the
payment stand-in's pay page).

Each package keeps its pages in its own ``templates/`` folder as ``*.html.j2``. Every
value a template prints is escaped (autoescape); a template that prints a name it was not
given fails instead of printing nothing (``StrictUndefined``).
"""

from __future__ import annotations

import html
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup


def _escaped(value: Any) -> Any:
    """Every printed value escaped as :func:`html.escape` does it.

    Autoescape alone would write ``&#34;`` and ``&#39;`` (markupsafe) where the pages have
    always had ``&quot;`` and ``&#x27;``: the same text to a browser, but the pages keep
    their bytes. Markup (a macro's output, a block) passes as it is.
    """
    if hasattr(value, "__html__"):
        return value
    return Markup(html.escape(str(value), quote=True))


@cache
def environment(package: str) -> Environment:
    """The environment for the templates in ``package``'s ``templates/`` folder."""
    return Environment(
        loader=PackageLoader(package, "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_escaped,
    )


def render(package: str, name: str, **context: Any) -> str:
    """The template ``name`` of ``package`` rendered with ``context``."""
    return environment(package).get_template(name).render(**context)
