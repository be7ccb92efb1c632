"""The manual's "Image service" chapter: Glance with the file store, and a test image."""
from __future__ import annotations

from vmlab.platforms import Pkg, Svc
from vmlab.stages.base import Context, Stage, StageEnv, apply
from vmlab.stages.infrastructure import wait_for_port
from vmlab.stages.keystone import ADMIN, create_database, create_user, write_database_password

IMAGE_PATH = "/root/vmlab-test-image.img"


def install_glance(c: Context, env: StageEnv) -> None:
    p = env.distro
    create_database(c, env, "glance", "glance_db")
    create_user(c, env, "glance", "glance")
    c.run(ADMIN + "openstack role add --project service --user glance admin")
    c.run(ADMIN + "openstack service show image >/dev/null 2>&1 || openstack service create "
          "--name glance --description 'OpenStack Image' image")
    for interface in ("public", "internal", "admin"):
        c.run(ADMIN + f"test -n \"$(openstack endpoint list --service image "
              f"--interface {interface} --region {env.openstack.region} -f value -c ID)\" || "
              f"openstack endpoint create --region {env.openstack.region} "
              f"image {interface} http://controller:9292")
    apply(c, env, p.preseed(Pkg.GLANCE))
    c.run(p.install(Pkg.GLANCE))
    write_database_password(c, env, "glance", "glance_db")
    c.put(env.render("openstack/glance-api.conf.j2"), "/etc/glance/glance-api.conf", mode=0o640)
    c.run("chgrp glance /etc/glance/glance-api.conf")
    services = [Svc.GLANCE_API]
    if env.release.glance_registry:
        services.append(Svc.GLANCE_REGISTRY)
        c.put(env.render("openstack/glance-registry.conf.j2"), "/etc/glance/glance-registry.conf",
              mode=0o640)
        c.run("chgrp glance /etc/glance/glance-registry.conf")
    c.run("install -d -o glance -g glance /var/lib/glance/images")
    c.run('su -s /bin/sh -c "glance-manage db_sync" glance')
    c.run(p.enable_and_start(*services))
    c.run(wait_for_port(None, 9292))
    # Verify operation: the image, uploaded from the host (downloaded there once).
    c.upload(env.host_file("image"), IMAGE_PATH)
    name = env.openstack.image_name
    c.run(ADMIN + f"openstack image show {name} >/dev/null 2>&1 || openstack image create "
          f"'{name}' --file {IMAGE_PATH} --disk-format qcow2 --container-format bare --public")


def verify_glance(c: Context, env: StageEnv) -> None:
    name = env.openstack.image_name
    c.run(ADMIN + f"openstack image list -f value -c Name -c Status | grep -qx '{name} active'")
    keystone, *others = env.release.keystone_ports
    for port in (3306, 5672, 11211, keystone, 9292, *others):
        c.run(wait_for_port(None, port, seconds=5))


STAGES = [
    Stage("glance", install_glance, verify_glance,
          description="Glance: database, user, service, endpoints, file store, a public "
                      "test image", host_files=("image",)),
]
