"""The manual's "Identity service" chapter: Keystone with Fernet tokens behind Apache."""
from __future__ import annotations

from vmlab.platforms import File, Pkg, Svc
from vmlab.stages.base import Context, Stage, StageEnv, apply
from vmlab.stages.infrastructure import wait_for_port
from vmlab.stages.secretio import secret_variable

ADMIN = ". /root/admin-openrc && "


def create_database(c: Context, env: StageEnv, name: str, secret: str) -> None:
    """CREATE DATABASE and the two GRANTs of the manual (SQL on stdin, never logged)."""
    c.run("mysql", input=env.render("openstack/database.sql.j2", database=name, user=name,
                                    password=env.secret(secret)), hide=True)


def write_database_password(c: Context, env: StageEnv, service: str, secret: str) -> None:
    """Where the release reads it from an option file (see Release.db_password_in_option_file):
    the service's database password there, readable by the service's group only."""
    if not env.release.db_password_in_option_file:
        return
    path = f"/etc/{service}/{service}-db.cnf"
    c.put(env.render("openstack/database-password.cnf.j2", service=service, secret=secret),
          path, mode=0o640)
    c.run(f"chgrp {service} {path}")


def create_user(c: Context, env: StageEnv, user: str, secret: str) -> None:
    """`openstack user create --or-show --domain default --password PASSWORD USER`, with the
    password from the environment: the client runs in-process (openstackclient.shell.main,
    the `openstack` command's own entry point) and adds it to its arguments itself."""
    variable = secret_variable(secret)
    program = ("import os, sys; from openstackclient.shell import main; "
               f"a = sys.argv[1:] + ['--password', os.environ['{variable}']]; "
               "u = type(u''); "
               "sys.exit(main([x if isinstance(x, u) else x.decode('utf-8') for x in a]))")
    c.run(ADMIN + f"{env.distro.python} -c \"{program}\" "
          f"user create --or-show --domain default {user}",
          env={variable: env.secret(secret)})


def keystone_urls(env: StageEnv) -> dict[str, str]:
    return env.release.keystone_urls()


def install_keystone(c: Context, env: StageEnv) -> None:
    p = env.distro
    create_database(c, env, "keystone", "keystone_db")
    # A package that would configure a database and endpoints itself is told not to:
    # the manual does that, below.
    apply(c, env, p.preseed(Pkg.KEYSTONE))
    c.run(p.install(Pkg.KEYSTONE))
    if p.has_service(Svc.KEYSTONE_PACKAGED):
        # The package started Keystone itself on port 5000; the manual has Apache serve it.
        c.run(f"systemctl disable --now {p.service(Svc.KEYSTONE_PACKAGED)}")
    write_database_password(c, env, "keystone", "keystone_db")
    c.put(env.render("openstack/keystone.conf.j2"), "/etc/keystone/keystone.conf", mode=0o640)
    c.run("chgrp keystone /etc/keystone/keystone.conf")
    c.run('su -s /bin/sh -c "keystone-manage db_sync" keystone')
    c.run("keystone-manage fernet_setup --keystone-user keystone --keystone-group keystone")
    c.run("keystone-manage credential_setup --keystone-user keystone --keystone-group keystone")
    urls = keystone_urls(env)
    # keystone-manage reads the password from OS_BOOTSTRAP_PASSWORD when the option is left
    # out (keystone: keystone/cmd/cli.py, BootStrap).
    c.run(f"keystone-manage bootstrap "
          f"--bootstrap-admin-url {urls['admin']} --bootstrap-internal-url {urls['internal']} "
          f"--bootstrap-public-url {urls['public']} "
          f"--bootstrap-region-id {env.openstack.region}",
          env={"OS_BOOTSTRAP_PASSWORD": env.secret("admin")})
    # Apache: ServerName, the keystone WSGI site, started.
    c.put("ServerName controller\n", p.path(File.HTTPD_SERVERNAME))
    if not p.keystone_site_shipped:
        c.put(env.render("openstack/wsgi-keystone.conf.j2", log_dir=p.path(File.HTTPD_LOGS)),
              p.path(File.KEYSTONE_SITE))
    c.run(f"ln -sf {p.path(File.KEYSTONE_SITE)} {p.path(File.KEYSTONE_SITE_LINK)}")
    # Verify operation, step 1: admin_token_auth out of the paste pipelines.
    if env.release.keystone_paste_pipeline:
        c.run(f"sed -i 's/ admin_token_auth / /' {p.path(File.KEYSTONE_PASTE)}")
    c.run(p.enable_and_start(Svc.HTTPD))
    c.run(wait_for_port(None, 5000))
    c.put(env.render("openstack/openrc.j2", user="admin", project="admin",
                     password=env.secret("admin"), auth_url=urls["admin"]),
          "/root/admin-openrc", mode=0o600)
    c.put(env.render("openstack/openrc.j2", user="demo", project="demo",
                     password=env.secret("demo"), auth_url=urls["public"]),
          "/root/demo-openrc", mode=0o600)
    # Create a domain, projects, users, and roles.
    c.run(ADMIN + "openstack project create --or-show --domain default "
          "--description 'Service Project' service")
    c.run(ADMIN + "openstack project create --or-show --domain default "
          "--description 'Demo Project' demo")
    create_user(c, env, "demo", "demo")
    c.run(ADMIN + "openstack role create --or-show user")
    c.run(ADMIN + "openstack role add --project demo --user demo user")


def verify_keystone(c: Context, env: StageEnv) -> None:
    httpd = env.distro.service(Svc.HTTPD)
    c.run(f"ss -Hltnp 'sport = :5000' | grep -q '\"{httpd}\"'")  # Apache serves Keystone
    if env.release.keystone_paste_pipeline:
        c.run(f"! grep -E '^pipeline.* admin_token_auth ' {env.distro.path(File.KEYSTONE_PASTE)}")
    c.run(ADMIN + "openstack token issue")
    c.run(". /root/demo-openrc && openstack token issue")
    c.run(ADMIN + f"openstack endpoint list --service identity --region {env.openstack.region} "
          "-f value -c Interface | sort | tr '\\n' ' ' | grep -qx 'admin internal public '")


STAGES = [
    Stage("keystone", install_keystone, verify_keystone,
          description="Keystone: database, Fernet tokens, bootstrap, Apache, projects, "
                      "users, roles, openrc files"),
]
