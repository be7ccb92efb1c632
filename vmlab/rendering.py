"""The template environment of the files vmlab writes into guests (vmlab/templates/): the
stages render with it, and `vmlab openrc` renders the openrc the keystone stage writes."""
from __future__ import annotations

import jinja2

from vmlab.stages.secretio import FILTERS

templates = jinja2.Environment(
    loader=jinja2.PackageLoader("vmlab", "templates"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)
templates.filters.update(FILTERS)  # each format's quoting of a secret (see secretio)
