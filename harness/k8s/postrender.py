"""Helm's post-renderer for stageproof's overlay: the team's chart stays unchanged.

Helm 3 runs the executable given to `--post-renderer` with the release's rendered manifests on
stdin and installs what it prints. Ours saves them as the overlay's resource file, runs `kubectl
kustomize` on the overlay folder (its kustomization lists that file and adds the run's patches)
and prints the result. It is a tiny /bin/sh script with every path quoted by shlex, so no path
(spaces, quotes, `$`) can turn into shell code.

Helm 3 passes only the release's manifests (and `--include-crds` CRDs) through it, NOT its hooks
(pre-install Jobs, `helm test` Pods): those are installed exactly as the chart renders them.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

#: as harness/k8s/manifests.py names them (kept here, not imported: that module will import this one)
KUSTOMIZE = ("kustomize", "--load-restrictor", "LoadRestrictionsNone")
THEIRS = "theirs.yaml"
SCRIPT = ".stageproof-post-render"
#: the last post-rendered stream, kept beside the overlay for diagnostics
OUTPUT = ".post-rendered.yaml"


def post_renderer(overlay_dir: Path, kubectl_argv: Sequence[str], *, resource: str = THEIRS) -> Path:
    """Write the post-renderer executable for `overlay_dir` and return its path (for
    `--post-renderer`). `kubectl_argv` is how to run kubectl (binary and, if any, its global flags);
    `resource` is the file the overlay's kustomization lists as the chart's render."""
    if not kubectl_argv:
        raise ValueError("kubectl_argv is empty: name the kubectl binary")
    folder = overlay_dir.resolve()
    kustomize = shlex.join([*kubectl_argv, *KUSTOMIZE, str(folder)])
    stdin_file = shlex.quote(str(folder / resource))
    output = shlex.quote(str(folder / OUTPUT))
    failed = shlex.quote(f"stageproof post-renderer: `{kustomize}` failed (the overlay in {folder} "
                         f"does not apply to the chart's render, saved as {folder / resource})")
    saving = shlex.quote(f"stageproof post-renderer: could not save Helm's render to {folder / resource}")
    script = "\n".join([
        "#!/bin/sh",
        "# Written by stageproof (harness/k8s/postrender.py): Helm's render -> the run's kustomize overlay.",
        "set -u",
        f"cat > {stdin_file} || {{ echo {saving} >&2; exit 1; }}",
        f"if {kustomize} > {output}; then",
        f"  exec cat {output}",
        "fi",
        f"echo {failed} >&2",
        "exit 1",
        "",
    ])
    path = folder / SCRIPT
    path.write_text(script)
    path.chmod(0o755)
    return path
