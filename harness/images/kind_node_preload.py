"""A kind node image with more images already in its containerd: the add-ons, the database.

`kind load docker-image` saves each image and imports (and unpacks) it into every node, on every
run: seconds per 100 MB per node. Images that do not change from run to run (the add-ons, the
database stand-in) can instead be in the node image itself, imported once like kubeadm's own,
so a run only loads the app image it just built.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.core.cache import recipe_hash
from harness.errors import StageUnavailable
from harness.images.docker import image_id, image_is_current
from harness.images.kind_node import assemble_node, ensure_kind_node_image, node_build_lock
from harness.images.kind_node_recipe import NODE_IMAGE_REPO, load_versions, note, step


def preloaded_tag(base_id: str, image_ids: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """(tag, recipe) of the node image `base_id` plus images given as (ref, image id): the tag
    names the Kubernetes version and a hash of the base and of every ref with its image id."""
    recipe = recipe_hash("preload-v1", f"base={base_id}", *(f"{ref}={iid}" for ref, iid in sorted(image_ids)))
    return f"{NODE_IMAGE_REPO}:{load_versions().kubernetes}-{recipe}", recipe


def ensure_node_image_with(images: Sequence[str], *, base: str | None = None) -> str:
    """The node image (`base`, default: ours, built if needed) with `images` imported into its
    containerd and pinned; cached by the hash of the base's and the images' ids. Returns its tag."""
    base = base or ensure_kind_node_image()
    base_image = image_id(base)
    if base_image is None:
        raise StageUnavailable(f"node image {base} is not here: build it first (`stageproof images kind-node`)")
    ids = {ref: image_id(ref) for ref in dict.fromkeys(images)}
    missing = [ref for ref, iid in ids.items() if iid is None]
    if missing:
        raise StageUnavailable(f"cannot preload {', '.join(missing)} into the node image: not here (build them first)")
    tag, recipe = preloaded_tag(base_image, [(ref, str(iid)) for ref, iid in ids.items()])
    if image_is_current(tag, recipe):
        note(f"{tag} is current: {base} with {', '.join(ids)}")
        return tag
    with node_build_lock(), step("node-preload", f"import {len(ids)} images into {base}, commit {tag}"):
        if not image_is_current(tag, recipe):  # another run may have built it while we waited
            assemble_node(base, list(ids), tag, recipe)
    return tag


def ensure_cluster_node_image() -> str:
    """The node image a kind cluster of ours boots with no registry: ours, with the add-ons already
    in its containerd (so a run loads only the app). `stageproof images cluster` builds it ahead."""
    from harness.images.addons import ensure_addon_images  # heavy: only when a cluster is wanted

    return ensure_node_image_with(list(ensure_addon_images().values()), base=ensure_kind_node_image())
