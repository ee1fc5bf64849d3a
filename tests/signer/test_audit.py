from __future__ import annotations

import json
from pathlib import Path

import pytest

from signer.audit import GENESIS_HASH, AuditLog, _canonical, audit_files, line_hash, verify_chain, verify_file
from signer.errors import AuditError
from tests.signer.helpers import run_cli


def write_log(path: Path, count: int) -> list[str]:
    log = AuditLog(path)
    ids = [log.append({"kind": "burn", "decision": "allow", "n": i}) for i in range(count)]
    log.flush()
    log.close()
    return ids


def test_chain_links_and_resumes(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    first = write_log(path, 3)
    log = AuditLog(path)  # resumes after line 3
    fourth = log.append({"kind": "burn", "decision": "deny"})
    log.flush()
    log.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["seq"] for x in lines] == [1, 2, 3, 4]
    assert lines[0]["prev"] == GENESIS_HASH and lines[3]["prev"] == first[2]
    body = {k: v for k, v in lines[3].items() if k != "hash"}
    assert line_hash(first[2], body) == fourth == lines[3]["hash"]
    result = verify_file(path)
    assert result.ok and result.lines == 4 and result.head == fourth


def test_rollback_forgets_unwritten_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.append({"n": 1})
    mark = log.checkpoint()
    log.append({"n": 2})
    log.rollback(mark)
    log.append({"n": 3})
    log.flush()
    assert [json.loads(x)["n"] for x in path.read_text().splitlines()] == [1, 3]
    assert verify_file(path).ok


def _edit(lines: list[str], index: int, how: str) -> list[str]:
    out = list(lines)
    if how == "field":
        entry = json.loads(out[index])
        entry["decision"] = "deny"
        out[index] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    elif how == "rehash":  # attacker recomputes this line's hash; the next line's prev still breaks
        entry = json.loads(out[index])
        entry["decision"] = "deny"
        entry.pop("hash")
        entry["hash"] = line_hash(entry["prev"], entry)
        out[index] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    elif how == "delete":
        del out[index]
    elif how == "duplicate":
        out.insert(index, out[index])
    elif how == "swap":
        out[index], out[index + 1] = out[index + 1], out[index]
    elif how == "byte":
        out[index] = out[index].replace('"n":', '"n" :', 1)
    return out


@pytest.mark.parametrize("how", ["field", "rehash", "delete", "duplicate", "swap", "byte"])
def test_any_tampered_line_is_found(tmp_path: Path, how: str) -> None:
    path = tmp_path / "audit.jsonl"
    ids = write_log(path, 6)
    anchor = (6, ids[-1])  # what the state database records
    original = path.read_text().splitlines()
    for index in range(5 if how == "swap" else 6):
        tampered = _edit(original, index, how)
        path.write_text("\n".join(tampered) + "\n")
        result = verify_file(path, anchor)
        expected = {"rehash": min(index + 2, 6), "duplicate": index + 2}.get(how, index + 1)
        assert not result.ok and result.first_bad_line == expected, (how, index, result)
        if how in ("delete", "rehash") and index == 5:
            # Without the anchor, losing or re-hashing the last line leaves a valid shorter chain.
            assert verify_file(path).ok
        else:
            assert verify_file(path).first_bad_line == expected


def test_truncated_tail_blocks_restart(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 2)
    with path.open("ab") as log:
        log.write(b'{"seq":3,"prev":"')
    assert verify_file(path).first_bad_line == 3
    with pytest.raises(AuditError, match=r"damaged|does not verify"):
        AuditLog(path)


def test_cli_verify(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 4)
    ok = run_cli(["audit", "verify", str(path)], {})
    assert ok.returncode == 0 and "ok: 4 lines" in ok.stdout
    lines = path.read_text().splitlines()
    path.write_text("\n".join(_edit(lines, 2, "field")) + "\n")
    bad = run_cli(["audit", "verify", str(path)], {})
    assert bad.returncode == 1 and "line 3" in bad.stdout


