"""The "postgres" substitute: Debian's PostgreSQL 15 behind the official postgres image's contract.

Built from a minimal debootstrap base (no python: the database image is not the app's) and
flattened to one layer by its recipe, so it stays under 200 MB. Stands in for `postgres:<tag>`,
Debian and -alpine tags alike, once the substitutes dispatch tags it as that ref.
"""

from __future__ import annotations

from harness.core.cache import recipe_hash
from harness.images import step
from harness.images.docker import RECIPE_LABEL, build_image, image_id, untag_others
from harness.images.rootfs import ensure_rootfs_image
from harness.images.substitutes import BASE_CHANGES, BASE_SUITE, KIND_LABEL, RECIPES, Substitute

RECIPE_DIR = RECIPES / "postgres-compat"
REPOSITORY = "stageproof/substitute-postgres"
#: debootstrap minbase with nothing added: apt in the recipe brings what the server needs
MINIMAL_BASE = f"stageproof/base:{BASE_SUITE}-minbase"


def build_postgres_substitute(*, force: bool = False) -> Substitute:
    """`stageproof/substitute-postgres:<recipe hash>`, built unless current (`force`: rebuild, no cache)."""
    with step(f"base image {MINIMAL_BASE} (debootstrap {BASE_SUITE}, minbase)"):
        base = ensure_rootfs_image(MINIMAL_BASE, suite=BASE_SUITE, changes=BASE_CHANGES)
    recipe = recipe_hash("postgres-substitute-v1", RECIPE_DIR, f"base:{image_id(base)}")
    tag = f"{REPOSITORY}:{recipe}"
    if force or image_id(tag) is None:
        build_image(tag, context=RECIPE_DIR, dockerfile=RECIPE_DIR / "Dockerfile", no_cache=force,
                    labels={RECIPE_LABEL: recipe, KIND_LABEL: "postgres"}, args={"BASE_IMAGE": base})
    untag_others(REPOSITORY, keep=tag)
    return Substitute(tag, f"{tag} (Debian bookworm PostgreSQL 15 behind the postgres image's POSTGRES_* contract)")
