"""The OVN northbound side of ovsphere: networks, ports, the VLAN ledger (ovsdbapp)."""
