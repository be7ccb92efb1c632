"""The roles a stage asks a distribution about: typed, so a typo is an AttributeError at
import time (and a mypy error), never a KeyError in the middle of a deployment."""
from __future__ import annotations

from enum import Enum


class Pkg(Enum):
    """What a stage installs; each distribution names the packages of a role."""

    NET_TOOLS = "net-tools"
    CHRONY = "chrony"
    #: the package that adds the OpenStack repository (CentOS's SIG release package)
    OPENSTACK_RELEASE = "openstack-release"
    OPENSTACK_CLIENT = "openstack-client"
    MARIADB = "mariadb"
    RABBITMQ = "rabbitmq"
    MEMCACHED = "memcached"
    MEMCACHED_PYTHON = "memcached-python"
    KEYSTONE = "keystone"
    GLANCE = "glance"


class Svc(Enum):
    """A systemd unit a stage starts, checks or orders."""

    CHRONY = "chrony"
    MARIADB = "mariadb"
    RABBITMQ = "rabbitmq"
    MEMCACHED = "memcached"
    HTTPD = "httpd"
    GLANCE_API = "glance-api"
    GLANCE_REGISTRY = "glance-registry"
    #: Keystone as the package starts it itself (Debian: from uwsgi on port 5000), which
    #: the manual's Apache site replaces
    KEYSTONE_PACKAGED = "keystone-packaged"


class File(Enum):
    """A file or directory a stage writes, links or reads."""

    CHRONY_CONF = "chrony.conf"
    MARIADB_CNF = "mariadb.cnf"
    MEMCACHED_CONF = "memcached"
    HTTPD_SERVERNAME = "httpd-servername"
    #: the manual's keystone Apache site (wsgi-keystone.conf) and where Apache reads it
    KEYSTONE_SITE = "keystone-wsgi-source"
    KEYSTONE_SITE_LINK = "keystone-wsgi-link"
    KEYSTONE_PASTE = "keystone-paste"
    HTTPD_LOGS = "httpd-logs"


class Tpl(Enum):
    """A template whose text differs by distribution (its format or its software's
    version), not only by a value."""

    #: memcached's settings file: sysconfig variables or Debian's option file
    MEMCACHED_CONF = "memcached-conf"
    #: the SQL of mysql_secure_installation for the MariaDB the distribution ships
    MARIADB_SECURE = "mariadb-secure"
