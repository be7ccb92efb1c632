"""The platform seam: what differs between CentOS 7 (the manual) and Debian 12.

Stage modules follow the manual's sequence and ask the platform for package names,
service names, config paths and the few commands that differ. Nothing else in a stage
knows which distribution it runs on.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class Platform:
    name: str
    #: role -> the distribution's package names (a role may need several packages)
    packages: Mapping[str, tuple[str, ...]]
    #: role -> systemd unit name; None when the platform has no such service
    services: Mapping[str, str | None]
    #: role -> config file path; None where the platform has no such file
    paths: Mapping[str, str | None]
    install_command: str
    upgrade_command: str
    refresh_command: str | None = None
    #: keystone's admin API port (Newton: 35357; from Queens on everything is on 5000)
    keystone_admin_port: int = 35357
    has_selinux: bool = False
    has_firewalld: bool = False
    #: whether the keystone package ships the manual's Apache site (CentOS's wsgi-keystone.conf);
    #: where it does not, the stage writes it from the same text
    keystone_site_shipped: bool = True
    #: the interpreter of the distribution's openstack client (it runs the client in-process
    #: to hand it a password from the environment)
    python: str = "python3"
    #: whether rabbitmqctl reads a password from stdin when none is given (its Elixir CLI,
    #: RabbitMQ 3.8 on, e.g. 3.10 in Debian 12); the older one takes it only as an argument
    rabbitmqctl_reads_password: bool = True
    extra: Mapping[str, str] = field(default_factory=dict)

    def keystone_urls(self) -> dict[str, str]:
        """Keystone's endpoints by interface, as the keystone stage registers them."""
        admin_port = self.keystone_admin_port
        return {"admin": f"http://controller:{admin_port}/v3/",
                "internal": f"http://controller:{admin_port}/v3/",
                "public": "http://controller:5000/v3/"}

    def install(self, *roles: str, disable_repos: tuple[str, ...] = ()) -> str:
        """The command that installs the packages of ``roles`` (yum: without the
        repositories ``disable_repos`` for this one command)."""
        names: list[str] = []
        for role in roles:
            names.extend(self.packages[role])
        command = self.install_command
        if disable_repos:
            if not command.startswith("yum ") or not command.endswith(" install"):
                raise ValueError(f"{self.name} cannot disable repositories for one command")
            options = " ".join(f"--disablerepo={shlex.quote(r)}" for r in disable_repos)
            command = f"{command[:-len(' install')]} {options} install"
        return f"{command} {' '.join(shlex.quote(n) for n in names)}"

    def service(self, role: str) -> str | None:
        return self.services[role]

    def enable_and_start(self, *roles: str) -> str:
        units = [self.services[role] for role in roles if self.services[role]]
        return f"systemctl enable {' '.join(units)} && systemctl restart {' '.join(units)}"

    def path(self, role: str) -> str:
        path = self.paths[role]
        if path is None:
            raise KeyError(f"{self.name} has no {role} file")
        return path

    def has_path(self, role: str) -> bool:
        return self.paths.get(role) is not None


CENTOS7 = Platform(
    name="centos7",
    packages={
        "net-tools": ("net-tools",),
        "chrony": ("chrony",),
        "openstack-release": ("centos-release-openstack-newton",),
        "openstack-client": ("python-openstackclient", "openstack-selinux"),
        "mariadb": ("mariadb", "mariadb-server", "python2-PyMySQL"),
        "rabbitmq": ("rabbitmq-server",),
        "memcached": ("memcached",),
        "memcached-python": ("python-memcached",),
        "keystone": ("openstack-keystone", "httpd", "mod_wsgi"),
        "glance": ("openstack-glance",),
    },
    services={
        "chrony": "chronyd", "mariadb": "mariadb", "rabbitmq": "rabbitmq-server",
        "memcached": "memcached", "httpd": "httpd",
        "glance-api": "openstack-glance-api", "glance-registry": "openstack-glance-registry",
        "keystone-uwsgi": None,
    },
    paths={
        "chrony.conf": "/etc/chrony.conf",
        "mariadb.cnf": "/etc/my.cnf.d/openstack.cnf",
        "memcached": "/etc/sysconfig/memcached",
        "httpd-servername": "/etc/httpd/conf.d/servername.conf",
        "keystone-wsgi-source": "/usr/share/keystone/wsgi-keystone.conf",
        "keystone-wsgi-link": "/etc/httpd/conf.d/wsgi-keystone.conf",
        "keystone-paste": "/etc/keystone/keystone-paste.ini",
        "httpd-logs": "/var/log/httpd",
    },
    install_command="yum -y -q install",
    upgrade_command="yum -y -q upgrade",
    refresh_command="yum -q makecache",
    keystone_admin_port=35357,
    has_selinux=True,
    has_firewalld=True,
    python="python",
    rabbitmqctl_reads_password=False,
)

DEBIAN12 = Platform(
    name="debian12",
    packages={
        "net-tools": ("net-tools",),
        "chrony": ("chrony",),
        "openstack-release": (),
        "openstack-client": ("python3-openstackclient",),
        "mariadb": ("mariadb-server", "mariadb-client", "python3-pymysql"),
        "rabbitmq": ("rabbitmq-server",),
        "memcached": ("memcached",),
        "memcached-python": ("python3-memcache",),
        "keystone": ("keystone", "apache2", "libapache2-mod-wsgi-py3"),
        "glance": ("glance-api", "glance-common"),
    },
    services={
        "chrony": "chrony", "mariadb": "mariadb", "rabbitmq": "rabbitmq-server",
        "memcached": "memcached", "httpd": "apache2",
        "glance-api": "glance-api", "glance-registry": None,  # the registry left in Ussuri
        # Debian's keystone package serves Keystone from uwsgi on port 5000 itself
        "keystone-uwsgi": "keystone",
    },
    paths={
        "chrony.conf": "/etc/chrony/chrony.conf",
        "mariadb.cnf": "/etc/mysql/mariadb.conf.d/99-openstack.cnf",
        "memcached": "/etc/memcached.conf",
        "httpd-servername": "/etc/apache2/conf-enabled/servername.conf",
        "keystone-wsgi-source": "/etc/apache2/sites-available/keystone.conf",
        "keystone-wsgi-link": "/etc/apache2/sites-enabled/keystone.conf",
        # Keystone has had no paste pipeline (so no admin_token_auth in one) since Rocky
        "keystone-paste": None,
        "httpd-logs": "/var/log/apache2",
    },
    install_command=("DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends "
                     "-o Dpkg::Options::=--force-confold install"),
    upgrade_command="DEBIAN_FRONTEND=noninteractive apt-get -q -y upgrade",
    refresh_command="DEBIAN_FRONTEND=noninteractive apt-get -q -y update",
    keystone_admin_port=5000,
    keystone_site_shipped=False,
)

PLATFORMS = {p.name: p for p in (CENTOS7, DEBIAN12)}
