"""What the broker and the center's services see of the registry: the ACL and the registry file.

``sync_files`` writes both from the store (``store.enrollment.grants``): one ACL block per enrolled
kiosk, and ``registry/enrolled-kiosks.json`` (``contract.enrollment.EnrolledKiosks``) for the allocator.
The provisioning service calls it at every change (``provisioning.service``), center-init once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from common.files import write_atomically
from provisioning.broker import KioskGrant, render_acl, write_acl

if TYPE_CHECKING:
    from fleet.store import Store
    from provisioning.center import CenterLayout, CenterSettings


@dataclass(frozen=True)
class FilesSynced:
    generation: int
    acl_changed: bool
    kiosks: int


def sync_files(layout: CenterLayout, settings: CenterSettings, store: Store) -> FilesSynced:
    registry = store.enrollment.registry(settings.center_id)
    grants = [KioskGrant(kiosk_id, settings.center_id) for kiosk_id in registry.kiosks]
    text = render_acl(
        settings.center_id,
        grants,
        layout.service_names(),
        topic_root=settings.topic_root,
        generation=registry.generation,
    )
    changed = write_acl(layout.acl_file, text)
    layout.registry_file.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(layout.registry_file, registry.to_bytes(), 0o644)
    return FilesSynced(registry.generation, changed, len(grants))
