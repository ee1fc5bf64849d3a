"""The rules of tools/check_compose.py that read each service's image (its Dockerfile): whether the user it runs
as can write its volumes, read its secrets (as the README shows them made) and reach the signer's socket, and
what the build context keeps out. Each returns its problems as "<where>: <what is wrong and why>"."""

from __future__ import annotations

from pathlib import Path

from compose_model import Bundle, environment, ignored, mounts, write_paths

__all__ = ["rule_dockerignore", "rule_secret_files_documented", "rule_signer_socket_clients", "rule_writable_dirs"]

KEPT_OUT_OF_BUILDS = (".git", ".venv", "secrets", "var", "models", ".env")


def rule_writable_dirs(b: Bundle) -> list[str]:
    """A fresh named volume copies the owner and mode of the image's directory, or is root's if there is none."""
    found = []
    for name, svc in b.services().items():
        dockerfile = b.dockerfile(svc)
        if dockerfile is None:
            continue
        args = svc["build"].get("args", {})
        uid, dirs = dockerfile.user(args), dockerfile.created_dirs(args)
        groups = {uid, *map(str, svc.get("group_add", []))}
        writable = {target for source, target, ro in mounts(svc) if not source.startswith((".", "/")) and not ro}
        writable |= {str(t).split(":")[0] for t in svc.get("tmpfs", [])}
        # A volume mounted read-only is another service's, made by that service's image.
        for target in sorted(t for s, t, ro in mounts(svc) if not s.startswith((".", "/")) and not ro):
            owner, group, mode = dirs.get(target, ("0", "0", "0755"))
            if target not in dirs:
                found.append(f"{name}: {dockerfile.path.name} does not create {target}, so its volume is root's")
            elif owner != uid and not (group in groups and int(mode, 8) & 0o070 == 0o070):
                found.append(f"{name}: {target} is {owner}:{group} {mode} in the image; uid {uid} cannot write it")
        for var, directory in write_paths(environment(svc)):
            if not any(directory == t or directory.startswith(t.rstrip("/") + "/") for t in writable):
                found.append(f"{name}: {var} writes under {directory}, which is on no writable volume")
    return found


def rule_secret_files_documented(b: Bundle) -> list[str]:
    """A file secret is bind-mounted with its host owner and mode: the README must say whose it must be."""
    readme = b.root / "README.md"
    section = readme.read_text().split("## Production bundle", 1)[-1].split("\n## ", 1)[0] if readme.exists() else ""
    found = []
    for name, svc in b.services().items():
        dockerfile = b.dockerfile(svc)
        uid = dockerfile.user(svc["build"].get("args", {})) if dockerfile else "0"
        for secret in svc.get("secrets", []):
            secret_name = secret if isinstance(secret, str) else secret["source"]
            path = b.docs["docker-compose.yml"]["secrets"][secret_name]["file"].removeprefix("./")
            shown = (path in line and (f"-o {uid}" in line or f"chown {uid}" in line) for line in section.splitlines())
            if not any(shown):
                found.append(f"{name}: README 'Production bundle' must show {path} made readable by uid {uid} "
                             f"(e.g. install -o {uid} -m 0400)")
    return found


def rule_signer_socket_clients(b: Bundle) -> list[str]:
    services = b.services()
    signer = services.get("signer", {})
    dockerfile = b.dockerfile(signer)
    listen = environment(signer).get("SIGNER_LISTEN", "")
    if dockerfile is None or not listen.startswith("unix:"):
        return []
    args = signer["build"].get("args", {})
    gid = dockerfile.values(args).get("SIGNER_SOCKET_GID", "?")
    socket_dir = str(Path(listen.removeprefix("unix:")).parent)
    volume = next((s for s, t, _ in mounts(signer) if t == socket_dir), None)
    found = []
    _, group, mode = dockerfile.created_dirs(args).get(socket_dir, ("?", "?", "0"))
    if group != gid or not int(mode, 8) & 0o2000:
        found.append(f"signer: {socket_dir} must be setgid to the socket group {gid} in the image (mode 2770)")
    client = b.docs["docker-compose.yml"].get("x-signer-client", {})
    if [str(g) for g in client.get("group_add", [])] != [gid] or client.get("volume") != f"{volume}:{socket_dir}":
        found.append(f"x-signer-client: must hold the socket volume {volume}:{socket_dir} and group_add [{gid}]")
    for name, svc in services.items():
        client_mount = name != "signer" and any(s == volume for s, _, _ in mounts(svc))
        if client_mount and gid not in map(str, svc.get("group_add", [])):
            found.append(f"{name}: mounts the signer's socket without group_add [{gid}]; it cannot connect")
    return found


def rule_dockerignore(b: Bundle) -> list[str]:
    path = b.root / ".dockerignore"
    if not path.exists():
        return [".dockerignore: missing, so every build sends .git, .venv and secrets/ to the daemon"]
    patterns = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    found = [f".dockerignore: does not keep {p} out of the build context" for p in KEPT_OUT_OF_BUILDS
             if not ignored(p, patterns)]
    for svc in b.services().values():
        dockerfile = b.dockerfile(svc)
        for line in (rest for instr, rest in dockerfile.every if instr == "COPY") if dockerfile else []:
            for source in ([] if "--from" in line else [w for w in line.split()[:-1] if not w.startswith("--")]):
                if ignored(source.rstrip("/"), patterns):
                    found.append(f".dockerignore: excludes {source}, which {dockerfile.path.name} copies")
    return sorted(set(found))
