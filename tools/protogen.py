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


def _main_protos(ref: str, dest: Path) -> Path | None:
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


def lint(buf: str, against: str) -> None:
    """Run `buf lint` on our files and `buf breaking` against the protos on `against`."""
    config = str(PROTOS / "buf.yaml")
    image = build_image(BUILD / "image.binpb")
    paths = [f"--path={p}" for p in proto_files() if p.startswith("retail/")]
    _buf([buf, "lint", f"{image}#format=binpb", "--config", config, *paths])
    print("buf lint: clean")
    with tempfile.TemporaryDirectory() as tmp:
        old_root = _main_protos(against, Path(tmp))
        if old_root is None or not any(p.startswith("retail/") for p in proto_files(old_root)):
            print(f"buf breaking: {against} has no protos yet, nothing to compare")
            return
        old_image = build_image(Path(tmp) / "against.binpb", old_root)
        subprocess.run(
            [
                buf,
                "breaking",
                f"{image}#format=binpb",
                "--against",
                f"{old_image}#format=binpb",
                "--config",
                config,
                *paths,
            ],
            check=True,
        )
    print(f"buf breaking against {against}: clean")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when gen/ is stale")
    parser.add_argument("--lint", action="store_true", help="run buf lint and buf breaking")
    parser.add_argument("--buf", default="buf", help="path to the buf binary")
    parser.add_argument("--against", default=os.environ.get("BUF_AGAINST", "main"))
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
