"""The manual's environment services: SQL database, message queue, memcached."""
from __future__ import annotations

from vmlab.platforms import File, Pkg, Svc, Tpl
from vmlab.stages.base import Context, Stage, StageEnv


def wait_for_port(address: str | None, port: int, seconds: int = 60) -> str:
    """A shell loop that waits until something listens on address:port (any address: None)."""
    where = f"{address}:{port}" if address else f":{port}"
    return (f"for i in $(seq {seconds * 5}); do ss -ltnH | grep -q '{where} ' && exit 0; "
            f"sleep 0.2; done; echo 'nothing listens on {where}' >&2; exit 1")


def start_after_network_online(c: Context, env: StageEnv, role: Svc) -> None:
    """Order the service of ``role`` after network-online.target (a systemd drop-in).

    It binds the management address: ordered only after network.target it can start
    before that address exists (a boot from an offline snapshot) and fail to bind. Ordering
    is what systemd documents for this (systemd.special(7), network-online.target), and it
    keeps a wrong address an error, where net.ipv4.ip_nonlocal_bind would hide one."""
    unit = env.distro.service(role)
    # The drop-in directory is vmlab's to make: no package makes it for mariadb.service
    # (seen on Debian 13), and writing into it failed with "No such file".
    c.run(f"mkdir -p /etc/systemd/system/{unit}.service.d")
    c.put(env.render("openstack/after-network-online.conf.j2", unit=unit),
          f"/etc/systemd/system/{unit}.service.d/vmlab-network-online.conf")
    c.run("systemctl daemon-reload")


def verify_after_network_online(c: Context, env: StageEnv, role: Svc) -> None:
    unit = env.distro.service(role)
    c.run(f"systemctl show -p After {unit} | grep -q network-online.target")


# -- mariadb ----------------------------------------------------------------------------


#: MariaDB's systemd socket units. A mariadbd that systemd hands a socket to listens where
#: the socket unit says (ListenStream=3306: every address) and ignores bind-address (MariaDB
#: docs, "systemd", socket activation). Debian 12's MariaDB 10.11 ships mariadb.socket; with
#: the package in the guest image it was active at boot ("Using systemd activated socket
#: host :: port 3306", nothing on the management address). CentOS 7's MariaDB has none.
#: Turned off, the server binds the address the manual's openstack.cnf gives it.
NO_SOCKET_ACTIVATION = ("for unit in mariadb.socket mariadb-extra.socket; do "
                        "if systemctl cat \"$unit\" >/dev/null 2>&1; then "
                        "systemctl disable --now \"$unit\" || exit 1; fi; done")


def install_mariadb(c: Context, env: StageEnv) -> None:
    p = env.distro
    c.run(p.install(Pkg.MARIADB))
    c.put(env.render("openstack/openstack.cnf.j2"), p.path(File.MARIADB_CNF))
    c.run(NO_SOCKET_ACTIVATION)
    start_after_network_online(c, env, Svc.MARIADB)
    c.run(p.enable_and_start(Svc.MARIADB))
    c.run(wait_for_port(env.management_address, 3306))
    # The effect of mysql_secure_installation, without its prompts. `mysql` reads
    # /root/.my.cnf once it exists, so a re-run of this stage still gets in.
    c.run("mysql -u root", input=env.render(p.template(Tpl.MARIADB_SECURE)),
          hide=True)
    c.put(env.render("openstack/root-my.cnf.j2"), "/root/.my.cnf", mode=0o600)


def verify_mariadb(c: Context, env: StageEnv) -> None:
    c.run(wait_for_port(env.management_address, 3306, seconds=5))
    c.run("! systemctl is-enabled --quiet mariadb.socket 2>/dev/null")
    verify_after_network_online(c, env, Svc.MARIADB)
    c.run("test \"$(mysql -N -e \"SELECT COUNT(*) FROM mysql.user WHERE User=''\")\" = 0")
    c.run("test -z \"$(mysql -N -e \"SHOW DATABASES LIKE 'test'\")\"")
    c.run("test \"$(mysql -N -e \"SELECT COUNT(*) FROM mysql.user WHERE User='root' AND "
          "Host NOT IN ('localhost','127.0.0.1','::1')\")\" = 0")


