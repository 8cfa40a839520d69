"""Generate `gen/` from `protos/`, check it is fresh, and run buf lint and buf breaking.

protovalidate's `buf/validate/validate.proto` is not on PyPI as a source file, and buf cannot
fetch it from the Buf Schema Registry on a machine without internet. The protovalidate wheel does
carry the file's serialized descriptor, so we hand protoc (and buf) a descriptor set built from it:
our protos import `buf/validate/validate.proto` as usual and nothing is copied into the repository.
See docs/decisions/0002-protovalidate-descriptor-set.md.
"""

from __future__ import annotations

import argparse
import ast
import filecmp
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import (
    descriptor_pb2,
    duration_pb2,
    field_mask_pb2,
    timestamp_pb2,
)

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GEN = ROOT / "gen"
BUILD = ROOT / "build"
VALIDATE_PROTO = "buf/validate/validate.proto"


def _validate_descriptor_bytes() -> bytes:
    """Read the serialized FileDescriptorProto of validate.proto out of the protovalidate wheel."""
    spec = importlib.util.find_spec("protovalidate")
    if spec is None or spec.origin is None:
        raise SystemExit("protovalidate is not installed: run `make install`")
    source = Path(spec.origin).parent / "_gen" / "buf" / "validate" / "validate_pb.py"
    tree = ast.parse(source.read_text())
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "file_desc"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, bytes)
        ):
            return node.args[0].value
    raise SystemExit(f"no serialized descriptor found in {source}")


def write_validate_descriptor_set(path: Path) -> Path:
    """Write a FileDescriptorSet holding validate.proto and the well-known files it imports."""
    fds = descriptor_pb2.FileDescriptorSet()
    for module in (descriptor_pb2, duration_pb2, field_mask_pb2, timestamp_pb2):
        fds.file.add().ParseFromString(module.DESCRIPTOR.serialized_pb)
    fds.file.add().ParseFromString(_validate_descriptor_bytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(fds.SerializeToString())
    return path


def proto_files(root: Path = PROTOS) -> list[str]:
    """All .proto files under `root`, as paths relative to it, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.proto"))


def _protoc(args: list[str]) -> None:
    # A child process, so the plugins' chatter ("Writing mypy to ...") is shown only on failure.
    done = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"protoc failed ({done.returncode}): {done.stderr.strip()}")


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    if not candidate.exists():
        found = shutil.which(name)
        if found is None:
            raise SystemExit(f"{name} not found: run `make install`")
        return found
    return str(candidate)


def generate(out: Path, protos_root: Path = PROTOS) -> None:
    """Generate Python, gRPC and mypy stubs for every proto (and validate.proto) into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        dset = write_validate_descriptor_set(Path(tmp) / "validate.binpb")
        files = proto_files(protos_root)
        common = [
            f"--descriptor_set_in={dset}",
            f"-I{protos_root}",
            f"--plugin=protoc-gen-mypy={_bin('protoc-gen-mypy')}",
            f"--plugin=protoc-gen-mypy_grpc={_bin('protoc-gen-mypy_grpc')}",
            f"--python_out={out}",
            f"--mypy_out={out}",
        ]
        _protoc([*common, VALIDATE_PROTO])
        _protoc([*common, f"--grpc_python_out={out}", f"--mypy_grpc_out={out}", *files])
    for directory in [out / "buf", *[p for p in (out / "buf").rglob("*") if p.is_dir()]]:
        (directory / "__init__.py").touch()
    retail = out / "retail"
    if retail.exists():
        for directory in [retail, *[p for p in retail.rglob("*") if p.is_dir()]]:
            if directory.name != "__pycache__":
                (directory / "__init__.py").touch()


def _tree(root: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(root)): p
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix in {".py", ".pyi"}
    }


