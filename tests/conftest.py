pytest_plugins = [
    "ovsphere.testing.vcsim",
    "ovsphere.testing.vsphere",
    "ovsphere.testing.ovs",
    "ovsphere.testing.ovn",
    "ovsphere.testing.lab",
    "ovsphere.testing.transport",
]
