pytest_plugins = [
    "ovsphere.testing.vcsim",
    "ovsphere.testing.vsphere",
    "ovsphere.testing.ovs",
    "ovsphere.testing.lab",
]
