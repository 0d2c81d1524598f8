"""The manager: turns vSphere state and the operator's intent into bound VM NICs.

Modules, bottom up:

- :mod:`.desired`: pure planning, from a snapshot of everything to a plan.
- :mod:`.faults`: named crash points for the crash-consistency tests.
- :mod:`.snapshot`: reads vCenter and OVN into a snapshot.
- :mod:`.allocation`: VLANs written to the NB ledger, retried on conflict.
- :mod:`.nodes`: one OVSDB session per transport node, applied in parallel.
- :mod:`.reconciler`: one pass = read, plan, apply in the safe order.
- :mod:`.service`: ``ovsphere manager run``: the NB lock, the vSphere watch, passes.
- :mod:`.operations`: what the CLI's network/attach/detach/status commands do.
"""
