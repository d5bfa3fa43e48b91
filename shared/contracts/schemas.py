"""JSON Schema per contract (`make schemas`) and the drift check (`make check`).

``python -m shared.contracts.schemas`` writes ``shared/contracts/schemas/*.json``;
with ``--check`` it writes nothing and exits 1 naming any stale, missing or extra file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from shared import contracts

SCHEMA_DIR = Path(__file__).parent / "schemas"


def render() -> dict[str, str]:
    """File name -> JSON Schema text, for every contract and the envelope."""
    out = {"envelope.json": _dump(contracts.Envelope.model_json_schema())}
    for cls in contracts.ALL:
        schema = cls.model_json_schema()
        schema["x-type"] = cls.TYPE
        schema["x-version"] = cls.VERSION
        schema["x-kind"] = cls.KIND
        out[f"{cls.TYPE}.v{cls.VERSION}.json"] = _dump(schema)
    return out


def _dump(schema: dict[str, object]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def stale(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files that are missing, different or no longer produced."""
    wanted = render()
    present = {p.name for p in directory.glob("*.json")}
    diff = [
        n
        for n, text in wanted.items()
        if not (directory / n).exists() or (directory / n).read_text() != text
    ]
    return sorted(diff + sorted(present - set(wanted)))


def write(directory: Path = SCHEMA_DIR) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    wanted = render()
    for p in directory.glob("*.json"):
        if p.name not in wanted:
            p.unlink()
    for name, text in wanted.items():
        (directory / name).write_text(text)


def main(argv: list[str] | None = None, directory: Path = SCHEMA_DIR) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--check" in args:
        bad = stale(directory)
        if bad:
            print("stale JSON schemas (run `make schemas`): " + ", ".join(bad))
            return 1
        print("schemas up to date")
        return 0
    write(directory)
    print(f"wrote {len(render())} schemas to {directory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
