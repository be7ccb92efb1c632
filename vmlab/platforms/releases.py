"""OpenStack releases: what the manual's Keystone and Glance chapters change between them.
A distribution says which releases it packages (``Distro.releases``)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Release:
    name: str
    title: str
    #: keystone's admin API port: 35357 until Queens put every API on 5000
    keystone_admin_port: int
    #: glance-registry, removed in Ussuri
    glance_registry: bool
    #: keystone-paste.ini's pipelines (with admin_token_auth, which the manual takes out):
    #: Keystone has had no paste pipeline since Rocky
    keystone_paste_pipeline: bool
    #: keystonemiddleware's option for the URI clients are sent to: auth_uri, deprecated in
    #: Queens for www_authenticate_uri
    authtoken_uri_option: str
    #: The services' database password in a PyMySQL option file (``read_default_file``)
    #: instead of the connection URL. Keystone since Zed (22, its first Alembic release;
    #: 27 in 2025.1 too) hands that URL to Alembic's ConfigParser without escaping ``%``
    #: (keystone/common/sql/upgrades.py: ``set_main_option('sqlalchemy.url',
    #: CONF.database.connection)``), so a percent-encoded password (any space, quote, ``$``
    #: or backslash) makes ``keystone-manage db_sync`` fail ("invalid interpolation syntax").
    db_password_in_option_file: bool = False

    def keystone_urls(self) -> dict[str, str]:
        """Keystone's endpoints by interface, as the keystone stage registers them."""
        admin = f"http://controller:{self.keystone_admin_port}/v3/"
        return {"admin": admin, "internal": admin, "public": "http://controller:5000/v3/"}

    @property
    def keystone_ports(self) -> tuple[int, ...]:
        """The ports Keystone listens on."""
        return (5000,) if self.keystone_admin_port == 5000 else (5000, self.keystone_admin_port)


NEWTON = Release("newton", "Newton (2016)", keystone_admin_port=35357, glance_registry=True,
                 keystone_paste_pipeline=True, authtoken_uri_option="auth_uri")
ZED = Release("zed", "Zed (2022)", keystone_admin_port=5000, glance_registry=False,
              keystone_paste_pipeline=False, authtoken_uri_option="www_authenticate_uri",
              db_password_in_option_file=True)
EPOXY = Release("epoxy", "2025.1 Epoxy", keystone_admin_port=5000, glance_registry=False,
                keystone_paste_pipeline=False, authtoken_uri_option="www_authenticate_uri",
                db_password_in_option_file=True)

RELEASES: dict[str, Release] = {r.name: r for r in (NEWTON, ZED, EPOXY)}