def stale_files(gen_dir: Path = GEN, protos_root: Path = PROTOS) -> list[str]:
    """Names of generated files that differ from what `protos/` generates now (empty if fresh)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "gen"
        generate(fresh, protos_root)
        want, have = _tree(fresh), _tree(gen_dir)
        diff = sorted(set(want) ^ set(have))
        diff += sorted(n for n in set(want) & set(have) if not filecmp.cmp(want[n], have[n], shallow=False))
        return diff


def build_image(out: Path, protos_root: Path = PROTOS) -> Path:
    """Build a protoc descriptor set with imports and source info, the image buf lints."""
    with tempfile.TemporaryDirectory() as tmp:
        dset = write_validate_descriptor_set(Path(tmp) / "validate.binpb")
        out.parent.mkdir(parents=True, exist_ok=True)
        _protoc(
            [
                f"--descriptor_set_in={dset}",
                f"-I{protos_root}",
                "--include_imports",
                "--include_source_info",
                f"--descriptor_set_out={out}",
                *proto_files(protos_root),
            ]
        )
    return out


def _git(root: Path, *args: str) -> str | None:
    """Stripped output of a read-only git command run in `root`; None when git fails."""
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(root), *args], capture_output=True, text=True
        )
    except FileNotFoundError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _commit(root: Path, ref: str) -> str | None:
    return _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")


@dataclass(frozen=True)
class Baseline:
    """What `buf breaking` compares the working tree's protos with.

    Attributes:
        ref: A git revision, or None when there is nothing to compare with.
        why: How `ref` was chosen, or why there is none; `make lint` prints it.
    """

    ref: str | None
    why: str


#: Where the mainline is looked for: the local branch, else the remote-tracking one (a fresh clone
#: that checked out another branch has only `origin/main`).
MAINLINE = ("main", "origin/main")


def choose_baseline(explicit: str | None = None, root: Path = ROOT) -> Baseline:
    """Pick the revision whose protos the working tree must stay compatible with.

    Comparing `main` with itself can never fail, so the default depends on where HEAD is:

    1. `explicit` (`BUF_AGAINST` or `--against`) when given.
    2. On a branch with commits of its own: the merge-base with the mainline, so the check covers
       everything the branch changes, committed or not.
    3. On the mainline (HEAD is the mainline's tip or behind it) with uncommitted changes under
       `protos/`: HEAD, the contract as last committed.
    4. On the mainline with a clean `protos/`: HEAD~1 (the first parent), so the latest commit is
       checked as CI checks it after a merge.

    Without any of these (not a git checkout, a one-commit repository, a shallow clone lacking the
    parent), the baseline is None and `why` says so: `make lint` reports the check as skipped
    instead of failing on a checkout that cannot answer.

    Args:
        explicit: A revision given by the caller; wins over everything else.
        root: The repository's work tree.

    Returns:
        The chosen baseline.
    """
    if explicit:
        return Baseline(explicit, f"{explicit} (set by BUF_AGAINST or --against)")
    head = _commit(root, "HEAD")
    if head is None:
        return Baseline(None, "not a git checkout with a commit, nothing to compare with")
    for mainline in MAINLINE:
        if _commit(root, mainline) is None:
            continue
        base = _git(root, "merge-base", "HEAD", mainline)
        if base and base != head:
            return Baseline(base, f"the merge-base of HEAD and {mainline} ({base[:12]})")
        if base:
            break  # HEAD is on the mainline
    if _git(root, "status", "--porcelain", "--untracked-files=all", "--", "protos"):
        return Baseline(head, f"HEAD ({head[:12]}), since protos/ has uncommitted changes")
    parent = _commit(root, "HEAD~1")
    if parent is not None:
        return Baseline(parent, f"HEAD~1 ({parent[:12]}), the commit before HEAD")
    if _git(root, "rev-parse", "--is-shallow-repository") == "true":
        return Baseline(
            None,
            "this shallow clone lacks the commit before HEAD (`git fetch --unshallow`, or set BUF_AGAINST)",
        )
    return Baseline(None, "HEAD is the repository's first commit, nothing to compare with")


def _protos_at(ref: str, dest: Path) -> Path | None:
    """Extract `protos/` as committed on `ref` into `dest`; None when `ref` has none."""
    probe = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{ref}:protos"],
        capture_output=True,
    )
    if probe.returncode != 0:
        return None
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "protos"], capture_output=True, check=True
    )
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest / "protos"


def _buf(argv: list[str]) -> None:
    if subprocess.run(argv).returncode != 0:
        raise SystemExit(f"{argv[1]} failed (its findings are above)")


def lint(buf: str, against: str | None = None) -> None:
    """Run `buf lint` on our files and `buf breaking` against the baseline (`choose_baseline`)."""
    config = str(PROTOS / "buf.yaml")
    image = build_image(BUILD / "image.binpb")
    paths = [f"--path={p}" for p in proto_files() if p.startswith("retail/")]
    _buf([buf, "lint", f"{image}#format=binpb", "--config", config, *paths])
    print("buf lint: clean")
    if against and _commit(ROOT, against) is None:
        raise SystemExit(f"buf breaking: BUF_AGAINST={against} names no commit in this repository")
    baseline = choose_baseline(against)
    if baseline.ref is None:
        print(f"buf breaking: skipped: {baseline.why}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        old_root = _protos_at(baseline.ref, Path(tmp))
        if old_root is None or not any(p.startswith("retail/") for p in proto_files(old_root)):
            print(f"buf breaking: skipped: no protos yet at {baseline.why}")
            return
        old_image = build_image(Path(tmp) / "against.binpb", old_root)
        _buf(
            [
                buf,
                "breaking",
                f"{image}#format=binpb",
                "--against",
                f"{old_image}#format=binpb",
                "--config",
                config,
                *paths,
            ]
        )
    print(f"buf breaking against {baseline.why}: clean")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when gen/ is stale")
    parser.add_argument("--lint", action="store_true", help="run buf lint and buf breaking")
    parser.add_argument("--buf", default="buf", help="path to the buf binary")
    parser.add_argument(
        "--against",
        default=os.environ.get("BUF_AGAINST") or None,
        help="git revision for buf breaking (default: chosen by choose_baseline)",
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        if stale:
            raise SystemExit("gen/ is stale, run `make gen`:\n  " + "\n  ".join(stale))
        print("gen/ is fresh")
    elif args.lint:
        lint(args.buf, args.against)
    else:
        if GEN.exists():
            for child in GEN.iterdir():
                if child.is_dir():
                    shutil.rmtree(child)
        generate(GEN)
        print(f"generated {len(proto_files())} protos into {GEN.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
