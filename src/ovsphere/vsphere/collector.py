"""Bulk reads through the PropertyCollector.

One ``RetrievePropertiesEx`` over a ContainerView reads a property set of every
object of a type below a folder, paged with ``ContinueRetrievePropertiesEx``:
the way to read thousands of VMs without a round trip per object.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyVmomi import vmodl

PC = vmodl.query.PropertyCollector


def container_filter(view: Any, vim_type: Any, paths: Sequence[str]) -> Any:
    """A FilterSpec selecting ``paths`` of every ``vim_type`` in a ContainerView."""
    traverse = PC.TraversalSpec(name="view", path="view", skip=False, type=type(view))
    return PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[traverse])],
        propSet=[PC.PropertySpec(type=vim_type, pathSet=list(paths))],
    )


def retrieve(
    si: Any, root: Any, vim_type: Any, paths: Sequence[str]
) -> list[tuple[Any, dict[str, Any]]]:
    """``[(moref, {path: value})]`` for every ``vim_type`` below ``root``."""
    content = si.content
    view = content.viewManager.CreateContainerView(root, [vim_type], True)
    try:
        pc = content.propertyCollector
        spec = container_filter(view, vim_type, paths)
        result = pc.RetrievePropertiesEx([spec], PC.RetrieveOptions(maxObjects=1000))
        out: list[tuple[Any, dict[str, Any]]] = []
        while result is not None:
            for obj in result.objects:
                out.append((obj.obj, {p.name: p.val for p in obj.propSet or ()}))
            if not result.token:
                break
            result = pc.ContinueRetrievePropertiesEx(result.token)
        return out
    finally:
        view.Destroy()
