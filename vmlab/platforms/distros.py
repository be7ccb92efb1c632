"""The distributions vmlab deploys on: CentOS 7 (the manual's) and Debian's."""
from __future__ import annotations

from vmlab.platforms.distro import (Distro, IfcfgFiles, OwnArchive, SeededAtBoot,
                                    SigReleasePackage)
from vmlab.platforms.packaging import Apt, Yum
from vmlab.platforms.roles import File, Pkg, Svc, Tpl

CENTOS7 = Distro(
    name="centos7",
    title="CentOS 7",
    codename=None,
    packaging=Yum(mirror_template="openstack/centos-base.repo.j2",
                  repo_variables={"basearch": "x86_64", "arch": "x86_64", "releasever": "7"}),
    packages={
        Pkg.NET_TOOLS: ("net-tools",),
        Pkg.CHRONY: ("chrony",),
        Pkg.OPENSTACK_RELEASE: ("centos-release-openstack-newton",),
        Pkg.OPENSTACK_CLIENT: ("python-openstackclient", "openstack-selinux"),
        Pkg.MARIADB: ("mariadb", "mariadb-server", "python2-PyMySQL"),
        Pkg.RABBITMQ: ("rabbitmq-server",),
        Pkg.MEMCACHED: ("memcached",),
        Pkg.MEMCACHED_PYTHON: ("python-memcached",),
        Pkg.KEYSTONE: ("openstack-keystone", "httpd", "mod_wsgi"),
        Pkg.GLANCE: ("openstack-glance",),
    },
    services={
        Svc.CHRONY: "chronyd", Svc.MARIADB: "mariadb", Svc.RABBITMQ: "rabbitmq-server",
        Svc.MEMCACHED: "memcached", Svc.HTTPD: "httpd",
        Svc.GLANCE_API: "openstack-glance-api",
        Svc.GLANCE_REGISTRY: "openstack-glance-registry",
    },
    paths={
        File.CHRONY_CONF: "/etc/chrony.conf",
        File.MARIADB_CNF: "/etc/my.cnf.d/openstack.cnf",
        File.MEMCACHED_CONF: "/etc/sysconfig/memcached",
        File.HTTPD_SERVERNAME: "/etc/httpd/conf.d/servername.conf",
        File.KEYSTONE_SITE: "/usr/share/keystone/wsgi-keystone.conf",
        File.KEYSTONE_SITE_LINK: "/etc/httpd/conf.d/wsgi-keystone.conf",
        File.KEYSTONE_PASTE: "/etc/keystone/keystone-paste.ini",
        File.HTTPD_LOGS: "/var/log/httpd",
    },
    templates={
        Tpl.MEMCACHED_CONF: "openstack/memcached-sysconfig.j2",
        Tpl.MARIADB_SECURE: "openstack/mariadb-secure-5.5.sql.j2",
    },
    network=IfcfgFiles(),
    openstack_repos=SigReleasePackage(template="openstack/centos-openstack.repo.j2",
                                      path="/etc/yum.repos.d/vmlab-openstack.repo"),
    install_methods=("kickstart",),
    releases=("newton",),
    has_selinux=True,
    has_firewalld=True,
    python="python",
    rabbitmqctl_reads_password=False,
)

#: What Debian's releases share: package names, units and paths have stayed the same from
#: bookworm on; the suite and the releases it packages differ.
_DEBIAN = dict(
    packaging=Apt(sources_template="openstack/debian-sources.list.j2"),
    packages={
        Pkg.NET_TOOLS: ("net-tools",),
        Pkg.CHRONY: ("chrony",),
        Pkg.OPENSTACK_RELEASE: (),
        Pkg.OPENSTACK_CLIENT: ("python3-openstackclient",),
        Pkg.MARIADB: ("mariadb-server", "mariadb-client", "python3-pymysql"),
        Pkg.RABBITMQ: ("rabbitmq-server",),
        Pkg.MEMCACHED: ("memcached",),
        Pkg.MEMCACHED_PYTHON: ("python3-memcache",),
        Pkg.KEYSTONE: ("keystone", "apache2", "libapache2-mod-wsgi-py3"),
        Pkg.GLANCE: ("glance-api", "glance-common"),
    },
    services={
        Svc.CHRONY: "chrony", Svc.MARIADB: "mariadb", Svc.RABBITMQ: "rabbitmq-server",
        Svc.MEMCACHED: "memcached", Svc.HTTPD: "apache2", Svc.GLANCE_API: "glance-api",
        # Debian's keystone package serves Keystone from uwsgi on port 5000 itself
        Svc.KEYSTONE_PACKAGED: "keystone",
    },
    paths={
        File.CHRONY_CONF: "/etc/chrony/chrony.conf",
        File.MARIADB_CNF: "/etc/mysql/mariadb.conf.d/99-openstack.cnf",
        File.MEMCACHED_CONF: "/etc/memcached.conf",
        File.HTTPD_SERVERNAME: "/etc/apache2/conf-enabled/servername.conf",
        File.KEYSTONE_SITE: "/etc/apache2/sites-available/keystone.conf",
        File.KEYSTONE_SITE_LINK: "/etc/apache2/sites-enabled/keystone.conf",
        File.HTTPD_LOGS: "/var/log/apache2",
    },
    templates={
        Tpl.MEMCACHED_CONF: "openstack/memcached-debian.j2",
        # MariaDB 10.4 on keeps accounts in mysql.global_priv
        Tpl.MARIADB_SECURE: "openstack/mariadb-secure-global-priv.sql.j2",
    },
    # Debian's packages would configure a database and endpoints through debconf; the
    # manual does that itself.
    preseeds={Pkg.KEYSTONE: "openstack/debconf-keystone.j2",
              Pkg.GLANCE: "openstack/debconf-glance.j2"},
    network=SeededAtBoot(),
    openstack_repos=OwnArchive(),
    keystone_site_shipped=False,
)

#: Debian is also installed by debian-installer (install.method preseed: the netboot kernel
#: of the debian-installer-<number>-netboot-amd64 package and kickstart/debian.preseed.j2).
DEBIAN12 = Distro(name="debian12", title="Debian 12", codename="bookworm",
                  install_methods=("image", "preseed"),
                  releases=("zed",), **_DEBIAN)  # type: ignore[arg-type]
#: trixie's own archive packages OpenStack 2025.1 (Keystone 27, Glance 30) with MariaDB
#: 11.8 and RabbitMQ 4.0
DEBIAN13 = Distro(name="debian13", title="Debian 13", codename="trixie",
                  install_methods=("image", "preseed"),
                  releases=("epoxy",), **_DEBIAN)  # type: ignore[arg-type]

DISTROS: dict[str, Distro] = {d.name: d for d in (CENTOS7, DEBIAN12, DEBIAN13)}
