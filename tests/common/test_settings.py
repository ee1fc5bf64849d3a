import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from common.settings import (
    BaseSettings,
    ConfigError,
    describe_settings,
    load_settings,
    secret_field,
    setting,
)


@dataclass(frozen=True)
class DemoSettings(BaseSettings):
    env_prefix: ClassVar[str] = "DEMO_"
    listen: str = setting("127.0.0.1:50051", "gRPC listen address")
    workers: int = setting(4, "worker count")
    ratio: float = setting(0.5, "a ratio")
    debug: bool = setting(False, "debug mode")
    data_dir: Path = setting(Path("/var/lib/demo"), "data directory")
    peers: tuple[str, ...] = setting((), "peer addresses")
    mode: str = setting("mint", "sink mode", choices=("mint", "address"))
    limit: int | None = setting(None, "optional limit")
    api_key: str = secret_field("API key")

    def validate(self) -> None:
        if self.workers < 1:
            raise ConfigError("DEMO_WORKERS: must be at least 1")


def test_defaults_when_environment_is_empty():
    s = load_settings(DemoSettings, {})
    assert s.listen == "127.0.0.1:50051"
    assert s.workers == 4
    assert s.debug is False
    assert s.peers == ()
    assert s.limit is None
    assert s.api_key == ""


def test_values_are_converted_by_type():
    env = {"DEMO_WORKERS": "8", "DEMO_RATIO": "0.25", "DEMO_DEBUG": "yes", "DEMO_DATA_DIR": "/tmp/x",
           "DEMO_PEERS": "a:1, b:2", "DEMO_MODE": "address", "DEMO_LIMIT": "10"}
    s = load_settings(DemoSettings, env)
    assert (s.workers, s.ratio, s.debug, s.data_dir) == (8, 0.25, True, Path("/tmp/x"))
    assert s.peers == ("a:1", "b:2")
    assert s.mode == "address"
    assert s.limit == 10


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"DEMO_WORKERS": "many"}, "DEMO_WORKERS: expected an integer"),
        ({"DEMO_DEBUG": "maybe"}, "DEMO_DEBUG: expected a boolean"),
        ({"DEMO_RATIO": "half"}, "DEMO_RATIO: expected a number"),
        ({"DEMO_MODE": "burn"}, "DEMO_MODE: must be one of mint, address"),
        ({"DEMO_WORKERS": "0"}, "DEMO_WORKERS: must be at least 1"),
        ({"DEMO_API_KEY_FILE": "/nonexistent/secret"}, "DEMO_API_KEY_FILE: cannot read secret file"),
    ],
)
def test_bad_values_name_the_variable(env, needle):
    with pytest.raises(ConfigError) as err:
        load_settings(DemoSettings, env)
    assert needle in str(err.value)


def test_secret_is_read_from_file_and_hidden_from_repr(tmp_path):
    secret = tmp_path / "key"
    secret.write_text("s3cr3t-value\n")
    s = load_settings(DemoSettings, {"DEMO_API_KEY_FILE": str(secret)})
    assert s.api_key == "s3cr3t-value"
    assert "s3cr3t" not in repr(s)


def test_secret_file_wins_over_plain_variable(tmp_path):
    secret = tmp_path / "key"
    secret.write_text("from-file")
    s = load_settings(DemoSettings, {"DEMO_API_KEY_FILE": str(secret), "DEMO_API_KEY": "from-env"})
    assert s.api_key == "from-file"


def test_required_secret_missing_is_an_error():
    @dataclass(frozen=True)
    class NeedsSecret(BaseSettings):
        env_prefix: ClassVar[str] = "NS_"
        token: str = secret_field("token", required=True)

    with pytest.raises(ConfigError, match="NS_TOKEN_FILE: required secret is missing"):
        load_settings(NeedsSecret, {})


def test_describe_lists_every_variable_with_docs():
    rows = {var: doc for var, _default, doc in describe_settings(DemoSettings)}
    assert rows["DEMO_LISTEN"] == "gRPC listen address"
    assert "DEMO_API_KEY_FILE" in rows


def test_run_main_exits_2_with_a_clear_message_on_bad_config():
    code = (
        "from dataclasses import dataclass\n"
        "from typing import ClassVar\n"
        "from common.settings import BaseSettings, load_settings, run_main, setting\n"
        "@dataclass(frozen=True)\n"
        "class S(BaseSettings):\n"
        "    env_prefix: ClassVar[str] = 'X_'\n"
        "    port: int = setting(1, 'port')\n"
        "run_main(lambda: print(load_settings(S).port))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env={"X_PORT": "eighty", "PATH": ""},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "configuration error: X_PORT: expected an integer" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_settings_table_aligns_every_variable():
    from common.settings import settings_table

    lines = settings_table(DemoSettings).splitlines()
    assert len(lines) == len(describe_settings(DemoSettings)) == 9
    assert lines[0].startswith("DEMO_LISTEN ")
    assert lines[0].endswith("gRPC listen address")
    assert any(line.startswith("DEMO_API_KEY_FILE ") and "(secret)" in line for line in lines)
    docs = [doc for _var, _default, doc in describe_settings(DemoSettings)]
    assert len({line.rindex(doc) for line, doc in zip(lines, docs, strict=True)}) == 1  # docs in one column




def test_unreadable_secret_file_says_who_may_read_it_and_how_to_fix_it(tmp_path):
    # A bind-mounted secret keeps its host owner and mode; the message must name both sides and the fix.
    # Root reads any file, so as root the reader is a child process that drops to uid/gid 65534 before
    # reading (from a directory it may traverse: pytest's tmp_path is not).
    as_root = os.getuid() == 0
    folder = Path(tempfile.mkdtemp(prefix="secret-")) if as_root else tmp_path
    try:
        folder.chmod(0o755)
        secret = folder / "passphrase"
        secret.write_text("s3cr3t-value\n")
        secret.chmod(0o600 if as_root else 0o000)
        uid = 65534 if as_root else os.getuid()
        code = ("import os, sys\nfrom common.settings import ConfigError, load_settings\n"
                "from tests.common.test_settings import DemoSettings\n"
                f"if {as_root}:\n    os.setgid(65534)\n    os.setuid(65534)\n"
                "try:\n    load_settings(DemoSettings, {'DEMO_API_KEY_FILE': sys.argv[1]})\n"
                "except ConfigError as exc:\n    print(exc)\n")
        result = subprocess.run([sys.executable, "-c", code, str(secret)], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parents[2], timeout=60)
        message = result.stdout.strip()
        assert message.startswith(f"DEMO_API_KEY_FILE: cannot read secret file '{secret}': permission denied"), result
        assert f"this process runs as uid {uid}" in message
        assert f"owned by uid {secret.stat().st_uid} gid {secret.stat().st_gid} with mode 0" in message
        assert f"chown {uid}:" in message and "chmod 0400" in message
        assert "s3cr3t" not in message
    finally:
        if as_root:
            shutil.rmtree(folder)