def _json_canonical(entry: object) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


@pytest.mark.parametrize("entry", [
    {"s": "".join(map(chr, range(128))), "".join(map(chr, range(32, 127))): 1},
    {chr(c) + "k": chr(c) for c in range(128)},
    {"caller": "cn:gätewäy", "note": "snow ☃ \u2028 \U0001f600", "n": -(2**63), "m": 2**64 - 1},
    {"big": 2**70, "nested": {"z": [1, {"b": None, "a": True}], "a": False}},
    {"f": 1e16, "g": [0.1, float("inf")]},
    {"request": {"tx_id": "ab" * 32, "generation_ids": 4}, "ts": "2026-01-01T00:00:00.000+00:00", "seq": 7},
])
def test_canonical_json_is_json_dumps_byte_for_byte(entry: dict[str, object]) -> None:
    assert _canonical(entry) == _json_canonical(entry)


# --- rotation (issue #15 item 8): bounded growth, one chain across files -----------------------------------

def _rotating_log(path: Path, lines: int, *, keep: int = 0, max_bytes: int = 1024) -> AuditLog:
    log = AuditLog(path, max_file_bytes=max_bytes, keep_files=keep)
    for i in range(lines):
        log.append({"kind": "burn", "decision": "allow", "n": i, "pad": "x" * 40})
        log.flush()
    return log


def test_rotation_keeps_one_verifiable_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = _rotating_log(path, 60)
    files = audit_files(path)
    assert len(files) > 3 and all(f.stat().st_size <= 1024 for f in files)
    # Each rotated file is named after its first line, and the chain runs on from one file to the next.
    for f in files[:-1]:
        assert json.loads(f.read_text().splitlines()[0])["seq"] == int(f.name[len("audit-"):-len(".jsonl")])
    head = log.checkpoint()
    log.close()
    result = verify_chain(files, head[:2])
    assert result.ok and result.lines == 60 and result.first_seq == 1
    resumed = AuditLog(path, max_file_bytes=1024)  # resumes across the rotation
    resumed.append({"n": 60})
    resumed.flush()
    resumed.close()
    assert verify_chain(audit_files(path)).lines == 61


def test_rotation_deletes_the_oldest_and_the_rest_still_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = _rotating_log(path, 80, keep=2)
    head = log.checkpoint()
    log.close()
    files = audit_files(path)
    assert len(files) == 3  # two rotated files and the current one
    result = verify_chain(files, head[:2])
    assert result.ok and result.first_seq > 1
    cli = run_cli(["audit", "verify", str(path)], {})
    assert cli.returncode == 0 and f"from line {result.first_seq}" in cli.stdout, cli.stdout


def test_tampering_inside_a_rotated_file_or_a_missing_middle_file_is_found(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _rotating_log(path, 60).close()
    files = audit_files(path)
    middle = files[1]
    lines = middle.read_text().splitlines()
    middle.write_text("\n".join(_edit(lines, 1, "field")) + "\n")
    bad = verify_chain(files)
    assert not bad.ok and bad.file == str(middle) and bad.first_bad_line == json.loads(lines[1])["seq"]
    middle.unlink()
    assert not verify_chain(audit_files(path)).ok
    # The current file alone cannot pose as the start of the chain: only a rotated file may.
    alone = verify_chain([path])
    assert not alone.ok and alone.first_bad_line == 1 and "expected 1" in alone.problem


def test_a_crash_right_after_rotation_resumes_from_the_rotated_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = _rotating_log(path, 30)
    seq, head, _ = log.checkpoint()
    log.close()
    first = json.loads(path.read_text().splitlines()[0])["seq"]
    path.rename(path.with_name(f"audit-{first:012d}.jsonl"))
    path.write_bytes(b"")  # the rename happened, the next batch's write did not
    resumed = AuditLog(path, anchor=(seq, head))
    resumed.append({"n": "after"})
    resumed.flush()
    resumed.close()
    assert verify_chain(audit_files(path)).ok
