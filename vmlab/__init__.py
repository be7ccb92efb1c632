"""vmlab: build virtual-machine labs on libvirt or vSphere, stage by stage, with a
snapshot before every stage."""

__version__ = "0.1.0"