# -- rabbitmq ---------------------------------------------------------------------------


def install_rabbitmq(c: Context, env: StageEnv) -> None:
    p = env.distro
    c.run(p.install(Pkg.RABBITMQ))
    c.run(p.enable_and_start(Svc.RABBITMQ))
    c.run("rabbitmqctl await_startup 2>/dev/null || rabbitmqctl wait /var/run/rabbitmq/pid "
          "2>/dev/null || sleep 10")
    set_rabbitmq_password(c, env, "openstack", env.secret("rabbit"))
    c.run('rabbitmqctl set_permissions openstack ".*" ".*" ".*"')


#: Where the older rabbitmqctl's broker reads a password from (it takes none on stdin).
RABBIT_PASSWORD_FILE = "/var/lib/rabbitmq/.vmlab-password"


def set_rabbitmq_password(c: Context, env: StageEnv, user: str, password: str) -> None:
    """Create ``user`` with ``password`` or change its password, the value never in argv.

    rabbitmqctl 3.8 and later read the password from stdin when the argument is left out
    (rabbitmq-server: deps/rabbitmq_cli/lib/rabbitmq/cli/core/input.ex, one line, trimmed).
    The older one (CentOS 7's 3.6) takes it only as an argument, so the broker itself reads
    it from a file only it and root can read, removed at once.
    """
    exists = f"rabbitmqctl list_users -q </dev/null | grep -q '^{user}\\b'"
    if env.distro.rabbitmqctl_reads_password:
        c.run(f"if {exists}; then rabbitmqctl change_password {user}; "
              f"else rabbitmqctl add_user {user}; fi", input=password + "\n", hide=True)
        return
    c.put(password, RABBIT_PASSWORD_FILE, mode=0o600)
    internal = "rabbit_auth_backend_internal"
    expression = (f'{{ok, P}} = file:read_file("{RABBIT_PASSWORD_FILE}"), U = <<"{user}">>, '
                  f"ok = case {internal}:lookup_user(U) of "
                  f"{{ok, _}} -> {internal}:change_password(U, P); "
                  f"_ -> {internal}:add_user(U, P) end.")
    c.run(f"chown rabbitmq {RABBIT_PASSWORD_FILE} && rabbitmqctl eval '{expression}'; "
          f"rc=$?; rm -f {RABBIT_PASSWORD_FILE}; exit $rc", hide=True)


def verify_rabbitmq(c: Context, env: StageEnv) -> None:
    c.run("rabbitmqctl list_permissions -q | grep -E -q '^openstack\\s+\\.\\*\\s+\\.\\*\\s+\\.\\*'")
    c.run(wait_for_port(None, 5672, seconds=5))


# -- memcached --------------------------------------------------------------------------


def install_memcached(c: Context, env: StageEnv) -> None:
    p = env.distro
    c.run(p.install(Pkg.MEMCACHED, Pkg.MEMCACHED_PYTHON))
    # Erratum (later releases of the manual): listen on the management address so the
    # other nodes reach it, not only on localhost.
    c.put(env.render(p.template(Tpl.MEMCACHED_CONF)), p.path(File.MEMCACHED_CONF))
    start_after_network_online(c, env, Svc.MEMCACHED)
    c.run(p.enable_and_start(Svc.MEMCACHED))


def verify_memcached(c: Context, env: StageEnv) -> None:
    address = env.management_address
    c.run(wait_for_port(address, 11211, seconds=10))
    c.run(f"exec 3<>/dev/tcp/{address}/11211 && printf 'version\\r\\n' >&3 && "
          "read -t 5 reply <&3 && echo \"$reply\" | grep -q '^VERSION '")


def verify_memcached_stage(c: Context, env: StageEnv) -> None:
    verify_memcached(c, env)
    verify_after_network_online(c, env, Svc.MEMCACHED)


STAGES = [
    Stage("mariadb", install_mariadb, verify_mariadb,
          description="MariaDB on the management address, secured without prompts"),
    Stage("rabbitmq", install_rabbitmq, verify_rabbitmq,
          description="RabbitMQ with the openstack user and its permissions"),
    Stage("memcached", install_memcached, verify_memcached_stage,
          description="memcached on the management address"),
]
