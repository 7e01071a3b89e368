"""The office's public pages: server-rendered HTML over the same service commands as the
JSON API (no business rule lives in a page).

One module per service (``start``, ``booking``, ``contact``, ``declaration``, and the
development-only ``mailbox``), its templates in ``templates/<module>/``, its
translations in ``locales/<language>/LC_MESSAGES/<module>.po``. :mod:`.rendering` turns a
template into a response in the visitor's language; :mod:`.languages` picks that
language; :func:`install_pages` (in :mod:`.site`) adds the pages and their static files
to the app; :mod:`.errors` answers the errors of requests for the pages' paths (``404``,
``413``, ``429`` ..., whichever layer finds them) as pages in the visitor's language.

Everything a page needs is served by Akte itself: no CDN, no web font, no script or
image from another host, so a visitor's address reaches no third party.
"""
